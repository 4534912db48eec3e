//! Client requests in the OpenAI dialect: validation and the body sent to
//! an OpenAI-compatible upstream.

use serde_json::{Map, Value};

use super::params;
use crate::api::{ApiError, Dialect};

/// A validated `/v1/chat/completions` request.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub body: Map<String, Value>,
    pub model: Option<String>,
    /// Fallback candidates from `models`, in order.
    pub models: Vec<String>,
    pub stream: bool,
    /// The client asked for the final usage chunk.
    pub include_usage: bool,
}

/// A validated `/v1/embeddings` request.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingsRequest {
    pub body: Map<String, Value>,
    pub model: Option<String>,
    pub models: Vec<String>,
}

fn bad(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::invalid_request(Dialect::OpenAi, message)
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("request body is empty; expected a JSON object"));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad("request body must be a JSON object")),
        Err(e) => Err(bad(format!("request body is not valid JSON: {e}"))),
    }
}

fn model_fields(body: &Map<String, Value>) -> Result<(Option<String>, Vec<String>), ApiError> {
    let model = match body.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("`model` must be a string")),
    };
    let models = match body.get("models") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("`models` must be an array of strings"))?,
        Some(_) => return Err(bad("`models` must be an array of strings")),
    };
    match body.get("route") {
        None | Some(Value::Null) => {}
        Some(Value::String(r)) if r == "fallback" => {}
        Some(_) => return Err(bad("`route` must be \"fallback\"")),
    }
    Ok((model, models))
}

pub fn parse_chat(bytes: &[u8]) -> Result<ChatRequest, ApiError> {
    let body = object(bytes)?;
    let (model, models) = model_fields(&body)?;
    match body.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => {
            for (i, m) in messages.iter().enumerate() {
                let role = m.get("role").and_then(Value::as_str);
                if !matches!(
                    role,
                    Some("system" | "developer" | "user" | "assistant" | "tool" | "function")
                ) {
                    return Err(bad(format!("messages[{i}].role must be one of system, developer, user, assistant, tool")));
                }
            }
        }
        Some(Value::Array(_)) => return Err(bad("`messages` must not be empty")),
        Some(_) => return Err(bad("`messages` must be an array")),
        None => return Err(bad("`messages` is required")),
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("`stream` must be a boolean")),
    };
    let include_usage = stream
        && body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    Ok(ChatRequest {
        body,
        model,
        models,
        stream,
        include_usage,
    })
}

pub fn parse_embeddings(bytes: &[u8]) -> Result<EmbeddingsRequest, ApiError> {
    let body = object(bytes)?;
    let (model, models) = model_fields(&body)?;
    match body.get("input") {
        Some(Value::String(_) | Value::Array(_)) => {}
        Some(_) => return Err(bad("`input` must be a string or an array")),
        None => return Err(bad("`input` is required")),
    }
    Ok(EmbeddingsRequest {
        body,
        model,
        models,
    })
}

/// The body for an OpenAI-compatible upstream: gateway fields removed,
/// unsupported parameters dropped, the model renamed, and usage always
/// requested on streams so the call can be billed.
pub fn upstream_body(
    body: &Map<String, Value>,
    model: &str,
    official: bool,
    stream: bool,
) -> Vec<u8> {
    let mut out = Map::with_capacity(body.len() + 1);
    for (k, v) in body {
        if params::forwarded(k, official) {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("model".into(), Value::String(model.to_string()));
    if stream {
        let options = out
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if !options.is_object() {
            *options = Value::Object(Map::new());
        }
        if let Value::Object(o) = options {
            o.insert("include_usage".into(), Value::Bool(true));
        }
    }
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}
