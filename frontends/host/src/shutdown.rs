//! The shutdown signal every task can wait on, in two steps: `trigger`
//! (stop accepting, let requests in flight finish) and `expire` (the grace
//! is over: end them now).

use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

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

    async fn wait_for(&self, flag: &AtomicBool) {
        loop {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            let listener = self.event.listen();
            // Re-check: the flag may have been set between the check and `listen`.
            if flag.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}
