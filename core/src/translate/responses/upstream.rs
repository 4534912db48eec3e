//! A Responses API provider's answers -> canonical: what the gateway reads
//! on the side of a relayed answer (its id, usage and how it ended), whole
//! or streamed.

use std::collections::HashMap;

use serde_json::Value;

use crate::translate::canonical::{ChatResponse, Finish, Part, StreamEvent};
use crate::translate::finish::FinishReason;
use crate::translate::DecodeError;
use crate::usage::Usage;

/// Reads a Responses `usage` object.
pub fn usage_of(v: &Value) -> Option<Usage> {
    if !v.is_object() {
        return None;
    }
    let count = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    let input = v.get("input_tokens_details").unwrap_or(&Value::Null);
    let output = v.get("output_tokens_details").unwrap_or(&Value::Null);
    Some(Usage {
        prompt_tokens: count(v, "input_tokens"),
        completion_tokens: count(v, "output_tokens"),
        cached_tokens: count(input, "cached_tokens"),
        cache_write_tokens: 0,
        reasoning_tokens: count(output, "reasoning_tokens"),
    })
}

/// How a `response` object ended, in canonical terms.
fn finish_of(response: &Value, called: bool) -> Finish {
    let status = response
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("completed");
    let reason = response
        .get("incomplete_details")
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str);
    let (normalized, native) = match (status, reason) {
        ("incomplete", Some("content_filter")) => (FinishReason::ContentFilter, "content_filter"),
        ("incomplete", _) => (FinishReason::Length, "max_output_tokens"),
        ("failed" | "cancelled", _) => (FinishReason::Error, "failed"),
        _ if called => (FinishReason::ToolCalls, "completed"),
        _ => (FinishReason::Stop, "completed"),
    };
    Finish {
        reason: normalized,
        native: native.to_owned(),
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// One output item as canonical parts.
fn parts_of(item: &Value, out: &mut Vec<Part>) {
    match item.get("type").and_then(Value::as_str) {
        Some("message") => {
            for c in item
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let t = match c.get("type").and_then(Value::as_str) {
                    Some("output_text") => text(c, "text"),
                    Some("refusal") => text(c, "refusal"),
                    _ => continue,
                };
                out.push(Part::Text(t));
            }
        }
        Some("function_call") => out.push(Part::ToolCall {
            id: text(item, "call_id"),
            name: text(item, "name"),
            arguments: text(item, "arguments"),
            signature: None,
        }),
        Some("reasoning") => {
            let summary: String = item
                .get("summary")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("text").and_then(Value::as_str))
                .collect();
            if !summary.is_empty() {
                out.push(Part::Reasoning {
                    text: summary,
                    signature: None,
                    redacted: None,
                });
            }
        }
        // Built-in tool calls (web search, file search, ...) ran at the
        // provider: nothing for the gateway to read.
        _ => {}
    }
}

/// A whole `response` object.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    if v.get("object").and_then(Value::as_str) != Some("response") {
        return Err(DecodeError::Shape("is not a `response` object"));
    }
    let mut content = Vec::new();
    for item in v
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parts_of(item, &mut content);
    }
    let called = content.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    Ok(ChatResponse {
        id: text(&v, "id"),
        model: text(&v, "model"),
        created: v.get("created_at").and_then(Value::as_u64),
        finish: Some(finish_of(&v, called)),
        usage: v.get("usage").and_then(usage_of),
        content,
    })
}

/// A Responses event stream -> canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// `output_index` of each function call -> its canonical tool index.
    calls: HashMap<u64, u32>,
    ended: bool,
    /// The `response` object of `response.completed` (a stored copy).
    completed: Option<Value>,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    pub fn on_event(&mut self, _event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let at = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str).unwrap_or_default() {
            "response.created" => {
                let r = v.get("response").unwrap_or(&Value::Null);
                out.push(StreamEvent::Start {
                    id: text(r, "id"),
                    model: text(r, "model"),
                });
            }
            "response.output_text.delta" => out.push(StreamEvent::Text(text(&v, "delta"))),
            "response.reasoning_summary_text.delta" => out.push(StreamEvent::Reasoning {
                text: text(&v, "delta"),
                signature: None,
            }),
            "response.output_item.added" => {
                let item = v.get("item").unwrap_or(&Value::Null);
                if item.get("type").and_then(Value::as_str) == Some("function_call") {
                    let index = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
                    self.calls.insert(at, index);
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: text(item, "call_id"),
                        name: text(item, "name"),
                        signature: None,
                    });
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(index) = self.calls.get(&at) {
                    out.push(StreamEvent::ToolCallArguments {
                        index: *index,
                        fragment: text(&v, "delta"),
                    });
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                let r = v.get("response").unwrap_or(&Value::Null);
                if let Some(u) = r.get("usage").and_then(usage_of) {
                    out.push(StreamEvent::Usage(u));
                }
                out.push(StreamEvent::Finish(finish_of(r, !self.calls.is_empty())));
                self.ended = true;
                if v.get("type").and_then(Value::as_str) == Some("response.completed") {
                    self.completed = v.get("response").cloned();
                }
            }
            "error" => {
                let message = v
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the provider's stream failed")
                    .to_owned();
                out.push(StreamEvent::Error { message });
                self.ended = true;
            }
            _ => {}
        }
    }

    /// The upstream ended; whether its stream was complete.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> bool {
        self.ended
    }

    /// The `response` object a completed stream ended with, once.
    pub fn take_response(&mut self) -> Option<Value> {
        self.completed.take()
    }
}
