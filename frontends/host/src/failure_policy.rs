//! What a gateway does while a dependency it shares with other gateways
//! cannot be reached: Redis for rate limits (`--redis-failure`), the
//! shared store for credit and keys (`--store-failure`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arouter_core::exchange::{Admission, Rejection};

/// Whether admission goes on alone or refuses while a dependency is away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Go on with what this gateway holds: its own rate-limit bucket, the
    /// credit it leased and the keys it last read.
    #[default]
    Open,
    /// Refuse with 503 in the route's dialect until it is back.
    Closed,
}

/// `--store-failure closed`: refuses admissions while the store is down,
/// and says so in the log once per outage.
#[derive(Default)]
pub struct StoreGate {
    refusals: AtomicU64,
    refusing: AtomicBool,
}

impl StoreGate {
    /// `admission`, or a 503 when it was allowed and `down()` says the
    /// store is down (asked only then).
    pub fn admit(&self, admission: Admission, down: impl FnOnce() -> bool) -> Admission {
        if !matches!(admission, Admission::Allowed { .. }) {
            return admission;
        }
        if !down() {
            if self.refusing.swap(false, Ordering::Relaxed) {
                log::info!("the store answers again: requests are served (--store-failure closed)");
            }
            return admission;
        }
        if !self.refusing.swap(true, Ordering::Relaxed) {
            log::warn!("the store is down: requests are refused with 503 until it is back (--store-failure closed)");
        }
        self.refusals.fetch_add(1, Ordering::Relaxed);
        Admission::Rejected {
            reason: Rejection::StoreUnavailable,
            headers: Vec::new(),
        }
    }

    /// Requests refused so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Admission {
        Admission::Allowed {
            key_id: Some(1),
            headers: Vec::new(),
            models: None,
            metered: false,
        }
    }

    #[test]
    fn refuses_only_allowed_admissions_while_down() {
        let gate = StoreGate::default();
        assert_eq!(gate.admit(allowed(), || false), allowed());
        let refused = gate.admit(allowed(), || true);
        assert!(matches!(
            refused,
            Admission::Rejected {
                reason: Rejection::StoreUnavailable,
                ..
            }
        ));
        // An invalid key stays an invalid key; the store is not asked.
        let invalid = Admission::Rejected {
            reason: Rejection::InvalidKey,
            headers: Vec::new(),
        };
        assert_eq!(gate.admit(invalid.clone(), || unreachable!()), invalid);
        assert_eq!(gate.refusals(), 1);
        assert_eq!(gate.admit(allowed(), || false), allowed());
    }
}
