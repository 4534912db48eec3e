//! Appending billed calls: one statement for a whole batch, its rows
//! passed as one array per column and unnested in order, so a batch costs
//! the same two round trips to the database whatever its size (a row per
//! statement cost one each, which over a network bounds the recorder).

use postgres::types::ToSql;
use postgres::GenericClient;

use super::{backend, signed};
use crate::store::{StoreError, Transaction};

/// Rows skipped when their `record_id` is stored already, or earlier in
/// the same batch; inserted in the batch's order.
const INSERT: &str = "INSERT INTO transactions (created_at, key_id, provider, model,
     prompt_tokens, completion_tokens, cost_micros, complete, estimated, referer, title,
     request_id, status, outcome, record_id, generation_id, cached_tokens, reasoning_tokens,
     stream, latency_ms, batch_id, custom_id)
     SELECT created_at, key_id, provider, model, prompt_tokens, completion_tokens,
         cost_micros, complete, estimated, referer, title, request_id, status, outcome,
         record_id, generation_id, cached_tokens, reasoning_tokens, stream, latency_ms,
         batch_id, custom_id
     FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[],
         $6::BIGINT[], $7::BIGINT[], $8::BOOLEAN[], $9::BOOLEAN[], $10::TEXT[], $11::TEXT[],
         $12::TEXT[], $13::INTEGER[], $14::TEXT[], $15::TEXT[], $16::TEXT[], $17::BIGINT[],
         $18::BIGINT[], $19::BOOLEAN[], $20::BIGINT[], $21::TEXT[], $22::TEXT[])
         WITH ORDINALITY AS u(created_at, key_id, provider, model, prompt_tokens,
             completion_tokens, cost_micros, complete, estimated, referer, title, request_id,
             status, outcome, record_id, generation_id, cached_tokens, reasoning_tokens,
             stream, latency_ms, batch_id, custom_id, n)
     ORDER BY n
     ON CONFLICT (record_id) DO NOTHING
     RETURNING key_id, cost_micros";

/// The batch, column by column.
#[derive(Default)]
struct Columns<'a> {
    created_at: Vec<i64>,
    key_id: Vec<Option<i64>>,
    provider: Vec<&'a str>,
    model: Vec<&'a str>,
    prompt_tokens: Vec<i64>,
    completion_tokens: Vec<i64>,
    cost_micros: Vec<i64>,
    complete: Vec<bool>,
    estimated: Vec<bool>,
    referer: Vec<Option<&'a str>>,
    title: Vec<Option<&'a str>>,
    request_id: Vec<Option<&'a str>>,
    status: Vec<Option<i32>>,
    outcome: Vec<&'a str>,
    record_id: Vec<Option<&'a str>>,
    generation_id: Vec<Option<&'a str>>,
    cached_tokens: Vec<i64>,
    reasoning_tokens: Vec<i64>,
    stream: Vec<bool>,
    latency_ms: Vec<Option<i64>>,
    batch_id: Vec<Option<&'a str>>,
    custom_id: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, t: &'a Transaction) -> Result<(), StoreError> {
        self.created_at.push(t.created_at);
        self.key_id.push(t.key_id);
        self.provider.push(&t.provider);
        self.model.push(&t.model);
        self.prompt_tokens
            .push(signed(t.prompt_tokens, "a token count")?);
        self.completion_tokens
            .push(signed(t.completion_tokens, "a token count")?);
        self.cost_micros.push(signed(t.cost_micros, "a cost")?);
        self.complete.push(t.complete);
        self.estimated.push(t.estimated);
        self.referer.push(t.referer.as_deref());
        self.title.push(t.title.as_deref());
        self.request_id.push(t.request_id.as_deref());
        self.status.push(t.upstream_status.map(i32::from));
        self.outcome.push(t.outcome.as_str());
        self.record_id.push(t.record_id.as_deref());
        self.generation_id.push(t.generation_id.as_deref());
        self.cached_tokens
            .push(signed(t.cached_tokens, "a token count")?);
        self.reasoning_tokens
            .push(signed(t.reasoning_tokens, "a token count")?);
        self.stream.push(t.stream);
        let latency = t.latency_ms.map(|ms| signed(ms, "a latency")).transpose()?;
        self.latency_ms.push(latency);
        self.batch_id
            .push(t.batch.as_ref().map(|b| b.batch_id.as_str()));
        self.custom_id
            .push(t.batch.as_ref().map(|b| b.custom_id.as_str()));
        Ok(())
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 22] {
        [
            &self.created_at,
            &self.key_id,
            &self.provider,
            &self.model,
            &self.prompt_tokens,
            &self.completion_tokens,
            &self.cost_micros,
            &self.complete,
            &self.estimated,
            &self.referer,
            &self.title,
            &self.request_id,
            &self.status,
            &self.outcome,
            &self.record_id,
            &self.generation_id,
            &self.cached_tokens,
            &self.reasoning_tokens,
            &self.stream,
            &self.latency_ms,
            &self.batch_id,
            &self.custom_id,
        ]
    }
}

/// Appends `rows` within the caller's transaction, skipping any whose
/// `record_id` is stored already, and moves the costs of those it stored
/// from `holder`'s credit leases to the spending (see
/// [`super::lease::settle`]): a row replayed after a crash is neither
/// stored nor settled twice.
pub(super) fn insert_transactions(
    tx: &mut impl GenericClient,
    holder: i64,
    rows: &[Transaction],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut columns = Columns::default();
    for t in rows {
        columns.push(t)?;
    }
    let stored = tx
        .query(INSERT, &columns.params())
        .map_err(backend)?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<Vec<(Option<i64>, i64)>, postgres::Error>>()
        .map_err(backend)?;
    if stored.is_empty() {
        return Ok(());
    }
    super::lease::settle(tx, holder, &stored)
}
