//! The canonical chat model every dialect translates to and from: one
//! decoder and one encoder per dialect, so N dialects cost 2N modules, not
//! N×N converters.
//!
//! Loss policy: what must survive a change of dialect is a typed field
//! here; everything else a request carried stays in `extra`, which is sent
//! upstream only when the upstream speaks the client's own dialect.

use serde_json::{Map, Value};

use crate::translate::finish::FinishReason;
use crate::usage::Usage;

/// A chat request, whatever dialect it came in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The upstream model name (routing has already stripped `provider/`).
    pub model: String,
    /// System instructions, in order (OpenAI system/developer messages,
    /// Anthropic `system`, Gemini `systemInstruction`).
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    /// Output cap; `None` lets the encoder pick its dialect's default
    /// (Anthropic requires one).
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub stop: Vec<String>,
    pub response_format: Option<ResponseFormat>,
    pub reasoning: Option<Reasoning>,
    pub stream: bool,
    /// The client asked for usage in the stream (OpenAI
    /// `stream_options.include_usage`); the gateway always bills anyway.
    pub include_usage: bool,
    /// An end-user id for abuse tracking (`user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// Fields of the client's dialect with no canonical meaning; forwarded
    /// only to an upstream of that same dialect.
    pub extra: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// The result of a tool call, sent back to the model.
    Tool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

/// One piece of a message or of a response.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    /// The model asked for a tool call. `arguments` is JSON text.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
        /// Gemini's `thoughtSignature`, to hand back on the next turn.
        signature: Option<String>,
    },
    /// A tool's answer. `name` is the called function (Gemini needs it;
    /// decoders fill it from the matching call when the dialect omits it).
    ToolResult {
        id: String,
        name: Option<String>,
        content: String,
        is_error: bool,
    },
    /// Model reasoning ("thinking"). `signature` lets providers verify it
    /// when it is sent back; `redacted` carries opaque redacted thinking.
    Reasoning {
        text: String,
        signature: Option<String>,
        redacted: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    Url(String),
    Base64 { media_type: String, data: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Value,
    pub strict: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Must call some tool.
    Required,
    /// Must call this tool.
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: Option<bool>,
    },
}

/// Reasoning controls: an effort level (`low|medium|high`, OpenAI style)
/// and/or a token budget (Anthropic/Gemini style); encoders convert.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reasoning {
    pub effort: Option<String>,
    pub budget_tokens: Option<u32>,
}

/// A complete (non-stream) answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    /// The model as the provider reported it.
    pub model: String,
    /// Unix seconds, when the dialect reports it.
    pub created: Option<u64>,
    /// Text, tool calls and reasoning, in the order the model produced them.
    pub content: Vec<Part>,
    pub finish: Option<Finish>,
    pub usage: Option<Usage>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finish {
    pub reason: FinishReason,
    /// The provider's own word (`end_turn`, `MAX_TOKENS`, ...).
    pub native: String,
}

/// One step of a streamed answer. A stream is: `Start`, then any deltas,
/// `Usage` whenever the provider reports it (later values supersede
/// earlier ones field by field where non-zero), then `Finish` (at most
/// once), or `Error` if the upstream failed mid-stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    Start {
        id: String,
        model: String,
    },
    Text(String),
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    /// A new tool call; `index` counts tool calls in this response from 0.
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
        signature: Option<String>,
    },
    ToolCallArguments {
        index: u32,
        fragment: String,
    },
    Usage(Usage),
    Finish(Finish),
    Error {
        message: String,
    },
}

impl ChatResponse {
    /// The whole answer a stream of canonical events carries: what a
    /// client's stream accumulator builds. Text deltas join into one text
    /// part until something else comes between; a reasoning part ends at
    /// its signature; arguments join onto their tool call by index.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a StreamEvent>) -> ChatResponse {
        let mut resp = ChatResponse::default();
        let mut calls: Vec<(u32, usize)> = Vec::new();
        for event in events {
            match event {
                StreamEvent::Start { id, model } => {
                    resp.id.clone_from(id);
                    resp.model.clone_from(model);
                }
                StreamEvent::Text(t) => match resp.content.last_mut() {
                    Some(Part::Text(have)) => have.push_str(t),
                    _ => resp.content.push(Part::Text(t.clone())),
                },
                StreamEvent::Reasoning { text, signature } => match resp.content.last_mut() {
                    Some(Part::Reasoning {
                        text: have,
                        signature: sig @ None,
                        redacted: None,
                    }) => {
                        have.push_str(text);
                        sig.clone_from(signature);
                    }
                    _ => resp.content.push(Part::Reasoning {
                        text: text.clone(),
                        signature: signature.clone(),
                        redacted: None,
                    }),
                },
                StreamEvent::ToolCallStart {
                    index,
                    id,
                    name,
                    signature,
                } => {
                    calls.push((*index, resp.content.len()));
                    resp.content.push(Part::ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                        signature: signature.clone(),
                    });
                }
                StreamEvent::ToolCallArguments { index, fragment } => {
                    let at = calls
                        .iter()
                        .rev()
                        .find(|(i, _)| i == index)
                        .map(|(_, at)| *at);
                    if let Some(Part::ToolCall { arguments, .. }) =
                        at.and_then(|at| resp.content.get_mut(at))
                    {
                        arguments.push_str(fragment);
                    }
                }
                StreamEvent::Usage(u) => match &mut resp.usage {
                    Some(seen) => merge_usage(seen, u),
                    None => resp.usage = Some(*u),
                },
                StreamEvent::Finish(f) => resp.finish = Some(f.clone()),
                StreamEvent::Error { .. } => {}
            }
        }
        resp
    }

    /// The stream events that carry this whole answer (each tool call's
    /// arguments in one fragment), for a client that asked to stream from
    /// a provider that answered in one piece.
    pub fn to_events(&self) -> Vec<StreamEvent> {
        let mut out = vec![StreamEvent::Start {
            id: self.id.clone(),
            model: self.model.clone(),
        }];
        let mut index = 0;
        for part in &self.content {
            match part {
                Part::Text(t) => out.push(StreamEvent::Text(t.clone())),
                Part::Reasoning {
                    text, signature, ..
                } => out.push(StreamEvent::Reasoning {
                    text: text.clone(),
                    signature: signature.clone(),
                }),
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                    signature,
                } => {
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: id.clone(),
                        name: name.clone(),
                        signature: signature.clone(),
                    });
                    out.push(StreamEvent::ToolCallArguments {
                        index,
                        fragment: arguments.clone(),
                    });
                    index += 1;
                }
                Part::Image(_) | Part::ToolResult { .. } => {}
            }
        }
        out.extend(self.usage.map(StreamEvent::Usage));
        out.extend(self.finish.clone().map(StreamEvent::Finish));
        out
    }
}

/// Merges a later usage report into an earlier one: non-zero fields win.
/// (Anthropic reports input tokens at the start and output at the end.)
pub fn merge_usage(into: &mut Usage, later: &Usage) {
    let pick = |a: &mut u64, b: u64| {
        if b != 0 {
            *a = b;
        }
    };
    pick(&mut into.prompt_tokens, later.prompt_tokens);
    pick(&mut into.completion_tokens, later.completion_tokens);
    pick(&mut into.cached_tokens, later.cached_tokens);
    pick(&mut into.cache_write_tokens, later.cache_write_tokens);
    pick(&mut into.reasoning_tokens, later.reasoning_tokens);
}

/// Marks a provider's signature carried inside a tool call id.
const SIGNATURE_MARK: &str = "__sig__";

/// A tool call id that carries the provider's signature for that call.
///
/// Gemini requires each function call's `thoughtSignature` back on the
/// next turn, but the OpenAI and Anthropic dialects have no field for it.
/// Their clients do echo tool call ids verbatim (on the assistant turn and
/// on the tool result), so the signature rides inside the id. It is written
/// in the URL-safe base64 alphabet without padding, so the id stays within
/// `[A-Za-z0-9_-]`, the pattern Anthropic enforces on tool ids.
pub fn id_with_signature(id: &str, signature: Option<&str>) -> String {
    match signature {
        Some(sig) if !sig.is_empty() => {
            let safe: String = sig
                .chars()
                .filter(|c| *c != '=')
                .map(|c| match c {
                    '+' => '-',
                    '/' => '_',
                    c => c,
                })
                .collect();
            format!("{id}{SIGNATURE_MARK}{safe}")
        }
        _ => id.to_string(),
    }
}

/// The inverse of `id_with_signature`: the provider's own id, and the
/// signature (URL-safe base64, padding restored), if one was carried.
pub fn split_signature(id: &str) -> (String, Option<String>) {
    match id.split_once(SIGNATURE_MARK) {
        Some((id, sig)) if !sig.is_empty() => {
            let mut sig = sig.to_string();
            while sig.len() % 4 != 0 {
                sig.push('=');
            }
            (id.to_string(), Some(sig))
        }
        _ => (id.to_string(), None),
    }
}
