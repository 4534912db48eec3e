//! Stored Responses API answers on the host's side: keeping one when a
//! call ends (`Output::Keep`), looking up what a request refers to
//! (`Output::Recall`), the three endpoints (`ManageRequest::Stored`), and
//! the purge of what is past its retention (`--responses-retention-days`),
//! run with the batch worker's sweep. Each runs off the serving threads.

use arouter_core::manage::{ManageAnswer, ManageError, ManageResult};
use arouter_core::stored::{
    Kept, Recall, Recalled, StoredAnswer, StoredCall, StoredError, StoredOp, Unavailable,
};

use crate::store::StoreError;
use crate::Host;

/// Keeps `kept` for the configured retention; a failure is logged (the
/// answer still goes out, it only cannot be referred to later).
pub fn keep(host: &Host, kept: &Kept, now: i64) {
    let retention = host.config.responses_retention_secs;
    if retention <= 0 {
        return;
    }
    if let Err(err) = host
        .store
        .keep_response(kept, now.saturating_add(retention))
    {
        log::error!("responses: keeping {}: {err}", kept.id);
    }
}

/// What a request refers to, for its key.
pub fn recall(host: &Host, recall: &Recall, now: i64) -> Result<Recalled, Unavailable> {
    host.store.recall_responses(recall, now).map_err(|err| {
        log::error!("responses: looking up stored state: {err}");
        Unavailable
    })
}

/// `GET`/`DELETE /v1/responses/{id}` and `GET …/input_items`.
pub fn execute(host: &Host, call: StoredCall, now: i64) -> ManageResult {
    let StoredCall { owner, op } = call;
    let store = &host.store;
    let answer = match op {
        StoredOp::Get(id) => match store.stored_response(&id, owner, now) {
            Ok(Some(response)) => StoredAnswer::Response(response),
            Ok(None) => return Err(not_found(id)),
            Err(err) => return Err(unavailable(err)),
        },
        StoredOp::Delete(id) => match store.delete_response(&id, owner, now) {
            Ok(true) => StoredAnswer::Deleted(id),
            Ok(false) => return Err(not_found(id)),
            Err(err) => return Err(unavailable(err)),
        },
        StoredOp::InputItems { id, page } => match store.stored_input(&id, owner, now) {
            Ok(Some(items)) => StoredAnswer::Items { items, page },
            Ok(None) => return Err(not_found(id)),
            Err(err) => return Err(unavailable(err)),
        },
    };
    Ok(ManageAnswer::Stored(answer))
}

/// Deletes the responses past their retention.
pub fn purge(host: &Host, now: i64) {
    match host.store.purge_responses(now) {
        Ok(0) => {}
        Ok(n) => log::debug!("responses: deleted {n} past their retention"),
        Err(err) => log::error!("responses: deleting those past retention: {err}"),
    }
}

fn not_found(id: String) -> ManageError {
    ManageError::Stored(StoredError::NotFound(id))
}

fn unavailable(err: StoreError) -> ManageError {
    log::error!("responses: {err}");
    ManageError::Stored(StoredError::Unavailable)
}
