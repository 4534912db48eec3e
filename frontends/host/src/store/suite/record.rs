//! Storing a batch of billed calls: every row once, in the batch's order,
//! each column as it was given, whatever the batch's size (the SQLite
//! store splits a batch into statements of several sizes).

use super::{Fixture, Outcome, Transaction};
use crate::store::BatchRef;

/// A row whose every column differs from its neighbours', so a value
/// bound to the wrong column or row cannot go unseen.
fn row(i: u64) -> Transaction {
    let outcomes = [
        Outcome::Complete,
        Outcome::Incomplete,
        Outcome::Estimated,
        Outcome::Error,
        Outcome::Unrecognized,
        Outcome::Interrupted,
    ];
    Transaction {
        created_at: 1_700_000_000 + i as i64,
        key_id: (!i.is_multiple_of(3)).then_some(i as i64),
        provider: format!("provider-{i}"),
        model: format!("model-{i}"),
        prompt_tokens: i,
        completion_tokens: i + 1,
        cost_micros: i + 2,
        complete: i.is_multiple_of(2),
        estimated: i.is_multiple_of(3),
        referer: i
            .is_multiple_of(4)
            .then(|| format!("https://app-{i}.example")),
        title: i.is_multiple_of(5).then(|| format!("app {i}")),
        request_id: Some(format!("req-{i}")),
        record_id: Some(format!("rec-{i}")),
        upstream_status: (!i.is_multiple_of(7)).then_some(200 + (i % 300) as u16),
        outcome: outcomes[i as usize % outcomes.len()],
        generation_id: Some(format!("gen-{i}")),
        cached_tokens: i + 3,
        reasoning_tokens: i + 4,
        stream: !i.is_multiple_of(2),
        latency_ms: (!i.is_multiple_of(6)).then_some(i * 10),
        batch: i.is_multiple_of(8).then(|| BatchRef {
            batch_id: format!("msgbatch_{i}"),
            custom_id: format!("custom-{i}"),
        }),
    }
}

pub(crate) fn a_batch_of_any_size_is_stored_once_in_its_order(fixture: &dyn Fixture) {
    let store = fixture.open();
    // 150 rows, and replays of two of them: one in the same batch far
    // from the original, one right after it.
    let mut batch: Vec<_> = (0..150).map(row).collect();
    batch.insert(70, row(3));
    batch.insert(132, row(130));
    store.record(&batch).unwrap();
    // A retry of part of it with new rows: only the new ones are added.
    let retry: Vec<_> = (140..155).map(row).collect();
    store.record(&retry).unwrap();
    let mut stored = store.transactions(1_000).unwrap();
    stored.reverse();
    let expected: Vec<_> = (0..155).map(row).collect();
    assert_eq!(stored.len(), expected.len());
    for (got, want) in stored.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    let cost: u64 = expected.iter().map(|t| t.cost_micros).sum();
    assert_eq!(store.totals().unwrap().usage, cost);
}
