//! A one-shot shutdown signal every task can wait on.

use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

#[derive(Default)]
pub struct Shutdown {
    set: AtomicBool,
    event: Event,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Resolves once `trigger` has been called (immediately if it was).
    pub async fn wait(&self) {
        loop {
            if self.is_set() {
                return;
            }
            let listener = self.event.listen();
            // Re-check: the trigger may have fired between the check and `listen`.
            if self.is_set() {
                return;
            }
            listener.await;
        }
    }
}
