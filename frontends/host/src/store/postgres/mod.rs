//! The shared store: PostgreSQL, for several gateway instances behind a
//! load balancer (`--store postgres://…`). Same tables, same semantics as
//! the SQLite file; what differs is that other processes write too, so
//! every settlement is one transaction keyed by its record id (`ON
//! CONFLICT DO NOTHING`): a batch replayed after a crash, or sent by two
//! instances, is stored once.
//!
//! The client is the blocking `postgres` crate (tokio-postgres run on a
//! small runtime of its own inside the client), with rustls for TLS
//! (`connect.rs`), called only off the
//! serving threads: by the usage recorder's thread, the accounts service
//! on the runtime's blocking pool and the batch worker, exactly where the
//! SQLite store is called. One connection, behind a mutex as SQLite's is;
//! it is opened again on the next call after it broke.

mod batches;
pub mod connect;
mod journal;
mod lease;
pub(crate) mod notify;
mod record;
mod responses;
pub mod schema;
mod txns;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use arouter_core::manage::{
    KeyPatch, KeyUsage, LimitReset, TransactionPage, TransactionQuery, TransactionView,
};
use postgres::{Client, GenericClient, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use record::insert_transactions;

use super::listen::KeyChanges;
use super::{
    Credit, Intent, KeyRecord, KeySpend, LeaseStore, NewKey, RateLimit, Recovered, Store,
    StoreError, Totals, Transaction, Windows,
};

/// A key's spending in its day ($2), week ($3) and month ($4) windows,
/// from the running daily totals (`spend_daily`, schema migration 7):
/// the windows begin at UTC midnights, so whole days sum to them exactly.
const WINDOW_SUMS: &str = "COALESCE(SUM(cost_micros) FILTER (WHERE day >= $2), 0)::BIGINT,
     COALESCE(SUM(cost_micros) FILTER (WHERE day >= $3), 0)::BIGINT,
     COALESCE(SUM(cost_micros) FILTER (WHERE day >= $4), 0)::BIGINT";

/// How long a connection may take to answer whether it still works,
/// after a call on it failed.
const VALID_TIMEOUT: Duration = Duration::from_secs(2);

pub struct PostgresStore {
    config: postgres::Config,
    tls: MakeRustlsConnect,
    client: Mutex<Option<Client>>,
    /// This store's session advisory lock, held by its connection while it
    /// lives: the batch requests it claims carry this key, so another
    /// gateway starting can tell them from those of a gateway that is gone
    /// (`reopen_batch_requests`).
    claim_key: i64,
    /// Connections opened again after one broke ([`LeaseStore::session`]).
    sessions: AtomicU64,
}

pub(super) fn backend(e: postgres::Error) -> StoreError {
    // The server's own message (and its detail) when it sent one; else
    // the client's, with its causes (a TLS handshake's says why).
    if let Some(db) = e.as_db_error() {
        return StoreError::Backend(db.to_string());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    StoreError::Backend(text)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db` with
    /// libpq's query parameters, see [`connect`]) and brings the schema up
    /// to date.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let (config, tls) = connect::prepare(url)?;
        let mut client = config.connect(tls.clone()).map_err(backend)?;
        schema::migrate(&mut client)?;
        let claim_key = random_key()?;
        hold_claim_lock(&mut client, claim_key)?;
        Ok(PostgresStore {
            config,
            tls,
            client: Mutex::new(Some(client)),
            claim_key,
            sessions: AtomicU64::new(0),
        })
    }

    /// The connection, opened again if it broke since the last call.
    fn client(&self) -> Result<MutexGuard<'_, Option<Client>>, StoreError> {
        let mut guard = self
            .client
            .lock()
            .map_err(|_| StoreError::Backend("store lock poisoned".into()))?;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            let mut client = self.config.connect(self.tls.clone()).map_err(backend)?;
            hold_claim_lock(&mut client, self.claim_key)?;
            // While it was closed, other gateways may have taken this one
            // for gone and given its leases back.
            self.sessions.fetch_add(1, Ordering::AcqRel);
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// Runs `f` on the connection. After a failure, a connection that no
    /// longer answers is dropped, so the next call opens a new one.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.client()?;
        let client = guard
            .as_mut()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        let out = f(client);
        if out.is_err() && client.is_valid(VALID_TIMEOUT).is_err() {
            *guard = None;
        }
        out
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    fn in_transaction<T>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(|client| {
            let mut tx = client.transaction().map_err(backend)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
    }
}

/// A random advisory lock key for this store's claims.
fn random_key() -> Result<i64, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| StoreError::Backend("the OS gave no randomness for a claim key".into()))?;
    Ok(i64::from_le_bytes(bytes))
}

/// Takes the store's session advisory lock on this (new) connection; it
/// is released when the connection ends, with the process or not.
fn hold_claim_lock(client: &mut Client, key: i64) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .map(drop)
        .map_err(backend)
}

/// A stored count (never negative) as the unsigned value it counts.
fn unsigned(value: i64) -> u64 {
    value.max(0) as u64
}

/// A count to store: beyond `i64::MAX` it is refused, not wrapped.
fn signed(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Conflict(format!("{what} beyond the largest")))
}

fn row_to_key(row: &Row) -> Result<KeyRecord, postgres::Error> {
    let hash: Vec<u8> = row.try_get("hash")?;
    let mut fixed = [0u8; 32];
    if hash.len() == 32 {
        fixed.copy_from_slice(&hash);
    }
    let requests: Option<i64> = row.try_get("rate_requests")?;
    let period: Option<i64> = row.try_get("rate_period_s")?;
    let allowed: Option<String> = row.try_get("allowed_models")?;
    let clamp = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        hash: fixed,
        prefix: row.try_get("prefix")?,
        name: row.try_get("name")?,
        management: row.try_get("management")?,
        disabled: row.try_get("disabled")?,
        rate_limit: match (requests, period) {
            (Some(requests), Some(period)) => Some(RateLimit {
                requests: clamp(requests),
                period_secs: clamp(period),
            }),
            _ => None,
        },
        created_at: row.try_get("created_at")?,
        suffix: row.try_get("suffix")?,
        limit_micros: row.try_get::<_, Option<i64>>("limit_micros")?.map(unsigned),
        limit_reset: row
            .try_get::<_, Option<String>>("limit_reset")?
            .and_then(|r| LimitReset::parse(&r)),
        include_byok_in_limit: row.try_get("include_byok")?,
        expires_at: row.try_get("expires_at")?,
        allowed_models: allowed.as_deref().map(super::allowlist_from_json),
        updated_at: row.try_get("updated_at")?,
    })
}

fn write_key(tx: &mut impl GenericClient, key: &KeyRecord) -> Result<(), StoreError> {
    let limit = key.limit_micros.map(|m| signed(m, "a limit")).transpose()?;
    tx.execute(
        "UPDATE keys SET name = $2, management = $3, disabled = $4, rate_requests = $5,
         rate_period_s = $6, limit_micros = $7, limit_reset = $8, include_byok = $9,
         expires_at = $10, allowed_models = $11, updated_at = $12 WHERE id = $1",
        &[
            &key.id,
            &key.name,
            &key.management,
            &key.disabled,
            &key.rate_limit.map(|r| i64::from(r.requests)),
            &key.rate_limit.map(|r| i64::from(r.period_secs)),
            &limit,
            &key.limit_reset.map(LimitReset::as_str),
            &key.include_byok_in_limit,
            &key.expires_at,
            &super::allowed_json(key.allowed_models.as_deref()),
            &key.updated_at,
        ],
    )
    .map_err(backend)?;
    Ok(())
}

impl Store for PostgresStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.with(|client| client.simple_query("SELECT 1").map(drop).map_err(backend))
    }

    fn add_credit(&self, credit: &Credit) -> Result<(), StoreError> {
        let amount = signed(credit.amount_micros, "a credit")?;
        self.with(|client| {
            client
                .execute(
                    "INSERT INTO credits (created_at, amount_micros, note, record_id)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (record_id) DO NOTHING",
                    &[&credit.created_at, &amount, &credit.note, &credit.record_id],
                )
                .map(drop)
                .map_err(backend)
        })
    }

    fn totals(&self) -> Result<Totals, StoreError> {
        self.with(|client| {
            let row = client
                .query_one(
                    "SELECT (SELECT COALESCE(SUM(amount_micros), 0) FROM credits)::BIGINT,
                            (SELECT COALESCE(SUM(cost_micros), 0) FROM spend_total)::BIGINT",
                    &[],
                )
                .map_err(backend)?;
            Ok(Totals {
                credits: unsigned(row.try_get(0).map_err(backend)?),
                usage: unsigned(row.try_get(1).map_err(backend)?),
            })
        })
    }

    fn settle(&self, batch: &[Transaction], closed: &[String]) -> Result<(), StoreError> {
        self.in_transaction(|tx| journal::settle(tx, self.claim_key, batch, closed))
    }

    fn open_intents(&self, intents: &[Intent]) -> Result<(), StoreError> {
        self.with(|client| journal::open(client, self.claim_key, intents))
    }

    fn recover_intents(&self) -> Result<Recovered, StoreError> {
        self.with(|client| journal::recover(client, self.claim_key))
    }

    fn transactions(&self, limit: u32) -> Result<Vec<Transaction>, StoreError> {
        self.with(|client| {
            client
                .query(
                    "SELECT * FROM transactions ORDER BY id DESC LIMIT $1",
                    &[&i64::from(limit)],
                )
                .map_err(backend)?
                .iter()
                .map(|r| txns::row_to_transaction(r).map_err(backend))
                .collect()
        })
    }

    fn list_transactions(&self, query: &TransactionQuery) -> Result<TransactionPage, StoreError> {
        self.with(|client| txns::list(client, query))
    }

    fn generation(
        &self,
        id: &str,
        key: Option<i64>,
    ) -> Result<Option<TransactionView>, StoreError> {
        self.with(|client| txns::generation(client, id, key))
    }

    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.with(|client| {
            client
                .query("SELECT * FROM keys ORDER BY id", &[])
                .map_err(backend)?
                .iter()
                .map(|r| row_to_key(r).map_err(backend))
                .collect()
        })
    }

    fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError> {
        let limit = key.limit_micros.map(|m| signed(m, "a limit")).transpose()?;
        self.in_transaction(|tx| {
            let row = tx
                .query_opt(
                    "INSERT INTO keys (hash, prefix, name, management, rate_requests, rate_period_s,
                     created_at, suffix, limit_micros, limit_reset, include_byok, expires_at,
                     allowed_models)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     ON CONFLICT (hash) DO NOTHING RETURNING *",
                    &[
                        &&key.hash[..],
                        &key.prefix,
                        &key.name,
                        &key.management,
                        &key.rate_limit.map(|r| i64::from(r.requests)),
                        &key.rate_limit.map(|r| i64::from(r.period_secs)),
                        &key.created_at,
                        &key.suffix,
                        &limit,
                        &key.limit_reset.map(LimitReset::as_str),
                        &key.include_byok_in_limit,
                        &key.expires_at,
                        &super::allowed_json(key.allowed_models.as_ref()),
                    ],
                )
                .map_err(backend)?;
            let Some(row) = row else {
                return Err(StoreError::Conflict("a key with this hash exists".into()));
            };
            let key = row_to_key(&row).map_err(backend)?;
            notify::notify(tx)?;
            Ok(key)
        })
    }

    fn update_key(
        &self,
        hash: &[u8; 32],
        patch: &KeyPatch,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.in_transaction(|tx| {
            // Locked until the commit: two instances patching the same key
            // apply one patch after the other, neither lost.
            let found = tx
                .query_opt(
                    "SELECT * FROM keys WHERE hash = $1 FOR UPDATE",
                    &[&&hash[..]],
                )
                .map_err(backend)?;
            let Some(row) = found else {
                return Ok(None);
            };
            let mut key = row_to_key(&row).map_err(backend)?;
            let line = (key.limit_micros, key.limit_reset);
            super::apply_patch(&mut key, patch, now);
            write_key(tx, &key)?;
            if line != (key.limit_micros, key.limit_reset) {
                // Credit every gateway leased under the old limit goes back
                // with the change: each takes anew under the new one.
                tx.execute("DELETE FROM credit_leases WHERE line = $1", &[&key.id])
                    .map_err(backend)?;
            }
            notify::notify(tx)?;
            Ok(Some(key))
        })
    }

    fn delete_key(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.in_transaction(|tx| {
            let n = tx
                .execute("DELETE FROM keys WHERE hash = $1", &[&&hash[..]])
                .map_err(backend)?;
            if n > 0 {
                notify::notify(tx)?;
            }
            Ok(n > 0)
        })
    }

    fn key_spend(&self, key_id: Option<i64>, windows: Windows) -> Result<KeySpend, StoreError> {
        // The running totals keep the master key's calls under 0; its rows
        // have no key id, which only `IS NULL` finds by the index.
        let last_used = match key_id {
            Some(_) => "SELECT MAX(created_at) FROM transactions WHERE key_id = $1",
            None => "SELECT MAX(created_at) FROM transactions WHERE key_id IS NULL AND $1 = 0",
        };
        let line = key_id.unwrap_or(0);
        self.with(|client| {
            let row = client
                .query_one(
                    &format!(
                        "SELECT COALESCE((SELECT cost_micros FROM spend_total WHERE key_id = $1), 0),
                                {WINDOW_SUMS},
                                ({last_used})
                         FROM spend_daily WHERE key_id = $1 AND day >= LEAST($2::BIGINT, $3::BIGINT, $4::BIGINT)"
                    ),
                    &[&line, &windows.day, &windows.week, &windows.month],
                )
                .map_err(backend)?;
            let micros = |i| row.try_get::<_, i64>(i).map(unsigned).map_err(backend);
            Ok(KeySpend {
                usage: KeyUsage {
                    total: micros(0)?,
                    daily: micros(1)?,
                    weekly: micros(2)?,
                    monthly: micros(3)?,
                },
                last_used_at: row.try_get(4).map_err(backend)?,
            })
        })
    }

    fn keys_usage(&self, ids: &[i64], windows: Windows) -> Result<Vec<KeyUsage>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.with(|client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT u.id,
                                COALESCE((SELECT cost_micros FROM spend_total s WHERE s.key_id = u.id), 0),
                                {WINDOW_SUMS}
                         FROM UNNEST($1::BIGINT[]) AS u(id)
                         LEFT JOIN spend_daily ON key_id = u.id AND day >= LEAST($2::BIGINT, $3::BIGINT, $4::BIGINT)
                         GROUP BY u.id"
                    ),
                    &[&ids, &windows.day, &windows.week, &windows.month],
                )
                .map_err(backend)?;
            let mut by_id = std::collections::HashMap::with_capacity(rows.len());
            for row in &rows {
                let micros = |i| row.try_get::<_, i64>(i).map(unsigned).map_err(backend);
                let usage = KeyUsage {
                    total: micros(1)?,
                    daily: micros(2)?,
                    weekly: micros(3)?,
                    monthly: micros(4)?,
                };
                by_id.insert(row.try_get::<_, i64>(0).map_err(backend)?, usage);
            }
            Ok(ids
                .iter()
                .map(|id| by_id.get(id).copied().unwrap_or_default())
                .collect())
        })
    }

    fn leases(&self) -> Option<&dyn LeaseStore> {
        Some(self)
    }

    fn key_changes(&self) -> Option<&dyn KeyChanges> {
        Some(self)
    }
}

#[cfg(test)]
pub(crate) mod tests;
