//! PLACEHOLDER SIGNATURES (helper task): the anthropic dialect <-> canonical.

use crate::api::ApiError;
use crate::translate::canonical::{ChatRequest, ChatResponse, StreamEvent};

/// Client request body in this dialect -> canonical. `model` is the model
/// named by the route (path for Gemini, body for Anthropic is also read).
pub fn decode_request(_model: Option<&str>, _body: &[u8]) -> Result<ChatRequest, ApiError> {
    todo!()
}

/// Canonical -> upstream request body in this dialect.
pub fn encode_request(_req: &ChatRequest) -> Vec<u8> {
    todo!()
}

/// Upstream path (after the provider's base path) and query for a request.
pub fn upstream_target(_model: &str, _stream: bool) -> String {
    todo!()
}

/// Upstream non-stream response body -> canonical.
pub fn decode_response(_body: &[u8]) -> Result<ChatResponse, String> {
    todo!()
}

/// Canonical -> client response body in this dialect; `model` is the label to show.
pub fn encode_response(_resp: &ChatResponse, _model: &str) -> Vec<u8> {
    todo!()
}

/// The human message of a provider error body in this dialect.
pub fn decode_error(_body: &[u8]) -> Option<String> {
    todo!()
}

/// Upstream stream (SSE events) -> canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder {}
    }
    /// One SSE event (`event:` name, `data:` text).
    pub fn on_event(&mut self, _event: Option<&str>, _data: &str, _out: &mut Vec<StreamEvent>) {
        todo!()
    }
    /// Upstream ended; returns whether the stream was complete.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> bool {
        todo!()
    }
}

/// Canonical events -> client stream bytes in this dialect.
#[derive(Debug)]
pub struct StreamEncoder {}

impl StreamEncoder {
    pub fn new(_model: &str, _include_usage: bool) -> StreamEncoder {
        StreamEncoder {}
    }
    pub fn on_event(&mut self, _event: &StreamEvent, _out: &mut Vec<u8>) {
        todo!()
    }
    /// Upstream ended normally.
    pub fn finish(&mut self, _out: &mut Vec<u8>) {
        todo!()
    }
    /// Upstream failed mid-stream.
    pub fn fail(&mut self, _message: &str, _out: &mut Vec<u8>) {
        todo!()
    }
    pub fn is_done(&self) -> bool {
        todo!()
    }
}
