//! Appending billed calls: many rows per `INSERT` statement. SQLite's
//! work per statement (opening a cursor on the table and on each index,
//! finding the table's end, halting, resetting) was a third of the
//! recorder's instructions per row when every row had a statement of its
//! own; a batch now runs it once per [`ROWS_PER_INSERT`] rows. The
//! remainder goes in smaller statements ([`SIZES`]), each prepared once
//! and kept in the connection's statement cache.
//!
//! The statements are kept short so that the usage recorder can give its
//! CPU away between them (`pause`, see `recorder::writer`): a statement of
//! 16 rows is about 60 µs of work, a wait for a serving thread that shares
//! the CPU.

use std::sync::LazyLock;

use rusqlite::{Connection, Statement, ToSql};

use super::backend;
use crate::store::{StoreError, Transaction};

/// The columns of a row, in the order each row's values are bound.
const COLUMNS: [&str; 22] = [
    "created_at",
    "key_id",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost_micros",
    "complete",
    "estimated",
    "referer",
    "title",
    "request_id",
    "status",
    "outcome",
    "record_id",
    "generation_id",
    "cached_tokens",
    "reasoning_tokens",
    "stream",
    "latency_ms",
    "batch_id",
    "custom_id",
];

/// Rows in the largest statement: 352 parameters, far below SQLite's
/// limit (32,766). Statements of 64 rows took the same instructions a row
/// (`bench/callgrind.sh`) but about 250 µs each.
pub(super) const ROWS_PER_INSERT: usize = 16;

/// The statement sizes a batch is split into, largest first: at most
/// three statements of each smaller size follow the full ones.
const SIZES: [usize; 3] = [ROWS_PER_INSERT, 4, 1];

/// The `INSERT` of each size in [`SIZES`]. Rows whose `record_id` is
/// stored already, or earlier in the same statement, are skipped; the
/// others are stored in their order.
static INSERTS: LazyLock<[String; 3]> = LazyLock::new(|| SIZES.map(insert_sql));

fn insert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO transactions ({}) VALUES ", COLUMNS.join(", "));
    let row = format!("({})", ["?"; COLUMNS.len()].join(", "));
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&row);
    }
    sql.push_str(" ON CONFLICT (record_id) DO NOTHING");
    sql
}

/// Appends `rows` within the caller's transaction, in their order,
/// skipping any whose `record_id` is stored already; `pause` runs after
/// each statement but the last.
pub(super) fn insert_transactions(
    conn: &Connection,
    mut rows: &[Transaction],
    pause: &dyn Fn(),
) -> Result<(), StoreError> {
    for (size, sql) in SIZES.iter().zip(INSERTS.iter()) {
        if rows.len() < *size {
            continue;
        }
        let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
        while rows.len() >= *size {
            let (chunk, rest) = rows.split_at(*size);
            for (i, t) in chunk.iter().enumerate() {
                bind_row(&mut stmt, i * COLUMNS.len(), t)?;
            }
            stmt.raw_execute().map_err(backend)?;
            rows = rest;
            if !rows.is_empty() {
                pause();
            }
        }
    }
    Ok(())
}

/// Binds `t`'s values to the parameters after the first `before`.
fn bind_row(stmt: &mut Statement<'_>, before: usize, t: &Transaction) -> Result<(), StoreError> {
    let values: [&dyn ToSql; 22] = [
        &t.created_at,
        &t.key_id,
        &t.provider,
        &t.model,
        &(t.prompt_tokens as i64),
        &(t.completion_tokens as i64),
        &(t.cost_micros as i64),
        &t.complete,
        &t.estimated,
        &t.referer,
        &t.title,
        &t.request_id,
        &t.upstream_status,
        &t.outcome.as_str(),
        &t.record_id,
        &t.generation_id,
        &(t.cached_tokens as i64),
        &(t.reasoning_tokens as i64),
        &t.stream,
        &t.latency_ms.map(|ms| ms as i64),
        &t.batch.as_ref().map(|b| b.batch_id.as_str()),
        &t.batch.as_ref().map(|b| b.custom_id.as_str()),
    ];
    for (i, value) in values.into_iter().enumerate() {
        stmt.raw_bind_parameter(before + i + 1, value)
            .map_err(backend)?;
    }
    Ok(())
}
