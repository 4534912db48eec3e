//! The keys API on the store: create, list, get, update, delete, and a
//! key's own record. A change reloads the key cache before the answer.

use arouter_core::exchange::Caller;
use arouter_core::manage::{
    KeySpec, KeyView, LimitReset, ManageAnswer, ManageError, ManageRequest, ManageResult,
    RateLimitSpec,
};

use super::{secret, unavailable, windows};
use crate::keys::hash_key;
use crate::store::{hex, KeyRecord, NewKey, RateLimit, Store, StoreError};
use crate::Host;

/// Keys per page of `GET /keys`.
const PAGE: usize = 100;

pub(super) fn execute(host: &Host, request: ManageRequest, now: i64) -> ManageResult {
    let store = host.store.as_ref();
    match request {
        ManageRequest::CreateKey(spec) => {
            let (record, secret) =
                create_key(store, spec, now).map_err(|e| unavailable("create key", e))?;
            reload(host)?;
            Ok(ManageAnswer::Created {
                key: live_view(host, &record, now)?,
                secret,
            })
        }
        ManageRequest::ListKeys {
            offset,
            include_disabled,
            include_expired,
        } => {
            let all = store.load_keys().map_err(|e| unavailable("list keys", e))?;
            let views = all
                .iter()
                .filter(|k| include_disabled || !k.disabled)
                .filter(|k| include_expired || !k.expired(now))
                .skip(offset as usize)
                .take(PAGE)
                .map(|k| live_view(host, k, now))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ManageAnswer::Keys(views))
        }
        ManageRequest::GetKey { hash } => {
            let record = find(store, &hash)?.ok_or(ManageError::NotFound)?;
            Ok(ManageAnswer::Key(live_view(host, &record, now)?))
        }
        ManageRequest::UpdateKey { hash, patch } => {
            let hash = parse_hash(&hash).ok_or(ManageError::NotFound)?;
            let record = store
                .update_key(&hash, &patch, now)
                .map_err(|e| unavailable("update key", e))?
                .ok_or(ManageError::NotFound)?;
            reload(host)?;
            Ok(ManageAnswer::Key(live_view(host, &record, now)?))
        }
        ManageRequest::DeleteKey { hash } => {
            let hash = parse_hash(&hash).ok_or(ManageError::NotFound)?;
            if !store
                .delete_key(&hash)
                .map_err(|e| unavailable("delete key", e))?
            {
                return Err(ManageError::NotFound);
            }
            reload(host)?;
            Ok(ManageAnswer::Deleted)
        }
        ManageRequest::CurrentKey { caller } => current(host, caller, now),
        // Routed to `transactions`, `credits`, the metrics and readiness
        // by `accounts::execute`.
        ManageRequest::ListTransactions { .. }
        | ManageRequest::GetGeneration { .. }
        | ManageRequest::Credits { .. }
        | ManageRequest::AddCredits { .. }
        | ManageRequest::Metrics
        | ManageRequest::Ready
        | ManageRequest::Batch(_)
        | ManageRequest::Stored(_) => Err(ManageError::Unavailable),
    }
}

/// Inserts a key made from `spec` with a fresh secret; the secret is
/// returned for the caller to show once.
pub fn create_key(
    store: &dyn Store,
    spec: KeySpec,
    now: i64,
) -> Result<(KeyRecord, String), StoreError> {
    let secret = secret::generate()
        .ok_or_else(|| StoreError::Backend("the OS gave no randomness for a key".into()))?;
    let mut key = NewKey {
        hash: [0; 32],
        prefix: String::new(),
        suffix: String::new(),
        name: spec.name,
        management: spec.management,
        rate_limit: spec.rate_limit.map(|r| RateLimit {
            requests: r.requests,
            period_secs: r.interval_secs,
        }),
        created_at: now,
        limit_micros: spec.limit_micros,
        limit_reset: spec.limit_reset,
        include_byok_in_limit: spec.include_byok_in_limit,
        expires_at: spec.expires_at,
        allowed_models: spec.allowed_models,
    };
    secret::apply(secret::stored(&secret), &mut key);
    let record = store.insert_key(&key)?;
    Ok((record, secret))
}

/// A stored key as the API shows it, with its spending.
pub fn key_view(store: &dyn Store, key: &KeyRecord, now: i64) -> Result<KeyView, ManageError> {
    let spend = store
        .key_spend(Some(key.id), windows::at(now))
        .map_err(|e| unavailable("key usage", e))?;
    Ok(KeyView {
        hash: key.hash_hex(),
        name: key.name.clone(),
        label: key.label(),
        disabled: key.disabled,
        management: key.management,
        limit_micros: key.limit_micros,
        limit_reset: key.limit_reset,
        include_byok_in_limit: key.include_byok_in_limit,
        expires_at: key.expires_at,
        created_at: key.created_at,
        updated_at: key.updated_at,
        last_used_at: spend.last_used_at,
        usage: spend.usage,
        rate_limit: key.rate_limit.map(|r| arouter_core::manage::RateLimitSpec {
            requests: r.requests,
            interval_secs: r.period_secs,
        }),
        allowed_models: key.allowed_models.as_deref().cloned(),
    })
}

/// [`key_view`] with the spending of the limit's window as the key's
/// line counts it in memory: what admission enforces, which the store's
/// sum reaches only once the recorder has written the last calls.
fn live_view(host: &Host, key: &KeyRecord, now: i64) -> Result<KeyView, ManageError> {
    let mut view = key_view(host.store.as_ref(), key, now)?;
    let window = crate::ledger::window(key.limit_reset, now);
    if let Some(spent) = host.keys.spent_of(key.id, window) {
        let usage = &mut view.usage;
        let field = match key.limit_reset {
            None => &mut usage.total,
            Some(LimitReset::Daily) => &mut usage.daily,
            Some(LimitReset::Weekly) => &mut usage.weekly,
            Some(LimitReset::Monthly) => &mut usage.monthly,
        };
        *field = spent;
    }
    Ok(view)
}

/// `GET /api/v1/key`. The master key has no record: its view is made
/// up, with the spending of the calls made with it.
fn current(host: &Host, caller: Caller, now: i64) -> ManageResult {
    let store = host.store.as_ref();
    match caller {
        Caller::Key(id) => {
            let all = store.load_keys().map_err(|e| unavailable("load keys", e))?;
            let record = all
                .iter()
                .find(|k| k.id == id)
                .ok_or(ManageError::NotFound)?;
            Ok(ManageAnswer::Current {
                key: live_view(host, record, now)?,
                is_master: false,
                default_rate_limit: host.config.default_rate_limit.map(|r| RateLimitSpec {
                    requests: r.requests,
                    interval_secs: r.period_secs,
                }),
            })
        }
        Caller::Master | Caller::Anonymous => {
            let spend = store
                .key_spend(None, windows::at(now))
                .map_err(|e| unavailable("master usage", e))?;
            let hash = host
                .config
                .master_key
                .as_deref()
                .map_or_else(String::new, |m| hex(&hash_key(m)));
            Ok(ManageAnswer::Current {
                key: KeyView {
                    hash,
                    name: "master key".into(),
                    label: "AROUTER_MASTER_KEY".into(),
                    disabled: false,
                    management: true,
                    limit_micros: None,
                    limit_reset: None,
                    include_byok_in_limit: false,
                    expires_at: None,
                    created_at: 0,
                    updated_at: None,
                    last_used_at: spend.last_used_at,
                    usage: spend.usage,
                    rate_limit: None,
                    allowed_models: None,
                },
                is_master: true,
                default_rate_limit: None,
            })
        }
    }
}

pub(super) fn parse_hash(hex_hash: &str) -> Option<[u8; 32]> {
    crate::store::unhex_hash(hex_hash)
}

fn find(store: &dyn Store, hex_hash: &str) -> Result<Option<KeyRecord>, ManageError> {
    let Some(hash) = parse_hash(hex_hash) else {
        return Ok(None);
    };
    let all = store.load_keys().map_err(|e| unavailable("load keys", e))?;
    Ok(all.into_iter().find(|k| k.hash == hash))
}

/// Publishes the store's keys to admission: every serving thread sees the
/// change from its next request on, before the API call is answered.
fn reload(host: &Host) -> Result<(), ManageError> {
    let records = host
        .store
        .load_keys()
        .map_err(|e| unavailable("reload keys", e))?;
    let reloaded = host.keys.reload(records);
    if let Some(leases) = &host.leases {
        leases.forget(&reloaded.relimited);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    super::load_spending(host.store.as_ref(), &host.keys, &reloaded.stale, now)
        .map_err(|e| unavailable("load key spending", e))
}
