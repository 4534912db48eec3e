//! The process-wide bound on request bodies held in memory.
//!
//! Each connection bounds its own body (`max_body_bytes`), but many
//! connections at once could still hold many bodies. A `BodyBudget` is
//! shared by every connection of a gateway; a body is admitted only if its
//! bytes fit, reserved before they are buffered (at the head for a
//! `Content-Length`, as it grows for a chunked body). Sharing rule: an exact
//! global value, one atomic counter; a reservation gives its bytes back when
//! it is dropped, so every path (answer, error, client gone, connection
//! dropped) releases exactly what it took.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct BodyBudget {
    limit: u64,
    used: AtomicU64,
}

impl BodyBudget {
    pub fn new(limit: u64) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes reserved now, across every connection.
    pub fn in_use(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Bytes of a `BodyBudget` held by one request; given back on drop.
#[derive(Debug)]
pub struct BodyReservation {
    budget: Arc<BodyBudget>,
    bytes: u64,
}

impl BodyReservation {
    /// Reserves `bytes`, or `None` when they do not fit.
    pub fn try_new(budget: &Arc<BodyBudget>, bytes: u64) -> Option<BodyReservation> {
        budget.try_take(bytes).then(|| BodyReservation {
            budget: budget.clone(),
            bytes,
        })
    }

    /// Grows the reservation to `total` bytes; false (and unchanged) when
    /// the extra bytes do not fit.
    pub fn try_grow_to(&mut self, total: u64) -> bool {
        let extra = total.saturating_sub(self.bytes);
        if extra == 0 {
            return true;
        }
        if !self.budget.try_take(extra) {
            return false;
        }
        self.bytes = total;
        true
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_grow_and_give_back_exactly() {
        let budget = BodyBudget::new(100);
        let a = BodyReservation::try_new(&budget, 60).unwrap();
        assert!(BodyReservation::try_new(&budget, 41).is_none());
        let mut b = BodyReservation::try_new(&budget, 30).unwrap();
        assert_eq!(budget.in_use(), 90);
        assert!(!b.try_grow_to(41));
        assert_eq!(b.bytes(), 30);
        assert!(b.try_grow_to(40));
        assert!(b.try_grow_to(10), "shrinking is a no-op");
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        drop(b);
        assert_eq!(budget.in_use(), 0);
        assert!(BodyReservation::try_new(&budget, 101).is_none());
        assert!(BodyReservation::try_new(&budget, u64::MAX).is_none());
        assert_eq!(budget.in_use(), 0);
    }
}
