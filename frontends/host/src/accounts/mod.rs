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
mod credits;
mod keys;
pub mod secret;
mod transactions;
mod windows;

use std::sync::atomic::{AtomicBool, Ordering};

use arouter_core::manage::{ManageRequest, ManageResult};

use crate::keys::KeyCache;
use crate::store::{KeyRecord, Store, StoreError, Windows};
use crate::Host;

pub use credits::add_credit;
pub use keys::{create_key, key_view};

/// Carries out one management request at Unix second `now`.
pub fn execute(host: &Host, request: ManageRequest, now: i64) -> ManageResult {
    match request {
        ManageRequest::ListTransactions { query, caller } => {
            transactions::list(host, query, caller)
        }
        ManageRequest::GetGeneration { id, caller } => transactions::generation(host, &id, caller),
        ManageRequest::Credits { shape } => credits::totals(host, shape),
        ManageRequest::AddCredits {
            amount_micros,
            note,
        } => credits::add(host, amount_micros, note, now),
        ManageRequest::Metrics => Ok(arouter_core::manage::ManageAnswer::Metrics(
            host.metrics_text(),
        )),
        ManageRequest::Batch(call) => crate::batches::execute(host, call, now),
        ManageRequest::Stored(call) => crate::responses::execute(host, call, now),
        ManageRequest::Ready => Ok(arouter_core::manage::ManageAnswer::Readiness(ready(host))),
        other => keys::execute(host, other, now),
    }
}

/// `/readyz`: whether the store answers a trivial query now. A failure
/// The last `/readyz` found the store down (logged once).
static READY_FAILING: AtomicBool = AtomicBool::new(false);

/// is logged (the client sees only that the store is unavailable).
fn ready(host: &Host) -> arouter_core::manage::Readiness {
    // A balancer probes often: a failure is said once until the store
    // answers again.
    let store = match host.store.ping() {
        Ok(()) => {
            READY_FAILING.store(false, Ordering::Relaxed);
            true
        }
        Err(e) => {
            if !READY_FAILING.swap(true, Ordering::Relaxed) {
                log::warn!("readyz: the store does not answer: {e}");
            }
            false
        }
    };
    let redis = host.limiter.as_ref().map(|limiter| {
        let ok = limiter.ping().is_ok();
        arouter_core::manage::LimiterCheck {
            ok,
            required: host.config.redis_failure == crate::failure_policy::FailurePolicy::Closed,
        }
    });
    arouter_core::manage::Readiness { store, redis }
}

/// The UTC windows (day, week from Monday, month) at `now`.
pub fn windows_at(now_unix_secs: i64) -> Windows {
    windows::at(now_unix_secs)
}

/// Loads what each of `keys` spent in its limit's current window into its
/// line in `cache`.
pub fn load_spending(
    store: &dyn Store,
    cache: &KeyCache,
    keys: &[KeyRecord],
    now: i64,
) -> Result<(), StoreError> {
    for key in keys {
        let spend = store.key_spend(Some(key.id), windows::at(now))?;
        let window = crate::ledger::window(key.limit_reset, now);
        cache.set_spent(
            key.id,
            window,
            crate::ledger::spent_in(key.limit_reset, spend.usage),
        );
    }
    Ok(())
}

/// Brings in what other gateways on a shared store billed: each limited
/// key's spending in its window, and the account's credits and usage, are
/// raised to the store's figures where those are higher (this gateway's own
/// calls not stored yet stay counted). Run every `--store-poll-ms`.
pub fn merge_shared(
    host_keys: &KeyCache,
    ledger: &crate::ledger::Ledger,
    store: &dyn Store,
    now: i64,
) -> Result<(), StoreError> {
    let limited = host_keys.limited();
    let ids: Vec<i64> = limited.iter().map(|k| k.id).collect();
    let usage = store.keys_usage(&ids, windows::at(now))?;
    for (key, usage) in limited.iter().zip(usage) {
        let window = crate::ledger::window(key.limit_reset, now);
        host_keys.raise_spent(
            key.id,
            window,
            crate::ledger::spent_in(key.limit_reset, usage),
        );
    }
    ledger.raise_to(store.totals()?);
    Ok(())
}

/// A store failure is logged here and shown to the client as a 503.
fn unavailable(what: &str, err: StoreError) -> arouter_core::manage::ManageError {
    log::error!("accounts: {what}: {err}");
    arouter_core::manage::ManageError::Unavailable
}
