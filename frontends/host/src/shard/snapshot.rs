//! A published, versioned value (the key table) and each worker's snapshot
//! of it. See the module docs of [`crate::shard`] for the rule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// The current value, shared by every worker.
pub struct Published<T> {
    current: ArcSwap<T>,
    /// Bumped after each publish; a worker compares it with the version of
    /// its snapshot, one atomic load per use.
    version: AtomicU64,
    /// Orders publishers, so a change built from an older value cannot
    /// overwrite a newer one. Readers never take it.
    publishing: Mutex<()>,
}

impl<T> Published<T> {
    pub fn new(value: T) -> Published<T> {
        Published {
            current: ArcSwap::from_pointee(value),
            version: AtomicU64::new(0),
            publishing: Mutex::new(()),
        }
    }

    /// Replaces the value with `change(current)`. When this returns, every
    /// later [`Snapshot::get`] on any thread sees the new value.
    pub fn update(&self, change: impl FnOnce(&T) -> T) {
        // A poisoned lock only means another publisher panicked; the value
        // it guards is `()`, so carrying on is sound.
        let _order = self
            .publishing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let next = change(&self.current.load());
        self.current.store(Arc::new(next));
        // Release: a reader that sees the new version also sees the value
        // stored before it.
        self.version.fetch_add(1, Ordering::Release);
    }

    /// A worker's own view, starting at the current value.
    pub fn snapshot(&self) -> Snapshot<T> {
        let version = self.version.load(Ordering::Acquire);
        Snapshot {
            version,
            value: self.current.load_full(),
        }
    }

    /// The current value, for callers off the request path.
    pub fn load(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Brings `snapshot` up to date when the version moved, and returns its
    /// value.
    pub fn refresh<'a>(&self, snapshot: &'a mut Snapshot<T>) -> &'a Arc<T> {
        let version = self.version.load(Ordering::Acquire);
        if version != snapshot.version {
            // Loaded after the version: at least as new as `version` (a
            // newer value only means one more refresh later, harmlessly).
            snapshot.value = self.current.load_full();
            snapshot.version = version;
        }
        &snapshot.value
    }
}

/// One worker's copy of the `Arc` of a [`Published`] value and the version
/// it was taken at.
pub struct Snapshot<T> {
    version: u64,
    value: Arc<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_is_seen_by_the_next_refresh_of_every_snapshot() {
        let published = Arc::new(Published::new(1u32));
        let mut local = published.snapshot();
        assert_eq!(**published.refresh(&mut local), 1);
        published.update(|old| old + 1);
        assert_eq!(**published.refresh(&mut local), 2);
        // A snapshot taken on another thread sees the same once the
        // publishing call has returned.
        let (tx, rx) = std::sync::mpsc::channel();
        let remote = {
            let published = published.clone();
            std::thread::spawn(move || {
                let mut mine = published.snapshot();
                rx.recv().unwrap();
                **published.refresh(&mut mine)
            })
        };
        published.update(|old| old * 10);
        tx.send(()).unwrap();
        assert_eq!(remote.join().unwrap(), 20);
    }

    #[test]
    fn reads_do_not_wait_for_a_publisher() {
        // A publisher stuck while building its value holds the publish
        // lock; readers on other threads carry on with the current value.
        let published = Arc::new(Published::new(String::from("old")));
        let (started, building) = std::sync::mpsc::channel();
        let (finish, release) = std::sync::mpsc::channel::<()>();
        let publisher = {
            let published = published.clone();
            std::thread::spawn(move || {
                published.update(|_| {
                    started.send(()).unwrap();
                    release.recv().unwrap();
                    String::from("new")
                })
            })
        };
        building.recv().unwrap();
        let reader = {
            let published = published.clone();
            std::thread::spawn(move || {
                let mut mine = published.snapshot();
                (0..1000)
                    .map(|_| published.refresh(&mut mine).len())
                    .sum::<usize>()
            })
        };
        // Joined while the publisher still holds the lock: a reader that
        // took it would never finish and this test would hang.
        assert_eq!(reader.join().unwrap(), 3000);
        finish.send(()).unwrap();
        publisher.join().unwrap();
        assert_eq!(*published.load(), "new");
    }

    #[test]
    fn concurrent_updates_are_all_applied() {
        let published = Arc::new(Published::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let published = published.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        published.update(|n| n + 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*published.load(), 2000);
        let mut local = published.snapshot();
        assert_eq!(**published.refresh(&mut local), 2000);
    }
}
