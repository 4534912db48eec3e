//! Same dialect in and out (Anthropic to Anthropic, Gemini to Gemini): the
//! upstream's events are relayed as they are, and read on the side only to
//! learn the usage and whether the stream ended properly.

use serde_json::json;

use crate::api::Dialect;
use crate::gateway::ProviderKind;
use crate::sse;
use crate::translate::canonical::{merge_usage, StreamEvent};
use crate::translate::dispatch::StreamDecoder;
use crate::usage::Usage;

#[derive(Debug)]
pub struct PassThroughStream {
    dialect: Dialect,
    decoder: StreamDecoder,
    events: Vec<StreamEvent>,
    usage: Option<Usage>,
    /// Gemini without `alt=sse`: the client wants one JSON array, so each
    /// event's data becomes an element. `Some(false)` until `[` is written.
    json_array: Option<bool>,
    started: bool,
    /// Content events (text, reasoning, tool arguments) seen: an estimate
    /// of output tokens if the stream is abandoned before its usage.
    relayed: u64,
    /// The provider's finish was seen: the usage it reports with or after
    /// it is final (Anthropic's `message_delta`, Gemini's last chunk).
    finished: bool,
    failed: bool,
    done: bool,
    /// The upstream's id of the answer, relayed as is: the client's id.
    /// Moved out of the decoded start event, so it costs no allocation.
    id: Option<String>,
}

impl PassThroughStream {
    pub fn new(kind: ProviderKind, dialect: Dialect, json_array: bool) -> PassThroughStream {
        PassThroughStream {
            dialect,
            decoder: StreamDecoder::native(kind, dialect),
            events: Vec::new(),
            usage: None,
            json_array: json_array.then_some(false),
            started: false,
            relayed: 0,
            finished: false,
            failed: false,
            done: false,
            id: None,
        }
    }

    pub fn on_event(&mut self, event: Option<&str>, data: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match &mut self.json_array {
            Some(opened) => {
                out.extend_from_slice(if *opened { b",\r\n" } else { b"[" });
                *opened = true;
                out.extend_from_slice(data.as_bytes());
            }
            None => sse::write_event(out, event, data),
        }
        self.decoder.on_event(event, data, &mut self.events);
        for e in self.events.drain(..) {
            match e {
                StreamEvent::Usage(u) => match &mut self.usage {
                    Some(seen) => merge_usage(seen, &u),
                    None => self.usage = Some(u),
                },
                StreamEvent::Error { .. } => self.failed = true,
                StreamEvent::Start { id, .. } => {
                    if self.id.is_none() && !id.is_empty() {
                        self.id = Some(id);
                    }
                }
                StreamEvent::Finish(_) => {
                    self.finished = true;
                    self.started = true;
                }
                _ => {
                    self.started = true;
                    self.relayed += 1;
                }
            }
        }
    }

    /// The final Responses `response` object relayed, once.
    pub fn take_response(&mut self) -> Option<serde_json::Value> {
        self.decoder.take_response()
    }

    /// The answer's id as the client saw it.
    pub fn response_id(&self) -> Option<String> {
        self.id.clone()
    }

    pub fn finish(&mut self, truncated: bool, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let complete = !truncated && self.decoder.finish(&mut self.events);
        self.events.clear();
        if !complete {
            self.fail("the provider's stream ended before it was complete", out);
            return;
        }
        self.close_array(out);
        self.done = true;
    }

    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.failed = true;
        self.done = true;
        match (self.dialect, &mut self.json_array) {
            (Dialect::Google, Some(opened)) => {
                out.extend_from_slice(if *opened { b",\r\n" } else { b"[" });
                *opened = true;
                let err =
                    json!({"error": {"code": 502, "message": message, "status": "UNAVAILABLE"}});
                out.extend_from_slice(err.to_string().as_bytes());
                self.close_array(out);
            }
            (Dialect::Google, None) => {
                let err =
                    json!({"error": {"code": 502, "message": message, "status": "UNAVAILABLE"}});
                sse::write_event(out, None, &err.to_string());
            }
            (Dialect::Anthropic, _) => {
                let err =
                    json!({"type": "error", "error": {"type": "api_error", "message": message}});
                sse::write_event(out, Some("error"), &err.to_string());
            }
            (Dialect::Responses, _) => {
                // The Responses API's own in-stream failure event.
                let err = json!({"type": "error", "code": "upstream_error", "message": message, "param": null});
                sse::write_event(out, Some("error"), &err.to_string());
            }
            (Dialect::OpenAi, _) => {
                let err =
                    json!({"error": {"message": message, "type": "upstream_error", "code": 502}});
                sse::write_event(out, None, &err.to_string());
                sse::write_data_line(out, b"[DONE]");
            }
        }
    }

    fn close_array(&mut self, out: &mut Vec<u8>) {
        if let Some(opened) = self.json_array {
            if !opened {
                out.push(b'[');
            }
            out.push(b']');
            self.json_array = None;
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn failed(&self) -> bool {
        self.failed
    }

    pub fn started(&self) -> bool {
        self.started
    }

    pub fn relayed(&self) -> u64 {
        self.relayed
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The usage seen is the provider's final count, not a figure sent
    /// before the answer was done.
    pub fn usage_final(&self) -> bool {
        self.usage.is_some() && self.finished
    }
}
