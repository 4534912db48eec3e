//! The batch operations the core hands over (`ManageRequest::Batch`),
//! carried out on the store.

use arouter_core::batch::{BatchAnswer, BatchCall, BatchError, BatchRequest, NewBatch, ID_PREFIX};
use arouter_core::billing::MicroUsd;
use arouter_core::exchange::{Refusal, ReserveRequest};
use arouter_core::manage::{ManageAnswer, ManageError, ManageResult};

use crate::ledger::Held;
use crate::store::{Deleted, Results, StoreError};
use crate::Host;

/// Carries out one batch operation at Unix second `now`.
pub fn execute(host: &Host, call: BatchCall, now: i64) -> ManageResult {
    let BatchCall {
        owner,
        origin,
        request,
    } = call;
    let store = &host.store;
    let answer = match request {
        BatchRequest::Create(batch) => create(host, owner, &batch, now)?,
        BatchRequest::Get(id) => BatchAnswer::View(
            store
                .batch(&id, owner)
                .map_err(unavailable)?
                .ok_or(refused(BatchError::NotFound))?,
        ),
        BatchRequest::List(query) => {
            let (batches, has_more) = store.list_batches(owner, &query).map_err(unavailable)?;
            BatchAnswer::Page { batches, has_more }
        }
        BatchRequest::Cancel(id) => {
            let view = store
                .cancel_batch(&id, owner, now)
                .map_err(unavailable)?
                .ok_or(refused(BatchError::NotFound))?;
            host.batches.release(&id);
            BatchAnswer::View(view)
        }
        BatchRequest::Delete(id) => match store.delete_batch(&id, owner).map_err(unavailable)? {
            Deleted::Deleted => BatchAnswer::Deleted(id),
            Deleted::NotFound => return Err(refused(BatchError::NotFound)),
            Deleted::NotEnded => {
                return Err(refused(BatchError::NotEnded {
                    action: "cancel it, and delete it once it has ended",
                }))
            }
        },
        BatchRequest::Results(id) => match store.batch_results(&id, owner).map_err(unavailable)? {
            Results::Lines(lines) => BatchAnswer::Results(lines),
            Results::NotFound => return Err(refused(BatchError::NotFound)),
            Results::NotEnded => {
                return Err(refused(BatchError::NotEnded {
                    action: "results are available once processing_status is `ended`",
                }))
            }
        },
    };
    Ok(ManageAnswer::Batch { answer, origin })
}

fn create(
    host: &Host,
    owner: Option<i64>,
    batch: &NewBatch,
    now: i64,
) -> Result<BatchAnswer, ManageError> {
    let settings = &host.batches.settings;
    if batch.items.len() as u64 > settings.max_requests {
        return Err(refused(BatchError::TooManyRequests {
            max: settings.max_requests,
        }));
    }
    if batch.bytes > settings.max_bytes {
        return Err(refused(BatchError::TooLarge {
            max: settings.max_bytes,
        }));
    }
    let held = reserve(host, owner, batch, now)?;
    let id = new_id().ok_or(refused(BatchError::Unavailable))?;
    let view = host
        .store
        .create_batch(&id, owner, batch, now, now + settings.expiry_secs)
        .map_err(unavailable)?;
    host.batches.hold(&id, held);
    host.batches.created();
    Ok(BatchAnswer::View(view))
}

/// Reserves what each request may cost; all or none (a 402 naming the
/// line that could not hold the batch).
fn reserve(
    host: &Host,
    owner: Option<i64>,
    batch: &NewBatch,
    now: i64,
) -> Result<Vec<Held>, ManageError> {
    let view = host.keys.view();
    let mut held = Vec::with_capacity(batch.items.len());
    for (n, item) in batch.items.iter().enumerate() {
        let request = ReserveRequest {
            key_id: owner,
            max: MicroUsd(item.max_cost_micros),
        };
        let mut reserved = host.ledger.reserve(&host.keys, &view, &request, now);
        if let (Err(refusal), Some(leases)) = (reserved.as_ref(), host.leases.as_ref()) {
            // On a shared store: lease what the rest of the batch needs at once.
            let rest = batch.items[n..].iter().map(|i| i.max_cost_micros).sum();
            reserved =
                match leases.top_up_refused(&host.ledger, &host.keys, *refusal, owner, rest, now) {
                    Ok(true) => host.ledger.reserve(&host.keys, &view, &request, now),
                    Ok(false) => Err(*refusal),
                    Err(unavailable) => Err(unavailable),
                };
        }
        match reserved {
            Ok(h) => held.push(h),
            Err(refusal) => {
                let needed_micros = batch.items.iter().map(|i| i.max_cost_micros).sum();
                let what = match refusal {
                    Refusal::KeyLimit => "this key's credit limit",
                    Refusal::Balance => "the account balance",
                    Refusal::StoreUnavailable => return Err(ManageError::Unavailable),
                };
                return Err(refused(BatchError::InsufficientCredit {
                    needed_micros,
                    what,
                }));
            }
        }
    }
    Ok(held)
}

/// `msgbatch_` and 24 random letters and digits.
fn new_id() -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).ok()?;
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    Some(format!("{ID_PREFIX}{tail}"))
}

fn refused(err: BatchError) -> ManageError {
    ManageError::Batch(err)
}

fn unavailable(err: StoreError) -> ManageError {
    log::error!("batches: {err}");
    ManageError::Batch(BatchError::Unavailable)
}
