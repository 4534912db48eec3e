//! The transactions list and a generation's record on the store.
//!
//! Recent calls may still sit in a worker's recorder buffer or the
//! writer's queue (at most `recorder::FLUSH_EVERY` plus one commit): they
//! are listed once committed.

use arouter_core::exchange::Caller;
use arouter_core::manage::{
    ManageAnswer, ManageError, ManageResult, TransactionPage, TransactionQuery,
};

use super::unavailable;
use crate::Host;

/// Management keys and the master key list every row; any other key its
/// own calls only: its `key_id` filter is its own hash, and one naming
/// another key selects nothing (filters combine with AND).
pub(super) fn list(host: &Host, mut query: TransactionQuery, caller: Caller) -> ManageResult {
    match caller {
        Caller::Master => {}
        Caller::Key(key) => match own_hash(host, key)? {
            None => {}
            Some(own) if query.key_hash.as_ref().is_some_and(|asked| *asked != own) => {
                return Ok(ManageAnswer::Transactions(TransactionPage {
                    rows: Vec::new(),
                    next: None,
                }));
            }
            Some(own) => query.key_hash = Some(own),
        },
        Caller::Anonymous => return Err(ManageError::NotFound),
    }
    let page = host
        .store
        .list_transactions(&query)
        .map_err(|e| unavailable("list transactions", e))?;
    Ok(ManageAnswer::Transactions(page))
}

/// The key that made a generation sees it, as do management keys and the
/// master key; anyone else gets the same 404 as for an unknown id, so ids
/// of other keys' calls cannot be probed.
pub(super) fn generation(host: &Host, id: &str, caller: Caller) -> ManageResult {
    let only_key = match caller {
        Caller::Master => None,
        Caller::Key(key) if is_management(host, key)? => None,
        Caller::Key(key) => Some(key),
        Caller::Anonymous => return Err(ManageError::GenerationNotFound),
    };
    let found = host
        .store
        .generation(id, only_key)
        .map_err(|e| unavailable("find generation", e))?
        .ok_or(ManageError::GenerationNotFound)?;
    Ok(ManageAnswer::Generation(Box::new(found)))
}

/// `None` for a management key (it sees every row), else the key's hash.
fn own_hash(host: &Host, key: i64) -> Result<Option<String>, ManageError> {
    let keys = host
        .store
        .load_keys()
        .map_err(|e| unavailable("load keys", e))?;
    let record = keys
        .iter()
        .find(|k| k.id == key)
        .ok_or(ManageError::NotFound)?;
    Ok((!record.management).then(|| crate::store::hex(&record.hash)))
}

fn is_management(host: &Host, key: i64) -> Result<bool, ManageError> {
    let keys = host
        .store
        .load_keys()
        .map_err(|e| unavailable("load keys", e))?;
    Ok(keys.iter().any(|k| k.id == key && k.management))
}
