//! Gemini's `streamGenerateContent?alt=sse` -> canonical stream events.
//! Each `data:` is a whole `GenerateContentResponse` holding the next
//! slice of the answer; function calls always arrive whole.

use serde_json::Value;

use super::response::{
    block_reason, candidate_parts, decode_parts, error_message, first_candidate,
};
use super::wire::{field, finish_from_block, finish_from_native, str_field, usage_from};
use crate::translate::canonical::{Part, StreamEvent};

#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// `Start` goes out with the first chunk: Gemini has no opening event,
    /// every chunk repeats `responseId` and `modelVersion`.
    started: bool,
    /// Function calls seen, for tool-call indexes and `call_<n>` ids.
    calls: usize,
    /// Gemini says `STOP` after function calls too; this makes it ToolCalls.
    saw_tool_call: bool,
    /// A `finishReason` was seen: the stream is complete.
    finished: bool,
    /// An error chunk or an unreadable one ended the stream; later chunks
    /// are ignored.
    failed: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// One SSE event. Gemini names no events, so `event` is ignored.
    pub fn on_event(&mut self, _event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.failed || data.trim().is_empty() {
            return;
        }
        let root: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => return self.fail(format!("unreadable Gemini stream chunk: {e}"), out),
        };
        let Some(root) = root.as_object() else {
            return self.fail("Gemini stream chunk is not a JSON object".into(), out);
        };
        if let Some(err) = root.get("error") {
            return self.fail(error_message(err), out);
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: str_field(root, "responseId")
                    .unwrap_or_default()
                    .to_string(),
                model: str_field(root, "modelVersion")
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        let candidate = first_candidate(root);
        if let Some(candidate) = candidate {
            let mut parts = Vec::new();
            let first_call = self.calls;
            decode_parts(candidate_parts(candidate), &mut self.calls, &mut parts);
            let mut index = first_call;
            for part in parts {
                self.emit(part, &mut index, out);
            }
        }
        // Usage rides on most chunks, growing; each report supersedes.
        if let Some(usage) = field(root, "usageMetadata").and_then(usage_from) {
            out.push(StreamEvent::Usage(usage));
        }
        if self.finished {
            return;
        }
        let finish = match candidate.and_then(|c| str_field(c, "finishReason")) {
            Some(native) => Some(finish_from_native(native, self.saw_tool_call)),
            None => block_reason(root).map(finish_from_block),
        };
        if let Some(finish) = finish {
            self.finished = true;
            out.push(StreamEvent::Finish(finish));
        }
    }

    fn emit(&mut self, part: Part, index: &mut usize, out: &mut Vec<StreamEvent>) {
        match part {
            Part::Text(text) => out.push(StreamEvent::Text(text)),
            Part::Reasoning {
                text, signature, ..
            } => out.push(StreamEvent::Reasoning { text, signature }),
            Part::ToolCall {
                id,
                name,
                arguments,
                signature,
            } => {
                self.saw_tool_call = true;
                let i = u32::try_from(*index).unwrap_or(u32::MAX);
                *index += 1;
                out.push(StreamEvent::ToolCallStart {
                    index: i,
                    id,
                    name,
                    signature,
                });
                out.push(StreamEvent::ToolCallArguments {
                    index: i,
                    fragment: arguments,
                });
            }
            // No stream event carries an image (image-generation output).
            Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }

    fn fail(&mut self, message: String, out: &mut Vec<StreamEvent>) {
        self.failed = true;
        out.push(StreamEvent::Error { message });
    }

    /// Upstream ended; complete only when a `finishReason` was seen.
    pub fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> bool {
        self.finished && !self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::canonical::Finish;
    use crate::translate::finish::FinishReason;
    use crate::usage::Usage;
    use serde_json::json;

    fn run(chunks: &[Value]) -> (Vec<StreamEvent>, bool) {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.on_event(None, &c.to_string(), &mut out);
        }
        let done = d.finish(&mut out);
        (out, done)
    }

    #[test]
    fn tool_calls_get_running_indexes_and_finish_as_tool_calls() {
        let (events, done) = run(&[
            json!({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}],
                "responseId": "r", "modelVersion": "m"}),
            json!({"candidates": [{"content": {"parts": [
                {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "S"}]}}]}),
            json!({"candidates": [{"content": {"parts": [
                {"functionCall": {"name": "b", "id": "own"}}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2}}),
        ]);
        assert!(done);
        assert_eq!(
            events,
            [
                StreamEvent::Start {
                    id: "r".into(),
                    model: "m".into()
                },
                StreamEvent::Text("Hi".into()),
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: "call_0".into(),
                    name: "a".into(),
                    signature: Some("S".into())
                },
                StreamEvent::ToolCallArguments {
                    index: 0,
                    fragment: r#"{"x":1}"#.into()
                },
                StreamEvent::ToolCallStart {
                    index: 1,
                    id: "own".into(),
                    name: "b".into(),
                    signature: None
                },
                StreamEvent::ToolCallArguments {
                    index: 1,
                    fragment: "{}".into()
                },
                StreamEvent::Usage(Usage {
                    prompt_tokens: 4,
                    completion_tokens: 2,
                    ..Usage::default()
                }),
                StreamEvent::Finish(Finish {
                    reason: FinishReason::ToolCalls,
                    native: "STOP".into()
                }),
            ]
        );
    }

    #[test]
    fn usage_after_finish_is_still_reported_and_finish_only_once() {
        let (events, done) = run(&[
            json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]}),
            json!({"candidates": [{"finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 9}}),
        ]);
        assert!(done);
        let finishes = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Finish(_)))
            .count();
        assert_eq!(finishes, 1);
        assert!(matches!(events.last(), Some(StreamEvent::Usage(u)) if u.completion_tokens == 9));
    }

    #[test]
    fn truncated_errors_and_blocks() {
        let (events, done) =
            run(&[json!({"candidates": [{"content": {"parts": [{"text": "x"}]}}]})]);
        assert!(!done);
        assert_eq!(events.len(), 2);

        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.on_event(None, "{broken", &mut out);
        d.on_event(
            None,
            r#"{"candidates":[{"finishReason":"STOP"}]}"#,
            &mut out,
        );
        assert!(!d.finish(&mut out));
        assert!(matches!(out.as_slice(), [StreamEvent::Error { .. }]));

        let (events, done) =
            run(&[json!({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}})]);
        assert!(!done);
        assert_eq!(
            events,
            [StreamEvent::Error {
                message: "boom".into()
            }]
        );

        let (events, done) = run(&[json!({"promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 3}})]);
        assert!(done);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Finish(Finish {
                reason: FinishReason::ContentFilter,
                native: "SAFETY".into()
            }))
        );
        let (events, _) = run(&[json!([1])]);
        assert!(matches!(events.as_slice(), [StreamEvent::Error { .. }]));
    }
}
