//! The SQLite side of the transactions list and generation lookup:
//! reading rows (of any schema version since the first) and the filtered,
//! keyset-paged query. Indexes for each filter come with migration 5.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row};

use arouter_core::manage::{
    Cursor, TransactionKind, TransactionPage, TransactionQuery, TransactionStatus, TransactionView,
};

use super::{hex, unhex_hash, Outcome, StoreError, Transaction};

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn count(row: &Row<'_>, name: &str) -> rusqlite::Result<u64> {
    Ok(row.get::<_, Option<i64>>(name)?.unwrap_or(0).max(0) as u64)
}

fn outcome(row: &Row<'_>) -> Outcome {
    row.get::<_, String>("outcome")
        .ok()
        .and_then(|o| Outcome::parse(&o))
        .unwrap_or(Outcome::Complete)
}

/// A `transactions` row as the recorder wrote it.
pub(super) fn row_to_transaction(r: &Row<'_>) -> rusqlite::Result<Transaction> {
    Ok(Transaction {
        created_at: r.get("created_at")?,
        key_id: r.get("key_id")?,
        provider: r.get::<_, Option<String>>("provider")?.unwrap_or_default(),
        model: r.get::<_, Option<String>>("model")?.unwrap_or_default(),
        prompt_tokens: count(r, "prompt_tokens")?,
        completion_tokens: count(r, "completion_tokens")?,
        cost_micros: count(r, "cost_micros")?,
        complete: r.get("complete")?,
        estimated: r.get("estimated")?,
        referer: r.get("referer")?,
        title: r.get("title")?,
        request_id: r.get("request_id")?,
        record_id: r.get("record_id")?,
        upstream_status: r.get("status")?,
        outcome: outcome(r),
        generation_id: r.get("generation_id")?,
        cached_tokens: count(r, "cached_tokens")?,
        reasoning_tokens: count(r, "reasoning_tokens")?,
        stream: r.get::<_, Option<bool>>("stream")?.unwrap_or(false),
        latency_ms: r
            .get::<_, Option<i64>>("latency_ms")?
            .map(|ms| ms.max(0) as u64),
    })
}

/// What the list shows of a row joined with its key's hash (`key_hash`).
fn row_to_view(r: &Row<'_>) -> rusqlite::Result<TransactionView> {
    let id: i64 = r.get("id")?;
    let request_id: Option<String> = r.get("request_id")?;
    let hash: Option<Vec<u8>> = r.get("key_hash")?;
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(TransactionView {
        // Migration 5 gave every older row an id; this is a last resort.
        id: r
            .get::<_, Option<String>>("generation_id")?
            .unwrap_or_else(|| format!("gen-row-{id}")),
        // Every row of this table is a billed call.
        kind: TransactionKind::Usage,
        key_hash: hash.map(|h| hex(&h)),
        provider: nonempty(r.get("provider")?),
        model: nonempty(r.get("model")?),
        prompt_tokens: count(r, "prompt_tokens")?,
        completion_tokens: count(r, "completion_tokens")?,
        cached_tokens: count(r, "cached_tokens")?,
        reasoning_tokens: count(r, "reasoning_tokens")?,
        cost_micros: count(r, "cost_micros")?,
        app_referer: r.get("referer")?,
        app_title: r.get("title")?,
        status: TransactionStatus::of(outcome(r)),
        upstream_status: r.get("status")?,
        stream: r.get::<_, Option<bool>>("stream")?.unwrap_or(false),
        latency_ms: r
            .get::<_, Option<i64>>("latency_ms")?
            .map(|ms| ms.max(0) as u64),
        created_at: r.get("created_at")?,
        request_id,
    })
}

const SELECT: &str = "SELECT t.*, k.hash AS key_hash FROM transactions t
     LEFT JOIN keys k ON k.id = t.key_id";

/// The filters present in `query` as SQL conditions and their values;
/// only those present, so SQLite can pick each one's index.
fn conditions(query: &TransactionQuery) -> Option<(Vec<&'static str>, Vec<Sql>)> {
    let mut wheres = Vec::new();
    let mut values = Vec::new();
    if let Some(hash) = &query.key_hash {
        // A hash no key has selects nothing (not every row).
        let bytes = unhex_hash(hash)?;
        wheres.push("t.key_id = (SELECT id FROM keys WHERE hash = ?)");
        values.push(Sql::Blob(bytes.to_vec()));
    }
    if let Some(model) = &query.model {
        // `provider/model` or the bare model (which may hold a `/` itself).
        let (provider, rest) = model.split_once('/').unwrap_or(("", ""));
        wheres.push("(t.model = ? OR (t.provider = ? AND t.model = ?))");
        values.extend([
            Sql::Text(model.clone()),
            Sql::Text(provider.to_owned()),
            Sql::Text(rest.to_owned()),
        ]);
    }
    if let Some(app) = &query.app {
        wheres.push("(t.referer = ? OR t.title = ?)");
        values.extend([Sql::Text(app.clone()), Sql::Text(app.clone())]);
    }
    if let Some(status) = query.status {
        wheres.push("t.outcome = ?");
        values.push(Sql::Text(status.outcome().as_str().to_owned()));
    }
    if let Some(since) = query.since {
        wheres.push("t.created_at >= ?");
        values.push(Sql::Integer(since));
    }
    if let Some(until) = query.until {
        wheres.push("t.created_at < ?");
        values.push(Sql::Integer(until));
    }
    if let Some(Cursor { created_at, row }) = query.cursor {
        wheres.push("(t.created_at, t.id) < (?, ?)");
        values.extend([Sql::Integer(created_at), Sql::Integer(row)]);
    }
    Some((wheres, values))
}

pub(super) fn list(
    conn: &Connection,
    query: &TransactionQuery,
) -> Result<TransactionPage, StoreError> {
    let Some((wheres, mut values)) = conditions(query) else {
        return Ok(TransactionPage {
            rows: Vec::new(),
            next: None,
        });
    };
    let mut sql = String::from(SELECT);
    if !wheres.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&wheres.join(" AND "));
    }
    // One more than the page: whether another page follows.
    sql.push_str(" ORDER BY t.created_at DESC, t.id DESC LIMIT ?");
    values.push(Sql::Integer(i64::from(query.limit) + 1));
    let mut stmt = conn.prepare(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), |r| {
            Ok((r.get::<_, i64>("id")?, row_to_view(r)?))
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let more = rows.len() > query.limit as usize;
    let mut page: Vec<(i64, TransactionView)> = rows;
    page.truncate(query.limit as usize);
    let next = match page.last() {
        Some((row, view)) if more => Some(Cursor {
            created_at: view.created_at,
            row: *row,
        }),
        _ => None,
    };
    Ok(TransactionPage {
        rows: page.into_iter().map(|(_, view)| view).collect(),
        next,
    })
}

pub(super) fn generation(
    conn: &Connection,
    id: &str,
    key: Option<i64>,
) -> Result<Option<TransactionView>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE t.generation_id = ?1 AND (?2 IS NULL OR t.key_id = ?2)
         ORDER BY t.id DESC LIMIT 1"
    );
    conn.query_row(&sql, rusqlite::params![id, key], row_to_view)
        .optional()
        .map_err(backend)
}
