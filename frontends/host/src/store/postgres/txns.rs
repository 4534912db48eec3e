//! The PostgreSQL side of the transactions list and generation lookup:
//! the same filtered, keyset-paged query as `sqlite_txns.rs`, with
//! numbered parameters and every column of the union typed.

use arouter_core::manage::{
    Cursor, TransactionKind, TransactionPage, TransactionQuery, TransactionStatus, TransactionView,
};
use postgres::types::ToSql;
use postgres::{Client, Row};

use super::{backend, unsigned};
use crate::store::{hex, unhex_hash, BatchRef, Outcome, StoreError, Transaction};

type Error = postgres::Error;

fn count(row: &Row, name: &str) -> Result<u64, Error> {
    Ok(row.try_get::<_, Option<i64>>(name)?.map_or(0, unsigned))
}

fn outcome(row: &Row) -> Outcome {
    row.try_get::<_, String>("outcome")
        .ok()
        .and_then(|o| Outcome::parse(&o))
        .unwrap_or(Outcome::Complete)
}

fn status(row: &Row) -> Result<Option<u16>, Error> {
    Ok(row
        .try_get::<_, Option<i32>>("status")?
        .and_then(|s| u16::try_from(s).ok()))
}

/// A `transactions` row as the recorder wrote it.
pub(super) fn row_to_transaction(r: &Row) -> Result<Transaction, Error> {
    Ok(Transaction {
        created_at: r.try_get("created_at")?,
        key_id: r.try_get("key_id")?,
        provider: r
            .try_get::<_, Option<String>>("provider")?
            .unwrap_or_default(),
        model: r.try_get::<_, Option<String>>("model")?.unwrap_or_default(),
        prompt_tokens: count(r, "prompt_tokens")?,
        completion_tokens: count(r, "completion_tokens")?,
        cost_micros: count(r, "cost_micros")?,
        complete: r.try_get("complete")?,
        estimated: r.try_get("estimated")?,
        referer: r.try_get("referer")?,
        title: r.try_get("title")?,
        request_id: r.try_get("request_id")?,
        record_id: r.try_get("record_id")?,
        upstream_status: status(r)?,
        outcome: outcome(r),
        generation_id: r.try_get("generation_id")?,
        cached_tokens: count(r, "cached_tokens")?,
        reasoning_tokens: count(r, "reasoning_tokens")?,
        stream: r.try_get("stream")?,
        latency_ms: r.try_get::<_, Option<i64>>("latency_ms")?.map(unsigned),
        batch: match (r.try_get("batch_id")?, r.try_get("custom_id")?) {
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
fn row_to_view(r: &Row) -> Result<TransactionView, Error> {
    let row: i64 = r.try_get("row_key")?;
    let hash: Option<Vec<u8>> = r.try_get("key_hash")?;
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let kind = match r.try_get::<_, String>("type")?.as_str() {
        "credit" => TransactionKind::Credit,
        _ => TransactionKind::Usage,
    };
    Ok(TransactionView {
        id: r
            .try_get::<_, Option<String>>("generation_id")?
            .unwrap_or_else(|| format!("gen-row-{row}")),
        kind,
        key_hash: hash.map(|h| hex(&h)),
        provider: nonempty(r.try_get("provider")?),
        model: nonempty(r.try_get("model")?),
        prompt_tokens: count(r, "prompt_tokens")?,
        completion_tokens: count(r, "completion_tokens")?,
        cached_tokens: count(r, "cached_tokens")?,
        reasoning_tokens: count(r, "reasoning_tokens")?,
        cost_micros: count(r, "cost_micros")?,
        app_referer: r.try_get("referer")?,
        app_title: r.try_get("title")?,
        status: TransactionStatus::of(outcome(r)),
        upstream_status: status(r)?,
        stream: r.try_get("stream")?,
        latency_ms: r.try_get::<_, Option<i64>>("latency_ms")?.map(unsigned),
        created_at: r.try_get("created_at")?,
        request_id: r.try_get("request_id")?,
        note: r.try_get("note")?,
        batch_id: r.try_get("batch_id")?,
        custom_id: r.try_get("custom_id")?,
    })
}

/// Billed calls, with their key's hash. `row_key` is the row id.
const USAGE: &str = "SELECT t.id AS row_key, t.created_at AS created_at,
     t.generation_id AS generation_id, 'usage'::TEXT AS type, k.hash AS key_hash,
     t.provider AS provider, t.model AS model, t.prompt_tokens AS prompt_tokens,
     t.completion_tokens AS completion_tokens, t.cached_tokens AS cached_tokens,
     t.reasoning_tokens AS reasoning_tokens, t.cost_micros AS cost_micros,
     t.referer AS referer, t.title AS title, t.outcome AS outcome, t.status AS status,
     t.stream AS stream, t.latency_ms AS latency_ms, t.request_id AS request_id,
     NULL::TEXT AS note, t.batch_id AS batch_id, t.custom_id AS custom_id
     FROM transactions t LEFT JOIN keys k ON k.id = t.key_id";

/// Credits added to the account, as rows of type credit: as in
/// `sqlite_txns.rs`, `row_key` is the row id less 10^17 so that one
/// (created_at, row_key) order runs through both tables without ties.
const CREDITS: &str = "SELECT c.id - 100000000000000000 AS row_key, c.created_at AS created_at,
     c.record_id AS generation_id, 'credit'::TEXT AS type, NULL::BYTEA AS key_hash,
     NULL::TEXT AS provider, NULL::TEXT AS model, 0::BIGINT AS prompt_tokens,
     0::BIGINT AS completion_tokens, 0::BIGINT AS cached_tokens, 0::BIGINT AS reasoning_tokens,
     c.amount_micros AS cost_micros, NULL::TEXT AS referer, NULL::TEXT AS title,
     'complete'::TEXT AS outcome, NULL::INTEGER AS status, FALSE AS stream,
     NULL::BIGINT AS latency_ms, NULL::TEXT AS request_id, c.note AS note,
     NULL::TEXT AS batch_id, NULL::TEXT AS custom_id
     FROM credits c";

/// A query's text and its parameters, numbered as they are pushed.
#[derive(Default)]
struct Sql {
    text: String,
    values: Vec<Box<dyn ToSql + Sync>>,
}

impl Sql {
    /// Adds a value; its placeholder (`$n`).
    fn bind(&mut self, value: impl ToSql + Sync + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| v.as_ref()).collect()
    }
}

/// The conditions of `query` on billed calls; `None`: nothing matches.
fn usage_conditions(query: &TransactionQuery, sql: &mut Sql) -> Option<Vec<String>> {
    let mut wheres = Vec::new();
    if let Some(hash) = &query.key_hash {
        // A hash no key has selects nothing (not every row).
        let bytes = unhex_hash(hash)?;
        let p = sql.bind(bytes.to_vec());
        wheres.push(format!("t.key_id = (SELECT id FROM keys WHERE hash = {p})"));
    }
    if let Some(model) = &query.model {
        // `provider/model` or the bare model (which may hold a `/` itself).
        let (provider, rest) = model.split_once('/').unwrap_or(("", ""));
        let (m, p, r) = (
            sql.bind(model.clone()),
            sql.bind(provider.to_owned()),
            sql.bind(rest.to_owned()),
        );
        wheres.push(format!(
            "(t.model = {m} OR (t.provider = {p} AND t.model = {r}))"
        ));
    }
    if let Some(app) = &query.app {
        let (a, b) = (sql.bind(app.clone()), sql.bind(app.clone()));
        wheres.push(format!("(t.referer = {a} OR t.title = {b})"));
    }
    if let Some(status) = query.status {
        let p = sql.bind(status.outcome().as_str().to_owned());
        wheres.push(format!("t.outcome = {p}"));
    }
    time_conditions(query, "t.created_at", "t.id", sql, &mut wheres);
    Some(wheres)
}

/// The conditions of `query` on credits. A credit has no key, model or
/// app, and is complete: those filters leave none.
fn credit_conditions(query: &TransactionQuery, sql: &mut Sql) -> Option<Vec<String>> {
    let other = query.key_hash.is_some() || query.model.is_some() || query.app.is_some();
    let status = query
        .status
        .is_some_and(|s| s != TransactionStatus::Complete);
    if other || status {
        return None;
    }
    let mut wheres = Vec::new();
    time_conditions(
        query,
        "c.created_at",
        "c.id - 100000000000000000",
        sql,
        &mut wheres,
    );
    Some(wheres)
}

/// The `since`, `until` and cursor conditions on a table's time and row.
fn time_conditions(
    query: &TransactionQuery,
    time: &str,
    row: &str,
    sql: &mut Sql,
    wheres: &mut Vec<String>,
) {
    if let Some(at) = query.since {
        wheres.push(format!("{time} >= {}", sql.bind(at)));
    }
    if let Some(at) = query.until {
        wheres.push(format!("{time} < {}", sql.bind(at)));
    }
    if let Some(Cursor { created_at, row: r }) = query.cursor {
        let (a, b) = (sql.bind(created_at), sql.bind(r));
        wheres.push(format!("({time}, {row}) < ({a}, {b})"));
    }
}

/// Appends `select` with its conditions, newest first, at most `limit`
/// rows, as a subquery of the union.
fn branch(select: &str, wheres: &[String], order: &str, limit: i64, name: &str, sql: &mut Sql) {
    let limit = sql.bind(limit);
    let filter = if wheres.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", wheres.join(" AND "))
    };
    sql.text.push_str(&format!(
        "SELECT * FROM ({select}{filter} ORDER BY {order} LIMIT {limit}) AS {name}"
    ));
}

pub(super) fn list(
    client: &mut Client,
    query: &TransactionQuery,
) -> Result<TransactionPage, StoreError> {
    // One more than the page: whether another page follows.
    let limit = i64::from(query.limit) + 1;
    let mut sql = Sql::default();
    if let Some(wheres) = usage_conditions(query, &mut sql) {
        let order = "t.created_at DESC, t.id DESC";
        branch(USAGE, &wheres, order, limit, "usage", &mut sql);
    }
    if let Some(wheres) = credit_conditions(query, &mut sql) {
        if !sql.text.is_empty() {
            sql.text.push_str(" UNION ALL ");
        }
        let order = "c.created_at DESC, c.id DESC";
        branch(CREDITS, &wheres, order, limit, "credit", &mut sql);
    }
    if sql.text.is_empty() {
        return Ok(TransactionPage {
            rows: Vec::new(),
            next: None,
        });
    }
    let p = sql.bind(limit);
    sql.text.push_str(&format!(
        " ORDER BY created_at DESC, row_key DESC LIMIT {p}"
    ));
    let rows = client.query(&sql.text, &sql.params()).map_err(backend)?;
    let mut page = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, i64>("row_key")?, row_to_view(r)?)))
        .collect::<Result<Vec<_>, Error>>()
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
    client: &mut Client,
    id: &str,
    key: Option<i64>,
) -> Result<Option<TransactionView>, StoreError> {
    let sql = format!(
        "{USAGE} WHERE t.generation_id = $1 AND ($2::BIGINT IS NULL OR t.key_id = $2)
         ORDER BY t.id DESC LIMIT 1"
    );
    client
        .query_opt(&sql, &[&id, &key])
        .map_err(backend)?
        .map(|r| row_to_view(&r).map_err(backend))
        .transpose()
}
