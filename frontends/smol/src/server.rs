//! The smol runtime: one single-threaded executor per thread, each
//! accepting from its own listener where the kernel balances them (see
//! `arouter_host::driver::listeners`), so a connection's task never
//! migrates between threads and I/O readiness is handled on the thread
//! that owns it.
//! What happens on a connection is the host's driver; this file only
//! supplies sockets, timers and the executor.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use arouter_host::driver::runtime::{Runtime, Timer};
use arouter_host::driver::{serve_thread, thread_count, Shared};
use smol::{Async, LocalExecutor};

use crate::tcp::Tcp;

/// A serving thread's listening socket (shared by all threads where the
/// kernel gives only one).
type Listener = Arc<Async<std::net::TcpListener>>;

thread_local! {
    /// This thread's executor; dropped (with its tasks) when the thread ends.
    static EXECUTOR: LocalExecutor<'static> = const { LocalExecutor::new() };
}

#[derive(Clone, Copy)]
pub struct Smol;

/// `smol::Timer` with `set_at`; `Timer::never()` until first set.
pub struct SmolTimer(smol::Timer);

impl Future for SmolTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Timer for SmolTimer {
    fn set_at(&mut self, at: Instant) {
        self.0.set_at(at);
    }
}

impl Runtime for Smol {
    type Tcp = Tcp;
    type Listener = Listener;
    type Timer = SmolTimer;

    fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        EXECUTOR.with(|executor| executor.spawn(task).detach());
    }

    async fn accept(&self, listener: &Listener) -> io::Result<Tcp> {
        listener.accept().await.map(|(stream, _)| Tcp::new(stream))
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Tcp> {
        Tcp::connect(addr).await
    }

    fn resolve(
        &self,
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + 'static {
        smol::unblock(move || {
            std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)).map(Iterator::collect)
        })
    }

    fn unblock<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + 'static {
        smol::unblock(work)
    }

    fn set_nodelay(&self, stream: &Tcp) {
        let _ = stream.set_nodelay(true);
    }

    async fn shutdown_write(&self, stream: &mut Tcp) {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }

    async fn sleep_until(&self, at: Instant) {
        smol::Timer::at(at).await;
    }

    fn timer(&self) -> SmolTimer {
        SmolTimer(smol::Timer::never())
    }
}

/// Serves until shutdown on `--threads` threads, then lets in-flight
/// requests finish for up to the configured grace period. Thread `i`
/// accepts from `listeners[i]`, or from the one listener there is.
pub fn run(listeners: Vec<std::net::TcpListener>, shared: Arc<Shared>) -> io::Result<()> {
    let threads = thread_count(&shared.host.config).max(1);
    let listeners = listeners
        .into_iter()
        .map(|listener| Async::new(listener).map(Arc::new))
        .collect::<io::Result<Vec<Listener>>>()?;
    let Some(first) = listeners.first().cloned() else {
        return Err(io::Error::other("no listener"));
    };
    let mut workers = Vec::new();
    for i in 1..threads {
        let listener = listeners.get(i).unwrap_or(&first).clone();
        let shared = shared.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("arouter-worker-{i}"))
                .spawn(move || serve(listener, shared))?,
        );
    }
    serve(first, shared);
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

fn serve(listener: Listener, shared: Arc<Shared>) {
    EXECUTOR.with(|executor| {
        smol::block_on(executor.run(serve_thread(Smol, listener, shared)));
    });
}
