//! Non-stream Anthropic Message <-> canonical response.

use serde_json::{json, Map, Value};

use super::blocks::client_output_block;
use super::blocks::decode_output_block;
use super::error::decode_error;
use super::stop_reason::{finish_from_stop_reason, stop_reason};
use super::usage::{usage_object, RawUsage};
use crate::translate::canonical::{ChatResponse, Part};
use crate::translate::DecodeError;

/// Upstream Message body -> canonical. Server-tool blocks are skipped (see
/// `blocks::decode_output_block`).
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let value: Value = serde_json::from_slice(body)?;
    if !value.is_object() {
        return Err(DecodeError::Shape("is not a JSON object"));
    }
    if value.get("type").and_then(Value::as_str) == Some("error") {
        let message = decode_error(body).unwrap_or_else(|| "upstream error".into());
        return Err(DecodeError::Upstream(message));
    }
    let content = match value.get("content") {
        Some(Value::Array(blocks)) => blocks.iter().filter_map(decode_output_block).collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(DecodeError::Shape("has a `content` that is not a list")),
    };
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Ok(ChatResponse {
        id: text("id"),
        model: text("model"),
        created: None,
        content,
        finish: value
            .get("stop_reason")
            .and_then(Value::as_str)
            .map(finish_from_stop_reason),
        usage: value
            .get("usage")
            .and_then(RawUsage::from_value)
            .map(RawUsage::to_canonical),
    })
}

/// The id shown to Anthropic clients: Anthropic's own ids start `msg_`.
pub(crate) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{id}")
    }
}

/// Canonical -> an Anthropic Message body. `stop_sequence` is always null:
/// the canonical finish does not keep which sequence matched.
pub fn encode_response(resp: &ChatResponse, model: &str) -> Vec<u8> {
    let content: Vec<Value> = resp
        .content
        .iter()
        .filter_map(client_output_block)
        .collect();
    let has_tool_calls = resp
        .content
        .iter()
        .any(|p| matches!(p, Part::ToolCall { .. }));
    let usage = resp.usage.unwrap_or_default();
    let mut body = Map::new();
    body.insert("id".into(), message_id(&resp.id).into());
    body.insert("type".into(), "message".into());
    body.insert("role".into(), "assistant".into());
    body.insert("model".into(), model.into());
    body.insert("content".into(), Value::Array(content));
    body.insert(
        "stop_reason".into(),
        json!(stop_reason(resp.finish.as_ref(), has_tool_calls)),
    );
    body.insert("stop_sequence".into(), Value::Null);
    body.insert("usage".into(), Value::Object(usage_object(&usage)));
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}
