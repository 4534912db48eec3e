//! Key changes pushed by a shared store, so the key-poll thread
//! ([`super::poll`]) re-reads the keys table as soon as another gateway
//! (or an offline `arouter keys …` command) changed it, rather than at its
//! next interval. The store notifies in the transaction that changes a
//! key, so the notification arrives exactly when the change is visible.
//!
//! It is a hint, not the record: a notification carries nothing, and the
//! reader always reads the whole keys table. Notifications sent while the
//! listening connection was down are lost, so a listener that connects
//! again also wakes a read; the poll goes on all along as the fallback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::StoreError;

/// Called (from the listener's thread) when the keys table may have
/// changed. Calls in a burst may be coalesced by the caller.
pub type OnChange = Box<dyn Fn() + Send>;

/// A store whose key changes can be listened to.
pub trait KeyChanges: Send + Sync {
    /// Starts listening; `changed` is called after each committed key
    /// change, and each time listening starts (again), since changes made
    /// before that were not heard. Connects once before it returns, so a
    /// change committed after this returns is heard (unless the
    /// connection breaks; it is then opened again in the background).
    fn listen(&self, changed: OnChange) -> Result<Listener, StoreError>;
}

/// How long [`Listener`]'s drop waits for its thread: one that is opening
/// a connection to a database that does not answer may take the
/// connection timeout, and shutdown need not wait for that.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// The listening thread; dropping it stops the thread.
pub struct Listener {
    stop: Arc<AtomicBool>,
    /// Closed when the thread ends (in a mutex only so the host, which
    /// holds this, can be shared between threads).
    ended: Mutex<mpsc::Receiver<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The thread's side of a [`Listener`].
pub struct ListenerThread {
    stop: Arc<AtomicBool>,
    _ended: mpsc::Sender<()>,
}

impl ListenerThread {
    /// Whether the thread was asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps `total` in short steps; `false` when asked to stop meanwhile.
    pub fn sleep(&self, total: Duration) -> bool {
        let step = Duration::from_millis(50);
        let mut left = total;
        while !left.is_zero() {
            if self.stopping() {
                return false;
            }
            let now = left.min(step);
            std::thread::sleep(now);
            left -= now;
        }
        !self.stopping()
    }
}

impl Listener {
    /// Runs `body` on a new thread named `name`.
    pub fn spawn(
        name: &str,
        body: impl FnOnce(ListenerThread) + Send + 'static,
    ) -> Result<Listener, StoreError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ended_tx, ended) = mpsc::channel();
        let side = ListenerThread {
            stop: stop.clone(),
            _ended: ended_tx,
        };
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(side))
            .map_err(|e| StoreError::Backend(format!("cannot start {name}: {e}")))?;
        Ok(Listener {
            stop,
            ended: Mutex::new(ended),
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let ended = match self.ended.get_mut() {
            Ok(ended) => ended.recv_timeout(STOP_WAIT),
            Err(_) => Err(RecvTimeoutError::Timeout),
        };
        match ended {
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            // Still connecting: it ends on its own once that times out.
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
        }
    }
}
