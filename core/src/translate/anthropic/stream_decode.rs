//! Anthropic SSE events (upstream) -> canonical stream events.

use serde_json::Value;

use super::blocks::input_to_arguments;
use super::error::error_message;
use super::stop_reason::finish_from_stop_reason;
use super::usage::RawUsage;
use crate::translate::canonical::StreamEvent;

/// What an open Anthropic content block turns into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    /// A client tool call, with its canonical tool index.
    Tool(u32),
    /// Server-tool blocks, redacted thinking and unknown types: their
    /// deltas are not forwarded (see `blocks::decode_output_block`).
    Skipped,
}

/// Upstream stream (SSE events) -> canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Open blocks by Anthropic block index. Anthropic streams one block at
    /// a time, so this stays tiny; a list avoids trusting the index as a
    /// size.
    blocks: Vec<(u64, BlockKind)>,
    /// Canonical tool indexes count tool calls only; Anthropic's block
    /// index also counts text, thinking and server-tool blocks.
    next_tool_index: u32,
    /// Input tokens come only in `message_start` and output tokens in
    /// `message_delta` (newer API versions repeat input there); each report
    /// may be partial, so the raw counters are merged before converting.
    usage: RawUsage,
    started: bool,
    finished: bool,
    /// `message_stop` arrived: the stream is complete.
    stopped: bool,
    /// An `error` event or an unparsable event ended the stream.
    failed: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// One SSE event (`event:` name, `data:` text).
    pub fn on_event(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.stopped || self.failed {
            return;
        }
        let value: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                self.fail(format!("malformed upstream event: {e}"), out);
                return;
            }
        };
        // The payload's own `type` is authoritative; the SSE name is a
        // fallback for proxies that rewrite payloads.
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event)
            .unwrap_or("");
        match kind {
            "message_start" => self.on_message_start(&value, out),
            "content_block_start" => self.on_block_start(&value, out),
            "content_block_delta" => self.on_block_delta(&value, out),
            "content_block_stop" => {
                if let Some(index) = value.get("index").and_then(Value::as_u64) {
                    self.blocks.retain(|(i, _)| *i != index);
                }
            }
            "message_delta" => self.on_message_delta(&value, out),
            "message_stop" => self.stopped = true,
            "error" => {
                let message = value
                    .get("error")
                    .and_then(error_message)
                    .unwrap_or_else(|| "upstream stream error".into());
                self.fail(message, out);
            }
            // `ping` and event types added later carry nothing we translate.
            _ => {}
        }
    }

    /// Upstream ended; returns whether the stream was complete.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> bool {
        self.stopped && !self.failed
    }

    fn fail(&mut self, message: String, out: &mut Vec<StreamEvent>) {
        self.failed = true;
        out.push(StreamEvent::Error { message });
    }

    fn on_message_start(&mut self, value: &Value, out: &mut Vec<StreamEvent>) {
        let message = value.get("message").unwrap_or(&Value::Null);
        let text = |key: &str| {
            message
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: text("id"),
                model: text("model"),
            });
        }
        self.push_usage(message.get("usage"), out);
    }

    fn push_usage(&mut self, usage: Option<&Value>, out: &mut Vec<StreamEvent>) {
        if let Some(raw) = usage.and_then(RawUsage::from_value) {
            self.usage.merge(&raw);
            out.push(StreamEvent::Usage(self.usage.to_canonical()));
        }
    }

    fn on_block_start(&mut self, value: &Value, out: &mut Vec<StreamEvent>) {
        let (Some(index), Some(block)) = (
            value.get("index").and_then(Value::as_u64),
            value.get("content_block"),
        ) else {
            return;
        };
        let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or("");
        let kind = match text("type") {
            "text" => {
                push_text(text("text"), out);
                BlockKind::Text
            }
            "thinking" => {
                if !text("thinking").is_empty() {
                    out.push(StreamEvent::Reasoning {
                        text: text("thinking").to_owned(),
                        signature: None,
                    });
                }
                BlockKind::Thinking
            }
            "tool_use" => {
                let tool = self.next_tool_index;
                self.next_tool_index = self.next_tool_index.saturating_add(1);
                out.push(StreamEvent::ToolCallStart {
                    index: tool,
                    id: text("id").to_owned(),
                    name: text("name").to_owned(),
                    signature: None,
                });
                // Streams start with `input: {}` and send the arguments as
                // deltas; a proxy that sends the whole input up front is
                // honoured.
                if let Some(input) = block
                    .get("input")
                    .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
                {
                    out.push(StreamEvent::ToolCallArguments {
                        index: tool,
                        fragment: input_to_arguments(Some(input)),
                    });
                }
                BlockKind::Tool(tool)
            }
            // The canonical stream has no redacted-reasoning event.
            _ => BlockKind::Skipped,
        };
        self.blocks.retain(|(i, _)| *i != index);
        self.blocks.push((index, kind));
    }

    fn on_block_delta(&mut self, value: &Value, out: &mut Vec<StreamEvent>) {
        let Some(index) = value.get("index").and_then(Value::as_u64) else {
            return;
        };
        let Some(kind) = self
            .blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, k)| *k)
        else {
            return;
        };
        let delta = value.get("delta").unwrap_or(&Value::Null);
        let text = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or("");
        match (kind, text("type")) {
            (BlockKind::Text, "text_delta") => push_text(text("text"), out),
            (BlockKind::Tool(tool), "input_json_delta") if !text("partial_json").is_empty() => {
                out.push(StreamEvent::ToolCallArguments {
                    index: tool,
                    fragment: text("partial_json").to_owned(),
                });
            }
            (BlockKind::Thinking, "thinking_delta") if !text("thinking").is_empty() => {
                out.push(StreamEvent::Reasoning {
                    text: text("thinking").to_owned(),
                    signature: None,
                });
            }
            (BlockKind::Thinking, "signature_delta") => out.push(StreamEvent::Reasoning {
                text: String::new(),
                signature: Some(text("signature").to_owned()),
            }),
            // `citations_delta`, server-tool input, and mismatched deltas.
            _ => {}
        }
    }

    fn on_message_delta(&mut self, value: &Value, out: &mut Vec<StreamEvent>) {
        self.push_usage(value.get("usage"), out);
        let stop = value
            .get("delta")
            .and_then(|d| d.get("stop_reason"))
            .and_then(Value::as_str);
        if let Some(native) = stop {
            if !self.finished {
                self.finished = true;
                out.push(StreamEvent::Finish(finish_from_stop_reason(native)));
            }
        }
    }
}

fn push_text(text: &str, out: &mut Vec<StreamEvent>) {
    if !text.is_empty() {
        out.push(StreamEvent::Text(text.to_owned()));
    }
}
