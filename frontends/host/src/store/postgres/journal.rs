//! The PostgreSQL side of the call journal (see `store::journal`): each
//! intent carries its gateway's claim key (the session advisory lock its
//! store holds while it lives, as a claimed batch request does), so any
//! gateway can tell the intents of one that is gone.

use postgres::GenericClient;

use super::{backend, insert_transactions, signed, unsigned};
use crate::store::journal::RECORD_PREFIX;
use crate::store::{Intent, Recovered, StoreError, Transaction};

/// One statement for a whole batch, its rows as one array per column.
const OPEN: &str = "INSERT INTO call_intents (id, owner, created_at, key_id, request_id,
     provider, model, reserved_micros, prompt_tokens, prompt_micros, stream)
     SELECT id, $2, created_at, key_id, request_id, provider, model, reserved_micros,
         prompt_tokens, prompt_micros, stream
     FROM UNNEST($1::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[],
         $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::BOOLEAN[])
         AS u(id, created_at, key_id, request_id, provider, model, reserved_micros,
             prompt_tokens, prompt_micros, stream)
     ON CONFLICT (id) DO NOTHING";

/// Closes the intents of calls whose usage the same transaction stored.
/// An intent already gone was billed as interrupted by another gateway
/// that took this one for gone (its connection to the database broke for
/// a moment, a database restart) while the call went on: the call's real
/// bill, just stored, replaces that estimate, so it has one transaction.
const CLOSE: &str = "WITH closed AS (
         DELETE FROM call_intents WHERE id = ANY($1) RETURNING id
     )
     DELETE FROM transactions
     WHERE outcome = 'interrupted'
       AND record_id IN (SELECT $2 || u.id FROM UNNEST($1::TEXT[]) AS u(id)
                         WHERE u.id NOT IN (SELECT id FROM closed))";

/// Deletes the intents of gone gateways and bills each one deleted, in
/// one statement: a row another gateway deleted first (it recovered it
/// at the same time) is not deleted, so not billed, here. The record id
/// makes a second insert of the same intent impossible besides.
const RECOVER: &str = "WITH gone AS (
         DELETE FROM call_intents i
         WHERE i.owner <> $1 AND NOT EXISTS (
             SELECT 1 FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid = ((i.owner >> 32) & 4294967295)::oid
               AND l.objid = (i.owner & 4294967295)::oid)
         RETURNING *
     ), billed AS (
         INSERT INTO transactions (created_at, key_id, provider, model, prompt_tokens,
             completion_tokens, cost_micros, complete, estimated, request_id, outcome,
             record_id, generation_id, stream)
         SELECT created_at, key_id, provider, model, prompt_tokens, 0, prompt_micros, FALSE,
             TRUE, request_id, 'interrupted', $2 || id, 'gen-' || request_id, stream
         FROM gone
         ON CONFLICT (record_id) DO NOTHING
     )
     SELECT COUNT(*)::BIGINT, COALESCE(SUM(prompt_micros), 0)::BIGINT FROM gone";

pub(super) fn open(
    client: &mut impl GenericClient,
    owner: i64,
    intents: &[Intent],
) -> Result<(), StoreError> {
    if intents.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(intents.len());
    let mut created = Vec::with_capacity(intents.len());
    let mut keys = Vec::with_capacity(intents.len());
    let mut requests = Vec::with_capacity(intents.len());
    let mut providers = Vec::with_capacity(intents.len());
    let mut models = Vec::with_capacity(intents.len());
    let mut reserved = Vec::with_capacity(intents.len());
    let mut prompt_tokens = Vec::with_capacity(intents.len());
    let mut prompt_micros = Vec::with_capacity(intents.len());
    let mut streams = Vec::with_capacity(intents.len());
    for i in intents {
        ids.push(i.id.as_str());
        created.push(i.created_at);
        keys.push(i.key_id);
        requests.push(i.request_id.as_str());
        providers.push(i.provider.as_str());
        models.push(i.model.as_str());
        reserved.push(signed(i.reserved_micros, "a reservation")?);
        prompt_tokens.push(signed(i.prompt_tokens, "a token count")?);
        prompt_micros.push(signed(i.prompt_micros, "a cost")?);
        streams.push(i.stream);
    }
    client
        .execute(
            OPEN,
            &[
                &ids,
                &owner,
                &created,
                &keys,
                &requests,
                &providers,
                &models,
                &reserved,
                &prompt_tokens,
                &prompt_micros,
                &streams,
            ],
        )
        .map(drop)
        .map_err(backend)
}

pub(super) fn settle(
    tx: &mut impl GenericClient,
    holder: i64,
    batch: &[Transaction],
    closed: &[String],
) -> Result<(), StoreError> {
    insert_transactions(tx, holder, batch)?;
    if !closed.is_empty() {
        tx.execute(CLOSE, &[&closed, &RECORD_PREFIX])
            .map_err(backend)?;
    }
    Ok(())
}

pub(super) fn recover(
    client: &mut impl GenericClient,
    owner: i64,
) -> Result<Recovered, StoreError> {
    let row = client
        .query_one(RECOVER, &[&owner, &RECORD_PREFIX])
        .map_err(backend)?;
    Ok(Recovered {
        calls: unsigned(row.try_get(0).map_err(backend)?),
        micros: unsigned(row.try_get(1).map_err(backend)?),
    })
}
