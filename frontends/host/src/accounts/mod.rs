//! The accounts service: carries out the management operations the core
//! hands over (`Output::Manage`) on the store, and makes every change
//! visible to admission before it answers.
//!
//! It runs on a blocking thread, never on a serving one: the driver hands
//! each call to its runtime's blocking pool (`Runtime::unblock`), since
//! management calls are rare and a store call may wait on SQLite's lock
//! (the recorder's batch commit). A dedicated accounts thread would add a
//! channel and its wake-ups for nothing: the store already serialises on
//! its one connection.

pub mod cli;
mod keys;
pub mod secret;
mod transactions;
mod windows;

use arouter_core::manage::{ManageRequest, ManageResult};

use crate::store::StoreError;
use crate::Host;

pub use keys::{create_key, key_view};

/// Carries out one management request at Unix second `now`.
pub fn execute(host: &Host, request: ManageRequest, now: i64) -> ManageResult {
    match request {
        ManageRequest::ListTransactions(query) => transactions::list(host, &query),
        ManageRequest::GetGeneration { id, caller } => transactions::generation(host, &id, caller),
        other => keys::execute(host, other, now),
    }
}

/// A store failure is logged here and shown to the client as a 503.
fn unavailable(what: &str, err: StoreError) -> arouter_core::manage::ManageError {
    log::error!("accounts: {what}: {err}");
    arouter_core::manage::ManageError::Unavailable
}
