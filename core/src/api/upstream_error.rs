//! A provider's own error body, answered on a route of the same dialect.
//!
//! It is relayed as sent when it already has the shape the dialect
//! documents, so SDKs raise what they would against the provider. Providers
//! do not always keep to their own shape (a Gemini 404 without
//! `error.code`, a compatible server's `{"error": "text"}`, a proxy's HTML
//! page), and a client's SDK or a spec-checking tool then fails on the body
//! instead of reporting the error. Such a body is written anew in the
//! dialect's shape, keeping the provider's message, and its error type
//! (OpenAI, Anthropic) or status name (Google) when the dialect knows it.

use serde_json::{json, Map, Value};

use super::{Dialect, ErrorKind};

/// Anthropic's documented `error.type`s.
const ANTHROPIC_TYPES: [&str; 10] = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "billing_error",
    "timeout_error",
];

/// The google.rpc.Code names.
const GOOGLE_STATUSES: [&str; 16] = [
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
];

/// `None` when `body` is already a well-formed `dialect` error (relay it as
/// sent); otherwise the error body to send instead. `status` is the
/// provider's HTTP status, which the client still gets.
pub fn normalize(dialect: Dialect, status: u16, body: &[u8]) -> Option<Vec<u8>> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let root = parsed.as_ref();
    let conforms = root
        .and_then(Value::as_object)
        .is_some_and(|obj| match dialect {
            Dialect::OpenAi | Dialect::Responses => openai_conforms(obj),
            Dialect::Anthropic => anthropic_conforms(obj),
            Dialect::Google => google_conforms(obj),
        });
    if conforms {
        return None;
    }
    let error = root.and_then(error_object);
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let message = root
        .and_then(message_of)
        .unwrap_or_else(|| format!("the provider answered {status}"));
    let kind = ErrorKind::from_upstream_status(status);
    let value = match dialect {
        Dialect::OpenAi | Dialect::Responses => {
            let code = error
                .and_then(|e| e.get("code"))
                .filter(|c| c.is_string() || c.is_i64() || c.is_u64())
                .cloned()
                .unwrap_or(Value::Null);
            let param = text("param").map_or(Value::Null, Value::from);
            json!({"error": {
                "message": message,
                "type": text("type").unwrap_or(kind.openai_type()),
                "code": code,
                "param": param,
            }})
        }
        Dialect::Anthropic => {
            let kind_name = text("type")
                .filter(|t| ANTHROPIC_TYPES.contains(t))
                .unwrap_or(kind.anthropic_type());
            json!({"type": "error", "error": {"type": kind_name, "message": message}})
        }
        Dialect::Google => {
            let name = text("status")
                .filter(|s| GOOGLE_STATUSES.contains(s))
                .unwrap_or(kind.google_status());
            json!({"error": {"code": status, "message": message, "status": name}})
        }
    };
    // Serializing a `Value` built from strings and integers cannot fail.
    Some(serde_json::to_vec(&value).unwrap_or_default())
}

/// `{"error": {...}}`, also as the first element of a Gemini JSON-array
/// stream.
fn error_object(root: &Value) -> Option<&Map<String, Value>> {
    let root = match root {
        Value::Array(items) => items.iter().find(|v| v.get("error").is_some())?,
        other => other,
    };
    root.get("error")?.as_object()
}

/// The provider's human message, whatever shape carried it.
fn message_of(root: &Value) -> Option<String> {
    let non_empty = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(error) = error_object(root) {
        return non_empty(error.get("message"))
            .or_else(|| non_empty(error.get("type")))
            .or_else(|| non_empty(error.get("status")));
    }
    non_empty(root.get("error")).or_else(|| non_empty(root.get("message")))
}

fn is_str(v: Option<&Value>) -> bool {
    v.is_some_and(Value::is_string)
}

fn openai_conforms(root: &Map<String, Value>) -> bool {
    let Some(Value::Object(e)) = root.get("error") else {
        return false;
    };
    is_str(e.get("message"))
        && is_str(e.get("type"))
        && e.get("code")
            .is_none_or(|c| c.is_null() || c.is_string() || c.is_i64() || c.is_u64())
        && e.get("param").is_none_or(|p| p.is_null() || p.is_string())
}

fn anthropic_conforms(root: &Map<String, Value>) -> bool {
    let Some(Value::Object(e)) = root.get("error") else {
        return false;
    };
    root.get("type").and_then(Value::as_str) == Some("error")
        && e.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| ANTHROPIC_TYPES.contains(&t))
        && is_str(e.get("message"))
        && root
            .get("request_id")
            .is_none_or(|r| r.is_null() || r.is_string())
}

fn google_conforms(root: &Map<String, Value>) -> bool {
    let Some(Value::Object(e)) = root.get("error") else {
        return false;
    };
    e.get("code").is_some_and(|c| c.is_i64() || c.is_u64())
        && is_str(e.get("message"))
        && e.get("status")
            .and_then(Value::as_str)
            .is_some_and(|s| GOOGLE_STATUSES.contains(&s))
        && e.get("details").is_none_or(|d| {
            d.as_array()
                .is_some_and(|items| items.iter().all(Value::is_object))
        })
}
