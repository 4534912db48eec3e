//! The canonical answer -> the `response` object a Responses client gets.

use serde_json::{json, Map, Value};

use super::reasoning_carrier;
use crate::billing::MicroUsd;
use crate::translate::canonical::{id_with_signature, ChatResponse, Finish, Part};
use crate::translate::finish::FinishReason;
use crate::usage::Usage;

/// The id a Responses client sees for an upstream answer id.
pub(crate) fn response_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_owned()
    } else {
        format!("resp_{id}")
    }
}

/// The id without its `resp_` prefix: the stem of the output items' ids.
fn stem(id: &str) -> &str {
    id.strip_prefix("resp_").unwrap_or(id)
}

/// `status` and `incomplete_details` for how the answer ended.
pub(crate) fn status_of(finish: Option<&Finish>) -> (&'static str, Value) {
    match finish.map(|f| f.reason) {
        Some(FinishReason::Length) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(FinishReason::ContentFilter) => ("incomplete", json!({"reason": "content_filter"})),
        Some(FinishReason::Error) => ("failed", Value::Null),
        _ => ("completed", Value::Null),
    }
}

/// `usage` in the Responses shape; `cost` is OpenRouter's `usage.cost`
/// (USD), as on chat answers.
pub(crate) fn usage_json(usage: Option<&Usage>, cost: Option<MicroUsd>) -> Value {
    let Some(u) = usage else {
        return Value::Null;
    };
    let mut v = json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total(),
    });
    if let (Some(cost), Value::Object(obj)) = (cost, &mut v) {
        obj.insert("cost".into(), json!(cost.as_usd()));
    }
    v
}

/// The output items for the answer's parts, in the model's order:
/// adjacent text joins into one `message`, each call is a `function_call`,
/// each reasoning part a `reasoning` item.
pub(crate) fn output_items(resp_id: &str, content: &[Part]) -> Vec<Value> {
    let stem = stem(resp_id);
    let mut out: Vec<Value> = Vec::new();
    let mut text: Option<String> = None;
    let mut messages = 0;
    let mut flush = |text: &mut Option<String>, out: &mut Vec<Value>| {
        if let Some(t) = text.take() {
            out.push(message_item(&item_id("msg", stem, messages), &t));
            messages += 1;
        }
    };
    let mut reasonings = 0;
    let mut calls = 0;
    for part in content {
        match part {
            Part::Text(t) => text.get_or_insert_with(String::new).push_str(t),
            Part::ToolCall {
                id,
                name,
                arguments,
                signature,
            } => {
                flush(&mut text, &mut out);
                out.push(function_call_item(
                    &item_id("fc", stem, calls),
                    &id_with_signature(id, signature.as_deref()),
                    name,
                    arguments,
                ));
                calls += 1;
            }
            Part::Reasoning {
                text: r,
                signature,
                redacted,
            } => {
                flush(&mut text, &mut out);
                out.push(reasoning_item(
                    &item_id("rs", stem, reasonings),
                    r,
                    signature.as_deref(),
                    redacted.as_deref(),
                ));
                reasonings += 1;
            }
            Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }
    flush(&mut text, &mut out);
    out
}

pub(crate) fn item_id(prefix: &str, stem: &str, n: usize) -> String {
    if n == 0 {
        format!("{prefix}_{stem}")
    } else {
        format!("{prefix}_{stem}_{n}")
    }
}

pub(crate) fn message_item(id: &str, text: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "status": "completed",
        "role": "assistant",
        "content": [output_text(text)],
    })
}

pub(crate) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A function call item. Its `id` is made from the response's, as the
/// other items' are (not from `call_id`: providers such as Gemini number
/// their calls anew in each answer), so an `item_reference` names one item.
pub(crate) fn function_call_item(id: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "type": "function_call",
        "id": id,
        "call_id": call_id,
        "name": name,
        // SDKs `JSON.parse` the arguments; an empty string throws.
        "arguments": if arguments.is_empty() { "{}" } else { arguments },
        "status": "completed",
    })
}

pub(crate) fn reasoning_item(
    id: &str,
    text: &str,
    signature: Option<&str>,
    redacted: Option<&str>,
) -> Value {
    let summary: Vec<Value> = if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "summary_text", "text": text})]
    };
    let mut item = json!({"type": "reasoning", "id": id, "summary": summary});
    if let (Some(carrier), Value::Object(obj)) =
        (reasoning_carrier::encode(signature, redacted), &mut item)
    {
        obj.insert("encrypted_content".into(), Value::String(carrier));
    }
    item
}

/// The request's settings as a `response` object reports them: what the
/// client sent, or OpenAI's defaults (`store` true; the plan sets it
/// false when the gateway keeps no responses).
pub(crate) fn echo(request: &Map<String, Value>) -> Map<String, Value> {
    let get = |key: &str, default: Value| match request.get(key) {
        None | Some(Value::Null) => default,
        Some(v) => v.clone(),
    };
    let reasoning = request.get("reasoning").unwrap_or(&Value::Null);
    let mut out = Map::new();
    for (key, value) in [
        ("instructions", get("instructions", Value::Null)),
        ("max_output_tokens", get("max_output_tokens", Value::Null)),
        ("max_tool_calls", get("max_tool_calls", Value::Null)),
        ("metadata", get("metadata", json!({}))),
        (
            "parallel_tool_calls",
            get("parallel_tool_calls", json!(true)),
        ),
        (
            "previous_response_id",
            get("previous_response_id", Value::Null),
        ),
        (
            "reasoning",
            json!({
                "effort": reasoning.get("effort").cloned().unwrap_or(Value::Null),
                "summary": reasoning.get("summary").cloned().unwrap_or(Value::Null),
            }),
        ),
        ("store", get("store", json!(true))),
        ("temperature", get("temperature", json!(1.0))),
        ("text", get("text", json!({"format": {"type": "text"}}))),
        ("tool_choice", get("tool_choice", json!("auto"))),
        ("tools", get("tools", json!([]))),
        ("top_p", get("top_p", json!(1.0))),
        ("truncation", get("truncation", json!("disabled"))),
        ("user", get("user", Value::Null)),
    ] {
        out.insert(key.to_owned(), value);
    }
    out
}

/// The whole `response` object. `model` is the label the client sees
/// (`provider/model`); `request` is the client's body, echoed.
pub fn encode_response(
    resp: &ChatResponse,
    model: &str,
    request: &Map<String, Value>,
    cost: Option<MicroUsd>,
) -> Vec<u8> {
    let id = response_id(&resp.id);
    let (status, incomplete) = status_of(resp.finish.as_ref());
    let error = if status == "failed" {
        json!({"code": "server_error", "message": "the provider ended its answer with an error"})
    } else {
        Value::Null
    };
    let mut obj = Map::new();
    obj.insert("id".into(), json!(id));
    obj.insert("object".into(), json!("response"));
    obj.insert("created_at".into(), json!(resp.created.unwrap_or(0)));
    obj.insert("status".into(), json!(status));
    obj.insert("background".into(), json!(false));
    obj.insert("error".into(), error);
    obj.insert("incomplete_details".into(), incomplete);
    obj.insert("model".into(), json!(model));
    obj.insert(
        "output".into(),
        Value::Array(output_items(&id, &resp.content)),
    );
    obj.extend(echo(request));
    obj.insert("usage".into(), usage_json(resp.usage.as_ref(), cost));
    serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
}
