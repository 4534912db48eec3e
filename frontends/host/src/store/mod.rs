//! Durable state (keys, balance, transactions) behind a trait, so the
//! embedded SQLite default can give way to Postgres for multi-instance
//! deployments. The hot path never calls it: keys are cached in memory.

pub mod batches;
pub mod copy;
pub mod health;
pub mod journal;
pub mod lease;
pub mod listen;
pub mod location;
pub mod poll;
pub mod postgres;
pub mod responses;
pub mod sqlite;
mod sqlite_txns;
#[cfg(test)]
pub(crate) mod suite;

use std::fmt;
use std::sync::Arc;

pub use arouter_core::exchange::Outcome;
use arouter_core::manage::{
    KeyPatch, KeyUsage, LimitReset, ModelAllowlist, TransactionPage, TransactionQuery,
    TransactionView,
};
pub use batches::{BatchItem, BatchStore, Deleted, Results, UnrunItem, Wanted};
pub use journal::{Intent, Recovered};
pub use lease::{KeyLine, LeaseLine, LeaseStore};
pub use responses::ResponseStore;

/// A stored API key. The secret itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: i64,
    pub hash: [u8; 32],
    /// The first characters of the key, shown to identify it.
    pub prefix: String,
    pub name: String,
    /// May use the management API.
    pub management: bool,
    pub disabled: bool,
    /// Per-key rate limit: `requests` per `period_secs`.
    pub rate_limit: Option<RateLimit>,
    pub created_at: i64,
    /// The key's last characters, for its masked label.
    pub suffix: String,
    /// Spending limit in micro-USD; `None` is unlimited.
    pub limit_micros: Option<u64>,
    pub limit_reset: Option<LimitReset>,
    pub include_byok_in_limit: bool,
    /// Unix seconds after which the key is refused.
    pub expires_at: Option<i64>,
    /// `None` allows every model. Shared, so admission hands it to a
    /// request without copying.
    pub allowed_models: Option<Arc<ModelAllowlist>>,
    pub updated_at: Option<i64>,
}

impl KeyRecord {
    /// The masked form of the secret shown in place of it.
    pub fn label(&self) -> String {
        format!("{}...{}", self.prefix, self.suffix)
    }

    /// The public id: the hex SHA-256 of the secret.
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }

    pub fn expired(&self, now_unix_secs: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_unix_secs)
    }
}

/// The bytes of a hash written in hex; `None` if it is not 64 hex digits.
pub fn unhex_hash(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub period_secs: u32,
}

/// A key to insert.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub hash: [u8; 32],
    pub prefix: String,
    pub suffix: String,
    pub name: String,
    pub management: bool,
    pub rate_limit: Option<RateLimit>,
    pub created_at: i64,
    pub limit_micros: Option<u64>,
    pub limit_reset: Option<LimitReset>,
    pub include_byok_in_limit: bool,
    pub expires_at: Option<i64>,
    pub allowed_models: Option<ModelAllowlist>,
}

/// What a key's transactions add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeySpend {
    pub usage: KeyUsage,
    /// Unix seconds of the key's newest transaction.
    pub last_used_at: Option<i64>,
}

/// The starts (Unix seconds, UTC) of the windows `usage_daily`,
/// `usage_weekly` and `usage_monthly` count from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    pub day: i64,
    pub week: i64,
    pub month: i64,
}

#[derive(Debug)]
pub enum StoreError {
    Backend(String),
    Conflict(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Backend(e) => write!(f, "store backend error: {e}"),
            StoreError::Conflict(e) => write!(f, "conflict: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// One billed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub created_at: i64,
    pub key_id: Option<i64>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micros: u64,
    /// The response reached the client whole.
    pub complete: bool,
    /// The token counts are the gateway's estimate: the call was cut short
    /// before the provider reported its usage.
    pub estimated: bool,
    pub referer: Option<String>,
    pub title: Option<String>,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
    /// This row's own id, unique across restarts (a request can have
    /// several rows: one per provider attempt). The store ignores a row
    /// whose id it already has, so a retried batch is stored once. `None`
    /// for rows written before it existed.
    pub record_id: Option<String>,
    /// The provider's HTTP status; `None` when no response head arrived.
    pub upstream_status: Option<u16>,
    /// Complete, incomplete, estimated or error: failed calls are not
    /// counted as completions.
    pub outcome: Outcome,
    /// The id the client can look the call up by (`GET /generation`):
    /// the answer's own id, or `gen-<request id>` when it had none.
    pub generation_id: Option<String>,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// The client asked for a stream.
    pub stream: bool,
    /// From the request's first byte to the end of the call; `None` for
    /// rows written before it was recorded.
    pub latency_ms: Option<u64>,
    /// The message batch request the call ran for.
    pub batch: Option<BatchRef>,
}

/// A batch request, as a transaction names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRef {
    pub batch_id: String,
    pub custom_id: String,
}

/// Credit added to the account: a transaction of type credit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credit {
    pub created_at: i64,
    pub amount_micros: u64,
    pub note: Option<String>,
    /// Unique; adding a credit whose id is stored already adds nothing.
    pub record_id: String,
}

/// What the account holds: every credit added, and every cost billed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub credits: u64,
    pub usage: u64,
}

/// Everything the gateway keeps; batches have a trait of their own.
pub trait Store: BatchStore + ResponseStore + Send + Sync {
    /// Answers a trivial query: whether the store is reachable now
    /// (`/readyz`).
    fn ping(&self) -> Result<(), StoreError>;
    /// Adds a credit to the account (once per `record_id`).
    fn add_credit(&self, credit: &Credit) -> Result<(), StoreError>;
    /// The sum of credits and of transaction costs, micro-USD.
    fn totals(&self) -> Result<Totals, StoreError>;
    /// Appends transactions atomically (all or none), skipping any whose
    /// `record_id` is already stored.
    fn record(&self, batch: &[Transaction]) -> Result<(), StoreError> {
        self.settle(batch, &[])
    }
    /// [`Store::record`], and closes the call-journal intents `closed`
    /// (ids) in the same transaction: a call is never both billed and
    /// open, nor neither. An id not open (never written, or recovered
    /// already) is passed over.
    fn settle(&self, batch: &[Transaction], closed: &[String]) -> Result<(), StoreError>;
    /// [`Store::settle`] for a writer thread that shares CPUs with the
    /// serving threads: `pause` runs between the transaction's statements
    /// and may give the CPU away (`recorder::writer`). A store whose
    /// statements wait on the network anyway ignores it.
    fn settle_paced(
        &self,
        batch: &[Transaction],
        closed: &[String],
        pause: &dyn Fn(),
    ) -> Result<(), StoreError> {
        let _ = pause;
        self.settle(batch, closed)
    }
    /// Writes call-journal intents (all or none; an id written already
    /// is passed over), owned by this store's process.
    fn open_intents(&self, intents: &[Intent]) -> Result<(), StoreError>;
    /// Bills every open intent of a gateway that is gone (see
    /// [`journal`]) as an `interrupted` transaction and closes it, in one
    /// transaction; never this store's own. Each intent is billed once
    /// even when several gateways recover at the same time. On SQLite
    /// every other process counts as gone: one process uses a file.
    fn recover_intents(&self) -> Result<Recovered, StoreError>;
    /// The newest transactions first, at most `limit`.
    fn transactions(&self, limit: u32) -> Result<Vec<Transaction>, StoreError>;
    /// One page of the transactions `query` selects, newest first
    /// (`created_at`, then insertion order), after its cursor.
    fn list_transactions(&self, query: &TransactionQuery) -> Result<TransactionPage, StoreError>;
    /// The newest row with this generation id; with `key`, the newest of
    /// that key's rows (a provider may repeat its ids across calls).
    fn generation(&self, id: &str, key: Option<i64>)
        -> Result<Option<TransactionView>, StoreError>;
    /// Every key, for the in-memory cache at start-up and after changes.
    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError>;
    /// Applies `patch` to the key with this hash; `None` when there is none.
    fn update_key(
        &self,
        hash: &[u8; 32],
        patch: &KeyPatch,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Removes the key; `false` when there was none. Its transactions stay.
    fn delete_key(&self, hash: &[u8; 32]) -> Result<bool, StoreError>;
    /// The spending of a key (`None`: calls made with the master key),
    /// from its transactions.
    fn key_spend(&self, key_id: Option<i64>, windows: Windows) -> Result<KeySpend, StoreError>;
    /// What each of `ids` spent, in `ids`' order (a key with no calls
    /// spent nothing). One query on a shared store, where the key-poll
    /// thread asks it for every limited key each interval.
    fn keys_usage(&self, ids: &[i64], windows: Windows) -> Result<Vec<KeyUsage>, StoreError> {
        ids.iter()
            .map(|id| Ok(self.key_spend(Some(*id), windows)?.usage))
            .collect()
    }
    /// Credit leases, on a store several gateways share; `None` for one
    /// gateway's own file, where the whole balance is this gateway's.
    fn leases(&self) -> Option<&dyn LeaseStore> {
        None
    }
    /// Tells of key changes as they commit, on a store several gateways
    /// share; `None` for one gateway's own file, changed only through it.
    fn key_changes(&self) -> Option<&dyn listen::KeyChanges> {
        None
    }
}

/// A key's model allowlist as stored: a JSON array of patterns.
pub(crate) fn allowed_json(list: Option<&ModelAllowlist>) -> Option<String> {
    list.map(|l| serde_json::Value::from(l.patterns().to_vec()).to_string())
}

/// A stored allowlist. Written by a store from a validated list; one that
/// no longer reads as one allows nothing rather than everything.
pub(crate) fn allowlist_from_json(text: &str) -> Arc<ModelAllowlist> {
    let patterns: Vec<String> = serde_json::from_str(text).unwrap_or_default();
    Arc::new(ModelAllowlist::new(patterns).unwrap_or_else(|_| ModelAllowlist::nothing()))
}

/// Applies a keys-API patch to a stored key, stamping it updated at `now`.
pub(crate) fn apply_patch(key: &mut KeyRecord, patch: &KeyPatch, now: i64) {
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
