//! This gateway's share of one line it leases from a shared store: the
//! credit its calls reserve against in memory, and what they asked for
//! since the lease was last sized.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::shard::{CreditLine, Reservation};

#[derive(Debug, Default)]
pub struct Share {
    /// What this gateway holds and no call has reserved yet.
    credit: Arc<CreditLine>,
    /// Reserved (or asked for and refused) since the last [`Share::demand`].
    demand: AtomicU64,
    /// For a key's limit: the window the credit was granted in.
    window: AtomicU32,
}

impl Share {
    /// A share holding `micros` to begin with.
    pub fn new(micros: u64) -> Share {
        Share {
            credit: Arc::new(CreditLine::new(micros)),
            ..Share::default()
        }
    }

    /// Sets `max` aside for one call, counting it as demand either way.
    pub fn try_reserve(&self, max: u64) -> Option<Reservation> {
        self.demand.fetch_add(max, Ordering::Relaxed);
        self.credit.try_reserve(max)
    }

    /// What calls may still reserve.
    pub fn available(&self) -> u64 {
        self.credit.available()
    }

    /// Takes the demand counted since the last call.
    pub fn demand(&self) -> u64 {
        self.demand.swap(0, Ordering::Relaxed)
    }

    /// Adds credit the store granted.
    pub fn deposit(&self, micros: u64) {
        // Saturated balances only: what does not fit stays leased, unused.
        let _ = self.credit.deposit(micros);
    }

    /// Takes up to `micros` back out (to give back to the store).
    pub fn withdraw(&self, micros: u64) -> u64 {
        self.credit.withdraw(micros)
    }

    /// The line itself, for charges beyond a reservation.
    pub fn line(&self) -> &Arc<CreditLine> {
        &self.credit
    }

    /// Records that the credit now held belongs to `window`; returns the
    /// window it belonged to before.
    pub fn enter_window(&self, window: u32) -> u32 {
        self.window.swap(window, Ordering::AcqRel)
    }
}
