//! What a frontend provides to the shared driver: its sockets, timers and
//! executor. Everything else (buffers, the dispatch of the core's outputs,
//! the pool, shutdown, linger) is the driver's, written once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use futures_lite::{AsyncRead, AsyncWrite};

/// A re-armable one-shot timer: the driver keeps one per connection and
/// moves it only when the core's deadline moves earlier, since registering
/// a timer with a reactor costs more than polling one.
pub trait Timer: Future<Output = ()> + Unpin {
    /// Fires at `at` (at once if it passed), replacing any earlier setting.
    fn set_at(&mut self, at: Instant);
}

/// One thread's (core's) runtime: cheap to clone, never sent across
/// threads, so everything the driver keeps per thread needs no lock.
pub trait Runtime: Clone + 'static {
    /// A connected TCP stream.
    type Tcp: AsyncRead + AsyncWrite + Unpin + 'static;
    type Listener: 'static;
    type Timer: Timer;

    /// Runs `task` on this thread's executor, detached.
    fn spawn(&self, task: impl Future<Output = ()> + 'static);
    fn accept(&self, listener: &Self::Listener) -> impl Future<Output = io::Result<Self::Tcp>>;
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>>;
    /// Name resolution, off the serving thread (the system resolver blocks).
    fn resolve(
        &self,
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + 'static;
    /// Runs blocking `work` (a store call) on the runtime's blocking
    /// pool, off the serving thread; resolves with its result.
    fn unblock<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + 'static;
    fn sleep_until(&self, at: Instant) -> impl Future<Output = ()>;
    /// Sends small writes at once (an SSE event must not wait for the next).
    fn set_nodelay(&self, stream: &Self::Tcp);
    /// Closes the sending side, leaving the receiving side open (linger).
    fn shutdown_write(&self, stream: &mut Self::Tcp) -> impl Future<Output = ()>;
    /// A timer that never fires until `Timer::set_at`.
    fn timer(&self) -> Self::Timer;
}
