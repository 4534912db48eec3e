//! The in-memory key cache that answers the core's `Output::Admit`.
//! Keys are looked up by their SHA-256 and the match is confirmed with a
//! constant-time comparison; the plaintext is never kept.
//!
//! Shared across cores by the rule in [`crate::shard`]: the key table is a
//! published snapshot that each worker refreshes when its version moves
//! (a [`KeyView`]), and each rate-limited key's GCRA bucket is one atomic
//! word ([`SharedGcra`]) hung off its table entry, exact across cores. A
//! reload publishes a new table before it returns and carries each key's
//! bucket over by key id, so limits survive reloads. Each key's spending
//! line ([`LimitLine`], see [`crate::ledger`]) hangs off its entry the
//! same way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use arouter_core::exchange::{Admission, AdmitRequest, Rejection};
use arouter_core::ratelimit::{self, Decision, Quota};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::key_rules;
use crate::lease::Share;
use crate::ledger::Limited;
use crate::shard::{LimitLine, Published, SharedGcra, Snapshot};
use crate::store::{KeyLine, KeyRecord, RateLimit};

pub fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub struct KeyCache {
    master: Option<[u8; 32]>,
    table: Published<KeyTable>,
    /// The limit of a key without its own (`[rate_limit]`/`--rate-limit`).
    default_rate_limit: Option<RateLimit>,
    /// Every call reserves against the account balance.
    prepaid: bool,
    /// Rate limits are decided by a shared limiter (see `with_shared_limits`).
    shared_limits: bool,
    /// Key limits are also enforced on leased shares (see `with_leases`).
    leased: bool,
}

/// One published version of the stored keys.
#[derive(Default)]
pub struct KeyTable {
    by_hash: HashMap<[u8; 32], KeyEntry>,
    by_id: HashMap<i64, [u8; 32]>,
}

struct KeyEntry {
    record: KeyRecord,
    /// GCRA state of this key, shared by every table version and core; the
    /// math lives in the core.
    bucket: Arc<SharedGcra>,
    /// What the key spent in its limit's window and holds in flight,
    /// shared the same way.
    spend: Arc<LimitLine>,
    /// What this gateway leased of the key's limit (on a shared store),
    /// carried over with `spend`.
    share: Arc<Share>,
}

impl KeyTable {
    /// The table for `records`, keeping the buckets `previous` had for the
    /// same key ids.
    /// Also returns the keys whose spending must be loaded from the store:
    /// limited keys new to the table, or whose limit now resets on another
    /// schedule (their line starts over).
    fn build(records: Vec<KeyRecord>, previous: &KeyTable) -> (KeyTable, Reloaded) {
        let mut stale = Vec::new();
        let mut relimited = Vec::new();
        let by_hash: HashMap<[u8; 32], KeyEntry> = records
            .into_iter()
            .map(|record| {
                let before = previous
                    .by_id
                    .get(&record.id)
                    .and_then(|hash| previous.by_hash.get(hash));
                let bucket = before.map_or_else(Arc::default, |e| Arc::clone(&e.bucket));
                let (spend, share) = match before {
                    // A line counts only while its key is limited: one
                    // that just got a limit starts from the store's sum.
                    Some(e)
                        if e.record.limit_reset == record.limit_reset
                            && e.record.limit_micros.is_some()
                            && record.limit_micros.is_some() =>
                    {
                        // Credit leased under another limit is not this
                        // one's: a new limit starts from an empty share
                        // (the store dropped every gateway's lease on it).
                        let share = if e.record.limit_micros == record.limit_micros {
                            Arc::clone(&e.share)
                        } else {
                            relimited.push(record.id);
                            Arc::default()
                        };
                        (Arc::clone(&e.spend), share)
                    }
                    _ => {
                        if record.limit_micros.is_some() {
                            stale.push(record.clone());
                        }
                        (Arc::default(), Arc::default())
                    }
                };
                (
                    record.hash,
                    KeyEntry {
                        record,
                        bucket,
                        spend,
                        share,
                    },
                )
            })
            .collect();
        let by_id = by_hash
            .iter()
            .map(|(hash, e)| (e.record.id, *hash))
            .collect();
        (KeyTable { by_hash, by_id }, Reloaded { stale, relimited })
    }
}

/// What a reload changed that the caller must act on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Limited keys whose spending the caller loads from the store
    /// (`set_spent`): new ones, and ones whose limit now resets on
    /// another schedule.
    pub stale: Vec<KeyRecord>,
    /// Keys whose limit changed: what this gateway leased of them under
    /// the old limit is dropped (`Leases::forget`).
    pub relimited: Vec<i64>,
}

/// The lease line of `record` at `now`, when it has a limit.
fn key_line(record: &KeyRecord, now: i64) -> Option<KeyLine> {
    let w = crate::accounts::windows_at(now);
    let window_start = match record.limit_reset {
        None => 0,
        Some(arouter_core::manage::LimitReset::Daily) => w.day,
        Some(arouter_core::manage::LimitReset::Weekly) => w.week,
        Some(arouter_core::manage::LimitReset::Monthly) => w.month,
    };
    Some(KeyLine {
        id: record.id,
        limit_micros: record.limit_micros?,
        reset: record.limit_reset,
        window_start,
        window: crate::ledger::window(record.limit_reset, now),
    })
}

/// One worker's view of the key table: admission reads it without a lock
/// and refreshes it only when a reload has published a new table.
pub struct KeyView {
    snapshot: RefCell<Snapshot<KeyTable>>,
}

impl KeyCache {
    pub fn new(master_key: Option<&str>, records: Vec<KeyRecord>) -> KeyCache {
        KeyCache {
            master: master_key.map(hash_key),
            table: Published::new(KeyTable::build(records, &KeyTable::default()).0),
            default_rate_limit: None,
            prepaid: false,
            shared_limits: false,
            leased: false,
        }
    }

    /// Key limits are shared with other gateways through credit leases
    /// ([`crate::lease`]): a limited key's calls also reserve against
    /// this gateway's leased share of the limit.
    pub fn with_leases(mut self, leased: bool) -> KeyCache {
        self.leased = leased;
        self
    }

    /// Rate limits are kept by a limiter shared with other gateways
    /// (`--redis`): a limited key's admission is left pending
    /// ([`Verdict::Limit`]) for the caller to decide there.
    pub fn with_shared_limits(mut self, shared: bool) -> KeyCache {
        self.shared_limits = shared;
        self
    }

    /// Every call must reserve against the account balance (`[billing]
    /// prepaid`), so every admission is metered.
    pub fn with_prepaid(mut self, prepaid: bool) -> KeyCache {
        self.prepaid = prepaid;
        self
    }

    /// Limits every key without a limit of its own to `limit`, each key
    /// in its own bucket.
    pub fn with_default_rate_limit(mut self, limit: Option<RateLimit>) -> KeyCache {
        self.default_rate_limit = limit;
        self
    }

    /// Replaces the cached keys (after a change in the store). When this
    /// returns, the next admission on every worker sees the new keys.
    pub fn reload(&self, records: Vec<KeyRecord>) -> Reloaded {
        let mut reloaded = Reloaded::default();
        self.table.update(|previous| {
            let (table, r) = KeyTable::build(records, previous);
            reloaded = r;
            table
        });
        reloaded
    }

    /// Every limited key (for loading their spending at start).
    pub fn limited(&self) -> Vec<KeyRecord> {
        self.table
            .load()
            .by_hash
            .values()
            .filter(|e| e.record.limit_micros.is_some())
            .map(|e| e.record.clone())
            .collect()
    }

    /// Sets what key `id` spent in `window` (from the store).
    pub fn set_spent(&self, id: i64, window: u32, spent: u64) {
        let table = self.table.load();
        if let Some(entry) = table.by_id.get(&id).and_then(|h| table.by_hash.get(h)) {
            entry.spend.set_spent(window, spent);
        }
    }

    /// Raises what key `id` spent in `window` to at least `spent` (see
    /// [`LimitLine::raise_spent`]).
    pub fn raise_spent(&self, id: i64, window: u32, spent: u64) {
        let table = self.table.load();
        if let Some(entry) = table.by_id.get(&id).and_then(|h| table.by_hash.get(h)) {
            entry.spend.raise_spent(window, spent);
        }
    }

    /// Key `id`'s spending line and limit, when it has a limit; read on
    /// the worker's `view`.
    pub fn limit_of(&self, view: &KeyView, id: i64) -> Option<Limited> {
        let find = |table: &KeyTable| {
            let entry = table.by_hash.get(table.by_id.get(&id)?)?;
            Some(Limited {
                line: Arc::clone(&entry.spend),
                share: self.leased.then(|| Arc::clone(&entry.share)),
                limit: entry.record.limit_micros?,
                reset: entry.record.limit_reset,
            })
        };
        self.on_view(view, find)
    }

    /// Every limited key's lease line at `now` and this gateway's share of
    /// it (empty unless the key limits are leased).
    pub fn shares(&self, now: i64) -> Vec<(KeyLine, Arc<Share>)> {
        if !self.leased {
            return Vec::new();
        }
        let table = self.table.load();
        table
            .by_hash
            .values()
            .filter_map(|e| Some((key_line(&e.record, now)?, Arc::clone(&e.share))))
            .collect()
    }

    /// Key `id`'s lease line at `now` and this gateway's share of it, when
    /// the key is limited and key limits are leased.
    pub fn share_of(&self, id: i64, now: i64) -> Option<(KeyLine, Arc<Share>)> {
        if !self.leased {
            return None;
        }
        let table = self.table.load();
        let entry = table.by_hash.get(table.by_id.get(&id)?)?;
        Some((key_line(&entry.record, now)?, Arc::clone(&entry.share)))
    }

    /// Key `id`'s spending in `window` as its line counts it, when it has
    /// a limit (the keys API reports this, not the store's lagging sum).
    pub fn spent_of(&self, id: i64, window: u32) -> Option<u64> {
        let table = self.table.load();
        let entry = table.by_hash.get(table.by_id.get(&id)?)?;
        entry.record.limit_micros?;
        Some(entry.spend.spent(window))
    }

    /// A view for one worker thread.
    pub fn view(&self) -> KeyView {
        KeyView {
            snapshot: RefCell::new(self.table.snapshot()),
        }
    }

    /// [`KeyCache::admit_on`] for a caller without a view of its own (it
    /// loads the current table each time).
    pub fn admit(&self, request: &AdmitRequest, now_unix_ms: u64) -> Admission {
        self.decide(&self.table.load(), request, now_unix_ms)
            .locally(now_unix_ms)
    }

    /// Decides whether a request may proceed, on the worker's `view`.
    /// `now_unix_ms` is wall time, because `X-RateLimit-Reset` is a Unix
    /// timestamp.
    pub fn admit_on(&self, view: &KeyView, request: &AdmitRequest, now_unix_ms: u64) -> Admission {
        self.verdict_on(view, request, now_unix_ms)
            .locally(now_unix_ms)
    }

    /// [`KeyCache::admit_on`], leaving a rate limit kept by a shared
    /// limiter to the caller.
    pub fn verdict_on(&self, view: &KeyView, request: &AdmitRequest, now_unix_ms: u64) -> Verdict {
        self.on_view(view, |table| self.decide(table, request, now_unix_ms))
    }

    /// Runs `f` on the worker's `view` of the key table, refreshed first
    /// when a reload published a newer one. A worker is one thread and
    /// nothing here awaits, so the borrow is never contended; were it
    /// ever, a fresh load answers the same.
    fn on_view<T>(&self, view: &KeyView, f: impl FnOnce(&KeyTable) -> T) -> T {
        match view.snapshot.try_borrow_mut() {
            Ok(mut snapshot) => f(self.table.refresh(&mut snapshot)),
            Err(_) => f(&self.table.load()),
        }
    }

    fn decide(&self, keys: &KeyTable, request: &AdmitRequest, now_unix_ms: u64) -> Verdict {
        let hash = hash_key(&request.secret);
        let reject = |reason| {
            Verdict::Done(Admission::Rejected {
                reason,
                headers: Vec::new(),
            })
        };
        if let Some(master) = &self.master {
            if bool::from(master.ct_eq(&hash)) {
                return Verdict::Done(Admission::Allowed {
                    key_id: None,
                    headers: Vec::new(),
                    models: None,
                    metered: self.prepaid,
                });
            }
        }
        let Some(KeyEntry { record, bucket, .. }) = keys.by_hash.get(&hash) else {
            return reject(Rejection::InvalidKey);
        };
        if !bool::from(record.hash.ct_eq(&hash)) {
            return reject(Rejection::InvalidKey);
        }
        self.decide_entry(record, bucket, request.scope, now_unix_ms)
    }

    /// Admits a batch request, made by the key with id `key_id` (`None`:
    /// the master key) when its batch was created: as its own request
    /// would be now (a key disabled, expired or deleted since is refused,
    /// and the request counts against the key's rate limit).
    pub fn verdict_key_id(
        &self,
        view: &KeyView,
        key_id: Option<i64>,
        scope: arouter_core::api::Scope,
        now_unix_ms: u64,
    ) -> Verdict {
        let Some(id) = key_id else {
            return Verdict::Done(Admission::Allowed {
                key_id: None,
                headers: Vec::new(),
                models: None,
                metered: self.prepaid,
            });
        };
        let decide =
            |table: &KeyTable| match table.by_id.get(&id).and_then(|h| table.by_hash.get(h)) {
                Some(KeyEntry { record, bucket, .. }) => {
                    self.decide_entry(record, bucket, scope, now_unix_ms)
                }
                None => Verdict::Done(Admission::Rejected {
                    reason: Rejection::InvalidKey,
                    headers: Vec::new(),
                }),
            };
        self.on_view(view, decide)
    }

    /// The answer to a live key's request: its rules, then its rate limit
    /// (checked here, unless a limiter shared with other gateways keeps it).
    fn decide_entry(
        &self,
        record: &KeyRecord,
        bucket: &Arc<SharedGcra>,
        scope: arouter_core::api::Scope,
        now_unix_ms: u64,
    ) -> Verdict {
        let reject = |reason| {
            Verdict::Done(Admission::Rejected {
                reason,
                headers: Vec::new(),
            })
        };
        let now_unix_secs = i64::try_from(now_unix_ms / 1000).unwrap_or(i64::MAX);
        let rule = key_rules::check(record, scope, now_unix_secs);
        if let Err(reason @ (Rejection::InvalidKey | Rejection::ExpiredKey)) = rule {
            // Not a usable credential: nothing to count it against.
            return reject(reason);
        }
        let mut pending = PendingLimit {
            key_id: record.id,
            quota: None,
            bucket: Arc::clone(bucket),
            rule,
            models: record.allowed_models.clone(),
            metered: self.prepaid || record.limit_micros.is_some(),
        };
        // Every other answer to a live key is counted and carries the
        // rate-limit headers, refusals for the wrong scope included.
        let Some(limit) = record.rate_limit.or(self.default_rate_limit) else {
            return Verdict::Done(pending.finish(None));
        };
        let quota = Quota::new(
            limit.requests,
            u64::from(limit.period_secs) * 1000,
            limit.requests,
        );
        let Ok(quota) = quota else {
            // A zero limit in the store means "no requests at all".
            return reject(Rejection::RateLimited);
        };
        pending.quota = Some(quota);
        if self.shared_limits {
            return Verdict::Limit(pending);
        }
        let decision = bucket.check(&quota, now_unix_ms, 1);
        Verdict::Done(pending.finish(Some(decision)))
    }
}

/// An admission decided from the key table alone, or one whose rate limit
/// a limiter shared with other gateways decides (`--redis`, see
/// [`crate::shared_limit`]).
pub enum Verdict {
    Done(Admission),
    Limit(PendingLimit),
}

impl Verdict {
    /// The admission, with a pending rate limit checked on this process's
    /// own bucket.
    pub fn locally(self, now_unix_ms: u64) -> Admission {
        match self {
            Verdict::Done(admission) => admission,
            Verdict::Limit(pending) => pending.check_locally(now_unix_ms),
        }
    }
}

/// A live key's admission waiting for its rate-limit decision.
pub struct PendingLimit {
    pub key_id: i64,
    quota: Option<Quota>,
    /// This process's own bucket for the key: what decides when the
    /// shared limiter cannot.
    bucket: Arc<SharedGcra>,
    rule: Result<(), Rejection>,
    models: Option<Arc<arouter_core::manage::ModelAllowlist>>,
    metered: bool,
}

impl PendingLimit {
    /// The key's quota (set whenever a verdict is pending on it).
    pub fn quota(&self) -> Option<Quota> {
        self.quota
    }

    /// The admission once the rate limit has decided (`None`: the key
    /// has no limit).
    pub fn finish(self, decision: Option<Decision>) -> Admission {
        let headers = match &decision {
            Some(decision) => ratelimit::headers(decision).collect(),
            None => Vec::new(),
        };
        if decision.is_some_and(|d| !d.allowed) {
            return Admission::Rejected {
                reason: Rejection::RateLimited,
                headers,
            };
        }
        match self.rule {
            Ok(()) => Admission::Allowed {
                key_id: Some(self.key_id),
                headers,
                models: self.models,
                metered: self.metered,
            },
            Err(reason) => Admission::Rejected { reason, headers },
        }
    }

    /// Decides on this process's own bucket, as without a shared limiter.
    pub fn check_locally(self, now_unix_ms: u64) -> Admission {
        let decision = self
            .quota
            .map(|quota| self.bucket.check(&quota, now_unix_ms, 1));
        self.finish(decision)
    }
}

#[cfg(test)]
mod tests;
