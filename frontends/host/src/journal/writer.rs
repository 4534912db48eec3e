//! The journal's writer thread: commits what is queued, one transaction
//! at a time, and wakes the waiters.

use std::sync::atomic::Ordering;

use super::Inner;
use crate::store::Store;

pub(super) fn write_loop(store: &dyn Store, inner: &Inner) {
    // A run of failed commits, logged when it starts and when it ends.
    let mut failing: u64 = 0;
    loop {
        let (intents, last, closed) = {
            let Ok(mut queue) = inner.queue.lock() else {
                return;
            };
            while queue.intents.is_empty() && !queue.closed {
                queue = match inner.queued.wait(queue) {
                    Ok(queue) => queue,
                    Err(_) => return,
                };
            }
            (std::mem::take(&mut queue.intents), queue.last, queue.closed)
        };
        if !intents.is_empty() {
            match store.open_intents(&intents) {
                Ok(()) if failing > 0 => {
                    log::warn!(
                        "call journal: the store takes intents again after {failing} failed commit(s)"
                    );
                    failing = 0;
                }
                Ok(()) => {}
                Err(e) => {
                    if failing == 0 {
                        log::error!(
                            "call journal: cannot store {} intent(s) ({e}); calls go ahead unjournaled \
                             (a kill now may lose their bills) until the store takes them again",
                            intents.len()
                        );
                    }
                    failing += 1;
                }
            }
        }
        inner.done.store(last, Ordering::Release);
        inner.committed.notify(usize::MAX);
        if closed {
            return;
        }
    }
}
