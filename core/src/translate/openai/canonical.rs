//! PLACEHOLDER SIGNATURES (helper task): the OpenAI dialect <-> canonical.

use crate::api::ApiError;
use crate::translate::canonical::{ChatRequest, ChatResponse, StreamEvent};

/// Client `/v1/chat/completions` body -> canonical.
pub fn decode_request(_body: &[u8]) -> Result<ChatRequest, ApiError> {
    todo!()
}

/// Canonical -> body for an OpenAI-compatible upstream.
pub fn encode_request(_req: &ChatRequest) -> Vec<u8> {
    todo!()
}

/// Upstream chat.completion body -> canonical.
pub fn decode_response(_body: &[u8]) -> Result<ChatResponse, String> {
    todo!()
}

/// Canonical -> client chat.completion body; `model` is the label to show.
pub fn encode_response(_resp: &ChatResponse, _model: &str) -> Vec<u8> {
    todo!()
}

/// The human message of an OpenAI-style error body.
pub fn decode_error(_body: &[u8]) -> Option<String> {
    todo!()
}

/// OpenAI upstream stream -> canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder {}
    }
    pub fn on_event(&mut self, _event: Option<&str>, _data: &str, _out: &mut Vec<StreamEvent>) {
        todo!()
    }
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> bool {
        todo!()
    }
}

/// Canonical events -> OpenAI chat.completion.chunk stream.
#[derive(Debug)]
pub struct StreamEncoder {}

impl StreamEncoder {
    pub fn new(_model: &str, _include_usage: bool) -> StreamEncoder {
        StreamEncoder {}
    }
    pub fn on_event(&mut self, _event: &StreamEvent, _out: &mut Vec<u8>) {
        todo!()
    }
    pub fn finish(&mut self, _out: &mut Vec<u8>) {
        todo!()
    }
    pub fn fail(&mut self, _message: &str, _out: &mut Vec<u8>) {
        todo!()
    }
    pub fn is_done(&self) -> bool {
        todo!()
    }
}
