use super::*;
use crate::store::suite::{store_suite, Fixture};
use crate::store::Outcome;

/// A data directory, opened anew at each `open`.
struct Dir(tempfile::TempDir);

impl Fixture for Dir {
    fn open(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(self.0.path()).unwrap())
    }
}

store_suite!(Some(Dir(tempfile::tempdir().unwrap())));

#[test]
fn creates_the_file_and_its_directories_on_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = SqliteStore::open(&data).unwrap();
    assert!(data.join(FILE_NAME).exists());
    assert!(store.load_keys().unwrap().is_empty());
    store.ping().unwrap();
}

/// The schema exactly as the first release created it.
const V1_FILE: &str = "
CREATE TABLE keys (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, prefix TEXT NOT NULL,
name TEXT NOT NULL, management INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0,
rate_requests INTEGER, rate_period_s INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE transactions (id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL, key_id INTEGER,
request_id TEXT, provider TEXT, model TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0,
completion_tokens INTEGER NOT NULL DEFAULT 0, cost_micros INTEGER NOT NULL DEFAULT 0,
complete INTEGER NOT NULL DEFAULT 1, estimated INTEGER NOT NULL DEFAULT 0, referer TEXT, title TEXT);
CREATE INDEX transactions_key ON transactions (key_id, id);
CREATE TABLE balance (id INTEGER PRIMARY KEY CHECK (id = 1), credits_micros INTEGER NOT NULL);
INSERT OR IGNORE INTO balance (id, credits_micros) VALUES (1, 0);
PRAGMA user_version = 1;
INSERT INTO transactions (created_at, provider, model, prompt_tokens, complete, estimated, request_id)
VALUES (1, 'openai', 'a', 3, 1, 0, NULL), (2, 'openai', 'b', 4, 0, 1, 'req-b'),
(3, 'openai', 'c', 5, 0, 0, NULL);
";

#[test]
fn a_store_written_by_the_first_release_opens_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute_batch(V1_FILE).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let old: Vec<_> = store
        .transactions(10)
        .unwrap()
        .into_iter()
        .map(|t| (t.model, t.upstream_status, t.outcome))
        .collect();
    // Migration 5 gave each older row a generation id from its
    // request id, or from its row id where it had none.
    let ids: Vec<_> = store
        .transactions(10)
        .unwrap()
        .into_iter()
        .map(|t| t.generation_id)
        .collect();
    assert_eq!(
        ids,
        [
            Some("gen-row-3".to_string()),
            Some("gen-req-b".to_string()),
            Some("gen-row-1".to_string())
        ]
    );
    assert_eq!(
        old,
        [
            ("c".to_string(), None, Outcome::Incomplete),
            ("b".to_string(), None, Outcome::Estimated),
            ("a".to_string(), None, Outcome::Complete),
        ]
    );
    let failed = Transaction {
        created_at: 4,
        key_id: None,
        provider: "openai".into(),
        model: "d".into(),
        prompt_tokens: 0,
        completion_tokens: 0,
        cost_micros: 0,
        complete: false,
        estimated: false,
        referer: None,
        title: None,
        request_id: Some("req-9".into()),
        record_id: Some("i-0-0".into()),
        upstream_status: Some(429),
        outcome: Outcome::Error,
        generation_id: Some("gen-req-9".into()),
        cached_tokens: 0,
        reasoning_tokens: 0,
        stream: false,
        latency_ms: Some(3),
        batch: None,
    };
    store.record(std::slice::from_ref(&failed)).unwrap();
    drop(store);
    // Reopening runs no migration twice.
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.transactions(1).unwrap(), vec![failed]);
    let version: i64 = store
        .with(|c| {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(backend)
        })
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64 + 1);
    // Migration 12 dropped the first schema's key index, and no open
    // (which runs the first schema again) brings it back.
    assert_eq!(
        transaction_indexes(&store),
        [
            "transactions_generation",
            "transactions_key_time",
            "transactions_record",
            "transactions_time"
        ]
    );
}

fn transaction_indexes(store: &SqliteStore) -> Vec<String> {
    store
        .with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'index'
                     AND tbl_name = 'transactions' AND sql IS NOT NULL ORDER BY name",
                )
                .map_err(backend)?;
            let names = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
            names.collect::<Result<Vec<String>, _>>().map_err(backend)
        })
        .unwrap()
}

#[test]
fn a_new_store_has_the_same_indexes_as_a_migrated_one() {
    let dir = tempfile::tempdir().unwrap();
    SqliteStore::open(dir.path()).unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        transaction_indexes(&store),
        [
            "transactions_generation",
            "transactions_key_time",
            "transactions_record",
            "transactions_time"
        ]
    );
}

#[test]
fn a_store_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    let err = SqliteStore::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("newer"), "{err}");
}

/// The usage recorder's commits pause between statements (see
/// `recorder::writer`): after each but the last, in one transaction that
/// still stores every row once.
#[test]
fn a_paced_settle_pauses_between_its_statements() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    // Two full statements, two of 4 rows and one of 1: five statements.
    let rows: Vec<_> = (0..2 * insert::ROWS_PER_INSERT as i64 + 9)
        .map(|i| Transaction {
            record_id: Some(format!("rec-{i}")),
            ..crate::store::suite::spent(None, i, 1)
        })
        .collect();
    let pauses = std::cell::Cell::new(0);
    store
        .settle_paced(&rows, &[], &|| pauses.set(pauses.get() + 1))
        .unwrap();
    assert_eq!(pauses.get(), 4);
    assert_eq!(store.transactions(1_000).unwrap().len(), rows.len());
    assert_eq!(store.totals().unwrap().usage, rows.len() as u64);
}
