//! Credit leases on a shared store (see [`crate::store::lease`]): this
//! gateway's side. Each line it enforces (the account's balance when
//! prepaid, each limited key's limit) is a [`Share`] in memory that calls
//! reserve against without waiting on the network. The key-poll thread
//! sizes every share once per `--store-poll-ms` to what its calls asked
//! for in the interval before, taking more from the store or giving the
//! excess back; a call the share cannot cover asks the store for more
//! itself, once (off the serving thread), before it is refused.
//!
//! So no gateway spends credit another holds, and a line is never
//! overspent: every call's reservation is covered by credit the store
//! granted this gateway alone. What a call costs above its reservation
//! (a provider counting more than the gateway's estimate) is the only way
//! past a limit, as on one gateway.

mod share;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use share::Share;

use arouter_core::exchange::Refusal;

use crate::keys::KeyCache;
use crate::ledger::Ledger;
use crate::store::{LeaseLine, LeaseStore, Store, StoreError};

/// The lease manager; exists only on a store that keeps leases.
pub struct Leases {
    store: Arc<dyn Store>,
    /// The store session the shares' credit was granted in.
    session: AtomicU64,
}

/// What one tick does to a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resize {
    Grant(u64),
    Return(u64),
    Keep,
}

/// Sizes a share holding `available` whose calls asked for `demand` in the
/// last interval: enough for two intervals like it, asked for when it has
/// less than one, and given back beyond four (all of it once idle).
fn resize(available: u64, demand: u64) -> Resize {
    let target = demand.saturating_mul(2);
    if available < target / 2 {
        Resize::Grant(target - available)
    } else if available > target.saturating_mul(2) {
        Resize::Return(available - target)
    } else {
        Resize::Keep
    }
}

impl Leases {
    /// The manager for `store`, when it keeps leases.
    pub fn new(store: Arc<dyn Store>) -> Option<Leases> {
        let session = store.leases()?.session();
        Some(Leases {
            store,
            session: AtomicU64::new(session),
        })
    }

    fn leases(&self) -> Result<&dyn LeaseStore, StoreError> {
        // `new` made sure there are.
        self.store
            .leases()
            .ok_or_else(|| StoreError::Backend("the store keeps no leases".into()))
    }

    /// Sizes every share to its demand; run once per poll interval.
    pub fn tick(&self, ledger: &Ledger, keys: &KeyCache, now: i64) -> Result<(), StoreError> {
        self.after_reconnect(ledger, keys, now);
        if ledger.prepaid() {
            self.size(LeaseLine::Account, ledger.account())?;
        }
        for (line, share) in keys.shares(now) {
            if share.enter_window(line.window) != line.window {
                // Credit of an earlier window does not count in this one.
                let stale = share.withdraw(u64::MAX);
                self.give_back(LeaseLine::Key(line), share.as_ref(), stale);
            }
            self.size(LeaseLine::Key(line), &share)?;
        }
        Ok(())
    }

    /// Takes at least `need` more for `line` if the store has it free;
    /// whether the share now holds `need`.
    pub fn top_up(&self, line: LeaseLine, share: &Share, need: u64) -> Result<bool, StoreError> {
        let granted = self.leases()?.grant(line, need.saturating_mul(2))?;
        share.deposit(granted);
        Ok(share.available() >= need)
    }

    /// After `refusal` of a call reserving `need`: asks the store for more
    /// of the line that refused it. `Ok(true)`: the call may try again;
    /// `Err`: the store could not be asked ([`Refusal::StoreUnavailable`]).
    pub fn top_up_refused(
        &self,
        ledger: &Ledger,
        keys: &KeyCache,
        refusal: Refusal,
        key_id: Option<i64>,
        need: u64,
        now: i64,
    ) -> Result<bool, Refusal> {
        let result = match refusal {
            Refusal::Balance => self.top_up(LeaseLine::Account, ledger.account(), need),
            Refusal::KeyLimit => match key_id.and_then(|id| keys.share_of(id, now)) {
                Some((line, share)) => self.top_up(LeaseLine::Key(line), &share, need),
                None => Ok(false),
            },
            Refusal::StoreUnavailable => Ok(false),
        };
        result.map_err(|e| {
            log::warn!("cannot lease more credit: {e}");
            Refusal::StoreUnavailable
        })
    }

    fn size(&self, line: LeaseLine, share: &Share) -> Result<(), StoreError> {
        match resize(share.available(), share.demand()) {
            Resize::Grant(want) => share.deposit(self.leases()?.grant(line, want)?),
            Resize::Return(extra) => {
                let taken = share.withdraw(extra);
                self.give_back(line, share, taken);
            }
            Resize::Keep => {}
        }
        Ok(())
    }

    fn give_back(&self, line: LeaseLine, share: &Share, amount: u64) {
        if amount == 0 {
            return;
        }
        if let Err(e) = self.leases().and_then(|l| l.give_back(line, amount)) {
            // Still this gateway's in the store: keep spending it.
            log::warn!("cannot give leased credit back: {e}");
            share.deposit(amount);
        }
    }

    /// After the store's connection was opened again, the other gateways
    /// may have taken this one for gone and given its leases back: what
    /// the shares hold is dropped, and asked for again.
    fn after_reconnect(&self, ledger: &Ledger, keys: &KeyCache, now: i64) {
        let Ok(leases) = self.leases() else { return };
        let session = leases.session();
        if self.session.swap(session, Ordering::AcqRel) == session {
            return;
        }
        log::warn!("the shared store's connection was opened again: leased credit is taken anew");
        let account = ledger.account().withdraw(u64::MAX);
        self.drop_lease(LeaseLine::Account, account);
        for (line, share) in keys.shares(now) {
            let held = share.withdraw(u64::MAX);
            self.drop_lease(LeaseLine::Key(line), held);
        }
    }

    /// Drops, in the store, what this gateway holds of the keys `ids` (their
    /// limits changed: the key table gave them empty shares). A grant this
    /// gateway took under the old limit after the change was stored, and
    /// before it heard of it, would otherwise stay held and unspendable.
    pub fn forget(&self, ids: &[i64]) {
        for &id in ids {
            if let Err(e) = self.leases().and_then(|l| l.forget(id)) {
                log::warn!("cannot drop the credit leased under key {id}'s old limit: {e}");
            }
        }
    }

    /// Gives back what is left in the store of a lease dropped in memory
    /// (nothing, when the others gave it back already).
    fn drop_lease(&self, line: LeaseLine, amount: u64) {
        if amount > 0 {
            if let Err(e) = self.leases().and_then(|l| l.give_back(line, amount)) {
                log::warn!("cannot give leased credit back: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_sized_to_two_intervals_of_demand() {
        assert_eq!(resize(0, 0), Resize::Keep);
        assert_eq!(resize(0, 100), Resize::Grant(200));
        assert_eq!(resize(99, 100), Resize::Grant(101));
        assert_eq!(resize(100, 100), Resize::Keep);
        assert_eq!(resize(400, 100), Resize::Keep);
        assert_eq!(resize(401, 100), Resize::Return(201));
        // Idle: everything goes back for the other gateways.
        assert_eq!(resize(5, 0), Resize::Return(5));
    }
}
