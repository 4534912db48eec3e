use super::*;
use arouter_core::api::Scope;

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
        suffix: String::new(),
        limit_micros: None,
        limit_reset: None,
        include_byok_in_limit: false,
        expires_at: None,
        allowed_models: None,
        updated_at: None,
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
fn with_shared_limits_a_limited_key_is_left_pending_and_others_are_decided() {
    let mut limited = record(9, "sk-limited", false, false);
    limited.rate_limit = Some(crate::store::RateLimit {
        requests: 1,
        period_secs: 60,
    });
    let cache = KeyCache::new(None, vec![limited, record(3, "sk-free", false, false)])
        .with_shared_limits(true);
    let view = cache.view();
    let request = |secret: &str| AdmitRequest {
        secret: secret.into(),
        scope: Scope::Inference,
    };
    let now = 1_700_000_000_000;
    let Verdict::Limit(pending) = cache.verdict_on(&view, &request("sk-limited"), now) else {
        panic!("a limited key waits for the shared limiter");
    };
    assert_eq!(pending.key_id, 9);
    assert_eq!(pending.quota().map(|q| q.limit()), Some(1));
    // Decided elsewhere: this process's own bucket is untouched.
    let denied = ratelimit::check(
        &pending.quota().unwrap(),
        &mut ratelimit::GcraState {
            tat_ms: now + 60_000,
            tat_frac: 0,
        },
        now,
        1,
    );
    assert!(matches!(
        pending.finish(Some(denied)),
        Admission::Rejected {
            reason: Rejection::RateLimited,
            ..
        }
    ));
    assert!(matches!(
        cache.verdict_on(&view, &request("sk-free"), now),
        Verdict::Done(Admission::Allowed {
            key_id: Some(3),
            ..
        })
    ));
    assert!(matches!(
        cache.verdict_on(&view, &request("sk-nope"), now),
        Verdict::Done(Admission::Rejected {
            reason: Rejection::InvalidKey,
            ..
        })
    ));
    // The fallback: decided on the local bucket, once, then refused.
    assert!(matches!(
        cache.admit(&request("sk-limited"), now),
        Admission::Allowed { .. }
    ));
    assert!(matches!(
        cache.admit(&request("sk-limited"), now),
        Admission::Rejected {
            reason: Rejection::RateLimited,
            ..
        }
    ));
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

fn header(a: &Admission, name: &str) -> Option<String> {
    let (Admission::Allowed { headers, .. } | Admission::Rejected { headers, .. }) = a;
    headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn the_default_limit_applies_to_keys_without_their_own() {
    let own = limited(2, "sk-own", 5);
    let cache = KeyCache::new(
        Some("sk-master"),
        vec![record(1, "sk-plain", false, false), own],
    )
    .with_default_rate_limit(Some(crate::store::RateLimit {
        requests: 2,
        period_secs: 60,
    }));
    let t = 1_700_000_000_000;
    let plain = ask_at(&cache, "sk-plain", Scope::Inference, t);
    assert_eq!(header(&plain, "X-RateLimit-Limit").as_deref(), Some("2"));
    let own = ask_at(&cache, "sk-own", Scope::Inference, t);
    assert_eq!(header(&own, "X-RateLimit-Limit").as_deref(), Some("5"));
    // A refusal for the wrong scope is counted and says so.
    let refused = ask_at(&cache, "sk-plain", Scope::Management, t);
    assert!(matches!(
        refused,
        Admission::Rejected {
            reason: Rejection::Forbidden,
            ..
        }
    ));
    assert_eq!(
        header(&refused, "X-RateLimit-Remaining").as_deref(),
        Some("0")
    );
    let over = ask_at(&cache, "sk-plain", Scope::Inference, t);
    assert!(matches!(
        over,
        Admission::Rejected {
            reason: Rejection::RateLimited,
            ..
        }
    ));
    assert_eq!(header(&over, "Retry-After").as_deref(), Some("30"));
    // The master key is not limited, so it has no such headers.
    for _ in 0..5 {
        let master = ask_at(&cache, "sk-master", Scope::Management, t);
        assert!(matches!(master, Admission::Allowed { key_id: None, .. }));
        assert_eq!(header(&master, "X-RateLimit-Limit"), None);
    }
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

fn limited(id: i64, secret: &str, requests: u32) -> KeyRecord {
    let mut r = record(id, secret, false, false);
    r.rate_limit = Some(crate::store::RateLimit {
        requests,
        period_secs: 60,
    });
    r
}

fn allowed(a: &Admission) -> bool {
    matches!(a, Admission::Allowed { .. })
}

#[test]
fn a_reload_is_seen_by_every_view_and_keeps_the_buckets() {
    let cache = KeyCache::new(None, vec![limited(1, "sk-a", 2)]);
    let view = cache.view();
    let t = 1_700_000_000_000;
    let on = |view: &KeyView, secret: &str| {
        cache.admit_on(
            view,
            &AdmitRequest {
                secret: secret.into(),
                scope: Scope::Inference,
            },
            t,
        )
    };
    assert!(allowed(&on(&view, "sk-a")));
    assert!(!allowed(&on(&view, "sk-b")));
    // The reload adds a key; key 1 keeps its bucket (one of two used).
    cache.reload(vec![limited(1, "sk-a", 2), record(2, "sk-b", false, false)]);
    assert!(allowed(&on(&view, "sk-b")));
    assert!(allowed(&on(&view, "sk-a")));
    assert!(!allowed(&on(&view, "sk-a")));
    // A view made before the reload on another thread sees it too.
    let other = std::thread::scope(|s| {
        s.spawn(|| {
            let view = cache.view();
            cache.reload(vec![limited(1, "sk-a", 2)]);
            (allowed(&on(&view, "sk-a")), allowed(&on(&view, "sk-b")))
        })
        .join()
        .unwrap()
    });
    assert_eq!(other, (false, false));
    assert!(!allowed(&on(&view, "sk-b")));
}

#[test]
fn the_limit_is_exact_across_worker_threads() {
    // Eight workers, each with its own view, share one key of 500 per
    // minute at one instant: exactly 500 pass.
    let cache = KeyCache::new(None, vec![limited(7, "sk-shared", 500)]);
    let request = AdmitRequest {
        secret: "sk-shared".into(),
        scope: Scope::Inference,
    };
    let admitted: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let view = cache.view();
                    (0..200)
                        .filter(|_| allowed(&cache.admit_on(&view, &request, 1_700_000_000_000)))
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(admitted, 500);
}
