//! The embedded store: one SQLite file (WAL) in the data directory,
//! created with its schema on first start.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use arouter_core::manage::{
    KeyPatch, KeyUsage, LimitReset, TransactionPage, TransactionQuery, TransactionView,
};

use super::{
    Credit, Intent, KeyRecord, KeySpend, NewKey, RateLimit, Recovered, Store, StoreError, Totals,
    Transaction, Windows,
};

pub const FILE_NAME: &str = "arouter.sqlite3";

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The first schema (`user_version` 1), less its index `transactions_key`
/// (which migration 12 drops: created here, every open would bring it
/// back). Run on every open: it creates what is missing and changes
/// nothing that exists; `MIGRATIONS` then bring a file of any earlier
/// version up to date.
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
    // 7: every index is upkeep on every recorded call (the recorder's
    // thread was 12-18% of the gateway's CPU under load with ten). Kept:
    // the unique `record_id`, the key's (the first schema's, and by time),
    // the list's time order and the generation lookup; a filtered page of
    // the list walks the time index instead of an index per filter.
    "DROP INDEX IF EXISTS transactions_model;
     DROP INDEX IF EXISTS transactions_provider_model;
     DROP INDEX IF EXISTS transactions_referer;
     DROP INDEX IF EXISTS transactions_title;
     DROP INDEX IF EXISTS transactions_outcome;",
    // 8: message batches. A batch's requests are rows of their own, each
    // pending, running (claimed by the worker) or done with its end and
    // body; a transaction names the batch request it was billed for.
    "CREATE TABLE batches (
         seq                 INTEGER PRIMARY KEY,
         id                  TEXT    NOT NULL UNIQUE,
         owner               INTEGER,
         created_at          INTEGER NOT NULL,
         expires_at          INTEGER NOT NULL,
         ended_at            INTEGER,
         cancel_initiated_at INTEGER
     );
     CREATE INDEX batches_owner ON batches (owner, seq);
     CREATE TABLE batch_requests (
         batch_seq  INTEGER NOT NULL REFERENCES batches (seq) ON DELETE CASCADE,
         idx        INTEGER NOT NULL,
         custom_id  TEXT    NOT NULL,
         params     TEXT    NOT NULL,
         state      TEXT    NOT NULL DEFAULT 'pending',
         result     TEXT,
         body       BLOB,
         PRIMARY KEY (batch_seq, idx)
     ) WITHOUT ROWID;
     CREATE INDEX batch_requests_state ON batch_requests (state, batch_seq, idx);
     ALTER TABLE transactions ADD COLUMN batch_id TEXT;
     ALTER TABLE transactions ADD COLUMN custom_id TEXT;",
    // 9: what each batch request may cost, so its credit can be held again
    // after a restart. Requests stored before hold none (0).
    "ALTER TABLE batch_requests ADD COLUMN max_cost_micros INTEGER NOT NULL DEFAULT 0;",
    // 10: stored Responses API answers (`store`), each with its input
    // items (the whole conversation) and its response object, owned by a
    // key (NULL: the master key); their output items by id, for
    // `item_reference`.
    "CREATE TABLE responses (
         seq        INTEGER PRIMARY KEY,
         id         TEXT    NOT NULL,
         owner      INTEGER,
         created_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         provider   TEXT    NOT NULL,
         native     INTEGER NOT NULL,
         response   TEXT    NOT NULL,
         input      TEXT    NOT NULL
     );
     CREATE INDEX responses_id ON responses (id, owner);
     CREATE INDEX responses_expiry ON responses (expires_at);
     CREATE TABLE response_items (
         response_seq INTEGER NOT NULL,
         item_id      TEXT    NOT NULL,
         owner        INTEGER,
         item         TEXT    NOT NULL
     );
     CREATE INDEX response_items_id ON response_items (item_id, owner);
     CREATE INDEX response_items_response ON response_items (response_seq);",
    // 11: the call journal (`store::journal`): each provider call in
    // flight, written before it goes upstream and deleted with its usage;
    // what a process left here when it ended is billed at the next start.
    "CREATE TABLE call_intents (
         id              TEXT    PRIMARY KEY,
         owner           INTEGER NOT NULL,
         created_at      INTEGER NOT NULL,
         key_id          INTEGER,
         request_id      TEXT    NOT NULL,
         provider        TEXT    NOT NULL,
         model           TEXT    NOT NULL,
         reserved_micros INTEGER NOT NULL,
         prompt_tokens   INTEGER NOT NULL,
         prompt_micros   INTEGER NOT NULL,
         stream          INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 12: the first schema's index on (key_id, id) served no query that
    // migration 4's (key_id, created_at) does not (it holds the row id
    // too, so a key's rows come in the list's order from it), and every
    // recorded call paid for its upkeep: one of six B-tree inserts per
    // row, 7% of the recorder's instructions per row.
    "DROP INDEX IF EXISTS transactions_key;",
];

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// This handle, on the call-journal intents it writes: a random
    /// number, so the intents of an earlier process are told apart.
    owner: i64,
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
        // The recorder's multi-row inserts keep a statement journal; in a
        // temporary file that was an open, an unlink and about one write
        // a stored call (more than half of the gateway's writes under load). It
        // holds one statement's pages (16 rows), so memory is the place.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(backend)?;
        conn.busy_timeout(busy_timeout).map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        migrate(&conn)?;
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes)
            .map_err(|_| StoreError::Backend("the OS gave no randomness for an owner".into()))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            owner: i64::from_le_bytes(bytes),
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
    let allowed_models = allowed.as_deref().map(super::allowlist_from_json);
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
            super::allowed_json(key.allowed_models.as_deref()),
            key.updated_at,
        ],
    )
    .map_err(backend)?;
    Ok(())
}

impl Store for SqliteStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.with(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
    }

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

    fn settle(&self, batch: &[Transaction], closed: &[String]) -> Result<(), StoreError> {
        self.with(|conn| journal::settle(conn, batch, closed, &|| {}))
    }

    fn settle_paced(
        &self,
        batch: &[Transaction],
        closed: &[String],
        pause: &dyn Fn(),
    ) -> Result<(), StoreError> {
        self.with(|conn| journal::settle(conn, batch, closed, pause))
    }

    fn open_intents(&self, intents: &[Intent]) -> Result<(), StoreError> {
        self.with(|conn| journal::open(conn, self.owner, intents))
    }

    fn recover_intents(&self) -> Result<Recovered, StoreError> {
        self.with(|conn| journal::recover(conn, self.owner))
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
                    super::allowed_json(key.allowed_models.as_ref()),
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
            super::apply_patch(&mut key, patch, now);
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

mod batches;
mod insert;
mod journal;
mod responses;

use insert::insert_transactions;

#[cfg(test)]
mod tests;
