//! The SQLite side of the transactions list and generation lookup:
//! reading rows (of any schema version since the first) and the filtered,
//! keyset-paged query. Indexes for each filter come with migration 5.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row};

use arouter_core::manage::{
    Cursor, TransactionKind, TransactionPage, TransactionQuery, TransactionStatus, TransactionView,
};

use super::{hex, unhex_hash, BatchRef, Outcome, StoreError, Transaction};

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
        batch: match (r.get("batch_id")?, r.get("custom_id")?) {
            (Some(batch_id), Some(custom_id)) => Some(BatchRef {
                batch_id,
                custom_id,
            }),
            _ => None,
        },
    })
}

/// A row of the list: a billed call or a credit, in the column names
/// [`USAGE`] and [`CREDITS`] both select.
fn row_to_view(r: &Row<'_>) -> rusqlite::Result<TransactionView> {
    let row: i64 = r.get("row")?;
    let hash: Option<Vec<u8>> = r.get("key_hash")?;
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let kind = match r.get::<_, String>("type")?.as_str() {
        "credit" => TransactionKind::Credit,
        _ => TransactionKind::Usage,
    };
    Ok(TransactionView {
        // Migration 5 gave every older row an id; this is a last resort.
        id: r
            .get::<_, Option<String>>("generation_id")?
            .unwrap_or_else(|| format!("gen-row-{row}")),
        kind,
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
        request_id: r.get("request_id")?,
        note: r.get("note")?,
        batch_id: r.get("batch_id")?,
        custom_id: r.get("custom_id")?,
    })
}

/// Billed calls, with their key's hash. `row` is the row id.
const USAGE: &str = "SELECT t.id AS row, t.created_at AS created_at,
     t.generation_id AS generation_id, 'usage' AS type, k.hash AS key_hash,
     t.provider AS provider, t.model AS model, t.prompt_tokens AS prompt_tokens,
     t.completion_tokens AS completion_tokens, t.cached_tokens AS cached_tokens,
     t.reasoning_tokens AS reasoning_tokens, t.cost_micros AS cost_micros,
     t.referer AS referer, t.title AS title, t.outcome AS outcome, t.status AS status,
     t.stream AS stream, t.latency_ms AS latency_ms, t.request_id AS request_id,
     NULL AS note, t.batch_id AS batch_id, t.custom_id AS custom_id
     FROM transactions t LEFT JOIN keys k ON k.id = t.key_id";

/// Credits added to the account (the ledger's `credits` table), as rows
/// of type credit: the amount in `cost_micros`, the credit's own unique id
/// as its id. `row` is the row id less 10^17 (negative: calls' are
/// positive), so that one (created_at, row) order runs through both tables
/// without ties: in the same second, the credits come after the calls.
const CREDITS: &str = "SELECT c.id - 100000000000000000 AS row, c.created_at AS created_at,
     c.record_id AS generation_id, 'credit' AS type, NULL AS key_hash, NULL AS provider,
     NULL AS model, 0 AS prompt_tokens, 0 AS completion_tokens, 0 AS cached_tokens,
     0 AS reasoning_tokens, c.amount_micros AS cost_micros, NULL AS referer, NULL AS title,
     'complete' AS outcome, NULL AS status, 0 AS stream, NULL AS latency_ms,
     NULL AS request_id, c.note AS note, NULL AS batch_id, NULL AS custom_id
     FROM credits c";

/// The conditions of `query` on billed calls, and their values; only those
/// present, so SQLite can pick each one's index. `None`: nothing matches.
fn usage_conditions(query: &TransactionQuery) -> Option<(Vec<&'static str>, Vec<Sql>)> {
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
    time_conditions(query, USAGE_TIME, &mut wheres, &mut values);
    Some((wheres, values))
}

/// The conditions of `query` on credits. A credit has no key, model or
/// app, and is complete: those filters leave none.
fn credit_conditions(query: &TransactionQuery) -> Option<(Vec<&'static str>, Vec<Sql>)> {
    let other = query.key_hash.is_some() || query.model.is_some() || query.app.is_some();
    let status = query
        .status
        .is_some_and(|s| s != TransactionStatus::Complete);
    if other || status {
        return None;
    }
    let mut wheres = Vec::new();
    let mut values = Vec::new();
    time_conditions(query, CREDIT_TIME, &mut wheres, &mut values);
    Some((wheres, values))
}

/// The `since`, `until` and cursor conditions of a table, in that order.
type TimeSql = [&'static str; 3];
const USAGE_TIME: TimeSql = [
    "t.created_at >= ?",
    "t.created_at < ?",
    "(t.created_at, t.id) < (?, ?)",
];
const CREDIT_TIME: TimeSql = [
    "c.created_at >= ?",
    "c.created_at < ?",
    "(c.created_at, c.id - 100000000000000000) < (?, ?)",
];

fn time_conditions(
    query: &TransactionQuery,
    [since, until, cursor]: TimeSql,
    wheres: &mut Vec<&'static str>,
    values: &mut Vec<Sql>,
) {
    if let Some(at) = query.since {
        wheres.push(since);
        values.push(Sql::Integer(at));
    }
    if let Some(at) = query.until {
        wheres.push(until);
        values.push(Sql::Integer(at));
    }
    if let Some(Cursor { created_at, row }) = query.cursor {
        wheres.push(cursor);
        values.extend([Sql::Integer(created_at), Sql::Integer(row)]);
    }
}

/// `select` with its conditions, newest first, at most `limit` rows, as a
/// subquery a compound select can take.
fn branch(
    select: &str,
    (wheres, values): (Vec<&'static str>, Vec<Sql>),
    order: &str,
    limit: i64,
    sql: &mut String,
    all: &mut Vec<Sql>,
) {
    sql.push_str("SELECT * FROM (");
    sql.push_str(select);
    if !wheres.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&wheres.join(" AND "));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(order);
    sql.push_str(" LIMIT ?)");
    all.extend(values);
    all.push(Sql::Integer(limit));
}

pub(super) fn list(
    conn: &Connection,
    query: &TransactionQuery,
) -> Result<TransactionPage, StoreError> {
    // One more than the page: whether another page follows.
    let limit = i64::from(query.limit) + 1;
    let mut sql = String::new();
    let mut values = Vec::new();
    let branches = [
        (
            USAGE,
            usage_conditions(query),
            "t.created_at DESC, t.id DESC",
        ),
        (
            CREDITS,
            credit_conditions(query),
            "c.created_at DESC, c.id DESC",
        ),
    ];
    for (select, conditions, order) in branches {
        let Some(conditions) = conditions else {
            continue;
        };
        if !sql.is_empty() {
            sql.push_str(" UNION ALL ");
        }
        branch(select, conditions, order, limit, &mut sql, &mut values);
    }
    if sql.is_empty() {
        return Ok(TransactionPage {
            rows: Vec::new(),
            next: None,
        });
    }
    sql.push_str(" ORDER BY created_at DESC, row DESC LIMIT ?");
    values.push(Sql::Integer(limit));
    let mut stmt = conn.prepare(&sql).map_err(backend)?;
    let mut page = stmt
        .query_map(rusqlite::params_from_iter(values), |r| {
            Ok((r.get::<_, i64>("row")?, row_to_view(r)?))
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let more = page.len() > query.limit as usize;
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
        "{USAGE} WHERE t.generation_id = ?1 AND (?2 IS NULL OR t.key_id = ?2)
         ORDER BY t.id DESC LIMIT 1"
    );
    conn.query_row(&sql, rusqlite::params![id, key], row_to_view)
        .optional()
        .map_err(backend)
}
