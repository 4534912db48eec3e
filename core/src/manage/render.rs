//! The host's answer as OpenRouter's wire shapes (checked by its SDK's
//! pydantic models), plus ARouter's additions to a key: `rate_limit`,
//! `management` and `allowed_models`. Fields ARouter has no notion of
//! (BYOK usage, workspaces, creators) are sent with a fixed value.

use serde_json::{json, Map, Value};

use super::{
    format_rfc3339, KeyView, ManageAnswer, ManageError, ManageResult, RateLimitSpec, Readiness,
};
use crate::api::{ApiError, Dialect, ErrorKind, Response};

/// Prometheus' text exposition format, version 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The one workspace every key belongs to.
const WORKSPACE_ID: &str = "default";

pub fn render(result: ManageResult) -> Response {
    match result {
        // A new key is a created resource (OpenRouter's SDK expects 201).
        Ok(answer @ ManageAnswer::Created { .. }) => {
            Response::json(201, to_vec(&answer_body(answer)))
        }
        Ok(ManageAnswer::Metrics(text)) => Response {
            status: 200,
            headers: vec![("Content-Type", METRICS_CONTENT_TYPE.to_string())],
            body: text.into_bytes(),
        },
        Ok(ManageAnswer::Batch { answer, origin }) => crate::batch::render(answer, &origin),
        Ok(ManageAnswer::Stored(answer)) => crate::stored::render(answer),
        Ok(ManageAnswer::Readiness(readiness)) => ready(readiness),
        Ok(answer) => Response::json(200, to_vec(&answer_body(answer))),
        Err(err) => Response::from(&error(err)),
    }
}

fn answer_body(answer: ManageAnswer) -> Value {
    match answer {
        ManageAnswer::Created { key, secret } => json!({"data": key_json(&key), "key": secret}),
        ManageAnswer::Key(key) => json!({ "data": key_json(&key) }),
        ManageAnswer::Keys(keys) => {
            json!({ "data": keys.iter().map(key_json).collect::<Vec<_>>() })
        }
        ManageAnswer::Deleted => json!({ "deleted": true }),
        ManageAnswer::Current {
            key,
            is_master,
            default_rate_limit,
        } => {
            json!({ "data": current_json(&key, is_master, default_rate_limit) })
        }
        ManageAnswer::Transactions(page) => super::transactions::page_json(&page),
        ManageAnswer::Generation(row) => super::transactions::generation_json(&row),
        ManageAnswer::Credits { shape, totals } => super::credits::render(shape, totals),
        // Rendered as text by `render`.
        ManageAnswer::Metrics(_) => Value::Null,
        // Rendered in Anthropic's shapes by `render`.
        ManageAnswer::Batch { .. } => Value::Null,
        // Rendered in OpenAI's Responses shapes by `render`.
        ManageAnswer::Stored(_) => Value::Null,
        // Rendered with its own status by `render`.
        ManageAnswer::Readiness(_) => Value::Null,
    }
}

/// `/readyz`: 200 `{"status":"ready"}` when every dependency the gateway
/// needs answered, else 503 `{"status":"unavailable"}`; `checks` says which
/// did. Redis is needed only under `--redis-failure closed` (otherwise the
/// gateway serves without it, each instance enforcing limits alone).
fn ready(readiness: Readiness) -> Response {
    let state = |ok: bool| if ok { "ok" } else { "unavailable" };
    let redis_ok = readiness.redis.is_none_or(|r| r.ok || !r.required);
    let (status, word) = if readiness.store && redis_ok {
        (200, "ready")
    } else {
        (503, "unavailable")
    };
    let mut checks = serde_json::Map::new();
    checks.insert("store".into(), json!(state(readiness.store)));
    if let Some(redis) = readiness.redis {
        checks.insert("redis".into(), json!(state(redis.ok)));
    }
    let body = json!({"status": word, "checks": checks});
    Response::json(status, to_vec(&body))
}

fn error(err: ManageError) -> ApiError {
    match err {
        ManageError::NotFound => ApiError::new(
            Dialect::OpenAi,
            ErrorKind::NotFound,
            "no key with this hash",
        )
        .with_code("not_found"),
        ManageError::GenerationNotFound => ApiError::new(
            Dialect::OpenAi,
            ErrorKind::NotFound,
            "no generation with this id",
        )
        .with_code("not_found"),
        ManageError::Unavailable => ApiError::new(
            Dialect::OpenAi,
            ErrorKind::Unavailable,
            "the account store is unavailable; try again",
        )
        .with_code("store_unavailable"),
        ManageError::Batch(err) => crate::batch::render_error(err),
        ManageError::Stored(err) => crate::stored::render_error(err),
    }
}

fn to_vec(value: &Value) -> Vec<u8> {
    // A `Value` of strings and numbers always serializes.
    serde_json::to_vec(value).unwrap_or_default()
}

fn usd(micros: u64) -> Value {
    json!(micros as f64 / 1_000_000.0)
}

fn time(secs: Option<i64>) -> Value {
    secs.and_then(format_rfc3339)
        .map_or(Value::Null, Value::String)
}

/// The fields `GET /keys/{hash}` and `GET /key` share.
fn common(key: &KeyView) -> Map<String, Value> {
    let mut map = Map::new();
    let mut put = |name: &str, value: Value| {
        map.insert(name.to_string(), value);
    };
    put("label", json!(key.label));
    put("limit", key.limit_micros.map_or(Value::Null, usd));
    put(
        "limit_remaining",
        key.limit_remaining_micros().map_or(Value::Null, usd),
    );
    put(
        "limit_reset",
        key.limit_reset.map_or(Value::Null, |r| json!(r.as_str())),
    );
    put("include_byok_in_limit", json!(key.include_byok_in_limit));
    put("usage", usd(key.usage.total));
    put("usage_daily", usd(key.usage.daily));
    put("usage_weekly", usd(key.usage.weekly));
    put("usage_monthly", usd(key.usage.monthly));
    // ARouter forwards with its own provider keys: no BYOK spending.
    for name in [
        "byok_usage",
        "byok_usage_daily",
        "byok_usage_weekly",
        "byok_usage_monthly",
    ] {
        put(name, json!(0.0));
    }
    put("creator_user_id", Value::Null);
    put("expires_at", time(key.expires_at));
    put(
        "allowed_models",
        key.allowed_models
            .as_ref()
            .map_or(Value::Null, |l| json!(l.patterns())),
    );
    map
}

fn key_json(key: &KeyView) -> Value {
    let mut map = common(key);
    let mut put = |name: &str, value: Value| {
        map.insert(name.to_string(), value);
    };
    put("hash", json!(key.hash));
    put("name", json!(key.name));
    put("disabled", json!(key.disabled));
    put("management", json!(key.management));
    put("created_at", time(Some(key.created_at)));
    put("updated_at", time(key.updated_at));
    put("last_used_at", time(key.last_used_at));
    put("external_user", Value::Null);
    put("workspace_id", json!(WORKSPACE_ID));
    put(
        "rate_limit",
        key.rate_limit.map_or(
            Value::Null,
            |r| json!({"requests": r.requests, "interval": format!("{}s", r.interval_secs)}),
        ),
    );
    Value::Object(map)
}

fn current_json(key: &KeyView, is_master: bool, default_rate: Option<RateLimitSpec>) -> Value {
    let mut map = common(key);
    let mut put = |name: &str, value: Value| {
        map.insert(name.to_string(), value);
    };
    put("is_management_key", json!(key.management || is_master));
    put("is_provisioning_key", json!(key.management || is_master));
    put("is_free_tier", json!(false));
    put("organization_id", Value::Null);
    put("workspace_id", json!(WORKSPACE_ID));
    put("allowed_data_regions", json!([]));
    // ARouter serves no `:free` variants with a daily quota of their own.
    put(
        "free_model_daily_requests",
        json!({"limit": 0, "remaining": 0, "used": 0}),
    );
    let budget = key.limit_micros.map(|limit| {
        json!({
            "scope": "key_limit",
            "budget_id": null,
            "guardrail_id": null,
            "include_byok": key.include_byok_in_limit,
            "limit_usd": usd(limit),
            "remaining_usd": key.limit_remaining_micros().map_or(Value::Null, usd),
            "spend_usd": usd(limit.saturating_sub(key.limit_remaining_micros().unwrap_or(0))),
            "reset_interval": key.limit_reset.map_or(Value::Null, |r| json!(r.as_str())),
            "resets_at": null,
        })
    });
    put("budgets", json!(budget.iter().collect::<Vec<_>>()));
    put("effective_budget", budget.unwrap_or(Value::Null));
    put("rate_limit", rate_limit_json(key, is_master, default_rate));
    Value::Object(map)
}

/// The limit the gateway enforces on this caller, in OpenRouter's shape
/// (`requests: -1` for none).
fn rate_limit_json(key: &KeyView, is_master: bool, default_rate: Option<RateLimitSpec>) -> Value {
    let limit = |r: RateLimitSpec, note: &str| {
        json!({
            "requests": r.requests,
            "interval": format!("{}s", r.interval_secs),
            "note": note,
        })
    };
    let none = |note: &str| json!({"requests": -1, "interval": "0s", "note": note});
    if is_master {
        return none("the master key is not rate-limited");
    }
    match (key.rate_limit, default_rate) {
        (Some(own), _) => limit(own, "this key's own limit, enforced per key"),
        (None, Some(default)) => limit(default, "the gateway's default limit, enforced per key"),
        (None, None) => none("this key has no rate limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manage::{KeyUsage, LimitReset, RateLimitSpec};

    fn view() -> KeyView {
        KeyView {
            hash: "ab".repeat(32),
            name: "ci".into(),
            label: "sk-ar-v1-abc...xyz".into(),
            disabled: false,
            management: false,
            limit_micros: Some(2_000_000),
            limit_reset: Some(LimitReset::Daily),
            include_byok_in_limit: false,
            expires_at: None,
            created_at: 1_764_559_497,
            updated_at: None,
            last_used_at: None,
            usage: KeyUsage {
                total: 1_500_000,
                daily: 500_000,
                weekly: 1_000_000,
                monthly: 1_500_000,
            },
            rate_limit: Some(RateLimitSpec {
                requests: 5,
                interval_secs: 60,
            }),
            allowed_models: None,
        }
    }

    #[test]
    fn key_shape() {
        let body: Value =
            serde_json::from_slice(&render(Ok(ManageAnswer::Key(view()))).body).unwrap();
        let data = &body["data"];
        assert_eq!(data["limit"], json!(2.0));
        assert_eq!(data["limit_remaining"], json!(1.5));
        assert_eq!(data["usage"], json!(1.5));
        assert_eq!(data["created_at"], json!("2025-12-01T03:24:57Z"));
        assert_eq!(
            data["rate_limit"],
            json!({"requests": 5, "interval": "60s"})
        );
        assert_eq!(data["updated_at"], Value::Null);
    }

    #[test]
    fn errors_are_openai_shaped() {
        let r = render(Err(ManageError::NotFound));
        assert_eq!(r.status, 404);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"]["code"], json!("not_found"));
        assert_eq!(render(Err(ManageError::Unavailable)).status, 503);
    }
}
