//! Picks the dialect module for a side of a call. Generic code asks here
//! instead of matching on provider names: dialect facts live in the
//! dialect modules.

use serde_json::{Map, Value};

use crate::api::Dialect;
use crate::billing::{MicroUsd, Price};
use crate::gateway::ProviderKind;
use crate::translate::canonical::{ChatRequest, ChatResponse, StreamEvent};
use crate::translate::DecodeError;
use crate::translate::{anthropic, gemini, openai, responses};

/// The client dialect a provider kind speaks.
pub fn dialect_of(kind: ProviderKind) -> Dialect {
    match kind {
        ProviderKind::OpenAi => Dialect::OpenAi,
        ProviderKind::Anthropic => Dialect::Anthropic,
        ProviderKind::Gemini => Dialect::Google,
    }
}

/// The upstream body for a canonical request.
pub fn encode_request(kind: ProviderKind, req: &ChatRequest) -> Vec<u8> {
    match kind {
        ProviderKind::OpenAi => openai::canonical::encode_request(req),
        ProviderKind::Anthropic => anthropic::encode_request(req),
        ProviderKind::Gemini => gemini::encode_request(req),
    }
}

/// The upstream path (after the provider's base path) for a chat call.
pub fn chat_target(kind: ProviderKind, model: &str, stream: bool) -> String {
    match kind {
        ProviderKind::OpenAi => "/chat/completions".to_string(),
        ProviderKind::Anthropic => anthropic::upstream_target(model, stream),
        ProviderKind::Gemini => gemini::upstream_target(model, stream),
    }
}

/// The upstream body for a same-dialect request: the client's own body
/// with the model renamed (Anthropic names it in the body; Gemini in the
/// path, so its body goes as it came).
pub fn native_body(
    kind: ProviderKind,
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
) -> Vec<u8> {
    let mut body = body.clone();
    if kind == ProviderKind::Anthropic {
        body.insert("model".into(), Value::String(model.to_string()));
        if stream {
            body.insert("stream".into(), Value::Bool(true));
        }
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Headers a provider kind needs besides its key.
pub fn extra_headers(kind: ProviderKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        // The API version Anthropic's own SDK pins; required on every call.
        ProviderKind::Anthropic => &[("anthropic-version", "2023-06-01")],
        ProviderKind::OpenAi | ProviderKind::Gemini => &[],
    }
}

pub fn decode_response(kind: ProviderKind, body: &[u8]) -> Result<ChatResponse, DecodeError> {
    match kind {
        ProviderKind::OpenAi => openai::canonical::decode_response(body),
        ProviderKind::Anthropic => anthropic::decode_response(body),
        ProviderKind::Gemini => gemini::decode_response(body),
    }
}

/// `cost` goes into OpenAI answers as `usage.cost`; Anthropic's and
/// Gemini's answers have no such field and get none.
pub fn encode_response(
    dialect: Dialect,
    resp: &ChatResponse,
    model: &str,
    cost: Option<MicroUsd>,
) -> Vec<u8> {
    match dialect {
        Dialect::OpenAi => openai::canonical::encode_response_with_cost(resp, model, cost),
        Dialect::Anthropic => anthropic::encode_response(resp, model),
        Dialect::Google => gemini::encode_response(resp, model),
        // The call echoes the client's request: see `responses::encode_response`.
        Dialect::Responses => responses::encode_response(resp, model, &Map::new(), cost),
    }
}

/// The id a client of `dialect` sees for an answer whose upstream id is
/// `id`, as that dialect's encoders write it; `None` for an empty id.
pub fn client_response_id(dialect: Dialect, id: &str) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    Some(match dialect {
        Dialect::OpenAi => openai::canonical::completion_id(id),
        Dialect::Anthropic => anthropic::message_id(id),
        Dialect::Google => id.to_owned(),
        Dialect::Responses => responses::response_id(id),
    })
}

/// The human message inside a provider's error body.
pub fn decode_error(kind: ProviderKind, body: &[u8]) -> Option<String> {
    match kind {
        ProviderKind::OpenAi => openai::canonical::decode_error(body),
        ProviderKind::Anthropic => anthropic::decode_error(body),
        ProviderKind::Gemini => gemini::decode_error(body),
    }
}

/// An upstream stream decoder for a provider kind.
#[derive(Debug)]
pub enum StreamDecoder {
    OpenAi(openai::canonical::StreamDecoder),
    Anthropic(anthropic::StreamDecoder),
    Gemini(gemini::StreamDecoder),
    /// A provider's own Responses events (a relayed native stream).
    Responses(responses::upstream::StreamDecoder),
}

impl StreamDecoder {
    /// The decoder for a provider's stream in a client's own dialect: the
    /// Responses API's events, or the provider kind's chat stream.
    pub fn native(kind: ProviderKind, dialect: Dialect) -> StreamDecoder {
        match dialect {
            Dialect::Responses => {
                StreamDecoder::Responses(responses::upstream::StreamDecoder::new())
            }
            _ => StreamDecoder::new(kind),
        }
    }

    pub fn new(kind: ProviderKind) -> StreamDecoder {
        match kind {
            ProviderKind::OpenAi => StreamDecoder::OpenAi(openai::canonical::StreamDecoder::new()),
            ProviderKind::Anthropic => StreamDecoder::Anthropic(anthropic::StreamDecoder::new()),
            ProviderKind::Gemini => StreamDecoder::Gemini(gemini::StreamDecoder::new()),
        }
    }

    pub fn on_event(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        match self {
            StreamDecoder::OpenAi(d) => d.on_event(event, data, out),
            StreamDecoder::Anthropic(d) => d.on_event(event, data, out),
            StreamDecoder::Gemini(d) => d.on_event(event, data, out),
            StreamDecoder::Responses(d) => d.on_event(event, data, out),
        }
    }

    /// The `response` object a relayed Responses stream completed with.
    pub fn take_response(&mut self) -> Option<Value> {
        match self {
            StreamDecoder::Responses(d) => d.take_response(),
            _ => None,
        }
    }

    /// Upstream ended; whether its stream was complete.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> bool {
        match self {
            StreamDecoder::OpenAi(d) => d.finish(out),
            StreamDecoder::Anthropic(d) => d.finish(out),
            StreamDecoder::Gemini(d) => d.finish(out),
            StreamDecoder::Responses(d) => d.finish(out),
        }
    }
}

/// A client stream encoder for a dialect.
#[derive(Debug)]
pub enum StreamEncoder {
    OpenAi(openai::canonical::StreamEncoder),
    Anthropic(anthropic::StreamEncoder),
    Gemini(gemini::StreamEncoder),
    Responses(Box<responses::StreamEncoder>),
}

impl StreamEncoder {
    /// `json_array`: Gemini's stream without `alt=sse` (one JSON array).
    pub fn new(
        dialect: Dialect,
        model: &str,
        include_usage: bool,
        json_array: bool,
    ) -> StreamEncoder {
        match dialect {
            Dialect::OpenAi => {
                StreamEncoder::OpenAi(openai::canonical::StreamEncoder::new(model, include_usage))
            }
            Dialect::Anthropic => {
                StreamEncoder::Anthropic(anthropic::StreamEncoder::new(model, include_usage))
            }
            Dialect::Google if json_array => {
                StreamEncoder::Gemini(gemini::StreamEncoder::new_json_array(model))
            }
            Dialect::Google => {
                StreamEncoder::Gemini(gemini::StreamEncoder::new(model, include_usage))
            }
            // Usage is always in `response.completed`.
            Dialect::Responses => {
                StreamEncoder::Responses(Box::new(responses::StreamEncoder::new(model)))
            }
        }
    }

    /// The price the usage chunk's `usage.cost` is computed at, where the
    /// dialect has such a field (OpenAI's, as OpenRouter sends it).
    pub fn with_price(self, price: Option<Price>) -> StreamEncoder {
        match (self, price) {
            (StreamEncoder::OpenAi(e), Some(p)) => StreamEncoder::OpenAi(e.with_price(p)),
            (StreamEncoder::Responses(e), Some(p)) => {
                StreamEncoder::Responses(Box::new(e.with_price(p)))
            }
            (other, _) => other,
        }
    }

    /// A failure told OpenRouter's way, where the client speaks OpenAI's
    /// dialect (see [`openai::canonical::StreamEncoder::with_error_in_chunk`]).
    pub fn with_error_in_chunk(self, yes: bool) -> StreamEncoder {
        match self {
            StreamEncoder::OpenAi(e) if yes => StreamEncoder::OpenAi(e.with_error_in_chunk()),
            other => other,
        }
    }

    /// The Unix time chunks report as `created`, where the dialect has one
    /// (OpenAI); upstream events of other dialects carry no timestamp.
    pub fn with_created(self, created: Option<u64>) -> StreamEncoder {
        match (self, created) {
            (StreamEncoder::OpenAi(e), Some(t)) => StreamEncoder::OpenAi(e.with_created(t)),
            (StreamEncoder::Responses(e), Some(t)) => {
                StreamEncoder::Responses(Box::new(e.with_created(t)))
            }
            (other, _) => other,
        }
    }

    /// The client's request, where the dialect's events echo it (the
    /// Responses API's `response` objects).
    pub fn with_request(self, request: Option<&Map<String, Value>>) -> StreamEncoder {
        match (self, request) {
            (StreamEncoder::Responses(e), Some(r)) => {
                StreamEncoder::Responses(Box::new(e.with_request(r)))
            }
            (other, _) => other,
        }
    }

    /// The final Responses `response` object the stream ended with.
    pub fn take_response(&mut self) -> Option<Value> {
        match self {
            StreamEncoder::Responses(e) => e.take_response(),
            _ => None,
        }
    }

    pub fn on_event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.on_event(event, out),
            StreamEncoder::Anthropic(e) => e.on_event(event, out),
            StreamEncoder::Gemini(e) => e.on_event(event, out),
            StreamEncoder::Responses(e) => e.on_event(event, out),
        }
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.finish(out),
            StreamEncoder::Anthropic(e) => e.finish(out),
            StreamEncoder::Gemini(e) => e.finish(out),
            StreamEncoder::Responses(e) => e.finish(out),
        }
    }

    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.fail(message, out),
            StreamEncoder::Anthropic(e) => e.fail(message, out),
            StreamEncoder::Gemini(e) => e.fail(message, out),
            StreamEncoder::Responses(e) => e.fail(message, out),
        }
    }

    pub fn is_done(&self) -> bool {
        match self {
            StreamEncoder::OpenAi(e) => e.is_done(),
            StreamEncoder::Anthropic(e) => e.is_done(),
            StreamEncoder::Gemini(e) => e.is_done(),
            StreamEncoder::Responses(e) => e.is_done(),
        }
    }
}
