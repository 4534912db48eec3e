//! Reserve and settle: the host's side of the core's `Output::Reserve`.
//!
//! Two kinds of line, both exact and lock-free across cores (the rule in
//! [`crate::shard`]):
//! - each key with a spending limit has a [`LimitLine`] on its entry of
//!   the published key table (carried over by key id when the table is
//!   republished), counting what it spent in its current `limit_reset`
//!   window (UTC days; weeks from Monday; months) plus what its requests
//!   in flight hold;
//! - the account has one [`CreditLine`] (credits less costs less what is
//!   held), enforced only when the gateway is prepaid (`[billing]
//!   prepaid = true`): a self-hosted gateway serves with no credits added.
//!
//! A connection holds at most one [`Held`] (its request's reservation on
//! both lines). The driver replaces it at each `Output::Reserve` (so a
//! failed attempt's credit is back before the next attempt's is taken),
//! charges each `Event::Usage` of the request against it (the record's
//! cost, the figure stored as the transaction's cost), and drops it at
//! the request's `Event::Access`, giving back what is left. A record whose
//! cost is above what is held takes the rest from the line, never below
//! zero; what could not be taken is logged as uncollected (the reservation
//! is the prompt's count plus the output cap, so only a provider counting
//! a prompt higher than the gateway's tokenizer gets there).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arouter_core::exchange::{Refusal, ReserveRequest, UsageRecord};
use arouter_core::manage::LimitReset;

use crate::keys::{KeyCache, KeyView};
use crate::lease::Share;
use crate::shard::{CreditOverflow, LimitHold, LimitLine, Reservation, Settlement};
use crate::store::{Totals, Windows};

/// The account's credit, in memory.
pub struct Ledger {
    prepaid: bool,
    /// On a store that keeps leases: the line holds only what this gateway
    /// leased ([`crate::lease`]), not the whole balance.
    leased: bool,
    account: Share,
    credits: AtomicU64,
    usage: AtomicU64,
}

/// What one request holds while it runs. Dropping it gives it all back.
#[derive(Debug, Default)]
pub struct Held {
    key: Option<LimitHold>,
    /// On the key's leased share, when the store keeps leases.
    key_lease: Option<Reservation>,
    account: Option<Reservation>,
}

impl Ledger {
    /// The account as the store left it. `prepaid`: calls must be covered
    /// by the balance. `leased`: the balance is shared with other gateways
    /// through leases, and this one starts holding none of it.
    pub fn new(prepaid: bool, leased: bool, totals: Totals) -> Ledger {
        let own = if leased {
            0
        } else {
            totals.credits.saturating_sub(totals.usage)
        };
        Ledger {
            prepaid,
            leased,
            account: Share::new(own),
            credits: AtomicU64::new(totals.credits),
            usage: AtomicU64::new(totals.usage),
        }
    }

    pub fn prepaid(&self) -> bool {
        self.prepaid
    }

    /// The account's line as calls reserve against it: on a leased
    /// ledger, this gateway's share.
    pub fn account(&self) -> &Share {
        &self.account
    }

    /// Credits and usage as charged in memory (what `/credits` reports on
    /// a prepaid gateway; the store catches up within a recorder batch).
    pub fn totals(&self) -> Totals {
        Totals {
            credits: self.credits.load(Ordering::Acquire),
            usage: self.usage.load(Ordering::Acquire),
        }
    }

    /// Raises credits and usage to the store's `totals` where those are
    /// higher: credit another gateway added is deposited, usage another
    /// gateway billed is taken from the balance (never below zero). On a
    /// leased ledger only the figures move: the line is this gateway's
    /// lease, which other gateways' calls never touch.
    pub fn raise_to(&self, totals: Totals) {
        let credits = self.credits.load(Ordering::Acquire);
        if totals.credits > credits
            && self
                .credits
                .compare_exchange(credits, totals.credits, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            && !self.leased
        {
            self.account.deposit(totals.credits - credits);
        }
        let usage = self.usage.load(Ordering::Acquire);
        if totals.usage > usage
            && self
                .usage
                .compare_exchange(usage, totals.usage, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            && !self.leased
        {
            self.account.line().charge(totals.usage - usage);
        }
    }

    /// Adds credit; visible to every core's next reservation on return
    /// (on a leased ledger, to every gateway's next lease).
    pub fn deposit(&self, micros: u64) -> Result<(), CreditOverflow> {
        if !self.leased {
            self.account.line().deposit(micros)?;
        }
        self.credits.fetch_add(micros, Ordering::AcqRel);
        Ok(())
    }

    /// Sets `request.max` aside on the key's limit and, when prepaid, on
    /// the balance; both or neither.
    pub fn reserve(
        &self,
        keys: &KeyCache,
        view: &KeyView,
        request: &ReserveRequest,
        now_unix_secs: i64,
    ) -> Result<Held, Refusal> {
        let mut held = Held::default();
        if let Some(limited) = request.key_id.and_then(|id| keys.limit_of(view, id)) {
            let window = window(limited.reset, now_unix_secs);
            held.key = Some(
                limited
                    .line
                    .try_reserve(limited.limit, window, request.max.0)
                    .ok_or(Refusal::KeyLimit)?,
            );
            if let Some(share) = &limited.share {
                held.key_lease = Some(share.try_reserve(request.max.0).ok_or(Refusal::KeyLimit)?);
            }
        }
        if self.prepaid {
            held.account = Some(
                self.account
                    .try_reserve(request.max.0)
                    .ok_or(Refusal::Balance)?,
            );
        }
        Ok(held)
    }

    /// Charges one usage record's cost to its key's limit and, when
    /// prepaid, to the balance: against `held` first, beyond it from what
    /// the lines have left.
    pub fn charge(
        &self,
        keys: &KeyCache,
        view: &KeyView,
        held: &mut Held,
        record: &UsageRecord,
        now_unix_secs: i64,
    ) {
        let cost = record.cost.map_or(0, |c| c.0);
        if cost == 0 {
            return;
        }
        if let Some(limited) = record.key_id.and_then(|id| keys.limit_of(view, id)) {
            let window = window(limited.reset, now_unix_secs);
            let settled = match held.key.as_mut() {
                Some(hold) => hold.charge(limited.limit, window, cost),
                None => limited.line.charge(limited.limit, window, cost),
            };
            report("key limit", record, settled);
            if let Some(share) = &limited.share {
                match held.key_lease.as_mut() {
                    Some(reservation) => reservation.charge(cost),
                    None => share.line().charge(cost),
                };
            }
        }
        if self.prepaid {
            let settled = match held.account.as_mut() {
                Some(reservation) => reservation.charge(cost),
                None => self.account.line().charge(cost),
            };
            self.usage.fetch_add(settled.charged, Ordering::AcqRel);
            report("balance", record, settled);
        }
    }
}

fn report(line: &str, record: &UsageRecord, settled: Settlement) {
    if settled.uncollected > 0 {
        log::warn!(
            "{line}: {} micro-USD of request {} ({}/{}) were above its reservation and what was left; not collected",
            settled.uncollected,
            record.request_id,
            record.provider,
            record.model
        );
    }
}

/// A key's limit as admission sees it now.
pub struct Limited {
    pub line: Arc<LimitLine>,
    /// This gateway's leased share of the limit, on a store that keeps
    /// leases.
    pub share: Option<Arc<Share>>,
    pub limit: u64,
    pub reset: Option<LimitReset>,
}

/// The id of the window a limit with `reset` counts in at `now`: its kind
/// and the day (since 1970, UTC) it began. All time is one window.
pub fn window(reset: Option<LimitReset>, now_unix_secs: i64) -> u32 {
    let w: Windows = crate::accounts::windows_at(now_unix_secs);
    let (kind, start) = match reset {
        None => return 0,
        Some(LimitReset::Daily) => (1, w.day),
        Some(LimitReset::Weekly) => (2, w.week),
        Some(LimitReset::Monthly) => (3, w.month),
    };
    let day = u32::try_from(start.div_euclid(86_400)).unwrap_or(0) & ((1 << 18) - 1);
    (kind << 18) | day
}

/// What a key spent in the window `reset` counts, from the store's sums.
pub fn spent_in(reset: Option<LimitReset>, usage: arouter_core::manage::KeyUsage) -> u64 {
    match reset {
        None => usage.total,
        Some(LimitReset::Daily) => usage.daily,
        Some(LimitReset::Weekly) => usage.weekly,
        Some(LimitReset::Monthly) => usage.monthly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_totals_raise_the_balance_and_converge_without_charging_twice() {
        let ledger = Ledger::new(
            true,
            false,
            Totals {
                credits: 1_000,
                usage: 100,
            },
        );
        // This gateway charged 50 (not stored yet); another stored 200 and added 500.
        ledger.account.line().charge(50);
        ledger.usage.fetch_add(50, Ordering::AcqRel);
        ledger.raise_to(Totals {
            credits: 1_500,
            usage: 300,
        });
        assert_eq!(
            ledger.totals(),
            Totals {
                credits: 1_500,
                usage: 300
            }
        );
        assert_eq!(ledger.account.available(), 1_200);
        // Our 50 reaches the store: counted once, not twice.
        ledger.raise_to(Totals {
            credits: 1_500,
            usage: 350,
        });
        assert_eq!(ledger.account.available(), 1_150);
        ledger.raise_to(Totals {
            credits: 1_500,
            usage: 350,
        });
        assert_eq!(
            ledger.totals(),
            Totals {
                credits: 1_500,
                usage: 350
            }
        );
        assert_eq!(ledger.account.available(), 1_150);
        // Lower figures (our own calls not stored yet) change nothing.
        ledger.raise_to(Totals {
            credits: 0,
            usage: 0,
        });
        assert_eq!(ledger.account.available(), 1_150);
    }

    #[test]
    fn windows_change_at_utc_midnight_monday_and_the_first() {
        // 2025-12-03T15:00:00Z, a Wednesday.
        let t = 1_764_774_000;
        assert_eq!(window(None, t), 0);
        let daily = window(Some(LimitReset::Daily), t);
        assert_eq!(daily, window(Some(LimitReset::Daily), 1_764_720_000));
        assert_ne!(daily, window(Some(LimitReset::Daily), 1_764_720_000 - 1));
        // The week and the month began on Monday 2025-12-01: same day,
        // different windows.
        let weekly = window(Some(LimitReset::Weekly), t);
        let monthly = window(Some(LimitReset::Monthly), t);
        assert_ne!(weekly, monthly);
        assert_eq!(weekly & 0x3_ffff, monthly & 0x3_ffff);
    }
}
