//! Canonical stream events -> Anthropic SSE for the client.
//!
//! The encoder owns the bracket state so the client always sees a
//! well-formed stream, whatever the upstream did: exactly one
//! `message_start` (then a `ping`), blocks opened and stopped with
//! increasing indexes, one block open at a time, every delta aimed at the
//! open block, then `message_delta` and `message_stop` — or, on failure,
//! the open block stopped and an `error` event.

use serde_json::{json, Value};

use super::response::message_id;
use super::stop_reason::stop_reason;
use super::usage::usage_object;
use crate::sse::write_event;
use crate::translate::canonical::{merge_usage, Finish, StreamEvent};
use crate::usage::Usage;

/// The id shown when the upstream never said one.
const FALLBACK_ID: &str = "msg_arouter";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenKind {
    Text,
    /// `signed`: a signature closed the thought; more reasoning after it
    /// belongs to a new block.
    Thinking {
        signed: bool,
    },
    /// The canonical tool index of the call.
    Tool(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpenBlock {
    index: u32,
    kind: OpenKind,
}

/// Canonical events -> client stream bytes in this dialect.
#[derive(Debug)]
pub struct StreamEncoder {
    /// The model label the client should see.
    model: String,
    /// From `Start`; kept until `message_start` is written.
    id: Option<String>,
    /// `message_start` is held back until content (or the end) arrives:
    /// upstreams report input tokens right after their start event, and
    /// `message_start` is where Anthropic clients read them.
    started: bool,
    next_block: u32,
    open: Option<OpenBlock>,
    /// Usage arrives whenever the upstream reports it, for OpenAI after the
    /// finish chunk; it is merged here and written at the end.
    usage: Usage,
    /// Held until `finish()` for the same reason.
    finish: Option<Finish>,
    /// A tool call was streamed: a plain "stop" becomes `tool_use`.
    has_tool_calls: bool,
    /// Fragments for a tool whose block was already stopped (an upstream
    /// interleaving parallel calls); they cannot be delivered.
    dropped_fragments: u32,
    done: bool,
}

impl StreamEncoder {
    /// `include_usage` is ignored: Anthropic streams always carry usage.
    pub fn new(model: &str, _include_usage: bool) -> StreamEncoder {
        StreamEncoder {
            model: model.to_owned(),
            id: None,
            started: false,
            next_block: 0,
            open: None,
            usage: Usage::default(),
            finish: None,
            has_tool_calls: false,
            dropped_fragments: 0,
            done: false,
        }
    }

    pub fn on_event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if self.id.is_none() {
                    self.id = Some(id.clone());
                }
                if self.model.is_empty() {
                    self.model = model.clone();
                }
            }
            StreamEvent::Usage(u) => merge_usage(&mut self.usage, u),
            StreamEvent::Finish(f) => {
                if self.finish.is_none() {
                    self.finish = Some(f.clone());
                }
            }
            StreamEvent::Error { message } => self.fail(message, out),
            StreamEvent::Text(text) => {
                if text.is_empty() {
                    return;
                }
                if !matches!(
                    self.open,
                    Some(OpenBlock {
                        kind: OpenKind::Text,
                        ..
                    })
                ) {
                    self.open_block(OpenKind::Text, json!({"type": "text", "text": ""}), out);
                }
                self.delta(json!({"type": "text_delta", "text": text}), out);
            }
            StreamEvent::Reasoning { text, signature } => {
                if text.is_empty() && signature.is_none() {
                    return;
                }
                let continues = matches!(
                    self.open,
                    Some(OpenBlock {
                        kind: OpenKind::Thinking { signed: false },
                        ..
                    })
                );
                if !continues {
                    self.open_block(
                        OpenKind::Thinking { signed: false },
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        out,
                    );
                }
                if !text.is_empty() {
                    self.delta(json!({"type": "thinking_delta", "thinking": text}), out);
                }
                if let Some(sig) = signature {
                    self.delta(json!({"type": "signature_delta", "signature": sig}), out);
                    if let Some(open) = &mut self.open {
                        open.kind = OpenKind::Thinking { signed: true };
                    }
                }
            }
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                self.has_tool_calls = true;
                let id = crate::translate::canonical::id_with_signature(id, signature.as_deref());
                self.open_block(
                    OpenKind::Tool(*index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
            }
            StreamEvent::ToolCallArguments { index, fragment } => {
                let open_here = matches!(
                    self.open,
                    Some(OpenBlock { kind: OpenKind::Tool(i), .. }) if i == *index
                );
                if open_here {
                    if !fragment.is_empty() {
                        self.delta(
                            json!({"type": "input_json_delta", "partial_json": fragment}),
                            out,
                        );
                    }
                } else {
                    self.dropped_fragments = self.dropped_fragments.saturating_add(1);
                }
            }
        }
    }

    /// Upstream ended normally.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.ensure_started(out);
        self.close_block(out);
        let reason = stop_reason(self.finish.as_ref(), self.has_tool_calls);
        let data = json!({
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": null},
            "usage": usage_object(&self.usage),
        });
        emit(out, "message_delta", &data);
        emit(out, "message_stop", &json!({"type": "message_stop"}));
        self.done = true;
    }

    /// Upstream failed mid-stream: the open block is stopped and an
    /// Anthropic `error` event ends the stream (no `message_stop`, as
    /// Anthropic itself does).
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.close_block(out);
        let data = json!({
            "type": "error",
            "error": {"type": "api_error", "message": message},
        });
        emit(out, "error", &data);
        self.done = true;
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// How many argument fragments could not be delivered (see the field).
    pub fn dropped_fragments(&self) -> u32 {
        self.dropped_fragments
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = message_id(self.id.as_deref().unwrap_or(FALLBACK_ID));
        let data = json!({
            "type": "message_start",
            "message": {
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage_object(&self.usage),
            }
        });
        emit(out, "message_start", &data);
        emit(out, "ping", &json!({"type": "ping"}));
    }

    fn open_block(&mut self, kind: OpenKind, content_block: Value, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.close_block(out);
        let index = self.next_block;
        self.next_block = self.next_block.saturating_add(1);
        self.open = Some(OpenBlock { index, kind });
        let data = json!({
            "type": "content_block_start",
            "index": index,
            "content_block": content_block,
        });
        emit(out, "content_block_start", &data);
    }

    fn delta(&mut self, delta: Value, out: &mut Vec<u8>) {
        if let Some(open) = self.open {
            let data = json!({"type": "content_block_delta", "index": open.index, "delta": delta});
            emit(out, "content_block_delta", &data);
        }
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some(open) = self.open.take() {
            let data = json!({"type": "content_block_stop", "index": open.index});
            emit(out, "content_block_stop", &data);
        }
    }
}

fn emit(out: &mut Vec<u8>, event: &str, data: &Value) {
    write_event(out, Some(event), &data.to_string());
}
