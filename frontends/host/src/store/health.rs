//! Which came last, the store failing or the store answering: the usage
//! recorder and the key poll each see it on their own schedule (the
//! recorder retries after a backoff of up to 5 s), so each stamps what it
//! saw with this process's next event number, and the gateway takes the
//! newest word for the store's state (`Host::store_down`).

use std::sync::atomic::{AtomicU64, Ordering};

static EVENTS: AtomicU64 = AtomicU64::new(1);

/// A number greater than every one handed out before in this process.
pub fn stamp() -> u64 {
    EVENTS.fetch_add(1, Ordering::Relaxed)
}

/// What the key poll (on a shared store) and the usage recorder last saw,
/// and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub poll: Option<PollSeen>,
    pub recorder_failing: bool,
    pub recorder_failed_at: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollSeen {
    pub failing: bool,
    pub answered_at: u64,
}

impl Seen {
    /// The store is down: the poll's last read failed, or the recorder's
    /// last commit failed after the poll's last answer (or there is no
    /// poll, on the SQLite file).
    pub fn down(&self) -> bool {
        match self.poll {
            Some(poll) => {
                poll.failing
                    || (self.recorder_failing && self.recorder_failed_at > poll.answered_at)
            }
            None => self.recorder_failing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_word_on_the_store_decides() {
        let failed = |at, answered| Seen {
            poll: Some(PollSeen {
                failing: false,
                answered_at: answered,
            }),
            recorder_failing: true,
            recorder_failed_at: at,
        };
        // A commit failed after the last keys read: down.
        assert!(failed(5, 4).down());
        // The keys were read after it (the store is back; the recorder
        // waits out its backoff): up.
        assert!(!failed(5, 6).down());
        // The poll's own failure: down, whatever the recorder says.
        let poll_failing = Seen {
            poll: Some(PollSeen {
                failing: true,
                answered_at: 9,
            }),
            ..Seen::default()
        };
        assert!(poll_failing.down());
        // On the SQLite file the recorder alone says.
        let alone = Seen {
            recorder_failing: true,
            ..Seen::default()
        };
        assert!(alone.down());
        assert!(!Seen::default().down());
        assert!(stamp() < stamp());
    }
}
