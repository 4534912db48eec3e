//! One serving thread: accepts connections until shutdown, then lets
//! in-flight requests finish for the grace period, then ends them.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use super::runtime::Runtime;
use super::{conn, Shared, Worker};
use crate::config::Config;

/// After the grace, how long connections get to write the endings the core
/// gave them (error events, terminators) and close, before they are dropped.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// How many serving threads: `--threads`, else one per CPU.
pub fn thread_count(config: &Config) -> usize {
    config
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Counts a live connection (from accept, before its task first runs, so
/// the cap sees it); shutdown waits for the count to reach zero.
struct Active<R: Runtime>(Rc<Worker<R>>);

impl<R: Runtime> Active<R> {
    fn new(worker: Rc<Worker<R>>) -> Active<R> {
        worker.shared.active.fetch_add(1, Ordering::SeqCst);
        worker.metrics.connection(1);
        Active(worker)
    }
}

impl<R: Runtime> Drop for Active<R> {
    fn drop(&mut self) {
        self.0.shared.active.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.connection(-1);
    }
}

/// Serves `listener` on this thread's runtime until shutdown; returns when
/// every connection is done or was given up on.
pub async fn serve_thread<R: Runtime>(rt: R, listener: R::Listener, shared: Arc<Shared>) {
    let worker = Rc::new(Worker::new(rt.clone(), shared.clone()));
    {
        // This thread's pool closes its expired connections; the reaper
        // stops with serving.
        let worker = worker.clone();
        rt.spawn(async move {
            let stop = async { worker.shared.shutdown.wait().await };
            worker.pool.reap_idle().or(stop).await;
        });
    }
    if let Some(tidy) = shared.tidy {
        // Each serving thread's allocator upkeep; stops with serving.
        let worker = worker.clone();
        rt.spawn(async move {
            let ticks = async {
                loop {
                    worker
                        .rt
                        .sleep_until(Instant::now() + super::TIDY_EVERY)
                        .await;
                    tidy();
                }
            };
            ticks.or(worker.shared.shutdown.wait()).await;
        });
    }
    if !shared.batch_worker.swap(true, Ordering::SeqCst) {
        // One thread runs the message-batch worker (see `batch`).
        rt.spawn(super::batch::run(worker.clone()));
    }
    accept_until_shutdown(&worker, &listener).await;
    drop(listener);
    let active = &shared.active;
    let grace = Duration::from_secs(shared.host.config.shutdown_grace_secs);
    wait_idle(&rt, active, Instant::now() + grace).await;
    let left = active.load(Ordering::SeqCst);
    if left > 0 {
        // Every connection ends what it has in progress (the core decides
        // how) and closes; those that cannot write in time are dropped.
        log::warn!("shutdown grace period over; ending {left} connection(s)");
        shared.shutdown.expire();
        wait_idle(&rt, active, Instant::now() + FINAL_FLUSH).await;
    }
    // The usage of every finished request goes to the writer before this
    // thread reports it is done (the recorder closes after all threads).
    worker.recorder.flush();
}

async fn accept_until_shutdown<R: Runtime>(worker: &Rc<Worker<R>>, listener: &R::Listener) {
    let shared = &worker.shared;
    loop {
        let accepted = async { Some(worker.rt.accept(listener).await) }
            .or(async {
                shared.shutdown.wait().await;
                None
            })
            .await;
        match accepted {
            Some(Ok(stream)) => {
                if shared.active.load(Ordering::SeqCst) >= shared.host.config.max_connections {
                    // Over the cap, a new connection is refused at once
                    // rather than let connections exhaust memory.
                    drop(stream);
                    continue;
                }
                let active = Active::new(worker.clone());
                worker.rt.spawn(async move {
                    conn::serve(stream, &active.0).await;
                    drop(active);
                });
            }
            Some(Err(err)) => {
                // Out of descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {err}");
                worker
                    .rt
                    .sleep_until(Instant::now() + Duration::from_millis(50))
                    .await;
            }
            None => return,
        }
    }
}

/// Waits until no connection is left or `deadline` passes.
async fn wait_idle<R: Runtime>(rt: &R, active: &AtomicUsize, deadline: Instant) {
    while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        rt.sleep_until(Instant::now() + Duration::from_millis(20))
            .await;
    }
}
