use super::*;
use crate::store::Outcome;

#[test]
fn creates_file_and_schema_on_first_start_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = SqliteStore::open(&data).unwrap();
    assert!(data.join(FILE_NAME).exists());
    assert!(store.load_keys().unwrap().is_empty());
    let new = new_key([7; 32]);
    let rec = store.insert_key(&new).unwrap();
    assert_eq!(rec.hash, [7; 32]);
    assert!(matches!(
        store.insert_key(&new),
        Err(StoreError::Conflict(_))
    ));
    drop(store);
    let reopened = SqliteStore::open(&data).unwrap();
    assert_eq!(reopened.load_keys().unwrap(), vec![rec]);
    let t = Transaction {
        created_at: 1,
        key_id: Some(1),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_micros: 7,
        complete: false,
        estimated: true,
        referer: Some("https://app.example".into()),
        title: None,
        request_id: Some("req-1".into()),
        record_id: None,
        upstream_status: Some(200),
        outcome: Outcome::Estimated,
        generation_id: Some("chatcmpl-1".into()),
        cached_tokens: 2,
        reasoning_tokens: 1,
        stream: true,
        latency_ms: Some(40),
        batch: None,
    };
    reopened.record(&[t.clone(), t.clone()]).unwrap();
    assert_eq!(reopened.transactions(10).unwrap(), vec![t.clone(), t]);
}

#[test]
fn credits_add_up_once_per_record_id_and_usage_is_the_sum_of_costs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.totals().unwrap(), Totals::default());
    let credit = Credit {
        created_at: 1,
        amount_micros: 5_000_000,
        note: Some("top-up".into()),
        record_id: "credit-a".into(),
    };
    store.add_credit(&credit).unwrap();
    store.add_credit(&credit).unwrap();
    store
        .add_credit(&Credit {
            record_id: "credit-b".into(),
            amount_micros: 250,
            note: None,
            ..credit.clone()
        })
        .unwrap();
    store
        .record(&[spent(Some(1), 10, 1_000), spent(None, 11, 23)])
        .unwrap();
    assert_eq!(
        store.totals().unwrap(),
        Totals {
            credits: 5_000_250,
            usage: 1_023
        }
    );
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.totals().unwrap().credits, 5_000_250);
}

#[test]
fn a_batch_stored_again_adds_no_row_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let row = |id: &str| Transaction {
        created_at: 1,
        key_id: None,
        provider: "openai".into(),
        model: "m".into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        cost_micros: 3,
        complete: true,
        estimated: false,
        referer: None,
        title: None,
        request_id: Some("req-same".into()),
        record_id: Some(id.into()),
        upstream_status: Some(200),
        outcome: Outcome::Complete,
        generation_id: Some(format!("gen-{id}")),
        cached_tokens: 0,
        reasoning_tokens: 0,
        stream: false,
        latency_ms: None,
        batch: None,
    };
    store.record(&[row("a"), row("b")]).unwrap();
    // A retry of the same batch with one new row: only the new one.
    store.record(&[row("a"), row("b"), row("c")]).unwrap();
    let mut ids: Vec<_> = store
        .transactions(10)
        .unwrap()
        .into_iter()
        .filter_map(|t| t.record_id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
}

fn new_key(hash: [u8; 32]) -> NewKey {
    NewKey {
        hash,
        prefix: "sk-ar-abc".into(),
        suffix: "xyz".into(),
        name: "ci".into(),
        management: false,
        rate_limit: Some(RateLimit {
            requests: 5,
            period_secs: 60,
        }),
        created_at: 1_700_000_000,
        limit_micros: Some(3_000_000),
        limit_reset: Some(LimitReset::Monthly),
        include_byok_in_limit: false,
        expires_at: None,
        allowed_models: ModelAllowlist::new(vec!["openai/*".into()]).ok(),
    }
}

pub(super) fn spent(key_id: Option<i64>, created_at: i64, cost_micros: u64) -> Transaction {
    Transaction {
        created_at,
        key_id,
        provider: "openai".into(),
        model: "m".into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        cost_micros,
        complete: true,
        estimated: false,
        referer: None,
        title: None,
        request_id: None,
        record_id: None,
        upstream_status: Some(200),
        outcome: Outcome::Complete,
        generation_id: None,
        cached_tokens: 0,
        reasoning_tokens: 0,
        stream: false,
        latency_ms: None,
        batch: None,
    }
}

#[test]
fn keys_update_delete_and_spend() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let rec = store.insert_key(&new_key([1; 32])).unwrap();
    assert_eq!(rec.label(), "sk-ar-abc...xyz");
    assert_eq!(rec.limit_micros, Some(3_000_000));
    assert!(rec.allowed_models.as_ref().unwrap().allows("openai", "x"));
    let patch = KeyPatch {
        name: Some("renamed".into()),
        limit_micros: Some(None),
        allowed_models: Some(None),
        disabled: Some(true),
        ..KeyPatch::default()
    };
    let updated = store.update_key(&[1; 32], &patch, 42).unwrap().unwrap();
    assert_eq!(
        (
            updated.name.as_str(),
            updated.limit_micros,
            updated.disabled
        ),
        ("renamed", None, true)
    );
    assert_eq!(updated.allowed_models, None);
    assert_eq!(updated.updated_at, Some(42));
    // What was written is what is read back.
    assert_eq!(store.load_keys().unwrap(), vec![updated]);
    assert_eq!(store.update_key(&[2; 32], &patch, 43).unwrap(), None);

    let day = 1_000 * 86_400;
    store
        .record(&[
            spent(Some(rec.id), day - 10 * 86_400, 5),
            spent(Some(rec.id), day - 3 * 86_400, 7),
            spent(Some(rec.id), day + 60, 11),
            spent(None, day + 60, 1_000),
        ])
        .unwrap();
    let windows = Windows {
        day,
        week: day - 4 * 86_400,
        month: day - 5 * 86_400,
    };
    let s = store.key_spend(Some(rec.id), windows).unwrap();
    assert_eq!(
        (
            s.usage.total,
            s.usage.daily,
            s.usage.weekly,
            s.usage.monthly
        ),
        (23, 11, 18, 18)
    );
    assert_eq!(s.last_used_at, Some(day + 60));
    assert_eq!(store.key_spend(None, windows).unwrap().usage.total, 1_000);
    assert_eq!(
        store.key_spend(Some(999), windows).unwrap(),
        KeySpend::default()
    );

    assert!(store.delete_key(&[1; 32]).unwrap());
    assert!(!store.delete_key(&[1; 32]).unwrap());
    assert!(store.load_keys().unwrap().is_empty());
}

#[test]
fn the_list_pages_calls_and_credits_newest_first() {
    use arouter_core::manage::{Cursor, TransactionKind, TransactionStatus};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    for (amount_micros, note, record_id) in [
        (1_000_000, Some("top-up"), "credit-a"),
        (2_000_000, None, "credit-b"),
    ] {
        store
            .add_credit(&Credit {
                created_at: 5,
                amount_micros,
                note: note.map(str::to_string),
                record_id: record_id.into(),
            })
            .unwrap();
    }
    let mut failed = spent(None, 4, 9);
    failed.outcome = Outcome::Error;
    store
        .record(&[spent(None, 5, 1), failed, spent(None, 6, 2)])
        .unwrap();
    let ids = |q: &TransactionQuery| -> Vec<String> {
        let page = store.list_transactions(q).unwrap();
        page.rows.into_iter().map(|r| r.id).collect()
    };
    let all = TransactionQuery {
        limit: 100,
        ..TransactionQuery::default()
    };
    let newest_first = [
        "gen-row-3",
        "gen-row-1",
        "credit-b",
        "credit-a",
        "gen-row-2",
    ];
    assert_eq!(ids(&all), newest_first);
    // Two at a time, through both tables, each row once.
    let mut paged = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .list_transactions(&TransactionQuery {
                limit: 2,
                cursor,
                ..TransactionQuery::default()
            })
            .unwrap();
        paged.extend(page.rows.into_iter().map(|r| r.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);
    let credit = &store.list_transactions(&all).unwrap().rows[3];
    assert_eq!(credit.kind, TransactionKind::Credit);
    assert_eq!(credit.cost_micros, 1_000_000);
    assert_eq!(credit.note.as_deref(), Some("top-up"));
    assert_eq!(credit.key_hash, None);
    // Filters a credit cannot meet leave it out.
    let failed_only = TransactionQuery {
        status: Some(TransactionStatus::Failed),
        ..all.clone()
    };
    assert_eq!(ids(&failed_only), ["gen-row-2"]);
    let by_model = TransactionQuery {
        model: Some("openai/m".into()),
        ..all.clone()
    };
    assert_eq!(ids(&by_model), ["gen-row-3", "gen-row-1", "gen-row-2"]);
    let in_second_5 = TransactionQuery {
        since: Some(5),
        until: Some(6),
        ..all.clone()
    };
    assert_eq!(ids(&in_second_5), ["gen-row-1", "credit-b", "credit-a"]);
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
