//! OpenAI-compatible upstream stream → OpenAI client stream.
//!
//! Whatever the upstream does, the client gets a well-formed OpenAI stream:
//! each tool call's `id` and `name` once, a final chunk with a
//! `finish_reason` for every choice, at most one usage chunk (last, and only
//! when the client asked for it), then `data: [DONE]`, and nothing after.
//! Quirks of compatible servers handled here, each in a named field:
//! tool-call id/name repeated in every delta (vLLM), no final
//! `finish_reason` (some Ollama versions), usage inside a chunk that still
//! has choices, a stream that ends without `[DONE]`.

mod head;

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::billing::Price;
use crate::sse;
use crate::translate::finish::FinishReason;
use crate::translate::openai::response::{normalize_finish, prefix_model, priced_usage};
use crate::usage::Usage;
use head::{json_str, offset_in, ChoiceHead, ChunkHead, LastMeta};

#[derive(Debug, Default)]
struct ToolState {
    index: u64,
    id_sent: bool,
    name_sent: bool,
}

#[derive(Debug, Default)]
struct ChoiceState {
    index: u64,
    finished: bool,
    saw_tool_calls: bool,
    tools: Vec<ToolState>,
}

/// The transducer for one response.
#[derive(Debug)]
pub struct OpenAiStream {
    provider: String,
    requested_model: String,
    include_usage: bool,
    /// The usage chunk's `usage.cost` is computed at this price.
    price: Price,
    /// The upstream's usage object, latched from whichever chunk carried it.
    usage_value: Option<Value>,
    /// `id`, `created`, `model` of the last chunk, for chunks we synthesize.
    meta: LastMeta,
    choices: Vec<ChoiceState>,
    /// Set once `[DONE]` (or an error) was written: nothing may follow.
    done: bool,
    /// The stream was ended by an error (upstream error event, malformed
    /// or truncated stream): the client did not get the whole answer.
    failed: bool,
    /// Whether any upstream chunk arrived (a first token was seen).
    started: bool,
    /// Chunks with choices relayed to the client: OpenAI streams one token
    /// per chunk, so this estimates the output of an abandoned stream.
    relayed: u64,
    /// A failure is told OpenRouter's way: `error` inside the final chunk
    /// (whose SDK validates every event as a chunk), not as an event of
    /// its own.
    error_in_chunk: bool,
}

impl OpenAiStream {
    pub fn new(
        provider: &str,
        requested_model: &str,
        include_usage: bool,
        price: Price,
    ) -> OpenAiStream {
        OpenAiStream {
            provider: provider.to_string(),
            requested_model: requested_model.to_string(),
            include_usage,
            price,
            usage_value: None,
            meta: LastMeta::default(),
            choices: Vec::new(),
            done: false,
            failed: false,
            started: false,
            relayed: 0,
            error_in_chunk: false,
        }
    }

    /// Tells a failure OpenRouter's way (for `/api/v1/` routes): the error,
    /// with an integer `code`, rides on the chunk that ends the choices.
    pub fn with_error_in_chunk(mut self) -> OpenAiStream {
        self.error_in_chunk = true;
        self
    }

    pub fn started(&self) -> bool {
        self.started
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the stream ended with an error event (see `fail`).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The `id` the chunks relayed to the client carried.
    pub fn response_id(&self) -> Option<String> {
        self.meta.id()
    }

    /// The usage the upstream reported so far, if any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage_value.as_ref().and_then(Usage::from_openai)
    }

    /// One upstream event's `data`. Client SSE bytes are appended to `out`.
    pub fn on_event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let trimmed = data.trim();
        if trimmed == "[DONE]" {
            self.finish(out);
            return;
        }
        if trimmed.is_empty() {
            return;
        }
        if self.pass_through(trimmed, out) {
            self.relayed += 1;
            return;
        }
        if self.latch_usage_only(trimmed) {
            return;
        }
        if self.finish_first_choice(trimmed, out) {
            self.relayed += 1;
            return;
        }
        let mut obj = match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(obj)) => obj,
            _ => {
                self.fail("upstream sent a malformed stream event", out);
                return;
            }
        };
        if let Some(err) = obj.get("error").filter(|e| !e.is_null()) {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error")
                .to_string();
            self.fail(&message, out);
            return;
        }
        // An error is not a token: a stream that opens with one has not
        // started, so the call may still fall back.
        self.started = true;
        prefix_model(&mut obj, &self.provider, &self.requested_model);
        self.meta.note_value(&obj);
        let mut carried_usage = false;
        if let Some(usage) = obj.get_mut("usage") {
            if usage.is_object() {
                self.usage_value = Some(usage.take());
                carried_usage = true;
            }
        }
        let mut had_choices = false;
        let mut kept_choices = false;
        if let Some(Value::Array(choices)) = obj.get_mut("choices") {
            had_choices = !choices.is_empty();
            // Nothing after a choice's stop: later deltas for it are dropped.
            choices.retain_mut(|choice| match choice {
                Value::Object(choice) => self.fix_choice(choice),
                _ => true,
            });
            kept_choices = !choices.is_empty();
        }
        if !kept_choices && (carried_usage || had_choices) {
            // A usage-only chunk: held back so it goes out last, after any
            // finish chunk we still owe the client. A chunk whose every
            // choice had already finished carries nothing to send.
            return;
        }
        if carried_usage {
            // Usage rode on a chunk with choices: send the choices now, the
            // usage later in a chunk of its own.
            obj.insert("usage".into(), Value::Null);
        }
        if kept_choices {
            self.relayed += 1;
        }
        write_json(out, &Value::Object(obj));
    }

    /// Chunks with choices relayed so far (see `relayed`).
    pub fn relayed(&self) -> u64 {
        self.relayed
    }

    /// The same-dialect fast path: a plain content delta for choice 0 — no
    /// tool call, no finish, no usage, no error — goes out as the upstream
    /// wrote it, with only `provider/` spliced into `model`. No JSON is
    /// parsed and nothing is allocated. Anything else takes the full path.
    /// The first chunk (the role, for choice 0) goes this way too when its
    /// `model` is a string: only its top-level fields are read, to remember
    /// them for the chunks the gateway writes.
    fn pass_through(&mut self, data: &str, out: &mut Vec<u8>) -> bool {
        let bytes = data.as_bytes();
        let n = &*NEEDLES;
        if memchr::memchr(b'\n', bytes).is_some()
            || n.tool_calls.find(bytes).is_some()
            || n.error.find(bytes).is_some()
            || value_after(bytes, &n.usage).is_some_and(|i| bytes[i] != b'n')
            || value_after(bytes, &n.finish_reason).is_some_and(|i| bytes[i] != b'n')
        {
            return false;
        }
        // Exactly one choice, index 0, still open.
        let Some(first) = n.index.find(bytes) else {
            return false;
        };
        let after = first + n.index.needle().len();
        if n.index.find(&bytes[after..]).is_some()
            || value_after(bytes, &n.index)
                .map(|i| &bytes[i..])
                .is_none_or(|v| !v.starts_with(b"0") || v.get(1).is_some_and(u8::is_ascii_digit))
        {
            return false;
        }
        if !self.started {
            if !self.choices.is_empty() || !self.open_first(data) {
                return false;
            }
        } else {
            match self.choices.iter().find(|c| c.index == 0) {
                Some(choice) if !choice.finished => {}
                _ => return false,
            }
        }
        out.extend_from_slice(b"data: ");
        match value_after(bytes, &n.model).filter(|&i| bytes[i] == b'"') {
            Some(i) => {
                out.extend_from_slice(&bytes[..=i]);
                out.extend_from_slice(self.provider.as_bytes());
                out.push(b'/');
                out.extend_from_slice(&bytes[i + 1..]);
            }
            None => out.extend_from_slice(bytes),
        }
        out.extend_from_slice(b"\n\n");
        true
    }

    /// The first chunk, already known to be a plain delta for choice 0:
    /// remembers its top-level fields and opens choice 0, as the full path
    /// would. `false` (nothing changed) when its fields cannot be read this
    /// way or `model` is not a string (the full path then adds one).
    fn open_first(&mut self, data: &str) -> bool {
        let Some(head) = ChunkHead::parse(data).filter(|h| h.served_model().is_some()) else {
            return false;
        };
        self.meta
            .note_head(&head, &self.provider, &self.requested_model);
        self.started = true;
        self.choices.push(ChoiceState::default());
        true
    }

    /// A chunk with no choices and a usage object (the last chunk of a
    /// stream asked for usage): the usage is latched, to go out last, and
    /// the chunk itself is not relayed, as the full path would do, but
    /// without building the whole chunk as a `Value`. `false` (nothing
    /// changed) for any other chunk.
    fn latch_usage_only(&mut self, data: &str) -> bool {
        let bytes = data.as_bytes();
        let n = &*NEEDLES;
        if n.error.find(bytes).is_some()
            || value_after(bytes, &n.usage).is_none_or(|i| bytes[i] != b'{')
        {
            return false;
        }
        let Some(head) = ChunkHead::parse(data).filter(ChunkHead::no_choices) else {
            return false;
        };
        let Some(usage) = head
            .usage
            .and_then(|u| serde_json::from_str::<Value>(u.get()).ok())
            .filter(Value::is_object)
        else {
            return false;
        };
        self.started = true;
        self.meta
            .note_head(&head, &self.provider, &self.requested_model);
        self.usage_value = Some(usage);
        true
    }

    /// A chunk that ends choice 0, its only choice (a `finish_reason`, no
    /// tool call, no usage, no error): relayed as the upstream wrote it
    /// with the edits the full path makes (`provider/` in `model`, the
    /// reason normalized, the upstream's word kept as
    /// `native_finish_reason` at the end of the choice), without building
    /// the chunk as a `Value`. `false` (nothing changed) for any other.
    fn finish_first_choice(&mut self, data: &str, out: &mut Vec<u8>) -> bool {
        let bytes = data.as_bytes();
        let n = &*NEEDLES;
        if !self.started
            || memchr::memchr(b'\n', bytes).is_some()
            || n.tool_calls.find(bytes).is_some()
            || n.error.find(bytes).is_some()
            || value_after(bytes, &n.usage).is_some_and(|i| bytes[i] != b'n')
            || value_after(bytes, &n.finish_reason).is_none_or(|i| bytes[i] != b'"')
        {
            return false;
        }
        let Some(head) = ChunkHead::parse(data) else {
            return false;
        };
        let (Some(model), Some(choices)) = (head.model, head.choices) else {
            return false;
        };
        let Ok([choice]) = serde_json::from_str::<[&RawValue; 1]>(choices.get()) else {
            return false;
        };
        let Ok(fields) = serde_json::from_str::<ChoiceHead>(choice.get()) else {
            return false;
        };
        let Some(reason) = fields.finish_reason.filter(|_| fields.index == Some(0)) else {
            return false;
        };
        let (Some(native), Some(_)) = (json_str(reason), head.served_model()) else {
            return false;
        };
        let Some(state) = self
            .choices
            .iter_mut()
            .find(|c| c.index == 0 && !c.finished)
        else {
            return false;
        };
        state.finished = true;
        self.meta
            .note_head(&head, &self.provider, &self.requested_model);
        // The three edits, in the order they occur in the chunk.
        let normalized = FinishReason::normalize(&native).as_str();
        let reason_at = offset_in(data, reason.get());
        let mut edits = [
            (offset_in(data, model.get()) + 1, 0, Edit::Provider),
            (reason_at, reason.get().len(), Edit::Reason(normalized)),
            (
                offset_in(data, choice.get()) + choice.get().len() - 1,
                0,
                Edit::Native(fields.native_finish_reason.is_none().then_some(&*native)),
            ),
        ];
        edits.sort_by_key(|e| e.0);
        out.extend_from_slice(b"data: ");
        let mut at = 0;
        for (pos, replaced, edit) in edits {
            out.extend_from_slice(&bytes[at..pos]);
            at = pos + replaced;
            match edit {
                Edit::Provider => {
                    out.extend_from_slice(self.provider.as_bytes());
                    out.push(b'/');
                }
                Edit::Reason(word) => {
                    out.push(b'"');
                    out.extend_from_slice(word.as_bytes());
                    out.push(b'"');
                }
                Edit::Native(Some(word)) => {
                    out.extend_from_slice(b",\"native_finish_reason\":");
                    // A string always serializes.
                    let _ = serde_json::to_writer(&mut *out, word);
                }
                Edit::Native(None) => {}
            }
        }
        out.extend_from_slice(&bytes[at..]);
        out.extend_from_slice(b"\n\n");
        true
    }

    /// Repairs one choice of an upstream chunk; `false` when the choice
    /// had already finished and must not reach the client.
    fn fix_choice(&mut self, choice: &mut Map<String, Value>) -> bool {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let pos = match self.choices.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.choices.push(ChoiceState {
                    index,
                    ..ChoiceState::default()
                });
                self.choices.len() - 1
            }
        };
        let state = &mut self.choices[pos];
        if state.finished {
            // Nothing after a choice's stop (a second finish, late deltas).
            return false;
        }
        if let Some(Value::Array(calls)) = choice
            .get_mut("delta")
            .and_then(|d| d.get_mut("tool_calls"))
        {
            state.saw_tool_calls |= !calls.is_empty();
            for call in calls.iter_mut() {
                let Value::Object(call) = call else { continue };
                let tool_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                let tool = match state.tools.iter().position(|t| t.index == tool_index) {
                    Some(p) => &mut state.tools[p],
                    None => {
                        state.tools.push(ToolState {
                            index: tool_index,
                            ..ToolState::default()
                        });
                        let last = state.tools.len() - 1;
                        &mut state.tools[last]
                    }
                };
                if call.get("id").is_some_and(|v| !v.is_null()) {
                    if tool.id_sent {
                        call.remove("id");
                        call.remove("type");
                    } else {
                        tool.id_sent = true;
                    }
                }
                if let Some(Value::Object(function)) = call.get_mut("function") {
                    if function.get("name").is_some_and(|v| !v.is_null()) {
                        if tool.name_sent {
                            function.remove("name");
                        } else {
                            tool.name_sent = true;
                        }
                    }
                }
            }
        }
        let saw_tools = state.saw_tool_calls;
        normalize_finish(choice, false, saw_tools);
        if choice.get("finish_reason").is_some_and(|v| !v.is_null()) {
            state.finished = true;
        }
        true
    }

    /// The upstream ended normally: owe the client a finish chunk for every
    /// open choice, the usage chunk if asked for, and `[DONE]`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let open: Vec<(u64, bool)> = self
            .choices
            .iter()
            .filter(|c| !c.finished)
            .map(|c| (c.index, c.saw_tool_calls))
            .collect();
        for (index, saw_tools) in open {
            let reason = if saw_tools {
                FinishReason::ToolCalls
            } else {
                FinishReason::Stop
            };
            self.synthetic_choice(index, reason, None, out);
        }
        self.close(out);
    }

    /// The upstream broke mid-stream: an OpenAI-shaped error event, a final
    /// chunk with `finish_reason: "error"`, then `[DONE]`.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.failed = true;
        let mut carried = None;
        if self.error_in_chunk {
            carried = Some(json!({"code": 502, "message": message}));
        } else {
            let error =
                json!({"error": {"message": message, "type": "upstream_error", "code": 502}});
            write_json(out, &error);
        }
        let mut open: Vec<u64> = self
            .choices
            .iter()
            .filter(|c| !c.finished)
            .map(|c| c.index)
            .collect();
        if self.choices.is_empty() {
            open.push(0);
        }
        for index in open {
            self.synthetic_choice(index, FinishReason::Error, carried.take(), out);
        }
        self.close(out);
    }

    fn synthetic_choice(
        &mut self,
        index: u64,
        reason: FinishReason,
        error: Option<Value>,
        out: &mut Vec<u8>,
    ) {
        let mut chunk = self.chunk_base();
        chunk.insert(
            "choices".into(),
            json!([{"index": index, "delta": {}, "finish_reason": reason.as_str(), "native_finish_reason": null}]),
        );
        if let Some(error) = error {
            chunk.insert("error".into(), error);
        }
        write_json(out, &Value::Object(chunk));
        if let Some(state) = self.choices.iter_mut().find(|c| c.index == index) {
            state.finished = true;
        }
    }

    fn chunk_base(&self) -> Map<String, Value> {
        self.meta.chunk_base(&self.provider, &self.requested_model)
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            if let Some(usage) = self.usage_value.clone() {
                let mut chunk = self.chunk_base();
                chunk.insert("choices".into(), json!([]));
                chunk.insert("usage".into(), usage);
                priced_usage(&mut chunk, &self.price);
                write_json(out, &Value::Object(chunk));
            }
        }
        sse::write_data_line(out, b"[DONE]");
        self.done = true;
    }
}

/// One splice of the finish path (see `finish_first_choice`).
enum Edit<'a> {
    Provider,
    Reason(&'static str),
    Native(Option<&'a str>),
}

fn write_json(out: &mut Vec<u8>, value: &Value) {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    sse::write_data_line(out, &bytes);
}

/// The keys the fast path looks for, with their searchers built once.
struct Needles {
    tool_calls: Finder<'static>,
    error: Finder<'static>,
    usage: Finder<'static>,
    finish_reason: Finder<'static>,
    index: Finder<'static>,
    model: Finder<'static>,
}

static NEEDLES: LazyLock<Needles> = LazyLock::new(|| Needles {
    tool_calls: Finder::new(b"\"tool_calls\""),
    error: Finder::new(b"\"error\""),
    usage: Finder::new(b"\"usage\""),
    finish_reason: Finder::new(b"\"finish_reason\""),
    index: Finder::new(b"\"index\""),
    model: Finder::new(b"\"model\""),
});

/// Index of the first byte of the value of `key` (a quoted JSON key), if
/// the key occurs. A string value can spell the same bytes (`"usage"` as
/// content), so every occurrence is tried and only one followed by a colon
/// counts; inside a string a quote would be escaped, so `"usage":` can only
/// be a key.
fn value_after(bytes: &[u8], key: &Finder<'_>) -> Option<usize> {
    let skip = |mut i: usize| {
        while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    key.find_iter(bytes).find_map(|at| {
        let i = skip(at + key.needle().len());
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let i = skip(i + 1);
        (i < bytes.len()).then_some(i)
    })
}
