//! Thread-per-core serving: one single-threaded executor per core, all
//! accepting from the same listener, so a connection's task never migrates
//! between threads and I/O readiness is handled on the thread that owns it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arouter_host::Host;
use futures_lite::FutureExt;
use smol::net::TcpListener;
use smol::{LocalExecutor, Timer};

use crate::clock::Clock;
use crate::conn::{self, Shared};
use crate::shutdown::Shutdown;
use crate::upstream::Pool;

/// After the grace, how long connections get to write the endings the core
/// gave them (error events, terminators) and close, before they are dropped.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// Counts live connections; shutdown waits for it to reach zero.
struct Active(Arc<AtomicUsize>);

impl Active {
    fn new(counter: &Arc<AtomicUsize>) -> Active {
        counter.fetch_add(1, Ordering::SeqCst);
        Active(counter.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves until `shutdown` fires, then lets in-flight requests finish for
/// up to the configured grace period.
pub fn run(
    host: Arc<Host>,
    listener: std::net::TcpListener,
    shutdown: Arc<Shutdown>,
) -> std::io::Result<()> {
    let threads = host
        .config
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let listener = TcpListener::try_from(listener)?;
    let ca_files: Vec<_> = host
        .config
        .providers
        .iter()
        .map(|p| p.ca_file.clone())
        .collect();
    let shared = Arc::new(Shared {
        pool: Pool::new(host.gateway.clone(), &ca_files).map_err(std::io::Error::other)?,
        host: host.clone(),
        clock: Clock::new(),
        shutdown,
    });
    let active = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for i in 1..threads {
        let (listener, shared, active) = (listener.clone(), shared.clone(), active.clone());
        workers.push(
            std::thread::Builder::new()
                .name(format!("arouter-worker-{i}"))
                .spawn(move || serve_thread(listener, shared, active, false))?,
        );
    }
    serve_thread(listener, shared, active, true);
    for worker in workers {
        let _ = worker.join();
    }
    host.shutdown();
    Ok(())
}

/// Waits until no connection is left or `deadline` passes.
async fn wait_idle(active: &AtomicUsize, deadline: Instant) {
    while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        Timer::after(Duration::from_millis(20)).await;
    }
}

/// `reaper`: this thread also closes expired pooled upstream connections
/// (one thread does it for the shared pool).
fn serve_thread(
    listener: TcpListener,
    shared: Arc<Shared>,
    active: Arc<AtomicUsize>,
    reaper: bool,
) {
    let executor = LocalExecutor::new();
    let grace = Duration::from_secs(shared.host.config.shutdown_grace_secs);
    if reaper {
        let shared = shared.clone();
        // Dropped with the executor when serving ends.
        executor
            .spawn(async move { shared.pool.reap_idle().await })
            .detach();
    }
    smol::block_on(executor.run(async {
        loop {
            let accepted = async { Some(listener.accept().await) }
                .or(async {
                    shared.shutdown.wait().await;
                    None
                })
                .await;
            match accepted {
                Some(Ok((stream, _peer))) => {
                    if active.load(Ordering::SeqCst) >= shared.host.config.max_connections {
                        // Over the cap, a new connection is refused at once
                        // rather than let connections exhaust memory.
                        drop(stream);
                        continue;
                    }
                    let guard = Active::new(&active);
                    let task = conn::serve(stream, shared.clone());
                    executor
                        .spawn(async move {
                            task.await;
                            drop(guard);
                        })
                        .detach();
                }
                Some(Err(err)) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    log::warn!("accept failed: {err}");
                    Timer::after(Duration::from_millis(50)).await;
                }
                None => break,
            }
        }
        drop(listener);
        let deadline = Instant::now() + grace;
        wait_idle(&active, deadline).await;
        let left = active.load(Ordering::SeqCst);
        if left > 0 {
            // Every connection ends what it has in progress (the core
            // decides how) and closes; those that cannot write in time
            // are dropped.
            log::warn!("shutdown grace period over; ending {left} connection(s)");
            shared.shutdown.expire();
            wait_idle(&active, Instant::now() + FINAL_FLUSH).await;
        }
    }));
}
