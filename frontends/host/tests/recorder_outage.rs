//! The usage recorder against the real SQLite store while the store cannot
//! commit: every debit arrives exactly once after the store recovers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arouter_core::billing::MicroUsd;
use arouter_core::exchange::request_id::RequestId;
use arouter_core::exchange::{Outcome, UsageRecord};
use arouter_host::recorder::{spool, Buffered, Recorder, RecorderStats, BATCH, MAX_HELD};
use arouter_host::store::sqlite::{SqliteStore, FILE_NAME};
use arouter_host::store::Store;
use rusqlite::Connection;

fn usage(n: usize) -> UsageRecord {
    UsageRecord {
        key_id: Some(1),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        usage: None,
        cost: Some(MicroUsd(7)),
        complete: true,
        estimated: false,
        referer: None,
        title: None,
        request_id: RequestId::new(&format!("req-outage-{n}")).unwrap(),
        upstream_status: Some(200),
        outcome: Outcome::Complete,
        generation_id: None,
        stream: false,
        latency_ms: 5,
    }
}

fn open(dir: &std::path::Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open_with_busy_timeout(dir, Duration::from_millis(50)).unwrap())
}

fn stored_request_ids(store: &SqliteStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .transactions(1_000_000)
        .unwrap()
        .into_iter()
        .filter_map(|t| t.request_id)
        .collect();
    ids.sort();
    ids
}

/// Another connection holding the write lock, as another process would,
/// until it commits or is dropped.
fn lock_database(dir: &std::path::Path) -> Connection {
    let blocker = Connection::open(dir.join(FILE_NAME)).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    blocker
}

/// Records `n` calls while the database is locked, then stops the
/// recorder, which gives up after its patience with the store. Returns
/// the lock, still held, and what the recorder counted.
fn record_locked_then_stop(
    store: &Arc<SqliteStore>,
    dir: &std::path::Path,
    n: usize,
) -> (Connection, RecorderStats) {
    let recorder = Recorder::start(store.clone(), "test", dir);
    let worker = recorder.local();
    let blocker = lock_database(dir);
    for i in 0..n {
        let _ = worker.record(usage(i), 1_700_000_000);
    }
    drop(worker);
    recorder.close();
    (blocker, recorder.stats())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_locked_database_loses_no_debit_and_stores_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let recorder = Recorder::start(store.clone(), "test", dir.path());
    let worker = recorder.local();

    // Another process holds the write lock for longer than the busy timeout.
    let blocker = lock_database(dir.path());
    for n in 0..40 {
        let _ = worker.record(usage(n), 1_700_000_000);
    }
    worker.flush();
    wait_until("the writer failed twice", || {
        recorder.stats().failed_commits >= 2
    });
    // Recording goes on meanwhile (the writer holding a failed batch
    // blocks no worker).
    for n in 40..45 {
        let _ = worker.record(usage(n), 1_700_000_001);
    }
    worker.flush();
    blocker.execute_batch("COMMIT").unwrap();
    for n in 45..50 {
        let _ = worker.record(usage(n), 1_700_000_002);
    }
    worker.flush();
    wait_until("every row is stored", || recorder.stats().stored == 50);
    recorder.close();

    let mut expected: Vec<String> = (0..50).map(|n| format!("req-outage-{n}")).collect();
    expected.sort();
    assert_eq!(stored_request_ids(&store), expected);
    let billed: u64 = store
        .transactions(1_000)
        .unwrap()
        .iter()
        .map(|t| t.cost_micros)
        .sum();
    assert_eq!(billed, 50 * 7);
    let stats = recorder.stats();
    assert_eq!(stats.dropped, 0);
    assert!(stats.failed_commits >= 2, "{stats:?}");
}

#[test]
fn shutdown_stores_what_every_worker_still_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let recorder = Arc::new(Recorder::start(store.clone(), "test", dir.path()));
    // Three worker threads each buffer fewer records than a batch and stop
    // (as serving threads do at shutdown); then the recorder closes.
    std::thread::scope(|s| {
        for w in 0..3 {
            let recorder = recorder.clone();
            s.spawn(move || {
                let worker = recorder.local();
                for n in 0..10 {
                    let _ = worker.record(usage(w * 10 + n), 1_700_000_000);
                }
                assert_eq!(worker.buffered(), 10);
                // Dropped unflushed: the buffer hands itself over.
            });
        }
    });
    recorder.close();
    let mut expected: Vec<String> = (0..30).map(|n| format!("req-outage-{n}")).collect();
    expected.sort();
    assert_eq!(stored_request_ids(&store), expected);
}

#[test]
fn a_full_batch_is_handed_over_without_waiting_for_the_timer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let recorder = Recorder::start(store.clone(), "test", dir.path());
    let worker = recorder.local();
    let mut armed = 0;
    for n in 0..BATCH {
        if worker.record(usage(n), 1_700_000_000) == Buffered::ArmTimer {
            armed += 1;
        }
    }
    // One timer for the batch, and the batch already went.
    assert_eq!((armed, worker.buffered()), (1, 0));
    wait_until("the batch is stored", || {
        recorder.stats().stored == BATCH as u64
    });
    // The timer armed for the first batch is still pending and will hand
    // over the next one; once it fired, a new batch asks for a new timer.
    assert_eq!(worker.record(usage(BATCH), 1_700_000_000), Buffered::Held);
    worker.flush_timer_fired();
    assert_eq!(worker.buffered(), 0);
    assert_eq!(
        worker.record(usage(BATCH + 1), 1_700_000_000),
        Buffered::ArmTimer
    );
    worker.flush_timer_fired();
    recorder.close();
    assert_eq!(stored_request_ids(&store).len(), BATCH + 2);
}

#[test]
fn past_the_bound_new_batches_are_spooled_and_stored_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let recorder = Recorder::start(store.clone(), "test", dir.path());
    let worker = recorder.local();
    let blocker = lock_database(dir.path());
    let total = MAX_HELD + 3;
    for n in 0..total {
        let _ = worker.record(usage(n), 1_700_000_000);
    }
    worker.flush();
    // Whole batches are held up to the bound; the first that does not fit
    // goes to the spool, and every one after it.
    let held = MAX_HELD / BATCH * BATCH;
    wait_until("the batches past the bound are spooled", || {
        recorder.stats().spooled == (total - held) as u64
    });
    blocker.execute_batch("COMMIT").unwrap();
    wait_until("the held rows are stored", || {
        recorder.stats().stored == held as u64
    });
    recorder.close();
    assert_eq!(recorder.stats().dropped, 0);
    let ids = stored_request_ids(&store);
    assert_eq!(ids.len(), held);
    assert!(!ids.contains(&format!("req-outage-{held}")));

    // The next start stores the rest, each once.
    let imported = spool::import(store.as_ref(), dir.path()).unwrap();
    assert_eq!((imported.files, imported.calls), (1, (total - held) as u64));
    assert_eq!(stored_request_ids(&store).len(), total);
    assert_eq!(store.totals().unwrap().usage, 7 * total as u64);
}

#[test]
fn stopping_while_the_store_fails_spools_what_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (blocker, stats) = record_locked_then_stop(&store, dir.path(), 5);
    assert_eq!((stats.stored, stats.spooled, stats.dropped), (0, 5, 0));
    blocker.execute_batch("COMMIT").unwrap();
    let imported = spool::import(store.as_ref(), dir.path()).unwrap();
    assert_eq!(
        (imported.calls, imported.cost_micros, imported.kept),
        (5, 35, 0)
    );
    let expected: Vec<String> = (0..5).map(|n| format!("req-outage-{n}")).collect();
    assert_eq!(stored_request_ids(&store), expected);
    // A second start finds nothing to store again.
    assert_eq!(spool::import(store.as_ref(), dir.path()).unwrap().files, 0);
    assert_eq!(store.totals().unwrap().usage, 35);
}

#[test]
fn rows_the_spool_cannot_take_are_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // A file where the spool directory would be: the spool cannot be made.
    std::fs::write(dir.path().join(spool::DIR), b"").unwrap();
    let (_blocker, stats) = record_locked_then_stop(&store, dir.path(), 3);
    assert_eq!((stats.stored, stats.spooled, stats.dropped), (0, 0, 3));
}
