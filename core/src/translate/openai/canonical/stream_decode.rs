//! An OpenAI-compatible upstream's `chat.completion.chunk` stream ->
//! canonical stream events.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::response::finish_of;
use crate::translate::canonical::StreamEvent;
use crate::usage::Usage;

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    native_finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    reasoning_details: Option<Vec<Value>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

/// One upstream tool call as it streams in.
#[derive(Debug)]
struct ToolSlot {
    /// The upstream's `index` (absent on some servers).
    upstream_index: Option<u64>,
    id: Option<String>,
    /// The canonical index, once `ToolCallStart` went out.
    started: Option<u32>,
    /// Argument fragments that arrived before the call's name.
    pending_args: String,
}

/// The decoder for one upstream response. Quirks of compatible servers
/// each have a field.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// `Start` went out (on the first chunk).
    started: bool,
    /// `[DONE]` arrived.
    done: bool,
    /// An upstream error ended the stream; everything after is ignored.
    failed: bool,
    /// The first `finish_reason` of choice 0; later ones (some servers
    /// repeat it on the usage chunk) are ignored.
    finish_seen: bool,
    /// Tool calls of choice 0. Compatible servers repeat the id and name in
    /// every delta (vLLM), omit `index` (older Gemini compat), or reuse one
    /// index for parallel calls with distinct ids; a slot is keyed by index
    /// and by id so each call starts exactly once.
    tools: Vec<ToolSlot>,
    tools_started: u32,
    /// The last usage reported, so servers that repeat usage on every chunk
    /// yield one event per change.
    last_usage: Option<Usage>,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// One SSE event: its `event:` name (OpenAI sends none; some servers
    /// name errors) and `data:` text.
    pub fn on_event(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.failed || self.done {
            return;
        }
        let data = data.trim();
        if data.is_empty() {
            return;
        }
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let chunk = match serde_json::from_str::<Chunk<'_>>(data) {
            Ok(chunk) => chunk,
            Err(_) if event == Some("error") => {
                self.fail(data.to_owned(), out);
                return;
            }
            Err(_) => {
                self.fail("upstream sent a malformed stream event".to_owned(), out);
                return;
            }
        };
        if let Some(err) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            let message = match err {
                Value::String(s) => s.clone(),
                _ => err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error")
                    .to_owned(),
            };
            self.fail(message, out);
            return;
        }
        if event == Some("error") {
            self.fail(data.to_owned(), out);
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id.as_deref().unwrap_or_default().to_owned(),
                model: chunk.model.as_deref().unwrap_or_default().to_owned(),
            });
        }
        for choice in chunk.choices.into_iter().flatten() {
            // The canonical answer is choice 0; the encoder never asks for more.
            if choice.index.unwrap_or(0) == 0 {
                self.choice(choice, out);
            }
        }
        if let Some(usage) = chunk.usage.as_ref().and_then(Usage::from_openai) {
            if self.last_usage != Some(usage) {
                self.last_usage = Some(usage);
                out.push(StreamEvent::Usage(usage));
            }
        }
    }

    fn fail(&mut self, message: String, out: &mut Vec<StreamEvent>) {
        self.failed = true;
        out.push(StreamEvent::Error { message });
    }

    fn choice(&mut self, choice: Choice<'_>, out: &mut Vec<StreamEvent>) {
        if self.finish_seen {
            // Nothing after the stop.
            return;
        }
        if let Some(delta) = choice.delta {
            self.delta(delta, out);
        }
        if let Some(reason) = choice.finish_reason.as_deref() {
            self.finish_seen = true;
            let finish = finish_of(
                Some(reason),
                choice.native_finish_reason.as_deref(),
                self.tools_started > 0,
            );
            out.push(StreamEvent::Finish(finish));
        }
    }

    fn delta(&mut self, delta: Delta<'_>, out: &mut Vec<StreamEvent>) {
        let text = delta
            .reasoning_content
            .filter(|s| !s.is_empty())
            .or(delta.reasoning.filter(|s| !s.is_empty()));
        let signature = delta.reasoning_details.as_ref().and_then(|d| {
            d.iter()
                .rev()
                .find_map(|x| x.get("signature").and_then(Value::as_str))
        });
        if text.is_some() || signature.is_some() {
            out.push(StreamEvent::Reasoning {
                text: text.map(Cow::into_owned).unwrap_or_default(),
                signature: signature.map(str::to_owned),
            });
        }
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                out.push(StreamEvent::Text(text.into_owned()));
            }
        }
        for call in delta.tool_calls.into_iter().flatten() {
            self.tool_call(call, out);
        }
    }

    fn tool_call(&mut self, call: ToolCallDelta<'_>, out: &mut Vec<StreamEvent>) {
        let slot = self.slot_for(call.index, call.id.as_deref());
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let Some(tool) = self.tools.get_mut(slot) else {
            return;
        };
        if tool.id.is_none() {
            tool.id = call.id.filter(|s| !s.is_empty()).map(Cow::into_owned);
        }
        if tool.started.is_none() {
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                let index = self.tools_started;
                self.tools_started += 1;
                tool.started = Some(index);
                let id = tool
                    .id
                    .get_or_insert_with(|| format!("call_{index}"))
                    .clone();
                out.push(StreamEvent::ToolCallStart {
                    index,
                    id,
                    name: name.into_owned(),
                    signature: None,
                });
                if !tool.pending_args.is_empty() {
                    out.push(StreamEvent::ToolCallArguments {
                        index,
                        fragment: std::mem::take(&mut tool.pending_args),
                    });
                }
            }
        }
        let Some(fragment) = arguments.filter(|a| !a.is_empty()) else {
            return;
        };
        match tool.started {
            Some(index) => out.push(StreamEvent::ToolCallArguments {
                index,
                fragment: fragment.into_owned(),
            }),
            None => tool.pending_args.push_str(&fragment),
        }
    }

    /// The slot a tool-call delta belongs to, created when new.
    fn slot_for(&mut self, index: Option<u64>, id: Option<&str>) -> usize {
        let id = id.filter(|s| !s.is_empty());
        let found = self.tools.iter().rposition(|t| match (index, id) {
            (Some(i), Some(id)) => {
                t.upstream_index == Some(i) && t.id.as_deref().is_none_or(|known| known == id)
            }
            (Some(i), None) => t.upstream_index == Some(i),
            (None, Some(id)) => t.id.as_deref() == Some(id),
            // No index and no id: a continuation of the latest call.
            (None, None) => true,
        });
        if let Some(pos) = found {
            return pos;
        }
        self.tools.push(ToolSlot {
            upstream_index: index,
            id: None,
            started: None,
            pending_args: String::new(),
        });
        self.tools.len() - 1
    }

    /// Upstream ended. Complete when `[DONE]` or a finish reason arrived;
    /// a `[DONE]` without a finish reason (some Ollama versions) gets one
    /// here, so every complete stream has exactly one `Finish`.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> bool {
        if self.failed {
            return false;
        }
        if self.done && !self.finish_seen {
            self.finish_seen = true;
            out.push(StreamEvent::Finish(finish_of(
                None,
                None,
                self.tools_started > 0,
            )));
        }
        self.done || self.finish_seen
    }
}
