//! One request's access record as an OTLP span (the JSON encoding of
//! OTLP/HTTP: ids in hex, 64-bit integers as strings). Ids and counts
//! only, never a key: the same fields as the JSON access line.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arouter_core::billing::MicroUsd;
use arouter_core::exchange::AccessLog;
use serde_json::{json, Value};

use crate::driver::tally::Tally;

/// `SPAN_KIND_SERVER`.
const KIND_SERVER: u8 = 2;
/// `STATUS_CODE_ERROR`, for answers of 500 and above (the server's fault,
/// as the HTTP semantic conventions put it); others leave it unset.
const STATUS_ERROR: u8 = 2;

/// The span of the request `log` describes; `started`/`now` as for its
/// access line. Its trace is the client's (`traceparent`) or a new one.
pub fn span(log: &AccessLog, tally: &Tally, started: Instant, now: Instant) -> Value {
    let end = SystemTime::now();
    let start = end
        .checked_sub(now.saturating_duration_since(started))
        .unwrap_or(end);
    let nanos = |at: SystemTime| {
        at.duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos()
            .to_string()
    };
    let (trace_id, parent) = match &log.trace {
        Some(trace) => (trace.trace_id.clone(), trace.parent_id.clone()),
        None => (random_hex::<16>(), String::new()),
    };
    let mut attributes = vec![
        string("http.request.method", log.method.as_str()),
        string("url.path", &log.path),
        int("http.response.status_code", u64::from(log.status)),
        // The endpoint's name, not a path template (what `http.route` holds).
        string("arouter.route", log.endpoint),
        string("arouter.request_id", log.request_id.as_str()),
        int("arouter.attempts", log.attempts.count() as u64),
    ];
    if let Some(requested) = &log.requested {
        attributes.push(string("gen_ai.request.model", requested));
    }
    if let Some((provider, model)) = log.model.as_deref().and_then(|m| m.split_once('/')) {
        attributes.push(string("gen_ai.provider.name", provider));
        attributes.push(string("gen_ai.response.model", model));
    }
    if log.requested.is_some() {
        attributes.push(int("gen_ai.usage.input_tokens", tally.tokens_in));
        attributes.push(int("gen_ai.usage.output_tokens", tally.tokens_out));
        attributes.push(json!({
            "key": "arouter.cost_usd",
            "value": {"doubleValue": MicroUsd(tally.cost).as_usd()},
        }));
    }
    let status = if log.status >= 500 {
        json!({"code": STATUS_ERROR})
    } else {
        json!({})
    };
    json!({
        "traceId": trace_id,
        "spanId": random_hex::<8>(),
        "parentSpanId": parent,
        "name": log.endpoint,
        "kind": KIND_SERVER,
        "startTimeUnixNano": nanos(start),
        "endTimeUnixNano": nanos(end),
        "attributes": attributes,
        "status": status,
    })
}

fn string(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn int(key: &str, value: u64) -> Value {
    // OTLP/JSON writes 64-bit integers as strings.
    json!({"key": key, "value": {"intValue": value.to_string()}})
}

/// `N` random bytes in lower-case hex; never all zero (an invalid id).
fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    if getrandom::getrandom(&mut bytes).is_err() || bytes.iter().all(|&b| b == 0) {
        // No entropy source: ids need only be unique enough for tracing.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() | 1);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 | 1;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use arouter_core::exchange::{AccessLog, Attempts, Caller};
    use arouter_core::trace::context;
    use arouter_core::Tick;

    use super::span;
    use crate::driver::tally::Tally;

    fn log(traceparent: Option<&str>) -> AccessLog {
        AccessLog {
            method: http::Method::POST,
            path: "/v1/messages".into(),
            endpoint: "messages",
            status: 502,
            caller: Caller::Key(7),
            request_id: Default::default(),
            model: None,
            requested: Some("anthropic/claude".into()),
            dialect: None,
            stream: false,
            attempts: Attempts::default(),
            trace: traceparent.and_then(context),
            started: Tick(0),
            finished: Tick(3),
        }
    }

    #[test]
    fn a_span_is_a_child_of_the_clients_and_flags_a_5xx() {
        let started = Instant::now();
        let now = started + Duration::from_millis(3);
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let s = span(&log(Some(tp)), &Tally::default(), started, now);
        assert_eq!(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(s["name"], "messages");
        assert_eq!(s["status"]["code"], 2);
        let (start, end) = (&s["startTimeUnixNano"], &s["endTimeUnixNano"]);
        let nanos = |v: &serde_json::Value| v.as_str().and_then(|t| t.parse::<u128>().ok());
        assert_eq!(
            nanos(end).zip(nanos(start)).map(|(e, s)| e - s),
            Some(3_000_000)
        );
    }

    #[test]
    fn without_a_traceparent_each_span_starts_a_trace() {
        let at = Instant::now();
        let (a, b) = (
            span(&log(None), &Tally::default(), at, at),
            span(&log(None), &Tally::default(), at, at),
        );
        assert_eq!(a["parentSpanId"], "");
        assert_eq!(a["traceId"].as_str().map(str::len), Some(32));
        assert_ne!(a["traceId"], b["traceId"]);
        assert_eq!(a["spanId"].as_str().map(str::len), Some(16));
    }
}
