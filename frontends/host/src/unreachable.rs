//! Warnings about providers that cannot be reached, rate-limited: a
//! provider that is down fails every request, and one log line per request
//! would bury everything else. At most one line per provider per interval,
//! carrying the count of failures not logged since the last one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arouter_core::exchange::ConnectError;

/// How often a provider's failures are logged at most.
pub const EVERY: Duration = Duration::from_secs(30);

struct Seen {
    logged_at: Instant,
    suppressed: u64,
}

#[derive(Default)]
pub struct Unreachable {
    seen: Mutex<HashMap<String, Seen>>,
}

impl Unreachable {
    /// Notes one failed connection to `provider`; returns the line to log
    /// now, if any. The line names the provider, never its URL (which may
    /// carry credentials).
    pub fn report(&self, provider: &str, error: ConnectError, now: Instant) -> Option<String> {
        let Ok(mut seen) = self.seen.lock() else {
            return None;
        };
        let suppressed = match seen.get_mut(provider) {
            Some(s) if now.saturating_duration_since(s.logged_at) < EVERY => {
                s.suppressed += 1;
                return None;
            }
            Some(s) => std::mem::take(&mut s.suppressed),
            None => 0,
        };
        seen.insert(
            provider.to_string(),
            Seen {
                logged_at: now,
                suppressed: 0,
            },
        );
        let what = error.describe();
        let more = if suppressed > 0 {
            format!(
                " ({suppressed} more failure(s) in the last {}s not logged)",
                EVERY.as_secs()
            )
        } else {
            String::new()
        };
        Some(format!(
            "provider \"{provider}\" is unreachable: {what}{more}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_provider_per_interval_with_the_count_left_out() {
        let u = Unreachable::default();
        let t0 = Instant::now();
        let first = u.report("openai", ConnectError::Refused, t0).unwrap();
        assert!(first.contains("\"openai\"") && first.contains("connection refused"));
        assert!(!first.contains("not logged"));
        for i in 1..=4 {
            assert!(u
                .report("openai", ConnectError::Refused, t0 + Duration::from_secs(i))
                .is_none());
        }
        // Another provider has its own allowance.
        assert!(u.report("backup", ConnectError::Dns, t0).is_some());
        let next = u
            .report("openai", ConnectError::Timeout, t0 + EVERY)
            .unwrap();
        assert!(next.contains("4 more failure(s)"), "{next}");
        assert!(u
            .report(
                "openai",
                ConnectError::Timeout,
                t0 + EVERY + Duration::from_secs(1)
            )
            .is_none());
    }
}
