//! The usage spool: bills the recorder could not store are written to a
//! file in the data directory instead of being lost, and stored at the
//! next start.
//!
//! The writer spools what it has to give up on: what it still holds when
//! the gateway stops with the store failing, and batches past
//! `MAX_HELD`. Each process appends to its own file,
//! `DATA_DIR/spool/usage-<instance>.jsonl`, and fsyncs before it counts
//! the rows as kept. One JSON object a line: `{"transaction": {...}}` for
//! a bill, `{"close": "<intent id>"}` for a call-journal intent the bills
//! close (so the next start does not bill the same call again as
//! interrupted).
//!
//! [`import`] stores every spool file at start, before the journal's
//! recovery, then deletes it. A replay (a crash mid-import, a file kept
//! for a bad line) charges nothing twice: the store ignores a
//! `record_id` it already has, and closing an intent that is gone only
//! removes an interrupted estimate of the same call.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use arouter_core::exchange::Outcome;
use serde::{Deserialize, Serialize};

use crate::store::{BatchRef, Store, StoreError, Transaction};

/// The spool directory, in the data directory.
pub const DIR: &str = "spool";
/// Rows stored in one store transaction while importing.
const IMPORT_CHUNK: usize = 1_000;

#[derive(Debug)]
pub enum SpoolError {
    /// Creating, writing or syncing the spool file failed.
    Write { path: PathBuf, source: io::Error },
    /// A spool file or the spool directory could not be read.
    Read { path: PathBuf, source: io::Error },
    /// A line is not a spooled bill (1-based line number).
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// An imported file's bills were read but could not be deleted.
    Remove { path: PathBuf, source: io::Error },
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::Write { path, source } => {
                write!(f, "writing the usage spool {}: {source}", path.display())
            }
            SpoolError::Read { path, source } => {
                write!(f, "reading the usage spool {}: {source}", path.display())
            }
            SpoolError::Parse { path, line, reason } => {
                write!(f, "usage spool {} line {line}: {reason}", path.display())
            }
            SpoolError::Remove { path, source } => {
                write!(
                    f,
                    "removing the imported usage spool {}: {source}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for SpoolError {}

/// One line of a spool file.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Transaction(Box<Row>),
    Close(String),
}

/// A [`Transaction`] as spooled: the store's type stays free of serde.
#[derive(Serialize, Deserialize)]
struct Row {
    created_at: i64,
    key_id: Option<i64>,
    provider: String,
    model: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost_micros: u64,
    complete: bool,
    estimated: bool,
    referer: Option<String>,
    title: Option<String>,
    request_id: Option<String>,
    record_id: Option<String>,
    upstream_status: Option<u16>,
    outcome: String,
    generation_id: Option<String>,
    cached_tokens: u64,
    reasoning_tokens: u64,
    stream: bool,
    latency_ms: Option<u64>,
    /// `[batch id, custom id]`.
    batch: Option<(String, String)>,
}

impl From<&Transaction> for Row {
    fn from(t: &Transaction) -> Row {
        Row {
            created_at: t.created_at,
            key_id: t.key_id,
            provider: t.provider.clone(),
            model: t.model.clone(),
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            cost_micros: t.cost_micros,
            complete: t.complete,
            estimated: t.estimated,
            referer: t.referer.clone(),
            title: t.title.clone(),
            request_id: t.request_id.clone(),
            record_id: t.record_id.clone(),
            upstream_status: t.upstream_status,
            outcome: t.outcome.as_str().to_string(),
            generation_id: t.generation_id.clone(),
            cached_tokens: t.cached_tokens,
            reasoning_tokens: t.reasoning_tokens,
            stream: t.stream,
            latency_ms: t.latency_ms,
            batch: t
                .batch
                .as_ref()
                .map(|b| (b.batch_id.clone(), b.custom_id.clone())),
        }
    }
}

impl Row {
    fn into_transaction(self) -> Result<Transaction, String> {
        let outcome =
            Outcome::parse(&self.outcome).ok_or_else(|| format!("outcome {:?}", self.outcome))?;
        Ok(Transaction {
            created_at: self.created_at,
            key_id: self.key_id,
            provider: self.provider,
            model: self.model,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cost_micros: self.cost_micros,
            complete: self.complete,
            estimated: self.estimated,
            referer: self.referer,
            title: self.title,
            request_id: self.request_id,
            record_id: self.record_id,
            upstream_status: self.upstream_status,
            outcome,
            generation_id: self.generation_id,
            cached_tokens: self.cached_tokens,
            reasoning_tokens: self.reasoning_tokens,
            stream: self.stream,
            latency_ms: self.latency_ms,
            batch: self.batch.map(|(batch_id, custom_id)| BatchRef {
                batch_id,
                custom_id,
            }),
        })
    }
}

/// This process's spool file.
#[derive(Clone, Debug)]
pub struct Spool {
    path: PathBuf,
}

impl Spool {
    pub fn new(data_dir: &Path, instance: &str) -> Spool {
        Spool {
            path: data_dir.join(DIR).join(format!("usage-{instance}.jsonl")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `rows` and the intents they close, durably: they are on
    /// disk when this returns `Ok`.
    pub fn append(&self, rows: &[Transaction], closes: &[String]) -> Result<(), SpoolError> {
        let err = |source| SpoolError::Write {
            path: self.path.clone(),
            source,
        };
        let mut text = String::new();
        for row in rows {
            push_line(&mut text, &Line::Transaction(Box::new(Row::from(row)))).map_err(err)?;
        }
        for id in closes {
            push_line(&mut text, &Line::Close(id.clone())).map_err(err)?;
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let new = !self.path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)?;
        if new {
            // The file's name must survive a power loss too.
            File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        }
        Ok(())
    }
}

fn push_line(text: &mut String, line: &Line) -> Result<(), io::Error> {
    text.push_str(&serde_json::to_string(line)?);
    text.push('\n');
    Ok(())
}

/// What one spool file holds.
#[derive(Debug, Default)]
pub struct Contents {
    pub rows: Vec<Transaction>,
    pub closes: Vec<String>,
    /// Lines that are not spooled bills; the rest are read all the same.
    pub bad: Vec<SpoolError>,
}

/// Reads one spool file, every line that parses.
pub fn read(path: &Path) -> Result<Contents, SpoolError> {
    let text = fs::read_to_string(path).map_err(|source| SpoolError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Contents::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Line>(line)
            .map_err(|e| e.to_string())
            .and_then(|l| match l {
                Line::Transaction(row) => (*row).into_transaction().map(Ok),
                Line::Close(id) => Ok(Err(id)),
            });
        match parsed {
            Ok(Ok(row)) => out.rows.push(row),
            Ok(Err(id)) => out.closes.push(id),
            Err(reason) => out.bad.push(SpoolError::Parse {
                path: path.to_path_buf(),
                line: n + 1,
                reason,
            }),
        }
    }
    Ok(out)
}

/// What [`import`] stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Files read.
    pub files: usize,
    /// Bills stored (a replayed one counts, but is not charged again).
    pub calls: u64,
    pub cost_micros: u64,
    /// Files kept for an error (a line that does not parse, a file that
    /// cannot be read or deleted).
    pub kept: usize,
}

/// Stores every spool file in `data_dir` and deletes each one stored
/// whole; logs each file it keeps. Only a store error stops it: the store
/// was just reached, and the files stay for the next start.
pub fn import(store: &dyn Store, data_dir: &Path) -> Result<Imported, StoreError> {
    let dir = data_dir.join(DIR);
    let mut done = Imported::default();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done),
        Err(source) => {
            log::error!("{}", SpoolError::Read { path: dir, source });
            return Ok(done);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    for path in paths {
        done.files += 1;
        let (calls, cost, errors) = import_file(store, &path)?;
        done.calls += calls;
        done.cost_micros += cost;
        if !errors.is_empty() {
            done.kept += 1;
        }
        for e in errors {
            log::error!(
                "{e}; the file is kept (its other lines are stored; once fixed, it is imported \
                 at the next start)"
            );
        }
    }
    Ok(done)
}

/// Logs what a start's [`import`] stored.
pub fn report(imported: Imported) {
    if imported.files > imported.kept || imported.calls > 0 {
        log::warn!(
            "stored {} call(s) spooled by a past run that could not store them (${:.6} in all), from \
             {} spool file(s)",
            imported.calls,
            imported.cost_micros as f64 / 1e6,
            imported.files
        );
    }
}

/// Stores one file's bills (a few store transactions; the intents close
/// with the last, once every bill is in) and deletes it if it read whole.
/// Returns the calls and cost stored, and why the file was kept.
fn import_file(store: &dyn Store, path: &Path) -> Result<(u64, u64, Vec<SpoolError>), StoreError> {
    let contents = match read(path) {
        Ok(contents) => contents,
        Err(e) => return Ok((0, 0, vec![e])),
    };
    let mut chunks: Vec<&[Transaction]> = contents.rows.chunks(IMPORT_CHUNK).collect();
    let last = chunks.pop().unwrap_or(&[]);
    for chunk in chunks {
        store.record(chunk)?;
    }
    if !last.is_empty() || !contents.closes.is_empty() {
        store.settle(last, &contents.closes)?;
    }
    let calls = contents.rows.len() as u64;
    let cost = contents.rows.iter().map(|t| t.cost_micros).sum();
    let mut kept = contents.bad;
    if kept.is_empty() {
        if let Err(source) = fs::remove_file(path) {
            kept.push(SpoolError::Remove {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    Ok((calls, cost, kept))
}

#[cfg(test)]
mod tests;
