//! Streaming transducers: upstream SSE events in, client SSE bytes out.

pub mod openai;
pub mod passthrough;
pub mod translated;

use crate::usage::Usage;

/// The transducer of one streamed response: the same-dialect OpenAI fast
/// path, or a translation through the canonical events.
#[derive(Debug)]
pub enum ClientStream {
    Native(openai::OpenAiStream),
    PassThrough(passthrough::PassThroughStream),
    Translated(translated::TranslatedStream),
}

impl ClientStream {
    /// One upstream SSE event.
    pub fn on_event(&mut self, event: Option<&str>, data: &str, out: &mut Vec<u8>) {
        match self {
            ClientStream::Native(s) => s.on_event(data, out),
            ClientStream::PassThrough(s) => s.on_event(event, data, out),
            ClientStream::Translated(s) => s.on_event(event, data, out),
        }
    }

    /// The upstream body ended; `truncated` when it stopped mid-event.
    pub fn finish(&mut self, truncated: bool, out: &mut Vec<u8>) {
        match self {
            ClientStream::Native(s) if truncated => {
                s.fail("the provider's stream ended mid-event", out)
            }
            ClientStream::Native(s) => s.finish(out),
            ClientStream::PassThrough(s) => s.finish(truncated, out),
            ClientStream::Translated(s) => s.finish(truncated, out),
        }
    }

    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        match self {
            ClientStream::Native(s) => s.fail(message, out),
            ClientStream::PassThrough(s) => s.fail(message, out),
            ClientStream::Translated(s) => s.fail(message, out),
        }
    }

    pub fn is_done(&self) -> bool {
        match self {
            ClientStream::Native(s) => s.is_done(),
            ClientStream::PassThrough(s) => s.is_done(),
            ClientStream::Translated(s) => s.is_done(),
        }
    }

    /// The stream ended with an error event: the client lacks part of it.
    pub fn failed(&self) -> bool {
        match self {
            ClientStream::Native(s) => s.failed(),
            ClientStream::PassThrough(s) => s.failed(),
            ClientStream::Translated(s) => s.failed(),
        }
    }

    /// Content (not just a start) has been seen.
    pub fn started(&self) -> bool {
        match self {
            ClientStream::Native(s) => s.started(),
            ClientStream::PassThrough(s) => s.started(),
            ClientStream::Translated(s) => s.started(),
        }
    }

    /// Content chunks relayed so far: the output-token estimate for a
    /// stream abandoned before the provider reported its usage.
    pub fn relayed(&self) -> u64 {
        match self {
            ClientStream::Native(s) => s.relayed(),
            ClientStream::PassThrough(s) => s.relayed(),
            ClientStream::Translated(s) => s.relayed(),
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        match self {
            ClientStream::Native(s) => s.usage(),
            ClientStream::PassThrough(s) => s.usage(),
            ClientStream::Translated(s) => s.usage(),
        }
    }

    /// The final Responses API `response` object the client got (to keep
    /// a stored copy); taken once.
    pub fn take_response(&mut self) -> Option<serde_json::Value> {
        match self {
            ClientStream::Native(_) => None,
            ClientStream::PassThrough(s) => s.take_response(),
            ClientStream::Translated(s) => s.take_response(),
        }
    }

    /// The id of the answer as the client saw it (`client` is its
    /// dialect); `None` when the provider sent none. Read once, at the end.
    pub fn response_id(&self, client: crate::api::Dialect) -> Option<String> {
        match self {
            ClientStream::Native(s) => s.response_id(),
            ClientStream::PassThrough(s) => s.response_id(),
            ClientStream::Translated(s) => s.response_id(client),
        }
    }

    /// The usage seen is the provider's final count. OpenAI reports usage
    /// once, at the end; Anthropic and Gemini report input tokens as the
    /// stream starts, and their count is final only with the finish.
    pub fn usage_final(&self) -> bool {
        match self {
            ClientStream::Native(s) => s.usage().is_some(),
            ClientStream::PassThrough(s) => s.usage_final(),
            ClientStream::Translated(s) => s.usage_final(),
        }
    }
}
