//! The canonical request -> a body for an OpenAI-compatible upstream, for
//! clients of another dialect (Anthropic, Gemini).

use serde_json::{json, Map, Value};

use crate::translate::canonical::{
    ChatRequest, Image, Message, Part, Reasoning, ResponseFormat, Role, ToolChoice,
};

/// OpenAI chat parameters that may arrive in `extra` and mean the same
/// thing here. `extra` holds the client's own dialect, and this encoder
/// serves only non-OpenAI clients, so anything else there is foreign:
/// Anthropic's `metadata` and `service_tier` share a name with OpenAI's
/// but not a shape, and `n`/`logprobs`/`modalities` ask for output no
/// other dialect can carry back.
const FORWARDED_EXTRA: &[&str] = &[
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "store",
    "prediction",
    "web_search_options",
    "verbosity",
    "safety_identifier",
    "prompt_cache_key",
];

/// The official API accepts at most four stop sequences.
const MAX_STOP: usize = 4;

pub fn encode_request(req: &ChatRequest) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(req.model.clone()));
    body.insert("messages".into(), Value::Array(messages(req)));
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                let mut f = Map::new();
                f.insert("name".into(), Value::String(t.name.clone()));
                if let Some(d) = &t.description {
                    f.insert("description".into(), Value::String(d.clone()));
                }
                f.insert("parameters".into(), t.parameters.clone());
                if let Some(s) = t.strict {
                    f.insert("strict".into(), Value::Bool(s));
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &req.tool_choice {
        let v = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
        };
        body.insert("tool_choice".into(), v);
    }
    if let Some(p) = req.parallel_tool_calls {
        body.insert("parallel_tool_calls".into(), Value::Bool(p));
    }
    // `max_tokens` is rejected by OpenAI's reasoning models; the newer name
    // is accepted by every current model and by the compatible servers.
    if let Some(n) = req.max_tokens {
        body.insert("max_completion_tokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if !req.stop.is_empty() {
        let stop: Vec<&String> = req.stop.iter().take(MAX_STOP).collect();
        body.insert("stop".into(), json!(stop));
    }
    if let Some(format) = &req.response_format {
        body.insert("response_format".into(), response_format(format));
    }
    if let Some(effort) = req.reasoning.as_ref().and_then(reasoning_effort) {
        body.insert("reasoning_effort".into(), Value::String(effort));
    }
    if req.stream {
        body.insert("stream".into(), Value::Bool(true));
        // Always: the gateway bills from the final usage chunk.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(user) = &req.user {
        body.insert("user".into(), Value::String(user.clone()));
    }
    for (k, v) in &req.extra {
        if FORWARDED_EXTRA.contains(&k.as_str()) && !body.contains_key(k) {
            body.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

fn response_format(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let mut s = Map::new();
            s.insert("name".into(), Value::String(name.clone()));
            s.insert("schema".into(), schema.clone());
            if let Some(strict) = strict {
                s.insert("strict".into(), Value::Bool(*strict));
            }
            json!({"type": "json_schema", "json_schema": s})
        }
    }
}

/// OpenAI takes an effort level only; a token budget (Anthropic, Gemini)
/// maps onto the nearest level. A zero budget means "no thinking", which
/// is best said by not asking for reasoning at all.
fn reasoning_effort(r: &Reasoning) -> Option<String> {
    if let Some(e) = &r.effort {
        return Some(e.clone());
    }
    let level = match r.budget_tokens? {
        0 => return None,
        1..=2048 => "low",
        2049..=12288 => "medium",
        _ => "high",
    };
    Some(level.to_owned())
}

fn messages(req: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        out.push(json!({"role": "system", "content": req.system.join("\n\n")}));
    }
    for m in &req.messages {
        match m.role {
            Role::Assistant => out.push(assistant(m)),
            Role::User | Role::Tool => user_or_tool(m, &mut out),
        }
    }
    out
}

/// Reasoning parts are dropped: OpenAI does not accept reasoning back in
/// history, and a signature is meaningless to another provider anyway.
fn assistant(m: &Message) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in &m.content {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::ToolCall {
                id,
                name,
                arguments,
                ..
            } => calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            })),
            Part::Image(_) | Part::ToolResult { .. } | Part::Reasoning { .. } => {}
        }
    }
    let mut msg = Map::new();
    msg.insert("role".into(), json!("assistant"));
    // A tool-call turn may have null content; a turn with nothing at all
    // (say, reasoning only) still needs a content to be valid.
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    msg.insert("content".into(), content);
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    Value::Object(msg)
}

/// Tool results become one `tool` message each, first, as OpenAI wants them
/// right after the assistant turn; any text or images of the same turn
/// follow as a user message. `is_error` has no OpenAI field and is dropped.
fn user_or_tool(m: &Message, out: &mut Vec<Value>) {
    let mut parts = Vec::new();
    for part in &m.content {
        match part {
            Part::ToolResult { id, content, .. } => {
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            Part::Text(t) => parts.push(json!({"type": "text", "text": t})),
            Part::Image(image) => {
                let url = match image {
                    Image::Url(u) => u.clone(),
                    Image::Base64 { media_type, data } => {
                        format!("data:{media_type};base64,{data}")
                    }
                };
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            Part::ToolCall { .. } | Part::Reasoning { .. } => {}
        }
    }
    if parts.is_empty() {
        return;
    }
    let content = match parts.as_slice() {
        [only] if only["type"] == "text" => only["text"].clone(),
        _ => Value::Array(parts),
    };
    out.push(json!({"role": "user", "content": content}));
}
