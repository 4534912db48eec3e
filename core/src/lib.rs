//! ARouter core: the gateway's protocol logic as pure state machines.
//!
//! Nothing in this crate performs I/O, reads a clock, spawns a thread or
//! depends on an async runtime. Callers hand in bytes and time values and
//! drain the outputs; see `exchange::Exchange` for the per-connection driver
//! contract.

pub mod api;
pub mod auth;
pub mod batch;
pub mod billing;
pub mod budget;
pub mod exchange;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod gateway;
pub mod http1;
pub mod limits;
pub mod manage;
pub mod name_map;
pub mod ratelimit;
pub mod route;
pub mod sse;
pub mod stored;
pub mod stream;
pub mod time;
pub mod tokens;
pub mod trace;
pub mod translate;
pub mod upstream;
pub mod usage;

pub use limits::Limits;
pub use time::Tick;
