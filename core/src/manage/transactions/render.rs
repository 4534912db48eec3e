//! Rows as JSON: the transactions list (ARouter's shape, documented in
//! spec/openapi.yaml) and a generation in OpenRouter's shape (checked by
//! its SDK's `GenerationResponse` model: every required field is sent,
//! null or a fixed value where ARouter has no such notion).

use serde_json::{json, Map, Value};

use super::{TransactionPage, TransactionStatus, TransactionView};
use crate::manage::format_rfc3339;

/// The one workspace everything belongs to (as for keys).
const WORKSPACE_ID: &str = "default";

fn usd(micros: u64) -> Value {
    json!(micros as f64 / 1_000_000.0)
}

fn time(secs: i64) -> Value {
    format_rfc3339(secs).map_or(Value::Null, Value::String)
}

fn served(row: &TransactionView) -> Option<String> {
    match (&row.provider, &row.model) {
        (Some(p), Some(m)) if !p.is_empty() => Some(format!("{p}/{m}")),
        (_, Some(m)) => Some(m.clone()),
        _ => None,
    }
}

fn row_json(row: &TransactionView) -> Value {
    json!({
        "id": row.id,
        "type": row.kind.as_str(),
        "key_id": row.key_hash,
        "model": served(row),
        "provider": row.provider,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost": usd(row.cost_micros),
        "app_referer": row.app_referer,
        "app_title": row.app_title,
        "status": row.status.as_str(),
        "upstream_status": row.upstream_status,
        "stream": row.stream,
        "latency_ms": row.latency_ms,
        "created_at": time(row.created_at),
        "request_id": row.request_id,
        "note": row.note,
        "batch_id": row.batch_id,
        "custom_id": row.custom_id,
    })
}

pub(crate) fn page_json(page: &TransactionPage) -> Value {
    json!({
        "data": page.rows.iter().map(row_json).collect::<Vec<_>>(),
        "next_cursor": page.next.map(|c| c.encode()),
    })
}

pub(crate) fn generation_json(row: &TransactionView) -> Value {
    let mut map = Map::new();
    let mut put = |name: &str, value: Value| {
        map.insert(name.to_string(), value);
    };
    let tokens = |n: u64| json!(n);
    put("id", json!(row.id));
    put("request_id", json!(row.request_id));
    put("created_at", time(row.created_at));
    put("model", json!(served(row).unwrap_or_default()));
    put("provider_name", json!(row.provider));
    put("streamed", json!(row.stream));
    put(
        "cancelled",
        json!(row.status == TransactionStatus::Cancelled),
    );
    put("latency", json!(row.latency_ms.map(|ms| ms as f64)));
    put("generation_time", json!(row.latency_ms.map(|ms| ms as f64)));
    put("tokens_prompt", tokens(row.prompt_tokens));
    put("tokens_completion", tokens(row.completion_tokens));
    put("native_tokens_prompt", tokens(row.prompt_tokens));
    put("native_tokens_completion", tokens(row.completion_tokens));
    put("native_tokens_cached", tokens(row.cached_tokens));
    put("native_tokens_reasoning", tokens(row.reasoning_tokens));
    put("total_cost", usd(row.cost_micros));
    put("usage", usd(row.cost_micros));
    put("http_referer", json!(row.app_referer));
    // `origin` is required and a string: the referer, when there was one.
    put("origin", json!(row.app_referer.clone().unwrap_or_default()));
    put("is_byok", json!(false));
    put("data_region", json!("global"));
    put("workspace_id", json!(WORKSPACE_ID));
    // Notions ARouter does not record: present, as the model requires.
    for name in [
        "api_type",
        "app_id",
        "cache_discount",
        "external_user",
        "finish_reason",
        "moderation_latency",
        "native_finish_reason",
        "native_tokens_completion_images",
        "num_fetches",
        "num_input_audio_prompt",
        "num_media_completion",
        "num_media_prompt",
        "num_search_results",
        "preset_id",
        "provider_responses",
        "router",
        "service_tier",
        "upstream_id",
        "upstream_inference_cost",
        "user_agent",
        "web_search_engine",
    ] {
        put(name, Value::Null);
    }
    // ARouter's additions, as on a transaction row.
    put("app_title", json!(row.app_title));
    put("status", json!(row.status.as_str()));
    put("upstream_status", json!(row.upstream_status));
    put("key_id", json!(row.key_hash));
    json!({ "data": Value::Object(map) })
}

#[cfg(test)]
mod tests {
    use super::super::{Cursor, TransactionKind};
    use super::*;

    pub(crate) fn row() -> TransactionView {
        TransactionView {
            id: "chatcmpl-1".into(),
            kind: TransactionKind::Usage,
            key_hash: Some("ab".repeat(32)),
            provider: Some("openai".into()),
            model: Some("gpt-4o-mini".into()),
            prompt_tokens: 20,
            completion_tokens: 3,
            cached_tokens: 4,
            reasoning_tokens: 1,
            cost_micros: 1_500,
            app_referer: Some("https://app.example".into()),
            app_title: Some("App".into()),
            status: TransactionStatus::Complete,
            upstream_status: Some(200),
            stream: true,
            latency_ms: Some(12),
            created_at: 1_764_559_497,
            request_id: Some("req-1".into()),
            note: None,
            batch_id: None,
            custom_id: None,
        }
    }

    #[test]
    fn page_shape() {
        let page = TransactionPage {
            rows: vec![row()],
            next: Some(Cursor {
                created_at: 5,
                row: 6,
            }),
        };
        let v = page_json(&page);
        assert_eq!(v["next_cursor"], json!("5_6"));
        let r = &v["data"][0];
        assert_eq!(r["model"], json!("openai/gpt-4o-mini"));
        assert_eq!(r["cost"], json!(0.0015));
        assert_eq!(r["created_at"], json!("2025-12-01T03:24:57Z"));
        assert_eq!(r["type"], json!("usage"));
        assert_eq!(r["status"], json!("complete"));
    }

    #[test]
    fn generation_shape() {
        let v = generation_json(&row());
        let d = &v["data"];
        assert_eq!(d["id"], json!("chatcmpl-1"));
        assert_eq!(d["total_cost"], json!(0.0015));
        assert_eq!(d["tokens_prompt"], json!(20));
        assert_eq!(d["native_tokens_cached"], json!(4));
        assert_eq!(d["origin"], json!("https://app.example"));
        assert_eq!(d["api_type"], Value::Null);
        assert!(d.as_object().unwrap().contains_key("upstream_id"));
    }
}
