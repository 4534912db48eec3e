//! Fault injection: rules programmed through `/_replay/faults` (or
//! [`crate::ReplayHandle::push_fault`]) and provider-shaped error bodies.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::matching::{normalize_path, path_matches};

/// What a fault rule applies to. Absent fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultMatch {
    /// Request path (query ignored); a base-path prefix is allowed, as for
    /// transcripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Body `model`, or the `{model}` of a Gemini `/models/{model}:x` path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl FaultMatch {
    pub fn matches(&self, path_and_query: &str, model: Option<&str>) -> bool {
        if let Some(p) = &self.path {
            let (incoming, _) = normalize_path(path_and_query);
            let (want, _) = normalize_path(p);
            if !path_matches(&incoming, &want) {
                return false;
            }
        }
        if let Some(m) = &self.model {
            if model != Some(m.as_str()) {
                return false;
            }
        }
        true
    }
}

/// A fault. Fields combine: e.g. `{"status": 503, "delay_ms": 200}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Answer with this status and a provider-shaped JSON error body instead
    /// of the transcript (429 also gets `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Override the error body of a `status` fault (any JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// `Retry-After` value for a `status` fault (default `1` on 429, none
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// Wait this long before sending the response head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Send the head, then wait this long before the first body byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_delay_ms: Option<u64>,
    /// Send this many body pieces (SSE events), then close the connection
    /// abruptly (no terminating chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_after_events: Option<usize>,
    /// Send this many pieces, then nothing for `stall_ms`, then continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_after_events: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_ms: Option<u64>,
    /// Read the request, then close the socket without any response.
    #[serde(default, skip_serializing_if = "is_false")]
    pub close_without_response: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Fault {
            status: Some(status),
            ..Fault::default()
        }
    }
    pub fn delay_ms(ms: u64) -> Self {
        Fault {
            delay_ms: Some(ms),
            ..Fault::default()
        }
    }
    pub fn first_byte_delay_ms(ms: u64) -> Self {
        Fault {
            first_byte_delay_ms: Some(ms),
            ..Fault::default()
        }
    }
    pub fn cut_after_events(n: usize) -> Self {
        Fault {
            cut_after_events: Some(n),
            ..Fault::default()
        }
    }
    pub fn stall(after_events: usize, ms: u64) -> Self {
        Fault {
            stall_after_events: Some(after_events),
            stall_ms: Some(ms),
            ..Fault::default()
        }
    }
    pub fn close_without_response() -> Self {
        Fault {
            close_without_response: true,
            ..Fault::default()
        }
    }
}

fn default_times() -> u32 {
    1
}

/// A queued fault: the next `times` requests matching `match` get `fault`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(default, rename = "match")]
    pub matcher: FaultMatch,
    pub fault: Fault,
    #[serde(default = "default_times")]
    pub times: u32,
}

impl FaultRule {
    /// A rule for any request, once.
    pub fn once(fault: Fault) -> Self {
        FaultRule {
            matcher: FaultMatch::default(),
            fault,
            times: 1,
        }
    }
    pub fn path(mut self, path: &str) -> Self {
        self.matcher.path = Some(path.to_string());
        self
    }
    pub fn model(mut self, model: &str) -> Self {
        self.matcher.model = Some(model.to_string());
        self
    }
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }
}

/// Which provider's error shape a path gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Google,
}

pub fn dialect_for_path(path_and_query: &str) -> Dialect {
    let (path, _) = normalize_path(path_and_query);
    if path.contains("/v1beta")
        || path.contains(":generateContent")
        || path.contains(":streamGenerateContent")
        || path.contains(":embedContent")
        || path.contains(":batchEmbedContents")
        || path.contains(":countTokens")
    {
        Dialect::Google
    } else if path.contains("/v1/messages") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    }
}

/// Provider-shaped JSON error body for an injected status.
pub fn error_body(dialect: Dialect, status: u16) -> Value {
    let message = format!("replay: injected fault (HTTP {status})");
    match dialect {
        Dialect::OpenAi => {
            let (ty, code) = match status {
                400 => ("invalid_request_error", Value::Null),
                401 => ("invalid_request_error", json!("invalid_api_key")),
                403 => (
                    "invalid_request_error",
                    json!("unsupported_country_region_territory"),
                ),
                404 => ("invalid_request_error", json!("model_not_found")),
                429 => ("requests", json!("rate_limit_exceeded")),
                500..=599 => ("server_error", Value::Null),
                _ => ("invalid_request_error", Value::Null),
            };
            json!({"error": {"message": message, "type": ty, "param": null, "code": code}})
        }
        Dialect::Anthropic => {
            let ty = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                402 => "billing_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                504 => "timeout_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": ty, "message": message}})
        }
        Dialect::Google => {
            let st = match status {
                400 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                409 => "ABORTED",
                429 => "RESOURCE_EXHAUSTED",
                499 => "CANCELLED",
                501 => "UNIMPLEMENTED",
                503 => "UNAVAILABLE",
                504 => "DEADLINE_EXCEEDED",
                _ => "INTERNAL",
            };
            json!({"error": {"code": status, "message": message, "status": st}})
        }
    }
}

/// The fault queue.
#[derive(Debug, Default)]
pub struct FaultQueue {
    rules: Vec<FaultRule>,
}

impl FaultQueue {
    pub fn push(&mut self, rule: FaultRule) {
        if rule.times > 0 {
            self.rules.push(rule);
        }
    }
    pub fn clear(&mut self) {
        self.rules.clear();
    }
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }
    /// Take the first rule matching a request (consuming one of its
    /// `times`).
    pub fn take(&mut self, path_and_query: &str, model: Option<&str>) -> Option<Fault> {
        let i = self
            .rules
            .iter()
            .position(|r| r.matcher.matches(path_and_query, model))?;
        let fault = self.rules[i].fault.clone();
        self.rules[i].times -= 1;
        if self.rules[i].times == 0 {
            self.rules.remove(i);
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects() {
        assert_eq!(dialect_for_path("/v1/chat/completions"), Dialect::OpenAi);
        assert_eq!(dialect_for_path("/v1/embeddings"), Dialect::OpenAi);
        assert_eq!(
            dialect_for_path("/v1/messages?beta=true"),
            Dialect::Anthropic
        );
        assert_eq!(
            dialect_for_path("/v1beta/models/g:streamGenerateContent?alt=sse"),
            Dialect::Google
        );
    }

    #[test]
    fn queue_times_and_match() {
        let mut q = FaultQueue::default();
        q.push(FaultRule::once(Fault::status(429)).model("a").times(2));
        assert!(q.take("/v1/chat/completions", Some("b")).is_none());
        assert!(q.take("/v1/chat/completions", Some("a")).is_some());
        assert!(q.take("/v1/chat/completions", Some("a")).is_some());
        assert!(q.take("/v1/chat/completions", Some("a")).is_none());
    }

    #[test]
    fn rule_json() {
        let r: FaultRule = serde_json::from_str(
            r#"{"match":{"path":"/v1/chat/completions"},"fault":{"stall_after_events":2,"stall_ms":50}}"#,
        )
        .unwrap();
        assert_eq!(r.times, 1);
        assert_eq!(r.fault, Fault::stall(2, 50));
    }
}
