//! The message-batch worker: claims pending batch requests from the store
//! and serves each through a connection in memory (`conn::serve_memory`),
//! so a batch request is admitted, routed, translated, reserved and billed
//! exactly as the same `/v1/messages` call from a client would be. Its
//! usage is stored with its result in one transaction.
//!
//! It never starves interactive traffic: it runs on one serving thread
//! only, at most `batch_concurrency` requests at a time across all batches
//! and `batch_provider_concurrency` per provider; each request counts
//! against its key's rate limit like any other; and a provider's 429 or
//! overload answer puts the request back with exponential backoff instead
//! of retrying at once.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arouter_core::batch::{parse_answer, verdict, ItemEnd, Verdict};
use arouter_core::exchange::UsageRecord;
use futures_lite::FutureExt;

use super::conn::serve_memory;
use super::io::unix_ms;
use super::runtime::Runtime;
use super::side::MemorySide;
use super::Worker;
use crate::ledger::Held;
use crate::store::{BatchItem, BatchRef, Transaction, Wanted};

/// How often the worker looks for new work when nothing woke it.
const TICK: Duration = Duration::from_millis(250);
/// How often expired batches are ended and old ones deleted.
const SWEEP: Duration = Duration::from_secs(5);
/// Backoff after a 429 or overload: 1 s, doubling, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Tries of one request before a retryable answer ends it as errored.
const MAX_TRIES: u32 = 20;
/// Tries of writing a finished request's result before giving up (the
/// request then runs again after a restart).
const STORE_TRIES: u32 = 5;

struct Queued {
    item: BatchItem,
    tries: u32,
    not_before: Instant,
    /// The provider the request names (`provider/model`), for the
    /// per-provider bound; a bare model counts as one group.
    group: String,
}

#[derive(Default)]
struct Runner {
    /// Claimed requests waiting to run (new, or backing off).
    queue: RefCell<VecDeque<Queued>>,
    running: Cell<usize>,
    per_group: RefCell<HashMap<String, usize>>,
    /// A request finished: its slot may start a waiting one at once.
    finished: event_listener::Event,
}

/// Counts a running batch request as a live connection, so shutdown waits
/// for it to finish.
struct Live<R: Runtime>(Rc<Worker<R>>);

impl<R: Runtime> Drop for Live<R> {
    fn drop(&mut self) {
        self.0.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn unix_secs() -> i64 {
    i64::try_from(unix_ms() / 1000).unwrap_or(i64::MAX)
}

/// Runs batch requests until shutdown.
pub async fn run<R: Runtime>(worker: Rc<Worker<R>>) {
    let runner = Rc::new(Runner::default());
    let settings = worker.shared.host.batches.settings;
    let capacity = settings.concurrency * 2;
    let mut last_sweep: Option<Instant> = None;
    while !worker.shared.shutdown.is_set() {
        let now = Instant::now();
        if last_sweep.is_none_or(|at| now.duration_since(at) >= SWEEP) {
            sweep(&worker).await;
            last_sweep = Some(now);
        }
        let waiting = runner.queue.borrow().len() + runner.running.get();
        if waiting < capacity {
            claim(&worker, &runner, capacity - waiting).await;
        }
        let finished = runner.finished.listen();
        let news = worker.shared.host.batches.listen();
        end_early(&worker, &runner).await;
        start_ready(&worker, &runner);
        // Requests held back only by the concurrency bounds wait for a
        // slot (`finished`), not for time: the loop must not spin on them.
        let now = Instant::now();
        let next = runner
            .queue
            .borrow()
            .iter()
            .map(|q| q.not_before)
            .filter(|at| *at > now)
            .min()
            .map_or(now + TICK, |at| at.min(now + TICK));
        let shared = &worker.shared;
        async { worker.rt.sleep_until(next).await }
            .or(finished)
            .or(news)
            .or(async { shared.shutdown.wait().await })
            .await;
    }
}

/// Ends now the queued requests of batches canceled or expired since the
/// last look (one waiting out a backoff would otherwise end only when its
/// turn came).
async fn end_early<R: Runtime>(worker: &Rc<Worker<R>>, runner: &Runner) {
    let ended = worker.shared.host.batches.take_ended();
    if ended.is_empty() {
        return;
    }
    let items: VecDeque<Queued> = {
        let mut queue = runner.queue.borrow_mut();
        let (gone, kept) = queue
            .drain(..)
            .partition(|q| ended.contains(&q.item.batch_id));
        *queue = kept;
        gone
    };
    for q in items {
        match wanted(worker, &q.item).await {
            Ok(Wanted::Cancel) => finish(worker, &q.item, ItemEnd::Canceled, Vec::new()).await,
            Ok(Wanted::Expire) => finish(worker, &q.item, ItemEnd::Expired, Vec::new()).await,
            // Not ended after all (or the store failed): its turn comes.
            _ => runner.queue.borrow_mut().push_back(q),
        }
    }
}

/// Ends expired batches (giving back their requests' credit) and deletes
/// those past retention.
async fn sweep<R: Runtime>(worker: &Rc<Worker<R>>) {
    let host = worker.shared.host.clone();
    let expired = worker
        .rt
        .unblock(move || {
            let now = unix_secs();
            let expired = host.store.expire_batches(now);
            if let Ok(ids) = &expired {
                for id in ids {
                    host.batches.release(id);
                }
            }
            let retention = host.batches.settings.retention_secs;
            if let Err(err) = host.store.purge_batches(now - retention) {
                log::error!("batches: deleting batches past retention: {err}");
            }
            crate::responses::purge(&host, now);
            expired
        })
        .await;
    if let Err(err) = expired {
        log::error!("batches: ending expired batches: {err}");
    }
}

async fn claim<R: Runtime>(worker: &Rc<Worker<R>>, runner: &Runner, room: usize) {
    let host = worker.shared.host.clone();
    match worker
        .rt
        .unblock(move || host.store.claim_batch_requests(room))
        .await
    {
        Ok(items) => {
            if CLAIMS_FAILING.swap(false, Ordering::Relaxed) {
                log::info!("batches: claiming requests works again");
            }
            let now = Instant::now();
            let mut queue = runner.queue.borrow_mut();
            for item in items {
                let group = group_of(&item.params);
                queue.push_back(Queued {
                    item,
                    tries: 0,
                    not_before: now,
                    group,
                });
            }
        }
        // Tried a few times a second: said once until it works again.
        Err(err) => {
            if !CLAIMS_FAILING.swap(true, Ordering::Relaxed) {
                log::error!("batches: claiming requests: {err}");
            }
        }
    }
}

/// The last claim of batch requests failed (logged once).
static CLAIMS_FAILING: AtomicBool = AtomicBool::new(false);

/// The provider prefix of the request's model, read without parsing the
/// whole body.
fn group_of(params: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Model<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Model<'_>>(params)
        .ok()
        .and_then(|m| m.model)
        .map(|m| m.split_once('/').map_or("", |(p, _)| p).to_string())
        .unwrap_or_default()
}

/// Starts every queued request that is due and within the bounds.
fn start_ready<R: Runtime>(worker: &Rc<Worker<R>>, runner: &Rc<Runner>) {
    let settings = worker.shared.host.batches.settings;
    let now = Instant::now();
    let mut i = 0;
    loop {
        if runner.running.get() >= settings.concurrency {
            return;
        }
        let ready = {
            let queue = runner.queue.borrow();
            let Some(q) = queue.get(i) else { return };
            let in_group = runner.per_group.borrow().get(&q.group).copied();
            q.not_before <= now && in_group.unwrap_or(0) < settings.provider_concurrency
        };
        if !ready {
            i += 1;
            continue;
        }
        let Some(q) = runner.queue.borrow_mut().remove(i) else {
            return;
        };
        runner.running.set(runner.running.get() + 1);
        *runner
            .per_group
            .borrow_mut()
            .entry(q.group.clone())
            .or_default() += 1;
        worker.shared.active.fetch_add(1, Ordering::SeqCst);
        let live = Live(worker.clone());
        let runner = runner.clone();
        worker.rt.spawn(async move {
            let group = q.group.clone();
            job(&live.0, &runner, q).await;
            runner.running.set(runner.running.get() - 1);
            if let Some(n) = runner.per_group.borrow_mut().get_mut(&group) {
                *n = n.saturating_sub(1);
            }
            runner.finished.notify(1);
            drop(live);
        });
    }
}

/// Whether a claimed request should still run, asked of the store off the
/// serving thread.
async fn wanted<R: Runtime>(
    worker: &Rc<Worker<R>>,
    item: &BatchItem,
) -> Result<Wanted, crate::store::StoreError> {
    let host = worker.shared.host.clone();
    let item = item.clone();
    worker
        .rt
        .unblock(move || host.store.batch_request_wanted(&item, unix_secs()))
        .await
}

/// Runs one claimed request and stores its end, or puts it back.
async fn job<R: Runtime>(worker: &Rc<Worker<R>>, runner: &Runner, mut q: Queued) {
    let wanted = wanted(worker, &q.item).await;
    let key = (q.item.batch_id.clone(), q.item.idx);
    let host = &worker.shared.host;
    let end_unrun = match wanted {
        Ok(Wanted::Run) => None,
        Ok(Wanted::Cancel) => Some(ItemEnd::Canceled),
        Ok(Wanted::Expire) => Some(ItemEnd::Expired),
        Err(err) => {
            log::error!("batches: {err}");
            return back_off(runner, q);
        }
    };
    if let Some(end) = end_unrun {
        // A hold put back after a retry may have outlived its batch's
        // release: it goes back now.
        drop(host.batches.take_hold(&key));
        return finish(worker, &q.item, end, Vec::new()).await;
    }
    let held = host.batches.take_hold(&key);
    q.tries += 1;
    let (ran, transactions, rest) = run_once(worker, &q.item, held, q.tries >= MAX_TRIES).await;
    match ran {
        // What is left of the request's credit goes back as `rest` drops.
        Ran::End(end) => finish(worker, &q.item, end, transactions).await,
        Ran::Retry => {
            if let Some(rest) = rest {
                host.batches.put_hold(key, rest);
            }
            record_attempts(worker, transactions).await;
            back_off(runner, q);
        }
    }
}

/// What one run of a request came to.
enum Ran {
    Retry,
    End(ItemEnd),
}

/// Serves the request once: how it ended, its billed calls, and what is
/// left of the credit it ran with.
async fn run_once<R: Runtime>(
    worker: &Rc<Worker<R>>,
    item: &BatchItem,
    held: Option<Held>,
    last_try: bool,
) -> (Ran, Vec<Transaction>, Option<Held>) {
    let limits = &worker.shared.host.config.limits;
    let side = Rc::new(MemorySide::new(
        request_bytes(&item.params),
        limits.max_upstream_body_bytes + 64 * 1024,
        item.owner,
        held,
    ));
    let started_ms = unix_ms();
    serve_memory(side.clone(), worker).await;
    let transactions = batch_transactions(item, side.usage.take(), started_ms);
    let ran = match parse_answer(&side.take_answer(), limits) {
        Ok(answer) => match verdict(&answer, last_try) {
            Verdict::Retry => Ran::Retry,
            Verdict::End(end) => Ran::End(end),
        },
        Err(err) => {
            log::error!(
                "batches: {} request {}: the gateway's answer could not be read: {err:?}",
                item.batch_id,
                item.idx
            );
            Ran::End(ItemEnd::Errored(
                br#"{"type":"error","error":{"type":"api_error","message":"the request's answer was cut short"}}"#
                    .to_vec(),
            ))
        }
    };
    let rest = side.held.take();
    (ran, transactions, rest)
}

/// The transactions of one run, each naming its batch request; their ids
/// are unique per run, so a result stored twice bills once.
fn batch_transactions(
    item: &BatchItem,
    usage: Vec<UsageRecord>,
    started_ms: u64,
) -> Vec<Transaction> {
    let now = unix_secs();
    usage
        .into_iter()
        .enumerate()
        .map(|(n, record)| {
            let record_id = format!("b-{}-{}-{started_ms}-{n}", item.batch_id, item.idx);
            let mut t: Transaction = crate::recorder::transaction(record, now, record_id);
            t.batch = Some(BatchRef {
                batch_id: item.batch_id.clone(),
                custom_id: item.custom_id.clone(),
            });
            t
        })
        .collect()
}

/// Stores the calls of a run that will be tried again (a 429 costs
/// nothing, but it is a call, listed as one, as on `/v1/messages`).
async fn record_attempts<R: Runtime>(worker: &Rc<Worker<R>>, transactions: Vec<Transaction>) {
    if transactions.is_empty() {
        return;
    }
    let host = worker.shared.host.clone();
    let stored = worker
        .rt
        .unblock(move || host.store.record(&transactions))
        .await;
    if let Err(err) = stored {
        log::error!("batches: recording a retried request's attempt: {err}");
    }
}

/// Puts a request back to run again after its backoff.
fn back_off(runner: &Runner, mut q: Queued) {
    let exp = q.tries.saturating_sub(1).min(5);
    let delay = Duration::from_secs(1u64 << exp).min(MAX_BACKOFF);
    q.not_before = Instant::now() + delay;
    runner.queue.borrow_mut().push_back(q);
}

/// Stores a request's end and its transactions, trying again a few times
/// if the store is busy.
async fn finish<R: Runtime>(
    worker: &Rc<Worker<R>>,
    item: &BatchItem,
    end: ItemEnd,
    transactions: Vec<Transaction>,
) {
    for attempt in 1..=STORE_TRIES {
        let host = worker.shared.host.clone();
        let work = (item.clone(), end.clone(), transactions.clone());
        let result = worker
            .rt
            .unblock(move || {
                let (item, end, transactions) = work;
                host.store
                    .finish_batch_request(&item, &end, &transactions, unix_secs())
            })
            .await;
        match result {
            Ok(()) => return,
            Err(err) if attempt < STORE_TRIES => {
                log::warn!("batches: storing a result (try {attempt}): {err}");
                worker
                    .rt
                    .sleep_until(Instant::now() + Duration::from_millis(200 << attempt))
                    .await;
            }
            Err(err) => log::error!(
                "batches: the result of {} request {} was not stored; it runs again after a restart: {err}",
                item.batch_id,
                item.idx
            ),
        }
    }
}

/// The `/v1/messages` call a batch request stands for. The key is not
/// sent (its secret is not stored): the connection admits the request as
/// the batch's key by id.
fn request_bytes(params: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(params.len() + 256);
    out.extend_from_slice(
        b"POST /v1/messages HTTP/1.1\r\nHost: batch\r\nX-Api-Key: batch\r\n\
          Content-Type: application/json\r\nAnthropic-Version: 2023-06-01\r\n\
          Connection: close\r\nContent-Length: ",
    );
    out.extend_from_slice(params.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(params.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_group_by_the_provider_they_name() {
        assert_eq!(
            group_of(r#"{"model":"openai/gpt-4o","max_tokens":1}"#),
            "openai"
        );
        assert_eq!(group_of(r#"{"max_tokens":1,"model":"claude-x"}"#), "");
        assert_eq!(group_of("not json"), "");
    }

    #[test]
    fn a_batch_request_is_a_whole_messages_call() {
        let bytes = request_bytes(r#"{"a":1}"#);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /v1/messages HTTP/1.1\r\n"));
        assert!(text.ends_with("Content-Length: 7\r\n\r\n{\"a\":1}"));
    }
}
