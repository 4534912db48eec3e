//! Canonical stream events -> a Gemini client's stream: SSE for
//! `streamGenerateContent?alt=sse`, or the JSON array Gemini sends without
//! `alt=sse`. Every chunk is a whole `GenerateContentResponse`.

use serde_json::{json, Value};

use super::response::{encode_part, function_call_part, response_value};
use crate::sse::write_data_line;
use crate::translate::canonical::{merge_usage, Finish, Part, StreamEvent};
use crate::usage::Usage;

/// How chunks are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// `data: {chunk}\n\n` per chunk.
    Sse,
    /// `[{chunk}`, `\n,\r\n{chunk}`..., `\n]`, each chunk pretty-printed
    /// with two-space indents: byte for byte how Gemini frames it.
    JsonArray,
}

/// A tool call whose arguments are still arriving: Gemini clients expect a
/// `functionCall` part whole, so it goes out once the next part starts or
/// the answer ends.
#[derive(Debug)]
struct PendingCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
    signature: Option<String>,
}

#[derive(Debug)]
pub struct StreamEncoder {
    framing: Framing,
    /// The label every chunk shows as `modelVersion`.
    model: String,
    /// From `Start`; every Gemini chunk repeats it.
    response_id: String,
    /// JSON-array framing: how many elements were written (0: not even `[`).
    elements: usize,
    /// Boxed: it is rare, and keeps the encoder small inside dispatch enums.
    pending: Option<Box<PendingCall>>,
    /// Latest usage; Gemini repeats it on every chunk, so each chunk after
    /// the first report carries it.
    usage: Option<Usage>,
    /// Usage changed since the last chunk written; a report arriving after
    /// the finish chunk gets a chunk of its own, so the last chunk a client
    /// reads always holds the final counts.
    usage_unsent: bool,
    /// The finish chunk went out.
    finished: bool,
    /// `finish` or `fail` closed the stream; nothing more is written.
    done: bool,
}

impl StreamEncoder {
    /// SSE framing (`alt=sse`). `include_usage` is moot: Gemini streams
    /// always report usage.
    pub fn new(model: &str, _include_usage: bool) -> StreamEncoder {
        StreamEncoder::with_framing(model, Framing::Sse)
    }

    /// JSON-array framing, for `streamGenerateContent` without `alt=sse`.
    pub fn new_json_array(model: &str) -> StreamEncoder {
        StreamEncoder::with_framing(model, Framing::JsonArray)
    }

    fn with_framing(model: &str, framing: Framing) -> StreamEncoder {
        StreamEncoder {
            framing,
            model: model.to_string(),
            response_id: String::new(),
            elements: 0,
            pending: None,
            usage: None,
            usage_unsent: false,
            finished: false,
            done: false,
        }
    }

    pub fn on_event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { id, .. } => self.response_id.clone_from(id),
            StreamEvent::Text(text) => {
                if !text.is_empty() {
                    self.content(Part::Text(text.clone()), out);
                }
            }
            StreamEvent::Reasoning { text, signature } => self.content(
                Part::Reasoning {
                    text: text.clone(),
                    signature: signature.clone(),
                    redacted: None,
                },
                out,
            ),
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                self.flush_call(out);
                self.pending = Some(Box::new(PendingCall {
                    index: *index,
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    signature: signature.clone(),
                }));
            }
            StreamEvent::ToolCallArguments { index, fragment } => {
                if let Some(call) = self.pending.as_mut().filter(|c| c.index == *index) {
                    call.arguments.push_str(fragment);
                }
            }
            StreamEvent::Usage(u) => {
                match &mut self.usage {
                    Some(seen) => merge_usage(seen, u),
                    None => self.usage = Some(*u),
                }
                self.usage_unsent = true;
                if self.finished {
                    self.chunk(Vec::new(), None, out);
                }
            }
            StreamEvent::Finish(finish) => {
                if self.finished {
                    return;
                }
                let parts: Vec<Value> = self.take_call().into_iter().collect();
                self.finished = true;
                self.chunk(parts, Some(finish), out);
            }
            StreamEvent::Error { message } => self.fail(message, out),
        }
    }

    /// A text or reasoning part: any buffered call goes first, in order.
    fn content(&mut self, part: Part, out: &mut Vec<u8>) {
        self.flush_call(out);
        if let Some(p) = encode_part(&part) {
            self.chunk(vec![p], None, out);
        }
    }

    fn take_call(&mut self) -> Option<Value> {
        let call = self.pending.take()?;
        Some(function_call_part(
            &call.id,
            &call.name,
            &call.arguments,
            call.signature.as_deref(),
        ))
    }

    fn flush_call(&mut self, out: &mut Vec<u8>) {
        if let Some(part) = self.take_call() {
            self.chunk(vec![part], None, out);
        }
    }

    fn chunk(&mut self, parts: Vec<Value>, finish: Option<&Finish>, out: &mut Vec<u8>) {
        let value = response_value(
            parts,
            finish,
            self.usage.as_ref(),
            &self.model,
            &self.response_id,
        );
        self.usage_unsent = false;
        self.write(&value, out);
    }

    fn write(&mut self, value: &Value, out: &mut Vec<u8>) {
        match self.framing {
            Framing::Sse => {
                let text = serde_json::to_vec(value).unwrap_or_default();
                write_data_line(out, &text);
            }
            Framing::JsonArray => {
                out.extend_from_slice(if self.elements == 0 { b"[" } else { b"\n,\r\n" });
                let text = serde_json::to_vec_pretty(value).unwrap_or_default();
                out.extend_from_slice(&text);
            }
        }
        self.elements += 1;
    }

    /// Upstream ended normally: a call still buffered goes out, and the
    /// JSON array is closed. A stream that never saw a finish gets none
    /// invented here.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.flush_call(out);
        if self.usage_unsent {
            self.chunk(Vec::new(), None, out);
        }
        self.close(out);
    }

    /// Upstream failed mid-stream: a Google error object ends the stream (as
    /// the last array element in JSON-array framing). A buffered call is
    /// dropped: its arguments may be cut short.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.pending = None;
        let err = json!({"error": {"code": 500, "message": message, "status": "INTERNAL"}});
        self.write(&err, out);
        self.close(out);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.framing == Framing::JsonArray {
            out.extend_from_slice(if self.elements == 0 { b"[]" } else { b"\n]" });
        }
        self.done = true;
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::finish::FinishReason;

    fn stop() -> StreamEvent {
        StreamEvent::Finish(Finish {
            reason: FinishReason::ToolCalls,
            native: "tool_calls".into(),
        })
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    #[test]
    fn sse_chunks_buffer_tool_calls_until_whole() {
        let mut e = StreamEncoder::new("label", false);
        let mut out = Vec::new();
        for ev in [
            StreamEvent::Start {
                id: "r1".into(),
                model: "upstream".into(),
            },
            StreamEvent::Text("Hi".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c0".into(),
                name: "f".into(),
                signature: None,
            },
            StreamEvent::ToolCallArguments {
                index: 0,
                fragment: "{\"a\"".into(),
            },
            StreamEvent::ToolCallArguments {
                index: 0,
                fragment: ":1}".into(),
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "c1".into(),
                name: "g".into(),
                signature: Some("S".into()),
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                ..Usage::default()
            }),
            stop(),
        ] {
            e.on_event(&ev, &mut out);
        }
        assert!(!e.is_done());
        e.finish(&mut out);
        assert!(e.is_done());
        assert_eq!(
            text(&out),
            concat!(
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"label\",\"responseId\":\"r1\"}\n\n",
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"c0\",\"name\":\"f\",\"args\":{\"a\":1}}}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"label\",\"responseId\":\"r1\"}\n\n",
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"c1\",\"name\":\"g\",\"args\":{}},\"thoughtSignature\":\"S\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4,\"totalTokenCount\":7},\"modelVersion\":\"label\",\"responseId\":\"r1\"}\n\n",
            )
        );
        // Nothing after the end.
        e.on_event(&StreamEvent::Text("late".into()), &mut out);
        e.fail("late", &mut out);
        assert!(text(&out).ends_with("\"r1\"}\n\n"));
    }

    #[test]
    fn json_array_framing_matches_gemini() {
        let mut e = StreamEncoder::new_json_array("m");
        let mut out = Vec::new();
        e.on_event(&StreamEvent::Text("a".into()), &mut out);
        e.on_event(
            &StreamEvent::Finish(Finish {
                reason: FinishReason::Stop,
                native: "stop".into(),
            }),
            &mut out,
        );
        e.finish(&mut out);
        let s = text(&out);
        assert!(s.starts_with("[{\n  \"candidates\": [\n"), "{s}");
        assert!(s.contains("}\n,\r\n{\n"), "{s}");
        assert!(s.ends_with("}\n]"), "{s}");
        let parsed: Value = serde_json::from_str(&s).unwrap_or_default();
        assert_eq!(parsed.as_array().map(Vec::len), Some(2));
        assert_eq!(parsed[1]["candidates"][0]["finishReason"], "STOP");

        let mut empty = StreamEncoder::new_json_array("m");
        let mut out = Vec::new();
        empty.finish(&mut out);
        assert_eq!(out, b"[]");
    }

    #[test]
    fn fail_closes_and_drops_a_partial_call() {
        let mut e = StreamEncoder::new_json_array("m");
        let mut out = Vec::new();
        e.on_event(&StreamEvent::Text("a".into()), &mut out);
        e.on_event(
            &StreamEvent::ToolCallStart {
                index: 0,
                id: "c".into(),
                name: "f".into(),
                signature: None,
            },
            &mut out,
        );
        e.on_event(
            &StreamEvent::ToolCallArguments {
                index: 0,
                fragment: "{\"a".into(),
            },
            &mut out,
        );
        e.fail("upstream died", &mut out);
        assert!(e.is_done());
        let parsed: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(
            parsed,
            json!([
                {"candidates": [{"content": {"parts": [{"text": "a"}], "role": "model"}, "index": 0}],
                 "modelVersion": "m"},
                {"error": {"code": 500, "message": "upstream died", "status": "INTERNAL"}}
            ])
        );

        let mut sse = StreamEncoder::new("m", true);
        let mut out = Vec::new();
        sse.on_event(
            &StreamEvent::Error {
                message: "bad".into(),
            },
            &mut out,
        );
        assert!(sse.is_done());
        assert_eq!(
            text(&out),
            "data: {\"error\":{\"code\":500,\"message\":\"bad\",\"status\":\"INTERNAL\"}}\n\n"
        );

        let mut empty = StreamEncoder::new_json_array("m");
        let mut out = Vec::new();
        empty.fail("x", &mut out);
        let parsed: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(parsed[0]["error"]["message"], "x");
    }

    #[test]
    fn finish_flushes_an_open_call_and_late_usage() {
        let mut e = StreamEncoder::new("m", false);
        let mut out = Vec::new();
        e.on_event(
            &StreamEvent::ToolCallStart {
                index: 0,
                id: "c".into(),
                name: "f".into(),
                signature: None,
            },
            &mut out,
        );
        e.on_event(
            &StreamEvent::ToolCallArguments {
                index: 0,
                fragment: "{}".into(),
            },
            &mut out,
        );
        e.finish(&mut out);
        assert_eq!(
            text(&out),
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"c\",\"name\":\"f\",\"args\":{}}}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"m\"}\n\n"
        );

        let mut e = StreamEncoder::new("m", false);
        let mut out = Vec::new();
        e.on_event(&stop(), &mut out);
        e.on_event(
            &StreamEvent::Usage(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                ..Usage::default()
            }),
            &mut out,
        );
        e.finish(&mut out);
        let s = text(&out);
        assert_eq!(s.matches("data: ").count(), 2, "{s}");
        assert!(s.ends_with(
            "data: {\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":2,\"totalTokenCount\":3},\"modelVersion\":\"m\"}\n\n"
        ));
        // A second finish is ignored.
        let before = out.len();
        e.on_event(&stop(), &mut out);
        assert_eq!(out.len(), before);
    }
}
