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
    let usage_include = usage_include(&body)?;
    let include_usage = stream
        && (usage_include
            || body
                .get("stream_options")
                .and_then(|o| o.get("include_usage"))
                .and_then(Value::as_bool)
                .unwrap_or(false));
    Ok(ChatRequest {
        body,
        model,
        models,
        stream,
        include_usage,
    })
}

/// OpenRouter's usage accounting, `"usage": {"include": true}` (sent by
/// its AI SDK provider): a stream then ends with the usage chunk, as for
/// `stream_options.include_usage`. (Whole answers always carry `usage`,
/// `cost` included.)
fn usage_include(body: &Map<String, Value>) -> Result<bool, ApiError> {
    match body.get("usage") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(usage)) => match usage.get("include") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(include)) => Ok(*include),
            Some(_) => Err(bad("`usage.include` must be a boolean")),
        },
        Some(_) => Err(bad("`usage` must be an object such as {\"include\": true}")),
    }
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
    // Written straight from the parsed request, in its key order, with no
    // copy of the (possibly large) messages.
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_json(out, name);
        out.push(b':');
    };
    for (k, v) in body {
        if !params::forwarded(k, official) {
            continue;
        }
        key(&mut out, k);
        match k.as_str() {
            "model" => write_json(&mut out, model),
            "stream_options" if stream => write_stream_options(&mut out, v),
            _ => write_json(&mut out, v),
        }
    }
    if !body.contains_key("model") {
        key(&mut out, "model");
        write_json(&mut out, model);
    }
    if stream && !body.contains_key("stream_options") {
        key(&mut out, "stream_options");
        write_stream_options(&mut out, &Value::Null);
    }
    out.push(b'}');
    out
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serializing a string or a parsed `Value` into memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The client's stream options with usage always requested, so every
/// streamed call can be billed.
fn write_stream_options(out: &mut Vec<u8>, options: &Value) {
    out.push(b'{');
    if let Value::Object(options) = options {
        for (k, v) in options
            .iter()
            .filter(|(k, _)| k.as_str() != "include_usage")
        {
            write_json(out, k);
            out.push(b':');
            write_json(out, v);
            out.push(b',');
        }
    }
    out.extend_from_slice(br#""include_usage":true}"#);
}
