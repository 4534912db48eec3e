//! The SQLite side of the call journal (see `store::journal`): intents
//! are rows of `call_intents` (migration 11), owned by the store handle
//! that wrote them.

use rusqlite::{params, Connection};

use super::{backend, insert_transactions};
use crate::store::journal::RECORD_PREFIX;
use crate::store::{Intent, Recovered, StoreError, Transaction};

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) fn open(conn: &Connection, owner: i64, intents: &[Intent]) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction().map_err(backend)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO call_intents (id, owner, created_at, key_id, request_id, provider,
                 model, reserved_micros, prompt_tokens, prompt_micros, stream)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (id) DO NOTHING",
            )
            .map_err(backend)?;
        for i in intents {
            stmt.execute(params![
                i.id,
                owner,
                i.created_at,
                i.key_id,
                i.request_id,
                i.provider,
                i.model,
                signed(i.reserved_micros),
                signed(i.prompt_tokens),
                signed(i.prompt_micros),
                i.stream,
            ])
            .map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)
}

pub(super) fn settle(
    conn: &Connection,
    batch: &[Transaction],
    closed: &[String],
    pause: &dyn Fn(),
) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction().map_err(backend)?;
    insert_transactions(&tx, batch, pause)?;
    if !closed.is_empty() {
        let mut close = tx
            .prepare_cached("DELETE FROM call_intents WHERE id = ?1")
            .map_err(backend)?;
        for id in closed {
            if close.execute([id]).map_err(backend)? == 0 {
                // Billed as interrupted by a recovery while the call went
                // on: its real bill, just stored, replaces that estimate.
                tx.prepare_cached(
                    "DELETE FROM transactions WHERE record_id = ?1 AND outcome = 'interrupted'",
                )
                .map_err(backend)?
                .execute([format!("{RECORD_PREFIX}{id}")])
                .map_err(backend)?;
            }
        }
    }
    tx.commit().map_err(backend)
}

/// Every intent some other handle wrote: a process before this one. The
/// write lock is taken first (`IMMEDIATE`), so two handles recovering at
/// once take turns: the second finds nothing left.
pub(super) fn recover(conn: &Connection, owner: i64) -> Result<Recovered, StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let (calls, micros): (i64, i64) = tx
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(prompt_micros), 0) FROM call_intents WHERE owner <> ?1",
            [owner],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(backend)?;
    if calls == 0 {
        return Ok(Recovered::default());
    }
    tx.execute(
        "INSERT INTO transactions (created_at, key_id, provider, model, prompt_tokens,
         completion_tokens, cost_micros, complete, estimated, request_id, outcome, record_id,
         generation_id, stream)
         SELECT created_at, key_id, provider, model, prompt_tokens, 0, prompt_micros, 0, 1,
             request_id, 'interrupted', ?2 || id, 'gen-' || request_id, stream
         FROM call_intents WHERE owner <> ?1
         ON CONFLICT (record_id) DO NOTHING",
        params![owner, RECORD_PREFIX],
    )
    .map_err(backend)?;
    tx.execute("DELETE FROM call_intents WHERE owner <> ?1", [owner])
        .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(Recovered {
        calls: calls.max(0) as u64,
        micros: micros.max(0) as u64,
    })
}
