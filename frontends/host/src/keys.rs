//! The in-memory key cache that answers the core's `Output::Admit`.
//! Keys are looked up by their SHA-256 and the match is confirmed with a
//! constant-time comparison; the plaintext is never kept.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use arouter_core::api::Scope;
use arouter_core::exchange::{Admission, AdmitRequest, Rejection};
use arouter_core::ratelimit::{self, GcraState, Quota};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::KeyRecord;

pub fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub struct KeyCache {
    master: Option<[u8; 32]>,
    keys: RwLock<HashMap<[u8; 32], KeyRecord>>,
    /// GCRA state per key id; the math lives in the core.
    buckets: Mutex<HashMap<i64, GcraState>>,
}

impl KeyCache {
    pub fn new(master_key: Option<&str>, records: Vec<KeyRecord>) -> KeyCache {
        KeyCache {
            master: master_key.map(hash_key),
            keys: RwLock::new(records.into_iter().map(|r| (r.hash, r)).collect()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the cached keys (after a change in the store).
    pub fn reload(&self, records: Vec<KeyRecord>) {
        if let Ok(mut keys) = self.keys.write() {
            *keys = records.into_iter().map(|r| (r.hash, r)).collect();
        }
    }

    /// Decides whether a request may proceed. `now_unix_ms` is wall time,
    /// because `X-RateLimit-Reset` is a Unix timestamp.
    pub fn admit(&self, request: &AdmitRequest, now_unix_ms: u64) -> Admission {
        let hash = hash_key(&request.secret);
        let reject = |reason| Admission::Rejected {
            reason,
            headers: Vec::new(),
        };
        if let Some(master) = &self.master {
            if bool::from(master.ct_eq(&hash)) {
                return Admission::Allowed {
                    key_id: None,
                    headers: Vec::new(),
                };
            }
        }
        let Ok(keys) = self.keys.read() else {
            return reject(Rejection::InvalidKey);
        };
        let Some(record) = keys.get(&hash) else {
            return reject(Rejection::InvalidKey);
        };
        if !bool::from(record.hash.ct_eq(&hash)) || record.disabled {
            return reject(Rejection::InvalidKey);
        }
        if request.scope == Scope::Management && !record.management {
            return reject(Rejection::Forbidden);
        }
        let Some(limit) = record.rate_limit else {
            return Admission::Allowed {
                key_id: Some(record.id),
                headers: Vec::new(),
            };
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
        let decision = {
            let Ok(mut buckets) = self.buckets.lock() else {
                return reject(Rejection::RateLimited);
            };
            let state = buckets.entry(record.id).or_default();
            ratelimit::check(&quota, state, now_unix_ms, 1)
        };
        let headers = ratelimit::headers(&decision).collect();
        if decision.allowed {
            Admission::Allowed {
                key_id: Some(record.id),
                headers,
            }
        } else {
            Admission::Rejected {
                reason: Rejection::RateLimited,
                headers,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64, secret: &str, management: bool, disabled: bool) -> KeyRecord {
        KeyRecord {
            id,
            hash: hash_key(secret),
            prefix: secret.chars().take(8).collect(),
            name: format!("k{id}"),
            management,
            disabled,
            rate_limit: None,
            created_at: 0,
        }
    }

    fn ask(cache: &KeyCache, secret: &str, scope: Scope) -> Admission {
        ask_at(cache, secret, scope, 1_700_000_000_000)
    }

    fn ask_at(cache: &KeyCache, secret: &str, scope: Scope, now_unix_ms: u64) -> Admission {
        cache.admit(
            &AdmitRequest {
                secret: secret.into(),
                scope,
            },
            now_unix_ms,
        )
    }

    #[test]
    fn per_key_rate_limit_sets_headers_and_rejects() {
        let mut limited = record(9, "sk-limited", false, false);
        limited.rate_limit = Some(crate::store::RateLimit {
            requests: 2,
            period_secs: 60,
        });
        let cache = KeyCache::new(None, vec![limited]);
        let t = 1_700_000_000_000;
        let header = |a: &Admission, name: &str| {
            let (Admission::Allowed { headers, .. } | Admission::Rejected { headers, .. }) = a;
            headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        let first = ask_at(&cache, "sk-limited", Scope::Inference, t);
        assert!(matches!(first, Admission::Allowed { .. }));
        assert_eq!(header(&first, "X-RateLimit-Limit").as_deref(), Some("2"));
        assert_eq!(
            header(&first, "X-RateLimit-Remaining").as_deref(),
            Some("1")
        );
        let second = ask_at(&cache, "sk-limited", Scope::Inference, t + 10);
        assert_eq!(
            header(&second, "X-RateLimit-Remaining").as_deref(),
            Some("0")
        );
        let third = ask_at(&cache, "sk-limited", Scope::Inference, t + 20);
        assert!(matches!(
            third,
            Admission::Rejected {
                reason: Rejection::RateLimited,
                ..
            }
        ));
        assert!(header(&third, "Retry-After").is_some());
        // 30 s later one request's worth has been replenished.
        let later = ask_at(&cache, "sk-limited", Scope::Inference, t + 30_010);
        assert!(matches!(later, Admission::Allowed { .. }));
    }

    #[test]
    fn master_stored_disabled_unknown_and_scope() {
        let cache = KeyCache::new(
            Some("sk-master"),
            vec![
                record(1, "sk-user", false, false),
                record(2, "sk-off", false, true),
                record(3, "sk-admin", true, false),
            ],
        );
        assert!(matches!(
            ask(&cache, "sk-master", Scope::Management),
            Admission::Allowed { key_id: None, .. }
        ));
        assert!(matches!(
            ask(&cache, "sk-user", Scope::Inference),
            Admission::Allowed {
                key_id: Some(1),
                ..
            }
        ));
        assert!(matches!(
            ask(&cache, "sk-user", Scope::Management),
            Admission::Rejected {
                reason: Rejection::Forbidden,
                ..
            }
        ));
        assert!(matches!(
            ask(&cache, "sk-admin", Scope::Management),
            Admission::Allowed {
                key_id: Some(3),
                ..
            }
        ));
        for bad in ["sk-off", "sk-nope", "", "sk-maste"] {
            assert!(matches!(
                ask(&cache, bad, Scope::Inference),
                Admission::Rejected {
                    reason: Rejection::InvalidKey,
                    ..
                }
            ));
        }
    }
}
