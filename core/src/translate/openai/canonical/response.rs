//! Non-stream answers: an upstream `chat.completion` -> canonical, and
//! canonical -> the `chat.completion` a client gets.

use serde_json::{json, Map, Value};

use crate::billing::MicroUsd;
use crate::translate::canonical::{ChatResponse, Finish, Part};
use crate::translate::finish::FinishReason;
use crate::translate::DecodeError;
use crate::usage::Usage;

/// Only the first choice is read: the canonical answer has one, and the
/// encoder never asks a compatible upstream for `n > 1`.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    let Value::Object(mut obj) = v else {
        return Err(DecodeError::Shape("is not a JSON object"));
    };
    if let Some(message) = error_message(&obj) {
        return Err(DecodeError::Upstream(message));
    }
    let choice = match obj.get_mut("choices") {
        Some(Value::Array(choices)) => match choices.get_mut(0) {
            Some(Value::Object(c)) => std::mem::take(c),
            _ => return Err(DecodeError::Shape("has no choices")),
        },
        _ => return Err(DecodeError::Shape("has no choices")),
    };
    let mut content = Vec::new();
    let mut saw_tool_calls = false;
    if let Some(Value::Object(message)) = choice.get("message") {
        if let Some(r) = reasoning(message) {
            content.push(r);
        }
        for key in ["content", "refusal"] {
            // A refusal is the model's answer to show; it has no other slot.
            let text = match message.get(key) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect(),
                _ => String::new(),
            };
            if !text.is_empty() {
                content.push(Part::Text(text));
            }
        }
        if let Some(Value::Array(calls)) = message.get("tool_calls") {
            for (i, call) in calls.iter().enumerate() {
                content.push(tool_call(call, i));
                saw_tool_calls = true;
            }
        }
        if let Some(call) = message.get("function_call").filter(|c| c.is_object()) {
            content.push(tool_call(&json!({"function": call}), 0));
            saw_tool_calls = true;
        }
    }
    let finish = finish_of(
        choice.get("finish_reason").and_then(Value::as_str),
        choice.get("native_finish_reason").and_then(Value::as_str),
        saw_tool_calls,
    );
    Ok(ChatResponse {
        id: string_field(&obj, "id"),
        model: string_field(&obj, "model"),
        created: obj.get("created").and_then(Value::as_u64),
        content,
        finish: Some(finish),
        usage: obj.get("usage").and_then(Usage::from_openai),
    })
}

fn string_field(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The canonical finish for an upstream choice. Some compatible servers
/// say `stop` after calling tools, or say nothing; a client of another
/// dialect would then not run the tools, so tool calls decide.
pub(crate) fn finish_of(
    reason: Option<&str>,
    native: Option<&str>,
    saw_tool_calls: bool,
) -> Finish {
    let normalized = match reason {
        Some(r) => FinishReason::normalize(r),
        None => FinishReason::Stop,
    };
    let reason_word = reason.unwrap_or(if saw_tool_calls { "tool_calls" } else { "stop" });
    let normalized = if saw_tool_calls && normalized == FinishReason::Stop {
        FinishReason::ToolCalls
    } else {
        normalized
    };
    Finish {
        reason: normalized,
        native: native.unwrap_or(reason_word).to_owned(),
    }
}

fn tool_call(call: &Value, i: usize) -> Part {
    let f = call.get("function").unwrap_or(&Value::Null);
    let arguments = match f.get("arguments") {
        Some(Value::String(a)) => a.clone(),
        None | Some(Value::Null) => "{}".to_owned(),
        Some(other) => other.to_string(),
    };
    Part::ToolCall {
        id: call
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("call_{i}"), str::to_owned),
        name: f
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        arguments,
        signature: None,
    }
}

/// `reasoning_content` (DeepSeek, vLLM) or `reasoning` (OpenRouter,
/// Ollama), never both: some servers send the same text under each name.
fn reasoning(message: &Map<String, Value>) -> Option<Part> {
    let text = ["reasoning_content", "reasoning"].iter().find_map(|k| {
        message
            .get(*k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    });
    let details = message.get("reasoning_details").and_then(Value::as_array);
    let signature = details.and_then(|d| {
        d.iter()
            .rev()
            .find_map(|x| x.get("signature").and_then(Value::as_str))
    });
    let redacted = details.and_then(|d| {
        d.iter()
            .filter(|x| x.get("type").and_then(Value::as_str) == Some("reasoning.encrypted"))
            .find_map(|x| x.get("data").and_then(Value::as_str))
    });
    if text.is_none() && signature.is_none() && redacted.is_none() {
        return None;
    }
    Some(Part::Reasoning {
        text: text.unwrap_or_default().to_owned(),
        signature: signature.map(str::to_owned),
        redacted: redacted.map(str::to_owned),
    })
}

pub fn encode_response(resp: &ChatResponse, model: &str) -> Vec<u8> {
    encode_response_with_cost(resp, model, None)
}

/// `encode_response` with the call's cost as `usage.cost` (OpenRouter's
/// field: USD) when there is usage to report.
pub fn encode_response_with_cost(
    resp: &ChatResponse,
    model: &str,
    cost: Option<MicroUsd>,
) -> Vec<u8> {
    let mut text: Option<String> = None;
    let mut reasoning_text: Option<String> = None;
    let mut details = Vec::new();
    let mut calls = Vec::new();
    for part in &resp.content {
        match part {
            Part::Text(t) => text.get_or_insert_with(String::new).push_str(t),
            Part::Reasoning {
                text: r,
                signature,
                redacted,
            } => {
                reasoning_text.get_or_insert_with(String::new).push_str(r);
                if let Some(data) = redacted {
                    details.push(json!({"type": "reasoning.encrypted", "data": data, "index": details.len()}));
                } else if signature.is_some() {
                    details.push(json!({"type": "reasoning.text", "text": r, "signature": signature, "index": details.len()}));
                }
            }
            Part::ToolCall {
                id,
                name,
                arguments,
                signature,
            } => calls.push(json!({
                "id": super::tool_call_id(id, signature.as_deref()),
                "type": "function",
                // A call with no arguments (a stream that sent none) is
                // `{}`: SDKs `JSON.parse` this text and `""` throws.
                "function": {"name": name, "arguments": if arguments.is_empty() { "{}" } else { arguments }},
            })),
            Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), json!(text));
    message.insert("refusal".into(), Value::Null);
    if let Some(r) = reasoning_text {
        message.insert("reasoning".into(), Value::String(r));
    }
    if !details.is_empty() {
        // OpenRouter's field: what a client sends back so the provider can
        // verify its own reasoning on the next turn.
        message.insert("reasoning_details".into(), Value::Array(details));
    }
    let saw_tool_calls = !calls.is_empty();
    if saw_tool_calls {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let (reason, native) = match &resp.finish {
        Some(f) => (f.reason, Value::String(f.native.clone())),
        None if saw_tool_calls => (FinishReason::ToolCalls, Value::Null),
        None => (FinishReason::Stop, Value::Null),
    };
    let mut out = Map::new();
    out.insert("id".into(), Value::String(completion_id(&resp.id)));
    out.insert("object".into(), json!("chat.completion"));
    out.insert("created".into(), json!(resp.created.unwrap_or(0)));
    out.insert("model".into(), json!(model));
    out.insert(
        "choices".into(),
        json!([{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": reason.as_str(),
            "native_finish_reason": native,
        }]),
    );
    if let Some(u) = &resp.usage {
        out.insert("usage".into(), usage_json(u, cost));
    }
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}

/// OpenAI completion ids start with `chatcmpl-`; another provider's id
/// (`msg_...`) is kept after the prefix so logs can still be matched.
pub(crate) fn completion_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") {
        id.to_owned()
    } else if id.is_empty() {
        "chatcmpl-arouter".to_owned()
    } else {
        format!("chatcmpl-{id}")
    }
}

fn usage_json(u: &Usage, cost: Option<MicroUsd>) -> Value {
    let mut usage = json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total(),
        "prompt_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    });
    if let (Some(cost), Value::Object(obj)) = (cost, &mut usage) {
        obj.insert("cost".into(), json!(cost.as_usd()));
    }
    usage
}

/// The human message of an OpenAI-style error body: `{"error": {"message"}}`,
/// or the plain `{"error": "..."}` / `{"message": "..."}` some compatible
/// servers send.
pub fn decode_error(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(obj) => error_message(&obj),
        _ => None,
    }
}

fn error_message(obj: &Map<String, Value>) -> Option<String> {
    let found = match obj.get("error") {
        Some(Value::Object(e)) => e.get("message").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ if !obj.contains_key("choices") => obj.get("message").and_then(Value::as_str),
        _ => None,
    };
    found.map(str::to_owned)
}
