//! The embedded store: one SQLite file (WAL) in the data directory,
//! created with its schema on first start.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::{KeyRecord, NewKey, RateLimit, Store, StoreError, Transaction};

pub const FILE_NAME: &str = "arouter.sqlite3";

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
PRAGMA user_version = 1;
";

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
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(e.to_string()))?;
        let conn = Connection::open(dir.join(FILE_NAME)).map_err(backend)?;
        // WAL lets the background writer commit while readers continue.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
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

fn row_to_key(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    let hash: Vec<u8> = row.get("hash")?;
    let mut fixed = [0u8; 32];
    if hash.len() == 32 {
        fixed.copy_from_slice(&hash);
    }
    let requests: Option<u32> = row.get("rate_requests")?;
    let period: Option<u32> = row.get("rate_period_s")?;
    Ok(KeyRecord {
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

impl Store for SqliteStore {
    fn record(&self, batch: &[Transaction]) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO transactions (created_at, key_id, provider, model, prompt_tokens,
                         completion_tokens, cost_micros, complete, estimated, referer, title)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                .query_map([limit], |r| {
                    Ok(Transaction {
                        created_at: r.get("created_at")?,
                        key_id: r.get("key_id")?,
                        provider: r.get::<_, Option<String>>("provider")?.unwrap_or_default(),
                        model: r.get::<_, Option<String>>("model")?.unwrap_or_default(),
                        prompt_tokens: r.get::<_, i64>("prompt_tokens")?.max(0) as u64,
                        completion_tokens: r.get::<_, i64>("completion_tokens")?.max(0) as u64,
                        cost_micros: r.get::<_, i64>("cost_micros")?.max(0) as u64,
                        complete: r.get("complete")?,
                        estimated: r.get("estimated")?,
                        referer: r.get("referer")?,
                        title: r.get("title")?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
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
                "INSERT INTO keys (hash, prefix, name, management, rate_requests, rate_period_s, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    &key.hash[..],
                    key.prefix,
                    key.name,
                    key.management,
                    key.rate_limit.map(|r| r.requests),
                    key.rate_limit.map(|r| r.period_secs),
                    key.created_at,
                ],
            )
            .map_err(backend)?;
            let id = conn.last_insert_rowid();
            conn.query_row("SELECT * FROM keys WHERE id = ?1", [id], row_to_key)
                .map_err(backend)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_file_and_schema_on_first_start_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let store = SqliteStore::open(&data).unwrap();
        assert!(data.join(FILE_NAME).exists());
        assert!(store.load_keys().unwrap().is_empty());
        let new = NewKey {
            hash: [7; 32],
            prefix: "sk-ar-abc".into(),
            name: "ci".into(),
            management: false,
            rate_limit: Some(RateLimit {
                requests: 5,
                period_secs: 60,
            }),
            created_at: 1_700_000_000,
        };
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
        };
        reopened.record(&[t.clone(), t.clone()]).unwrap();
        assert_eq!(reopened.transactions(10).unwrap(), vec![t.clone(), t]);
    }
}
