//! The access record of one request as a JSON object (`--log-format
//! json`): ids, never the key itself, and no query string (it may carry
//! `key=`). One line per request, for log shippers.

use std::time::Instant;

use arouter_core::api::Dialect;
use arouter_core::billing::MicroUsd;
use arouter_core::exchange::{AccessLog, Caller};
use arouter_core::gateway::Gateway;
use serde_json::{json, Value};

use super::tally::Tally;

/// `started` is when the request's first byte arrived, as an `Instant`;
/// `now` is when its answer had been written.
pub fn json_line(
    log: &AccessLog,
    tally: &Tally,
    started: Instant,
    now: Instant,
    gateway: &Gateway,
) -> String {
    let ms = |at: Instant| at.saturating_duration_since(started).as_secs_f64() * 1000.0;
    let (provider, model) = match log.model.as_deref().map(|m| m.split_once('/')) {
        Some(Some((provider, model))) => (Some(provider), Some(model)),
        _ => (None, None),
    };
    let provider_name = |index: usize| {
        gateway
            .providers()
            .get(index)
            .map_or("", |p| p.name.as_str())
    };
    let failures: Vec<Value> = log
        .attempts
        .iter()
        .filter_map(|a| {
            let failure = a.failure?;
            Some(json!({"provider": provider_name(a.provider), "cause": failure.cause()}))
        })
        .collect();
    let (caller, key_id) = match log.caller {
        Caller::Anonymous => ("anonymous", None),
        Caller::Master => ("master", None),
        Caller::Key(id) => ("key", Some(id)),
    };
    json!({
        "type": "access",
        "request_id": log.request_id.as_str(),
        "caller": caller,
        "key_id": key_id,
        "method": log.method.as_str(),
        "path": log.path,
        "route": log.endpoint,
        "dialect": log.dialect.map(dialect_name),
        "stream": log.stream,
        "status": log.status,
        "model_requested": log.requested,
        "provider": provider,
        "model": model,
        "tokens_in": tally.tokens_in,
        "tokens_out": tally.tokens_out,
        "cost_usd": MicroUsd(tally.cost).as_usd(),
        // Measured by the host, not from the core's ticks: the answer's
        // last bytes were written before its access record, so TTFT ≤
        // latency.
        "latency_ms": ms(now),
        "ttft_ms": tally.first_write.map(ms),
        "app_referer": tally.referer,
        "app_title": tally.title,
        "attempts": log.attempts.count(),
        "fallbacks": log.attempts.fallbacks(),
        "failures": failures,
    })
    .to_string()
}

/// A dialect's label in logs and metrics.
pub fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::OpenAi => "openai",
        Dialect::Anthropic => "anthropic",
        Dialect::Google => "google",
        Dialect::Responses => "responses",
    }
}
