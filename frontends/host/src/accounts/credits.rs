//! The account's credits: totals for `/credits` and `/balance`, and
//! credit added (`POST /api/v1/balance`, `arouter credits add`).

use arouter_core::manage::{CreditTotals, CreditsShape, ManageAnswer, ManageError, ManageResult};

use super::unavailable;
use crate::store::{Credit, Store, StoreError};
use crate::Host;

/// The totals: on a prepaid gateway as the in-memory line charges them
/// (what reservations are checked against); otherwise the store's sums,
/// which trail the last calls by at most one recorder batch.
pub(super) fn totals(host: &Host, shape: CreditsShape) -> ManageResult {
    let totals = if host.ledger.prepaid() {
        host.ledger.totals()
    } else {
        host.store
            .totals()
            .map_err(|e| unavailable("credit totals", e))?
    };
    Ok(ManageAnswer::Credits {
        shape,
        totals: CreditTotals {
            credits: totals.credits,
            usage: totals.usage,
        },
    })
}

/// Stores the credit, then adds it to the in-memory line before the
/// answer, so every core's next reservation can use it.
pub(super) fn add(host: &Host, amount_micros: u64, note: Option<String>, now: i64) -> ManageResult {
    add_credit(host.store.as_ref(), amount_micros, note, now)
        .map_err(|e| unavailable("add credit", e))?;
    if host.ledger.deposit(amount_micros).is_err() {
        log::error!(
            "accounts: the in-memory balance cannot hold this credit; restart to reload it"
        );
        return Err(ManageError::Unavailable);
    }
    totals(host, CreditsShape::Balance)
}

/// Adds `amount_micros` of credit to the store (also the CLI's way in).
pub fn add_credit(
    store: &dyn Store,
    amount_micros: u64,
    note: Option<String>,
    now: i64,
) -> Result<(), StoreError> {
    let mut bytes = [0u8; 12];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| StoreError::Backend("the OS gave no randomness for a credit id".into()))?;
    let record_id = format!("credit-{}", crate::store::hex(&bytes));
    store.add_credit(&Credit {
        created_at: now,
        amount_micros,
        note,
        record_id,
    })
}
