//! The store suite on a live PostgreSQL, one fresh database per test, and
//! what only a shared database has: migrations racing at start, and
//! settlements replayed by several instances.
//!
//! The server is `AROUTER_TEST_POSTGRES_URL` (a superuser's URL; `scripts/test`
//! starts a throwaway cluster with `scripts/pg-cluster` and sets it). Without
//! it the tests pass without checking anything, saying so, except under CI
//! (`CI` set), where a missing server is a failure.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use super::*;
use crate::store::suite::{spent, store_suite, Fixture};

pub(crate) const URL_VAR: &str = "AROUTER_TEST_POSTGRES_URL";

/// A database of its own on the test server.
pub(crate) struct Database {
    pub url: String,
}

impl Fixture for Database {
    fn open(&self) -> Box<dyn Store> {
        Box::new(PostgresStore::open(&self.url).unwrap())
    }

    /// A stopped process's connections end on the server a moment after
    /// it closed them: wait for that, as its successor would have.
    fn restart(&self) -> Box<dyn Store> {
        self.wait_for_no_store();
        self.open()
    }
}

impl Database {
    /// Waits (up to 5 s) until no store's connection to this database is left.
    fn wait_for_no_store(&self) {
        self.wait_for_no_store_but(0);
    }

    /// Waits (up to 5 s) until at most `left` stores' connections are.
    fn wait_for_no_store_but(&self, live: i64) {
        let mut client = connect_to(&self.url);
        for _ in 0..250 {
            let left: i64 = client
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND application_name = 'arouter'",
                    &[],
                )
                .unwrap()
                .get(0);
            if left <= live {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A new, empty database; `None` when no server is configured (outside CI).
pub(crate) fn fresh_database() -> Option<Database> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(admin) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{URL_VAR} is not set: under CI the Postgres store must be tested (scripts/test starts a server)"
        );
        eprintln!("no {URL_VAR}: the Postgres store is not tested (scripts/pg-cluster start DIR prints one)");
        return None;
    };
    let name = format!(
        "arouter_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = connect_to(&admin);
    // One statement each: neither may run in a transaction block.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client.batch_execute(&sql).unwrap();
    }
    Some(Database {
        url: with_database(&admin, &name),
    })
}

/// `url` naming database `name` instead, its parameters kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (server, _) = base.rsplit_once('/').unwrap();
    match query {
        "" => format!("{server}/{name}"),
        query => format!("{server}/{name}?{query}"),
    }
}

/// A plain client of the test server, as the store connects (TLS included).
fn connect_to(url: &str) -> postgres::Client {
    let target = connect::parse(url).unwrap();
    let tls = connect::tls(&target).unwrap();
    target.config.connect(tls).unwrap()
}

/// Breaks the connections to this database that `which` (a condition on
/// `pg_stat_activity`) picks, as a server restart would, and returns the
/// connection that broke them (never one of them).
fn terminate_backends(url: &str, which: &str) -> postgres::Client {
    let mut admin = connect_to(url);
    admin
        .execute(
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND {which}"
            ),
            &[],
        )
        .unwrap();
    admin
}

store_suite!(fresh_database());

#[test]
fn instances_starting_at_once_migrate_once() {
    let Some(db) = fresh_database() else { return };
    let n = 4;
    let barrier = Arc::new(Barrier::new(n));
    let url = Arc::new(db.url.clone());
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::open(&url).map(|s| s.ping())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap().unwrap();
    }
    let mut client = connect_to(&db.url);
    let versions: Vec<i64> = client
        .query("SELECT version FROM arouter_schema ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=schema::LATEST).collect::<Vec<_>>());
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let Some(db) = fresh_database() else { return };
    drop(db.open());
    let mut client = connect_to(&db.url);
    client
        .execute("INSERT INTO arouter_schema (version) VALUES (99)", &[])
        .unwrap();
    let err = PostgresStore::open(&db.url).err().unwrap().to_string();
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn settlements_replayed_by_several_instances_are_charged_once() {
    let Some(db) = fresh_database() else { return };
    // Every instance sends the same 50 settlements (a crash replay, a
    // retried commit), in batches of different sizes, at once.
    let rows: Vec<Transaction> = (0..50)
        .map(|i| {
            let mut t = spent(Some(1), 100 + i, 1_000 + i as u64);
            t.record_id = Some(format!("rec-{i}"));
            t
        })
        .collect();
    let expected: u64 = rows.iter().map(|t| t.cost_micros).sum();
    let rows = Arc::new(rows);
    let barrier = Arc::new(Barrier::new(3));
    let handles: Vec<_> = [7usize, 13, 50]
        .into_iter()
        .map(|size| {
            let (store, rows, barrier) = (db.open(), rows.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for chunk in rows.chunks(size) {
                    store.record(chunk).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = db.open();
    assert_eq!(store.totals().unwrap().usage, expected);
    assert_eq!(store.transactions(1_000).unwrap().len(), 50);
}

#[test]
fn instances_billing_the_same_keys_at_once_neither_deadlock_nor_lose_a_micro_dollar() {
    let Some(db) = fresh_database() else { return };
    // Each instance's batches name the same keys in its own order: the
    // running totals' rows must not be locked in opposite orders.
    let day = 20_000 * 86_400;
    let orders: [[i64; 4]; 3] = [[1, 2, 3, 4], [4, 3, 2, 1], [3, 1, 4, 2]];
    let barrier = Arc::new(Barrier::new(orders.len()));
    let handles: Vec<_> = orders
        .into_iter()
        .enumerate()
        .map(|(n, order)| {
            let (store, barrier) = (db.open(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for batch in 0..30 {
                    let rows: Vec<Transaction> = order
                        .iter()
                        .map(|&key| {
                            let mut t = spent(Some(key), day + batch, key as u64);
                            t.record_id = Some(format!("{n}-{batch}-{key}"));
                            t
                        })
                        .collect();
                    store.record(&rows).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = db.open();
    let windows = Windows {
        day,
        week: day,
        month: day,
    };
    let spent_by_key: Vec<u64> = store
        .keys_usage(&[1, 2, 3, 4], windows)
        .unwrap()
        .iter()
        .map(|u| u.daily)
        .collect();
    assert_eq!(spent_by_key, [90, 180, 270, 360]);
    assert_eq!(store.totals().unwrap().usage, 900);
}

#[test]
fn the_running_totals_start_from_the_calls_billed_before_them() {
    let Some(db) = fresh_database() else { return };
    let day = 20_000 * 86_400;
    let store = db.open();
    // A database as the build before schema 7 left it: calls billed, no
    // running totals.
    let mut client = connect_to(&db.url);
    client
        .batch_execute(
            "DROP TRIGGER transactions_unspend ON transactions;
             DROP FUNCTION arouter_spend_sub();
             DROP TRIGGER transactions_spend ON transactions;
             DROP FUNCTION arouter_spend_add();
             DROP TABLE spend_total, spend_daily;
             DELETE FROM arouter_schema WHERE version >= 7;",
        )
        .unwrap();
    store
        .record(&[
            spent(Some(5), day - 40 * 86_400, 3),
            spent(Some(5), day + 10, 4),
            spent(Some(5), day + 20, 5),
            spent(None, day, 100),
        ])
        .unwrap();
    drop(store);
    let store = db.restart();
    let windows = Windows {
        day,
        week: day - 86_400,
        month: day - 30 * 86_400,
    };
    let usage = store.key_spend(Some(5), windows).unwrap().usage;
    assert_eq!(
        (usage.total, usage.daily, usage.weekly, usage.monthly),
        (12, 9, 9, 9)
    );
    assert_eq!(store.totals().unwrap().usage, 112);
    // And they run on from there.
    store.record(&[spent(Some(5), day + 30, 6)]).unwrap();
    assert_eq!(store.keys_usage(&[5], windows).unwrap()[0].daily, 15);
    assert_eq!(store.totals().unwrap().usage, 118);
}

#[test]
fn a_call_billed_as_interrupted_while_its_gateway_lived_keeps_only_its_real_bill() {
    let Some(db) = fresh_database() else { return };
    let live = PostgresStore::open(&db.url).unwrap();
    let intents: Vec<Intent> = (0..3)
        .map(|n| Intent {
            id: format!("live-{n}"),
            created_at: 100,
            key_id: Some(9),
            request_id: format!("req-live-{n}"),
            provider: "openai".into(),
            model: "m".into(),
            reserved_micros: 1_000,
            prompt_tokens: 10,
            prompt_micros: 30,
            stream: false,
        })
        .collect();
    live.open_intents(&intents).unwrap();
    // Its connection breaks (a database restart): its lock is free, and
    // another gateway takes it for gone and bills its calls.
    let _admin = terminate_backends(&db.url, "true");
    db.wait_for_no_store();
    let other = db.open();
    assert_eq!(other.recover_intents().unwrap().calls, 3);
    assert_eq!(other.totals().unwrap().usage, 90);
    // The calls were answered all the same: their bills arrive.
    let bills: Vec<Transaction> = (0..3)
        .map(|n| {
            let mut t = spent(Some(9), 101, 200);
            t.record_id = Some(format!("rec-live-{n}"));
            t
        })
        .collect();
    let ids: Vec<String> = intents.iter().map(|i| i.id.clone()).collect();
    assert!(live.ping().is_err(), "the broken connection is found first");
    live.settle(&bills, &ids).unwrap();
    assert_eq!(other.totals().unwrap().usage, 600);
    let windows = Windows {
        day: 0,
        week: 0,
        month: 0,
    };
    assert_eq!(other.keys_usage(&[9], windows).unwrap()[0].total, 600);
    let mut rows = other.transactions(10).unwrap();
    rows.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    assert_eq!(rows, bills);
}

#[test]
fn the_connection_is_opened_again_after_it_broke() {
    let Some(db) = fresh_database() else { return };
    let store = PostgresStore::open(&db.url).unwrap();
    store.ping().unwrap();
    let mut admin = terminate_backends(&db.url, "true");
    // Until the server has closed it, the connection may still answer.
    for _ in 0..100 {
        let left: i64 = admin
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The call that finds it broken fails; the next one reconnects.
    assert!(store.ping().is_err());
    store.ping().unwrap();
    assert!(store.load_keys().unwrap().is_empty());
}

#[test]
fn the_server_is_verified_against_the_ca_the_url_names() {
    let Some(db) = fresh_database() else { return };
    let (base, query) = db.url.split_once('?').unwrap_or((&db.url, ""));
    if !query.contains("sslrootcert=") {
        eprintln!("the test server has no CA of its own: TLS is not tested");
        return;
    }
    // Its CA is no public one: without it, TLS cannot be verified.
    let err = PostgresStore::open(&format!("{base}?sslmode=require"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // libpq's strictest mode reads as `require` (rustls always verifies).
    let strict = db.url.replace("sslmode=require", "sslmode=verify-full");
    PostgresStore::open(&strict).unwrap().ping().unwrap();
    let mut client = connect_to(&db.url);
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ssl);
}

#[test]
fn a_gateway_starting_leaves_the_batch_requests_of_running_ones_alone() {
    use crate::store::BatchStore;
    use arouter_core::batch::{NewBatch, NewItem};
    let Some(db) = fresh_database() else { return };
    let batch = NewBatch {
        items: (0..2)
            .map(|i| NewItem {
                custom_id: format!("c{i}"),
                params: r#"{"model":"openai/m"}"#.into(),
                max_cost_micros: 10,
            })
            .collect(),
        bytes: 10,
    };
    let running = PostgresStore::open(&db.url).unwrap();
    running
        .create_batch("msgbatch_x", None, &batch, 1, 1000)
        .unwrap();
    let claimed = running.claim_batch_requests(1).unwrap();
    assert_eq!(claimed.len(), 1);
    // Another gateway starts: the running one's request stays its own.
    let starting = PostgresStore::open(&db.url).unwrap();
    assert_eq!(starting.reopen_batch_requests().unwrap(), 0);
    assert_eq!(
        starting.claim_batch_requests(10).unwrap().len(),
        1,
        "only the unclaimed one"
    );
    // The first one's connection broke and came back: its claims are still its own.
    let _admin = terminate_backends(&db.url, "application_name = 'arouter'");
    drop(starting);
    db.wait_for_no_store();
    let _ = running.ping();
    running.ping().unwrap();
    let third = PostgresStore::open(&db.url).unwrap();
    // The second gateway is gone: its claim goes back; the first's stays.
    assert_eq!(third.reopen_batch_requests().unwrap(), 1);
    drop(running);
    drop(third);
    db.wait_for_no_store();
    // Now the first is gone too.
    let last = PostgresStore::open(&db.url).unwrap();
    assert_eq!(last.reopen_batch_requests().unwrap(), 1);
}

#[test]
fn a_gateway_recovering_leaves_the_intents_of_running_ones_alone() {
    use crate::store::{Intent, Recovered};
    let Some(db) = fresh_database() else { return };
    let intent = |id: &str| Intent {
        id: id.into(),
        created_at: 1,
        key_id: None,
        request_id: format!("req-{id}"),
        provider: "openai".into(),
        model: "m".into(),
        reserved_micros: 90,
        prompt_tokens: 3,
        prompt_micros: 9,
        stream: false,
    };
    let running = PostgresStore::open(&db.url).unwrap();
    running.open_intents(&[intent("a")]).unwrap();
    let other = PostgresStore::open(&db.url).unwrap();
    other.open_intents(&[intent("b")]).unwrap();
    // Both live: neither bills the other's calls in flight.
    assert_eq!(other.recover_intents().unwrap(), Recovered::default());
    assert_eq!(running.recover_intents().unwrap(), Recovered::default());
    // `other` is gone: the running one bills its call, once.
    drop(other);
    db.wait_for_no_store_but(1);
    let billed = running.recover_intents().unwrap();
    assert_eq!(
        billed,
        Recovered {
            calls: 1,
            micros: 9
        }
    );
    assert_eq!(running.recover_intents().unwrap(), Recovered::default());
    let rows = running.transactions(10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].record_id.as_deref(), Some("intent-b"));
}

#[test]
fn key_changes_are_told_as_they_commit_and_after_the_listener_reconnects() {
    use crate::store::listen::KeyChanges;
    use crate::store::suite::new_key;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let Some(db) = fresh_database() else { return };
    let store = PostgresStore::open(&db.url).unwrap();
    let (woke, woken) = mpsc::channel();
    let listener = store
        .listen(Box::new(move || {
            let _ = woke.send(());
        }))
        .unwrap();
    let told = || woken.recv_timeout(Duration::from_secs(5)).is_ok();
    let quiet = || woken.recv_timeout(Duration::from_millis(300)).is_err();
    // Listening began: whatever changed before is read once.
    assert!(told() && quiet());
    let key = store.insert_key(&new_key([1; 32])).unwrap();
    assert!(told() && quiet());
    // A key that exists already is not inserted: the transaction rolls
    // back, and with it its notification.
    assert!(store.insert_key(&new_key([1; 32])).is_err());
    assert!(quiet());
    let patch = KeyPatch {
        disabled: Some(true),
        ..KeyPatch::default()
    };
    assert!(store.update_key(&key.hash, &patch, 5).unwrap().is_some());
    assert!(told() && quiet());
    assert!(store.update_key(&[9; 32], &patch, 5).unwrap().is_none());
    assert!(quiet());
    assert!(store.delete_key(&key.hash).unwrap());
    assert!(told() && quiet());
    assert!(!store.delete_key(&key.hash).unwrap());
    assert!(quiet());
    // The listening connection broken: once it is back, one read for
    // the changes it could not hear, then changes are heard again.
    terminate_backends(&db.url, "application_name = 'arouter-listen'");
    assert!(told() && quiet());
    store.insert_key(&new_key([2; 32])).unwrap();
    assert!(told());
    let stopping = Instant::now();
    drop(listener);
    assert!(stopping.elapsed() < Duration::from_millis(500));
}
