//! The shutdown signal every task can wait on, in two steps: `trigger`
//! (stop accepting, let requests in flight finish) and `expire` (the grace
//! is over: end them now).

use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::{Event, EventListener};

#[derive(Default)]
pub struct Shutdown {
    set: AtomicBool,
    expired: AtomicBool,
    event: Event,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    /// The grace period is over.
    pub fn expire(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.expired.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    pub fn is_expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }

    /// Resolves once `trigger` has been called (immediately if it was).
    pub async fn wait(&self) {
        self.wait_for(&self.set).await;
    }

    /// Resolves once `expire` has been called (immediately if it was).
    pub async fn wait_expired(&self) {
        self.wait_for(&self.expired).await;
    }

    /// As `wait`, registered through `waiter`, which keeps its registration
    /// when this future is dropped unfinished.
    pub async fn wait_with(&self, waiter: &mut Waiter) {
        self.wait_for_with(&self.set, &mut waiter.0).await;
    }

    /// As `wait_expired`, registered through `waiter`.
    pub async fn wait_expired_with(&self, waiter: &mut Waiter) {
        self.wait_for_with(&self.expired, &mut waiter.0).await;
    }

    async fn wait_for(&self, flag: &AtomicBool) {
        self.wait_for_with(flag, &mut None).await;
    }

    async fn wait_for_with(&self, flag: &AtomicBool, slot: &mut Option<EventListener>) {
        loop {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            let listener = slot.get_or_insert_with(|| self.event.listen());
            // Re-check: the flag may have been set between the check and `listen`.
            if flag.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
            // A listener that was notified is used up.
            *slot = None;
        }
    }
}

/// A registration for the next shutdown step that outlives one wait. A
/// connection waits on shutdown beside every read, and a wait that ends
/// because a read won would otherwise drop its listener, and the next wait
/// allocate a new one: one allocation per relayed event. Kept across waits,
/// it is allocated once per connection (and once more per step that fires);
/// a notification that arrives between waits is kept in it.
#[derive(Default)]
pub struct Waiter(Option<EventListener>);
