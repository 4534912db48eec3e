//! The embedded store: one SQLite file (WAL) in the data directory,
//! created with its schema on first start.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use std::sync::Arc;

use arouter_core::manage::{
    KeyPatch, KeyUsage, LimitReset, ModelAllowlist, TransactionPage, TransactionQuery,
    TransactionView,
};

use super::{
    Credit, KeyRecord, KeySpend, NewKey, RateLimit, Store, StoreError, Totals, Transaction, Windows,
};

pub const FILE_NAME: &str = "arouter.sqlite3";

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The first schema (`user_version` 1). Run on every open: it creates
/// what is missing and changes nothing that exists; `MIGRATIONS` then
/// bring a file of any earlier version up to date.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
    id            INTEGER PRIMARY KEY,
    hash          BLOB    NOT NULL UNIQUE,
    prefix        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    management    INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    rate_requests INTEGER,
    rate_period_s INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    id                INTEGER PRIMARY KEY,
    created_at        INTEGER NOT NULL,
    key_id            INTEGER,
    request_id        TEXT,
    provider          TEXT,
    model             TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_micros       INTEGER NOT NULL DEFAULT 0,
    complete          INTEGER NOT NULL DEFAULT 1,
    estimated         INTEGER NOT NULL DEFAULT 0,
    referer           TEXT,
    title             TEXT
);
CREATE INDEX IF NOT EXISTS transactions_key ON transactions (key_id, id);
CREATE TABLE IF NOT EXISTS balance (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    credits_micros INTEGER NOT NULL
);
INSERT OR IGNORE INTO balance (id, credits_micros) VALUES (1, 0);
";

/// Schema changes after version 1, in order: entry `i` takes a file from
/// `user_version` `i + 1` to `i + 2`. Each runs in one transaction with its
/// version bump, so a crash leaves the file at one version or the next.
const MIGRATIONS: &[&str] = &[
    // 2: the provider's status and the call's outcome. Rows written before
    // have no status; their outcome is what their flags said (an upstream
    // error was then recorded as complete, which cannot be told apart now).
    "ALTER TABLE transactions ADD COLUMN status INTEGER;
     ALTER TABLE transactions ADD COLUMN outcome TEXT NOT NULL DEFAULT 'complete';
     UPDATE transactions SET outcome = CASE
         WHEN estimated THEN 'estimated'
         WHEN complete THEN 'complete'
         ELSE 'incomplete' END;",
    // 3: each row's own id, so a batch retried after a failed commit is
    // stored once. Older rows have none (NULLs never conflict).
    "ALTER TABLE transactions ADD COLUMN record_id TEXT;
     CREATE UNIQUE INDEX transactions_record ON transactions (record_id);",
    // 4: the keys API (OpenRouter's fields). Keys made before have an
    // empty label suffix, no limit, no expiry and every model allowed.
    "ALTER TABLE keys ADD COLUMN suffix TEXT NOT NULL DEFAULT '';
     ALTER TABLE keys ADD COLUMN limit_micros INTEGER;
     ALTER TABLE keys ADD COLUMN limit_reset TEXT;
     ALTER TABLE keys ADD COLUMN include_byok INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE keys ADD COLUMN expires_at INTEGER;
     ALTER TABLE keys ADD COLUMN allowed_models TEXT;
     ALTER TABLE keys ADD COLUMN updated_at INTEGER;
     CREATE INDEX IF NOT EXISTS transactions_key_time ON transactions (key_id, created_at);",
    // 5: transactions and generations (issue 11). The generation id the
    // client can look a call up by, given to older rows from their request
    // id; what the core reports besides (cached and reasoning tokens,
    // stream, latency); indexes for the list's filters and its
    // newest-first order.
    "ALTER TABLE transactions ADD COLUMN generation_id TEXT;
     ALTER TABLE transactions ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE transactions ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE transactions ADD COLUMN stream INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE transactions ADD COLUMN latency_ms INTEGER;
     UPDATE transactions SET generation_id = COALESCE('gen-' || request_id, 'gen-row-' || id);
     CREATE INDEX transactions_time ON transactions (created_at, id);
     CREATE INDEX transactions_generation ON transactions (generation_id);
     CREATE INDEX transactions_model ON transactions (model, created_at);
     CREATE INDEX transactions_provider_model ON transactions (provider, model, created_at);
     CREATE INDEX transactions_referer ON transactions (referer, created_at);
     CREATE INDEX transactions_title ON transactions (title, created_at);
     CREATE INDEX transactions_outcome ON transactions (outcome, created_at);",
    // 6: credits added to the account, one row each (a transaction of type
    // credit; `record_id` makes a retried insert idempotent). The first
    // schema's single `balance` row becomes the first credit when it held
    // any.
    "CREATE TABLE credits (
         id            INTEGER PRIMARY KEY,
         created_at    INTEGER NOT NULL,
         amount_micros INTEGER NOT NULL CHECK (amount_micros > 0),
         note          TEXT,
         record_id     TEXT NOT NULL UNIQUE
     );
     INSERT INTO credits (created_at, amount_micros, note, record_id)
         SELECT 0, credits_micros, 'balance before credits were itemised', 'balance-v1'
         FROM balance WHERE id = 1 AND credits_micros > 0;",
];

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens `dir/arouter.sqlite3`, creating the directory, file and schema
    /// when missing.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_busy_timeout(dir, BUSY_TIMEOUT)
    }

    /// [`SqliteStore::open`] with a chosen wait for a lock another
    /// connection holds, after which a statement fails as busy.
    pub fn open_with_busy_timeout(
        dir: &Path,
        busy_timeout: std::time::Duration,
    ) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(e.to_string()))?;
        let conn = Connection::open(dir.join(FILE_NAME)).map_err(backend)?;
        // WAL lets the background writer commit while readers continue.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        conn.busy_timeout(busy_timeout).map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        migrate(&conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Backend("store lock poisoned".into()))?;
        f(&conn)
    }
}

/// Brings the file's schema to the latest version. A fresh file has just
/// been given version 1's tables (`user_version` 0 counts as 1: the first
/// release set no version before creating them).
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    let latest = MIGRATIONS.len() as i64 + 1;
    if version > latest {
        return Err(StoreError::Backend(format!(
            "the store is at schema version {version}, newer than this build knows ({latest}); use a newer arouter"
        )));
    }
    for (i, step) in MIGRATIONS.iter().enumerate() {
        let target = i as i64 + 2;
        if version >= target {
            continue;
        }
        let tx = conn.unchecked_transaction().map_err(backend)?;
        tx.execute_batch(step).map_err(backend)?;
        tx.pragma_update(None, "user_version", target)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

fn row_to_key(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    let hash: Vec<u8> = row.get("hash")?;
    let mut fixed = [0u8; 32];
    if hash.len() == 32 {
        fixed.copy_from_slice(&hash);
    }
    let requests: Option<u32> = row.get("rate_requests")?;
    let period: Option<u32> = row.get("rate_period_s")?;
    let allowed: Option<String> = row.get("allowed_models")?;
    // Written by this store from a validated list; a row that no longer
    // reads as one allows nothing rather than everything.
    let allowed_models = allowed.map(|text| {
        let patterns: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
        Arc::new(ModelAllowlist::new(patterns).unwrap_or_else(|_| ModelAllowlist::nothing()))
    });
    Ok(KeyRecord {
        suffix: row.get("suffix")?,
        limit_micros: row
            .get::<_, Option<i64>>("limit_micros")?
            .map(|m| m.max(0) as u64),
        limit_reset: row
            .get::<_, Option<String>>("limit_reset")?
            .and_then(|r| LimitReset::parse(&r)),
        include_byok_in_limit: row.get("include_byok")?,
        expires_at: row.get("expires_at")?,
        allowed_models,
        updated_at: row.get("updated_at")?,
        id: row.get("id")?,
        hash: fixed,
        prefix: row.get("prefix")?,
        name: row.get("name")?,
        management: row.get("management")?,
        disabled: row.get("disabled")?,
        rate_limit: match (requests, period) {
            (Some(requests), Some(period_secs)) => Some(RateLimit {
                requests,
                period_secs,
            }),
            _ => None,
        },
        created_at: row.get("created_at")?,
    })
}

fn allowed_json(list: Option<&ModelAllowlist>) -> Option<String> {
    list.map(|l| serde_json::Value::from(l.patterns().to_vec()).to_string())
}

fn write_key(conn: &Connection, key: &KeyRecord) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE keys SET name = ?2, management = ?3, disabled = ?4, rate_requests = ?5,
         rate_period_s = ?6, limit_micros = ?7, limit_reset = ?8, include_byok = ?9,
         expires_at = ?10, allowed_models = ?11, updated_at = ?12 WHERE id = ?1",
        params![
            key.id,
            key.name,
            key.management,
            key.disabled,
            key.rate_limit.map(|r| r.requests),
            key.rate_limit.map(|r| r.period_secs),
            key.limit_micros.map(|m| m as i64),
            key.limit_reset.map(LimitReset::as_str),
            key.include_byok_in_limit,
            key.expires_at,
            allowed_json(key.allowed_models.as_deref()),
            key.updated_at,
        ],
    )
    .map_err(backend)?;
    Ok(())
}

fn apply(key: &mut KeyRecord, patch: &KeyPatch, now: i64) {
    if let Some(name) = &patch.name {
        key.name = name.clone();
    }
    if let Some(disabled) = patch.disabled {
        key.disabled = disabled;
    }
    if let Some(limit) = patch.limit_micros {
        key.limit_micros = limit;
    }
    if let Some(reset) = patch.limit_reset {
        key.limit_reset = reset;
    }
    if let Some(byok) = patch.include_byok_in_limit {
        key.include_byok_in_limit = byok;
    }
    if let Some(expires) = patch.expires_at {
        key.expires_at = expires;
    }
    if let Some(rate) = patch.rate_limit {
        key.rate_limit = rate.map(|r| RateLimit {
            requests: r.requests,
            period_secs: r.interval_secs,
        });
    }
    if let Some(management) = patch.management {
        key.management = management;
    }
    if let Some(models) = &patch.allowed_models {
        key.allowed_models = models.clone().map(Arc::new);
    }
    key.updated_at = Some(now);
}

impl Store for SqliteStore {
    fn add_credit(&self, credit: &Credit) -> Result<(), StoreError> {
        let amount = i64::try_from(credit.amount_micros)
            .map_err(|_| StoreError::Conflict("a credit beyond the largest amount".into()))?;
        self.with(|conn| {
            conn.execute(
                "INSERT INTO credits (created_at, amount_micros, note, record_id)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (record_id) DO NOTHING",
                params![credit.created_at, amount, credit.note, credit.record_id],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn totals(&self) -> Result<Totals, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT (SELECT COALESCE(SUM(amount_micros), 0) FROM credits),
                        (SELECT COALESCE(SUM(cost_micros), 0) FROM transactions)",
                [],
                |r| {
                    Ok(Totals {
                        credits: r.get::<_, i64>(0)?.max(0) as u64,
                        usage: r.get::<_, i64>(1)?.max(0) as u64,
                    })
                },
            )
            .map_err(backend)
        })
    }

    fn record(&self, batch: &[Transaction]) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO transactions (created_at, key_id, provider, model, prompt_tokens,
                         completion_tokens, cost_micros, complete, estimated, referer, title,
                         request_id, status, outcome, record_id, generation_id, cached_tokens,
                         reasoning_tokens, stream, latency_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                         ?16, ?17, ?18, ?19, ?20)
                         ON CONFLICT (record_id) DO NOTHING",
                    )
                    .map_err(backend)?;
                for t in batch {
                    stmt.execute(params![
                        t.created_at,
                        t.key_id,
                        t.provider,
                        t.model,
                        t.prompt_tokens as i64,
                        t.completion_tokens as i64,
                        t.cost_micros as i64,
                        t.complete,
                        t.estimated,
                        t.referer,
                        t.title,
                        t.request_id,
                        t.upstream_status,
                        t.outcome.as_str(),
                        t.record_id,
                        t.generation_id,
                        t.cached_tokens as i64,
                        t.reasoning_tokens as i64,
                        t.stream,
                        t.latency_ms.map(|ms| ms as i64),
                    ])
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
    }

    fn transactions(&self, limit: u32) -> Result<Vec<Transaction>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare("SELECT * FROM transactions ORDER BY id DESC LIMIT ?1")
                .map_err(backend)?;
            let rows = stmt
                .query_map([limit], super::sqlite_txns::row_to_transaction)
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    fn list_transactions(&self, query: &TransactionQuery) -> Result<TransactionPage, StoreError> {
        self.with(|conn| super::sqlite_txns::list(conn, query))
    }

    fn generation(
        &self,
        id: &str,
        key: Option<i64>,
    ) -> Result<Option<TransactionView>, StoreError> {
        self.with(|conn| super::sqlite_txns::generation(conn, id, key))
    }

    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare("SELECT * FROM keys ORDER BY id")
                .map_err(backend)?;
            let rows = stmt.query_map([], row_to_key).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError> {
        self.with(|conn| {
            let exists: Option<i64> = conn
                .query_row("SELECT id FROM keys WHERE hash = ?1", [&key.hash[..]], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if exists.is_some() {
                return Err(StoreError::Conflict("a key with this hash exists".into()));
            }
            conn.execute(
                "INSERT INTO keys (hash, prefix, name, management, rate_requests, rate_period_s, created_at,
                 suffix, limit_micros, limit_reset, include_byok, expires_at, allowed_models)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    &key.hash[..],
                    key.prefix,
                    key.name,
                    key.management,
                    key.rate_limit.map(|r| r.requests),
                    key.rate_limit.map(|r| r.period_secs),
                    key.created_at,
                    key.suffix,
                    key.limit_micros.map(|m| m as i64),
                    key.limit_reset.map(LimitReset::as_str),
                    key.include_byok_in_limit,
                    key.expires_at,
                    allowed_json(key.allowed_models.as_ref()),
                ],
            )
            .map_err(backend)?;
            let id = conn.last_insert_rowid();
            conn.query_row("SELECT * FROM keys WHERE id = ?1", [id], row_to_key)
                .map_err(backend)
        })
    }

    fn update_key(
        &self,
        hash: &[u8; 32],
        patch: &KeyPatch,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let found = tx
                .query_row(
                    "SELECT * FROM keys WHERE hash = ?1",
                    [&hash[..]],
                    row_to_key,
                )
                .optional()
                .map_err(backend)?;
            let Some(mut key) = found else {
                return Ok(None);
            };
            apply(&mut key, patch, now);
            write_key(&tx, &key)?;
            tx.commit().map_err(backend)?;
            Ok(Some(key))
        })
    }

    fn delete_key(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.with(|conn| {
            let n = conn
                .execute("DELETE FROM keys WHERE hash = ?1", [&hash[..]])
                .map_err(backend)?;
            Ok(n > 0)
        })
    }

    fn key_spend(&self, key_id: Option<i64>, windows: Windows) -> Result<KeySpend, StoreError> {
        self.with(|conn| {
            // `key_id IS ?1` matches NULL (the master key's calls) too.
            conn.query_row(
                "SELECT COALESCE(SUM(cost_micros), 0),
                        COALESCE(SUM(CASE WHEN created_at >= ?2 THEN cost_micros END), 0),
                        COALESCE(SUM(CASE WHEN created_at >= ?3 THEN cost_micros END), 0),
                        COALESCE(SUM(CASE WHEN created_at >= ?4 THEN cost_micros END), 0),
                        MAX(created_at)
                 FROM transactions WHERE key_id IS ?1",
                params![key_id, windows.day, windows.week, windows.month],
                |r| {
                    let micros = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    Ok(KeySpend {
                        usage: KeyUsage {
                            total: micros(0)?,
                            daily: micros(1)?,
                            weekly: micros(2)?,
                            monthly: micros(3)?,
                        },
                        last_used_at: r.get(4)?,
                    })
                },
            )
            .map_err(backend)
        })
    }
}

#[cfg(test)]
mod tests {
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

    fn spent(key_id: Option<i64>, created_at: i64, cost_micros: u64) -> Transaction {
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
        // The ledger's credits (its migration makes the table).
        store
            .with(|c| {
                c.execute_batch(
                    "CREATE TABLE IF NOT EXISTS credits (id INTEGER PRIMARY KEY,
                     created_at INTEGER NOT NULL, amount_micros INTEGER NOT NULL, note TEXT,
                     record_id TEXT NOT NULL UNIQUE);
                     INSERT INTO credits (created_at, amount_micros, note, record_id)
                     VALUES (5, 1000000, 'top-up', 'credit-a'), (5, 2000000, NULL, 'credit-b');",
                )
                .map_err(backend)
            })
            .unwrap();
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
}
