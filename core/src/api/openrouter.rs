//! OpenRouter's error shape, for every error answered under `/api/v1/`.
//!
//! OpenRouter answers `{"error": {"code": <HTTP status>, "message",
//! "metadata"}}`, and its SDKs pick their typed errors (Unauthorized,
//! TooManyRequests, ...) by validating exactly that: a string `code`, as
//! OpenAI sends, fails validation instead. Errors are built in OpenAI's
//! shape everywhere (the routes share handlers with `/v1/`), so an answer
//! on an `/api/v1/` path is reshaped once, where it is written. OpenAI's
//! `type`, string `code` and `param` move into `metadata`; OpenAI's SDK,
//! pointed at `/api/v1`, still reads `error.message` and takes an integer
//! `code`.

use serde_json::{json, Map, Value};

use super::Response;

/// The path prefix of OpenRouter's API, where ARouter answers its way.
const PREFIX: &str = "/api/v1";

/// Whether `path` (without query) is under `/api/v1/`.
pub fn is_openrouter_path(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `response` with an error body (status 400 and up) in OpenRouter's
/// shape; a success is returned as it is.
pub fn reshape_error(mut response: Response) -> Response {
    if response.status < 400 {
        return response;
    }
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let error = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_object);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map_or_else(|| fallback_message(response.status), str::to_owned);
    let mut metadata = Map::new();
    for key in ["type", "code", "param"] {
        // Strings only: an integer `code` is the status, said once.
        if let Some(value) = error.and_then(|e| e.get(key)).filter(|v| v.is_string()) {
            metadata.insert(key.to_owned(), value.clone());
        }
    }
    let metadata = if metadata.is_empty() {
        Value::Null
    } else {
        Value::Object(metadata)
    };
    let body = json!({"error": {
        "code": response.status,
        "message": message,
        "metadata": metadata,
    }});
    // Serializing a `Value` built from strings and integers cannot fail.
    response.body = serde_json::to_vec(&body).unwrap_or_default();
    // A provider's page may have come as HTML: the body is JSON now.
    response
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
    response
        .headers
        .push(("Content-Type", "application/json".to_owned()));
    response
}

fn fallback_message(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => format!("error {status}"),
    }
}
