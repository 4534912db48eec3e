//! Canonical stream events -> the `chat.completion.chunk` stream an OpenAI
//! client reads.
//!
//! The encoder owns the shape the SDKs rely on, whatever the upstream did:
//! a first chunk with the assistant role, each tool call's `id` and `name`
//! exactly once, exactly one chunk with a `finish_reason`, at most one
//! usage chunk (last, only when asked for), then `data: [DONE]` and
//! nothing after. Chunks are written straight into the output buffer.

use super::json;
use super::response::completion_id;
use crate::billing::Price;
use crate::translate::canonical::{merge_usage, Finish, StreamEvent};
use crate::translate::finish::FinishReason;
use crate::usage::Usage;

#[derive(Debug)]
pub struct StreamEncoder {
    model: String,
    include_usage: bool,
    created: u64,
    /// `data: {"id":...,"object":...,"created":...,"model":...` shared by
    /// every chunk; built once, on the first event.
    prefix: Vec<u8>,
    /// The role chunk went out.
    started: bool,
    /// Canonical indexes of tool calls whose id and name went out, and
    /// whether any of their arguments did.
    tools_started: Vec<(u32, bool)>,
    /// The finish chunk went out: later content is dropped.
    finished: bool,
    /// Usage is held back so it goes out last, after the finish chunk.
    usage: Option<Usage>,
    /// The usage chunk carries `usage.cost` at this price.
    price: Option<Price>,
    /// `[DONE]` went out: nothing may follow.
    done: bool,
    /// A failure is told OpenRouter's way: `error` inside a chunk (its SDK
    /// validates every event as one), not as an event of its own.
    error_in_chunk: bool,
}

impl StreamEncoder {
    pub fn new(model: &str, include_usage: bool) -> StreamEncoder {
        StreamEncoder {
            model: model.to_owned(),
            include_usage,
            created: 0,
            prefix: Vec::new(),
            started: false,
            tools_started: Vec::new(),
            finished: false,
            usage: None,
            price: None,
            done: false,
            error_in_chunk: false,
        }
    }

    /// Tells a failure OpenRouter's way (for `/api/v1/` routes): the error,
    /// with an integer `code`, rides on the finish chunk (or, when that
    /// already went out, on a chunk without choices).
    pub fn with_error_in_chunk(mut self) -> StreamEncoder {
        self.error_in_chunk = true;
        self
    }

    /// Adds `usage.cost` (USD, as OpenRouter sends it) to the usage chunk.
    pub fn with_price(mut self, price: Price) -> StreamEncoder {
        self.price = Some(price);
        self
    }

    /// The `created` timestamp (Unix seconds) every chunk carries. Stream
    /// events do not report one and the core reads no clock, so it is 0
    /// unless the caller knows better.
    pub fn with_created(mut self, created: u64) -> StreamEncoder {
        self.created = created;
        self
    }

    pub fn on_event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { id, .. } => self.start(id, out),
            StreamEvent::Usage(u) => match &mut self.usage {
                Some(seen) => merge_usage(seen, u),
                None => self.usage = Some(*u),
            },
            StreamEvent::Error { message } => self.fail(message, out),
            _ if self.finished => {}
            StreamEvent::Text(text) => {
                if !text.is_empty() {
                    self.delta_chunk(out, |out| {
                        out.extend_from_slice(b"\"content\":");
                        json::string(out, text);
                    });
                }
            }
            StreamEvent::Reasoning { text, signature } => {
                if !text.is_empty() || signature.is_some() {
                    self.delta_chunk(out, |out| {
                        out.extend_from_slice(b"\"reasoning\":");
                        json::string(out, text);
                        if let Some(sig) = signature {
                            // OpenRouter's field, so the client can send the
                            // signed reasoning back on the next turn.
                            out.extend_from_slice(
                                b",\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":",
                            );
                            json::string(out, text);
                            out.extend_from_slice(b",\"signature\":");
                            json::string(out, sig);
                            out.extend_from_slice(b",\"index\":0}]");
                        }
                    });
                }
            }
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                if !self.tools_started.iter().any(|(i, _)| i == index) {
                    // SDKs take a call as done when the next one starts.
                    self.close_argumentless_calls(out);
                    self.tools_started.push((*index, false));
                    self.delta_chunk(out, |out| {
                        out.extend_from_slice(b"\"tool_calls\":[{\"index\":");
                        json::uint(out, u64::from(*index));
                        out.extend_from_slice(b",\"id\":");
                        json::string(out, &super::tool_call_id(id, signature.as_deref()));
                        out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                        json::string(out, name);
                        out.extend_from_slice(b",\"arguments\":\"\"}}]");
                    });
                }
            }
            StreamEvent::ToolCallArguments { index, fragment } => {
                if !fragment.is_empty() {
                    if let Some((_, sent)) = self.tools_started.iter_mut().find(|(i, _)| i == index)
                    {
                        *sent = true;
                    }
                    self.arguments_chunk(*index, fragment, out);
                }
            }
            StreamEvent::Finish(Finish { reason, native }) => {
                self.finish_chunk(Some(*reason), Some(native), out);
            }
        }
    }

    /// The upstream ended normally: a finish chunk if none went out yet
    /// (`tool_calls` when tools were called, else `stop`), the usage chunk
    /// if asked for, `[DONE]`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.finish_chunk(None, None, out);
        self.close(out);
    }

    /// The upstream failed mid-stream: an error event in OpenAI's shape, a
    /// chunk with `finish_reason: "error"` unless one already went out,
    /// the usage seen so far (if asked for), `[DONE]`.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if self.error_in_chunk {
            if !self.finished {
                self.finish_chunk(Some(FinishReason::Error), None, out);
                // The finish chunk just written ends `}]}\n\n`: the error
                // goes into that object.
                out.truncate(out.len() - 3);
            } else {
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(b",\"choices\":[]");
            }
            out.extend_from_slice(b",\"error\":{\"code\":502,\"message\":");
            json::string(out, message);
            out.extend_from_slice(b"}}\n\n");
        } else {
            out.extend_from_slice(b"data: {\"error\":{\"message\":");
            json::string(out, message);
            out.extend_from_slice(b",\"type\":\"upstream_error\",\"code\":502}}\n\n");
            self.finish_chunk(Some(FinishReason::Error), None, out);
        }
        self.close(out);
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.prefix.clear();
        self.prefix.extend_from_slice(b"data: {\"id\":");
        json::string(&mut self.prefix, &completion_id(id));
        self.prefix
            .extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        json::uint(&mut self.prefix, self.created);
        self.prefix.extend_from_slice(b",\"model\":");
        json::string(&mut self.prefix, &self.model);
        self.delta_chunk(out, |out| {
            out.extend_from_slice(b"\"role\":\"assistant\",\"content\":\"\"");
        });
    }

    /// A chunk for choice 0 whose delta's members `fill` writes.
    fn delta_chunk(&mut self, out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
        if !self.started {
            // A stream without `Start`: the role chunk still comes first.
            self.start("", out);
        }
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":{");
        fill(out);
        out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    }

    /// A call that got no arguments (an Anthropic `tool_use` with empty
    /// input streamed without `input_json_delta`) still gets valid JSON,
    /// before the next call starts or the stream finishes: that is when
    /// SDKs `JSON.parse` a call's joined fragments, and `""` throws.
    /// Calls arrive one after another from every translated upstream, so
    /// no fragment of an earlier call follows.
    fn close_argumentless_calls(&mut self, out: &mut Vec<u8>) {
        for at in 0..self.tools_started.len() {
            if let (index, false) = self.tools_started[at] {
                self.tools_started[at].1 = true;
                self.arguments_chunk(index, "{}", out);
            }
        }
    }

    /// A chunk with one fragment of tool call `index`'s arguments.
    fn arguments_chunk(&mut self, index: u32, fragment: &str, out: &mut Vec<u8>) {
        self.delta_chunk(out, |out| {
            out.extend_from_slice(b"\"tool_calls\":[{\"index\":");
            json::uint(out, u64::from(index));
            out.extend_from_slice(b",\"function\":{\"arguments\":");
            json::string(out, fragment);
            out.extend_from_slice(b"}}]");
        });
    }

    /// The one chunk with a `finish_reason`; `None` picks `tool_calls` when
    /// tools were called, else `stop`.
    fn finish_chunk(
        &mut self,
        reason: Option<FinishReason>,
        native: Option<&str>,
        out: &mut Vec<u8>,
    ) {
        if self.finished {
            return;
        }
        if !self.started {
            self.start("", out);
        }
        self.close_argumentless_calls(out);
        self.finished = true;
        let reason = match reason {
            Some(r) => r,
            None if !self.tools_started.is_empty() => FinishReason::ToolCalls,
            None => FinishReason::Stop,
        };
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(
            b",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":",
        );
        json::string(out, reason.as_str());
        out.extend_from_slice(b",\"native_finish_reason\":");
        json::opt_string(out, native);
        out.extend_from_slice(b"}]}\n\n");
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let (true, Some(u)) = (self.include_usage, self.usage) {
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(b",\"choices\":[],\"usage\":{\"prompt_tokens\":");
            json::uint(out, u.prompt_tokens);
            out.extend_from_slice(b",\"completion_tokens\":");
            json::uint(out, u.completion_tokens);
            out.extend_from_slice(b",\"total_tokens\":");
            json::uint(out, u.total());
            out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
            json::uint(out, u.cached_tokens);
            out.extend_from_slice(b",\"cache_write_tokens\":");
            json::uint(out, u.cache_write_tokens);
            out.extend_from_slice(b"},\"completion_tokens_details\":{\"reasoning_tokens\":");
            json::uint(out, u.reasoning_tokens);
            out.push(b'}');
            if let Some(price) = &self.price {
                out.extend_from_slice(b",\"cost\":");
                price.cost(&u).write_usd(out);
            }
            out.extend_from_slice(b"}}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }
}
