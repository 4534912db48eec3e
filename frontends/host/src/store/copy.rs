//! `arouter store copy`: a gateway that outgrew one machine moves to the
//! shared store with everything it kept. The SQLite file in the data
//! directory is copied, table by table, into an empty PostgreSQL store in
//! one transaction: keys (their hashes, so every secret keeps working),
//! credits, transactions, message batches, stored responses and the call
//! journal's open intents (billed by the first gateway on the shared store,
//! as a stopped gateway's are).
//!
//! Both stores are first opened as a gateway opens them, so each is at the
//! schema this build knows and the two have the same columns; the copy
//! reads each table's columns and types from PostgreSQL and converts
//! SQLite's values to them. Afterwards the identity counters continue
//! after the copied ids, and the totals (credits, usage) and row counts
//! read back from both stores must agree.

use std::fmt::{self, Write};
use std::path::Path;

use postgres::types::ToSql;
use rusqlite::types::Value;

use super::location::StoreLocation;
use super::postgres::{connect, notify, PostgresStore};
use super::sqlite::{SqliteStore, FILE_NAME};
use super::{Store, StoreError, Totals};

/// The tables copied, parents before children. `only` keeps the rows
/// whose parent exists: PostgreSQL enforces the references SQLite does
/// not (a child left behind by an older build is not copied, and counted).
const TABLES: &[Table] = &[
    Table::new("keys"),
    Table::new("credits"),
    Table::new("transactions"),
    Table::new("batches"),
    Table::new("batch_requests").only("batch_seq IN (SELECT seq FROM batches)"),
    Table::new("responses"),
    Table::new("response_items").only("response_seq IN (SELECT seq FROM responses)"),
    Table::new("call_intents"),
];

/// Identity columns, set to continue after the copied ids.
const IDENTITIES: &[(&str, &str)] = &[
    ("keys", "id"),
    ("credits", "id"),
    ("transactions", "id"),
    ("batches", "seq"),
    ("responses", "seq"),
];

/// Parameters per INSERT statement (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;

struct Table {
    name: &'static str,
    only: Option<&'static str>,
}

impl Table {
    const fn new(name: &'static str) -> Table {
        Table { name, only: None }
    }

    const fn only(self, condition: &'static str) -> Table {
        Table {
            only: Some(condition),
            ..self
        }
    }
}

/// Why the copy stopped: before its commit (nothing written to PostgreSQL)
/// for all but `Mismatch`, which is found by reading both stores after it.
#[derive(Debug)]
pub enum CopyError {
    /// The config file is unreadable, or --store is not a PostgreSQL URL.
    Config(crate::config::ConfigError),
    /// No --store (nor AROUTER_STORE_URL, nor store_url) to copy into.
    NoTarget,
    /// No SQLite file in the data directory.
    NoSource(std::path::PathBuf),
    /// A store would not open (or migrate).
    Open {
        store: &'static str,
        source: StoreError,
    },
    /// Reading the SQLite file failed.
    Read(rusqlite::Error),
    /// Writing PostgreSQL failed.
    Write(postgres::Error),
    /// The shared store holds rows already: copying would mix two ledgers.
    NotEmpty { table: &'static str },
    /// A SQLite column PostgreSQL has no place for.
    Column { table: &'static str, column: String },
    /// A value PostgreSQL's column cannot take.
    Value {
        table: &'static str,
        column: String,
        kind: &'static str,
    },
    /// What was read back from the two stores differs.
    Mismatch { what: &'static str },
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Config(e) => e.fmt(f),
            CopyError::NoTarget => f.write_str(
                "no PostgreSQL store to copy into: name it with --store, AROUTER_STORE_URL or the config file's store_url",
            ),
            CopyError::NoSource(dir) => {
                write!(f, "no SQLite store in {} ({FILE_NAME})", dir.display())
            }
            CopyError::Open { store, source } => write!(f, "cannot open the {store}: {source}"),
            CopyError::Read(e) => write!(f, "cannot read the SQLite file: {e}"),
            CopyError::Write(e) => write!(f, "cannot write the PostgreSQL store: {e}"),
            CopyError::NotEmpty { table } => write!(
                f,
                "the PostgreSQL store is not empty (its {table} table has rows): copy into a new database"
            ),
            CopyError::Column { table, column } => write!(
                f,
                "{table}.{column} is in the SQLite file but not in the PostgreSQL store"
            ),
            CopyError::Value {
                table,
                column,
                kind,
            } => write!(f, "{table}.{column}: a {kind} value does not fit the PostgreSQL column"),
            CopyError::Mismatch { what } => write!(
                f,
                "the copy's {what} differ from the SQLite file's (the copy is committed: drop the database and copy again, or inspect it)"
            ),
        }
    }
}

impl std::error::Error for CopyError {}

impl From<rusqlite::Error> for CopyError {
    fn from(e: rusqlite::Error) -> CopyError {
        CopyError::Read(e)
    }
}

impl From<postgres::Error> for CopyError {
    fn from(e: postgres::Error) -> CopyError {
        CopyError::Write(e)
    }
}

/// `arouter store …`: the report to print, or why it failed.
pub fn run(args: &crate::cli::StoreCommandArgs) -> Result<String, CopyError> {
    match args.action {
        crate::cli::StoreAction::Copy => {
            let (dir, url) = crate::config::store_places(&args.store).map_err(CopyError::Config)?;
            let url = url.ok_or(CopyError::NoTarget)?;
            match StoreLocation::choose(Some(&url), dir.clone()) {
                Ok(StoreLocation::Postgres(url)) => copy(&dir, &url),
                Ok(StoreLocation::Sqlite(_)) => Err(CopyError::NoTarget),
                Err(e) => Err(CopyError::Config(crate::config::ConfigError::Store(e))),
            }
        }
    }
}

/// Copies the SQLite store in `dir` into the empty PostgreSQL store at
/// `url`; a report of what was copied.
pub fn copy(dir: &Path, url: &str) -> Result<String, CopyError> {
    let file = dir.join(FILE_NAME);
    if !file.is_file() {
        return Err(CopyError::NoSource(dir.to_owned()));
    }
    let open = |store| move |source| CopyError::Open { store, source };
    let source = SqliteStore::open(dir).map_err(open("SQLite store"))?;
    let target = PostgresStore::open(url).map_err(open("PostgreSQL store"))?;
    let lite = rusqlite::Connection::open_with_flags(
        &file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut pg = connect::client(url).map_err(open("PostgreSQL store"))?;
    // One read snapshot of the file, one transaction on the database.
    lite.execute_batch("BEGIN")?;
    let mut tx = pg.transaction()?;
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    // A gateway already on the database waits until the copy is done.
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        names.join(", ")
    ))?;
    for table in TABLES {
        let has_rows: bool = tx
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", table.name),
                &[],
            )?
            .try_get(0)?;
        if has_rows {
            return Err(CopyError::NotEmpty { table: table.name });
        }
    }
    let mut report = String::new();
    for table in TABLES {
        let (copied, left) = copy_table(&lite, &mut tx, table)?;
        let _ = write!(report, "{}: {copied}", table.name);
        if left > 0 {
            let _ = write!(report, " ({left} without their parent row, not copied)");
        }
        report.push('\n');
    }
    for (table, column) in IDENTITIES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                     COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) FROM {table}"
            ),
            &[],
        )?;
    }
    // A gateway already on the database takes the copied keys at once.
    tx.batch_execute(notify::NOTIFY)?;
    tx.commit()?;
    let totals = check(&source, &target)?;
    let usd = |micros: u64| micros as f64 / 1e6;
    let _ = writeln!(
        report,
        "credits {} USD, usage {} USD: the same in both stores",
        usd(totals.credits),
        usd(totals.usage)
    );
    Ok(report)
}

/// The totals and keys as both stores read them: they must agree.
fn check(source: &SqliteStore, target: &PostgresStore) -> Result<Totals, CopyError> {
    let read = |store: &dyn Store| -> Result<_, StoreError> {
        Ok((store.totals()?, store.load_keys()?, store.transactions(1)?))
    };
    let opened = |store| move |source| CopyError::Open { store, source };
    let (totals, keys, newest) = read(source).map_err(opened("SQLite store"))?;
    let (copied, copied_keys, copied_newest) = read(target).map_err(opened("PostgreSQL store"))?;
    if totals != copied {
        return Err(CopyError::Mismatch { what: "totals" });
    }
    if keys != copied_keys {
        return Err(CopyError::Mismatch { what: "keys" });
    }
    if newest != copied_newest {
        return Err(CopyError::Mismatch {
            what: "newest transactions",
        });
    }
    Ok(totals)
}

/// Copies one table's rows (those `only` keeps); how many were copied and
/// how many `only` left.
fn copy_table(
    lite: &rusqlite::Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &Table,
) -> Result<(u64, u64), CopyError> {
    let columns = columns(lite, tx, table.name)?;
    let list = columns
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let filter = table.only.map_or(String::new(), |c| format!(" WHERE {c}"));
    let mut select = lite.prepare(&format!("SELECT {list} FROM {}{filter}", table.name))?;
    let per_statement = (MAX_PARAMS / columns.len().max(1)).max(1);
    let mut pending: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut copied = 0u64;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        for (i, (name, kind)) in columns.iter().enumerate() {
            let value: Value = row.get(i)?;
            pending.push(convert(value, *kind).ok_or_else(|| CopyError::Value {
                table: table.name,
                column: name.clone(),
                kind: kind.name(),
            })?);
        }
        copied += 1;
        if pending.len() / columns.len() == per_statement {
            insert(tx, table.name, &list, columns.len(), &pending)?;
            pending.clear();
        }
    }
    insert(tx, table.name, &list, columns.len(), &pending)?;
    let all: i64 = lite.query_row(&format!("SELECT COUNT(*) FROM {}", table.name), [], |r| {
        r.get(0)
    })?;
    Ok((copied, (all as u64).saturating_sub(copied)))
}

/// One multi-row INSERT of `values` (`width` per row).
fn insert(
    tx: &mut postgres::Transaction<'_>,
    table: &str,
    list: &str,
    width: usize,
    values: &[Box<dyn ToSql + Sync>],
) -> Result<(), CopyError> {
    if values.is_empty() {
        return Ok(());
    }
    let mut sql = format!("INSERT INTO {table} ({list}) VALUES ");
    for row in 0..values.len() / width {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..width {
            let _ = write!(
                sql,
                "{}${}",
                if col == 0 { "" } else { ", " },
                row * width + col + 1
            );
        }
        sql.push(')');
    }
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
    tx.execute(&sql, &params)?;
    Ok(())
}

/// The PostgreSQL types the schema uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    BigInt,
    Int,
    Bool,
    Text,
    Bytes,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "bigint" => Kind::BigInt,
            "integer" => Kind::Int,
            "boolean" => Kind::Bool,
            "text" => Kind::Text,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::BigInt => "bigint",
            Kind::Int => "integer",
            Kind::Bool => "boolean",
            Kind::Text => "text",
            Kind::Bytes => "bytea",
        }
    }
}

/// The columns both stores have, with PostgreSQL's type; an error for a
/// SQLite column PostgreSQL lacks (its values would be lost).
fn columns(
    lite: &rusqlite::Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &'static str,
) -> Result<Vec<(String, Kind)>, CopyError> {
    let mut pragma = lite.prepare(&format!("PRAGMA table_info({table})"))?;
    let in_sqlite = pragma
        .query_map([], |row| row.get::<_, String>(1))?
        .collect::<Result<Vec<String>, _>>()?;
    let in_postgres = tx.query(
        "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1",
        &[&table],
    )?;
    let mut out = Vec::with_capacity(in_sqlite.len());
    for column in in_sqlite {
        let kind = in_postgres
            .iter()
            .find(|row| row.get::<_, String>(0) == column)
            .and_then(|row| Kind::of(&row.get::<_, String>(1)));
        match kind {
            Some(kind) => out.push((column, kind)),
            None => return Err(CopyError::Column { table, column }),
        }
    }
    Ok(out)
}

/// SQLite's value as `kind` takes it; `None` when it cannot.
fn convert(value: Value, kind: Kind) -> Option<Box<dyn ToSql + Sync>> {
    Some(match (value, kind) {
        (Value::Null, Kind::BigInt) => Box::new(None::<i64>),
        (Value::Null, Kind::Int) => Box::new(None::<i32>),
        (Value::Null, Kind::Bool) => Box::new(None::<bool>),
        (Value::Null, Kind::Text) => Box::new(None::<String>),
        (Value::Null, Kind::Bytes) => Box::new(None::<Vec<u8>>),
        (Value::Integer(n), Kind::BigInt) => Box::new(n),
        (Value::Integer(n), Kind::Int) => Box::new(i32::try_from(n).ok()?),
        (Value::Integer(n), Kind::Bool) => Box::new(n != 0),
        (Value::Text(s), Kind::Text) => Box::new(s),
        (Value::Blob(b), Kind::Bytes) => Box::new(b),
        (Value::Text(s), Kind::Bytes) => Box::new(s.into_bytes()),
        (Value::Blob(b), Kind::Text) => Box::new(String::from_utf8(b).ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
