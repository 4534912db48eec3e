//! How state is shared across the serving threads (one per core with
//! glommio, a few with smol; each thread's state is its
//! [`Worker`](crate::driver::Worker)). One rule per kind of state, so
//! that the request path takes no lock:
//!
//! - **Thread-local** (the upstream pool, the usage buffer, a worker's view
//!   of the key table): owned by one `Worker`, reached through `Rc`/`RefCell`,
//!   never shared. Nothing to synchronise.
//! - **Read-mostly tables** (the key table): a [`Published`] value. A
//!   change builds a new table and publishes it (swap the `Arc`, then bump
//!   a version number) before the call that made the change returns. Each
//!   worker keeps its own [`Snapshot`]: one atomic load of the version per
//!   use, and a refresh of its `Arc` only when the version moved. So the
//!   next use on any core after the publishing call returned sees the
//!   change, and reads never wait for a writer (there is no reader lock at
//!   all; the publish mutex only orders publishers).
//! - **Counters that must be exact across cores** (rate-limit buckets,
//!   key spending limits, the account balance): one atomic word per key,
//!   updated by a compare-and-swap loop that applies a pure function to
//!   the old value ([`SharedGcra`], [`LimitLine`], [`CreditLine`]). Every admitted update is one
//!   successful CAS, so the result is exactly that of running the updates
//!   one after another in CAS order: the error bound is zero, as with a
//!   lock, and no process-wide lock exists. The per-key atomics hang off
//!   the published table's entries (an `Arc` each), and a republished table
//!   carries them over by key id, so a reload never resets a bucket or a
//!   balance and a worker still on the old snapshot updates the same word.
//!
//! Why exact rather than a per-core split: a split of a limit of `n` over
//! `c` cores admits up to `c - 1` requests too many or too few while load
//! is uneven, and credit must never go below zero. Contention on one
//! key's word is the only cost: a failed CAS retries with the fresh value,
//! a few nanoseconds, and only requests of the same key ever collide.

mod credit;
mod gcra;
mod limit;
mod snapshot;

pub use credit::{CreditLine, CreditOverflow, Reservation, Settlement};
pub use gcra::SharedGcra;
pub use limit::{LimitHold, LimitLine};
pub use snapshot::{Published, Snapshot};
