//! Usage read on the side of a relayed answer. The bytes go to the client
//! untouched; this only looks. An event stream is decoded event by event
//! and only events that mention usage are parsed; a whole JSON answer is
//! copied (up to `max_upstream_body_bytes`) and parsed at its end. Each
//! dialect's usage object is read by that dialect's own reader (OpenAI
//! `usage`, Anthropic `usage` in `message_start` and `message_delta`,
//! Gemini `usageMetadata`), the same readers the translations use.

use serde_json::Value;

use crate::gateway::ProviderKind;
use crate::sse::SseDecoder;
use crate::translate::anthropic::RawUsage;
use crate::translate::gemini::usage_from_metadata;
use crate::translate::responses;
use crate::usage::Usage;

#[derive(Debug)]
enum Body {
    /// `text/event-stream`.
    Events(SseDecoder),
    /// Anything else: a bounded copy, parsed as JSON at the end.
    Whole { bytes: Vec<u8>, limit: usize },
    /// Too large to copy: its usage is not read.
    Skipped,
}

/// What a relayed answer reported.
#[derive(Debug)]
pub(crate) struct Sniffer {
    kind: ProviderKind,
    body: Body,
    /// Anthropic reports its counters in two parts; kept raw until the end.
    anthropic: Option<RawUsage>,
    usage: Option<Usage>,
    /// The answer's id (`chatcmpl-…`, `msg_…`, Gemini's `responseId`).
    id: Option<String>,
    /// Events of an OpenAI stream (`[DONE]` aside): about one token each,
    /// the output half of an estimate when the stream reports no usage.
    chunks: u64,
}

impl Sniffer {
    pub(crate) fn new(
        kind: ProviderKind,
        event_stream: bool,
        max_sse_line: usize,
        max_body: usize,
    ) -> Sniffer {
        let body = if event_stream {
            Body::Events(SseDecoder::new(max_sse_line))
        } else {
            Body::Whole {
                bytes: Vec::new(),
                limit: max_body,
            }
        };
        Sniffer {
            kind,
            body,
            anthropic: None,
            usage: None,
            id: None,
            chunks: 0,
        }
    }

    /// An OpenAI event stream's chunks so far; `None` for other answers.
    pub(crate) fn openai_chunks(&self) -> Option<u64> {
        match (&self.body, self.kind) {
            (Body::Events(_), ProviderKind::OpenAi) => Some(self.chunks),
            _ => None,
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        match &mut self.body {
            Body::Events(decoder) => {
                let (kind, anthropic, usage, id, chunks) = (
                    self.kind,
                    &mut self.anthropic,
                    &mut self.usage,
                    &mut self.id,
                    &mut self.chunks,
                );
                let result = decoder.feed(bytes, |event| {
                    if event.data != "[DONE]" {
                        *chunks += 1;
                    }
                    // Only a usage report is worth parsing; the rest of
                    // the stream is looked at no further.
                    if event.data.contains("sage") {
                        if let Ok(value) = serde_json::from_str::<Value>(event.data) {
                            read(kind, &value, anthropic, usage, id);
                        }
                    }
                });
                if result.is_err() {
                    // An event over the line bound: what follows is not read.
                    self.body = Body::Skipped;
                }
            }
            Body::Whole { bytes: copy, limit } => {
                if copy.len() + bytes.len() > *limit {
                    self.body = Body::Skipped;
                } else {
                    copy.extend_from_slice(bytes);
                }
            }
            Body::Skipped => {}
        }
    }

    /// The answer is over: its usage, if it reported any, and its id.
    pub(crate) fn finish(&mut self) -> (Option<Usage>, Option<String>) {
        if let Body::Whole { bytes, .. } = &mut self.body {
            let bytes = std::mem::take(bytes);
            match serde_json::from_slice::<Value>(&bytes) {
                // Gemini's `streamGenerateContent` without `alt=sse`: an
                // array of chunks, the usage in the last that has one.
                Ok(Value::Array(chunks)) => {
                    for chunk in &chunks {
                        self.read(chunk);
                    }
                }
                Ok(value) => self.read(&value),
                Err(_) => {}
            }
        }
        let usage = self
            .usage
            .or_else(|| self.anthropic.map(RawUsage::to_canonical));
        (usage, self.id.take())
    }

    fn read(&mut self, value: &Value) {
        read(
            self.kind,
            value,
            &mut self.anthropic,
            &mut self.usage,
            &mut self.id,
        );
    }
}

/// Reads one JSON message (a whole answer or one event) in `kind`'s shape.
fn read(
    kind: ProviderKind,
    value: &Value,
    anthropic: &mut Option<RawUsage>,
    usage: &mut Option<Usage>,
    id: &mut Option<String>,
) {
    let str_at = |key: &str| value.get(key).and_then(Value::as_str);
    match kind {
        ProviderKind::OpenAi => {
            // The Responses API (`/responses`) reports `input_tokens` and
            // `output_tokens`, in a stream inside `response.completed`'s
            // `response`; chat completions `prompt_tokens` at the top.
            let response = value
                .get("response")
                .filter(|r| r.is_object())
                .unwrap_or(value);
            let found = response.get("usage").and_then(|u| {
                if u.get("input_tokens").is_some() {
                    responses::upstream::usage_of(u)
                } else {
                    Usage::from_openai(u)
                }
            });
            if let Some(found) = found {
                *usage = Some(found);
            }
            if id.is_none() {
                *id = response
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
        }
        ProviderKind::Anthropic => {
            // `message_start` nests the message; a whole answer is one.
            let message = value.get("message").unwrap_or(value);
            if let Some(found) = message.get("usage").and_then(RawUsage::from_value) {
                match anthropic {
                    Some(seen) => seen.merge(&found),
                    None => *anthropic = Some(found),
                }
            }
            if id.is_none() {
                *id = message.get("id").and_then(Value::as_str).map(str::to_owned);
            }
        }
        ProviderKind::Gemini => {
            if let Some(found) = value.get("usageMetadata").and_then(usage_from_metadata) {
                *usage = Some(found);
            }
            if id.is_none() {
                *id = str_at("responseId").map(str::to_owned);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(kind: ProviderKind, sse: bool, body: &[u8], split: usize) -> Option<Usage> {
        let mut s = Sniffer::new(kind, sse, 1 << 16, 1 << 20);
        let (a, b) = body.split_at(split.min(body.len()));
        s.feed(a);
        s.feed(b);
        s.finish().0
    }

    #[test]
    fn an_openai_stream_reports_its_last_usage_chunk() {
        let body = b"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
            data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n\
            data: [DONE]\n\n";
        for split in 0..body.len() {
            let usage = sniff(ProviderKind::OpenAi, true, body, split).expect("usage");
            assert_eq!((usage.prompt_tokens, usage.completion_tokens), (7, 2));
        }
    }

    #[test]
    fn an_openai_stream_without_usage_counts_its_chunks_wherever_it_is_split() {
        let body = b"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
            data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n\
            data: [DONE]\n\n";
        for split in 0..body.len() {
            let mut s = Sniffer::new(ProviderKind::OpenAi, true, 1 << 16, 1 << 20);
            let (a, b) = body.split_at(split);
            s.feed(a);
            s.feed(b);
            assert_eq!(s.finish().0, None);
            assert_eq!(s.openai_chunks(), Some(2), "split at {split}");
        }
        let whole = Sniffer::new(ProviderKind::OpenAi, false, 1 << 16, 1 << 20);
        assert_eq!(whole.openai_chunks(), None, "only streams are estimated");
    }

    /// OpenAI's Responses API through the proxy (`/openai/v1/responses`):
    /// its usage is `input_tokens`/`output_tokens`, streamed inside
    /// `response.completed`, and the id is the response's.
    #[test]
    fn an_openai_responses_answer_reports_its_usage() {
        let whole = br#"{"id":"resp_1","object":"response","output":[],"usage":{"input_tokens":24,"input_tokens_details":{"cached_tokens":4},"output_tokens":8,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":32}}"#;
        let mut s = Sniffer::new(ProviderKind::OpenAi, false, 1 << 16, 1 << 20);
        s.feed(whole);
        let (usage, id) = s.finish();
        let usage = usage.expect("usage");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
                usage.reasoning_tokens
            ),
            (24, 8, 4, 2)
        );
        assert_eq!(id.as_deref(), Some("resp_1"));
        let stream = b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_2\",\"usage\":null}}\n\n\
            event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n\
            event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_2\",\"usage\":{\"input_tokens\":5,\"output_tokens\":3}}}\n\n";
        for split in 0..stream.len() {
            let mut s = Sniffer::new(ProviderKind::OpenAi, true, 1 << 16, 1 << 20);
            let (a, b) = stream.split_at(split);
            s.feed(a);
            s.feed(b);
            let (usage, id) = s.finish();
            let usage = usage.expect("usage");
            assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 3));
            assert_eq!(id.as_deref(), Some("resp_2"));
        }
    }

    #[test]
    fn an_anthropic_stream_adds_up_start_and_delta() {
        let body = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n";
        let usage = sniff(ProviderKind::Anthropic, true, body, 40).expect("usage");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens
            ),
            (14, 9, 4)
        );
    }

    #[test]
    fn whole_answers_of_each_dialect() {
        let openai = br#"{"id":"chatcmpl-1","usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
        let anthropic = br#"{"id":"msg_1","usage":{"input_tokens":5,"output_tokens":6}}"#;
        let gemini = br#"[{"responseId":"r1"},{"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":2,"thoughtsTokenCount":1}}]"#;
        let tokens = |u: Usage| (u.prompt_tokens, u.completion_tokens);
        assert_eq!(
            sniff(ProviderKind::OpenAi, false, openai, 5).map(tokens),
            Some((3, 4))
        );
        assert_eq!(
            sniff(ProviderKind::Anthropic, false, anthropic, 9).map(tokens),
            Some((5, 6))
        );
        assert_eq!(
            sniff(ProviderKind::Gemini, false, gemini, 11).map(tokens),
            Some((8, 3))
        );
    }

    #[test]
    fn an_unrecognized_or_oversized_answer_has_no_usage() {
        assert_eq!(sniff(ProviderKind::OpenAi, false, b"<html>", 2), None);
        assert_eq!(
            sniff(ProviderKind::OpenAi, false, br#"{"data":[]}"#, 2),
            None
        );
        let mut s = Sniffer::new(ProviderKind::OpenAi, false, 64, 8);
        s.feed(br#"{"usage":{"prompt_tokens":1}}"#);
        assert_eq!(s.finish().0, None);
    }
}
