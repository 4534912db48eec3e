//! Canonical stream events -> the Responses API's typed event stream.
//!
//! The encoder owns the bracket state, so the client always sees the
//! sequence OpenAI's SDKs accumulate: `response.created`,
//! `response.in_progress`, then per output item `response.output_item.added`,
//! its parts and deltas, their `.done` events and
//! `response.output_item.done`, and last `response.completed` (or
//! `response.incomplete` / `response.failed`) carrying the whole response,
//! usage included. Every event carries a `sequence_number` from 0. Items
//! never interleave: a new kind of content closes the open item (parallel
//! tool calls stay open together, as upstreams interleave their arguments).
//! A failure ends the stream with an `error` event.

use serde_json::{json, Map, Value};

use super::response::{
    echo, function_call_item, item_id, message_item, output_text, reasoning_item, response_id,
    status_of, usage_json,
};
use crate::billing::Price;
use crate::sse::write_event;
use crate::translate::canonical::{id_with_signature, merge_usage, Finish, StreamEvent};
use crate::usage::Usage;

/// The id shown when the upstream never said one.
const FALLBACK_ID: &str = "resp_arouter";

#[derive(Debug)]
struct Call {
    index: u32,
    output_index: usize,
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

#[derive(Debug)]
enum Open {
    None,
    Message {
        output_index: usize,
        item_id: String,
        text: String,
    },
    Reasoning {
        output_index: usize,
        item_id: String,
        text: String,
        signature: Option<String>,
    },
    Calls(Vec<Call>),
}

#[derive(Debug)]
pub struct StreamEncoder {
    model: String,
    created: u64,
    price: Option<Price>,
    /// The request's settings, as every `response` object echoes them.
    echo: Map<String, Value>,
    id: Option<String>,
    seq: u64,
    started: bool,
    open: Open,
    /// Closed items, in output order: the final response's `output`.
    output: Vec<Value>,
    messages: usize,
    reasonings: usize,
    calls: usize,
    /// The final `response` object, once sent (a stored response's copy).
    last: Option<Value>,
    usage: Option<Usage>,
    finish: Option<Finish>,
    done: bool,
}

impl StreamEncoder {
    pub fn new(model: &str) -> StreamEncoder {
        StreamEncoder {
            model: model.to_owned(),
            created: 0,
            price: None,
            echo: echo(&Map::new()),
            id: None,
            seq: 0,
            started: false,
            open: Open::None,
            output: Vec::new(),
            messages: 0,
            reasonings: 0,
            calls: 0,
            last: None,
            usage: None,
            finish: None,
            done: false,
        }
    }

    pub fn with_created(mut self, created: u64) -> StreamEncoder {
        self.created = created;
        self
    }

    pub fn with_price(mut self, price: Price) -> StreamEncoder {
        self.price = Some(price);
        self
    }

    /// The client's request body, echoed in each `response` object.
    pub fn with_request(mut self, request: &Map<String, Value>) -> StreamEncoder {
        self.echo = echo(request);
        self
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn on_event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if self.id.is_none() && !id.is_empty() {
                    self.id = Some(response_id(id));
                }
                if self.model.is_empty() {
                    self.model.clone_from(model);
                }
                self.start(out);
            }
            StreamEvent::Usage(u) => match &mut self.usage {
                Some(seen) => merge_usage(seen, u),
                None => self.usage = Some(*u),
            },
            StreamEvent::Finish(f) => {
                if self.finish.is_none() {
                    self.finish = Some(f.clone());
                }
            }
            StreamEvent::Error { message } => self.fail(message, out),
            StreamEvent::Text(text) => self.text(text, out),
            StreamEvent::Reasoning { text, signature } => {
                self.reasoning(text, signature.as_deref(), out);
            }
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => self.call_start(*index, id, name, signature.as_deref(), out),
            StreamEvent::ToolCallArguments { index, fragment } => {
                self.call_arguments(*index, fragment, out);
            }
        }
    }

    /// The upstream ended: the open item closes and the response completes
    /// (or ends incomplete) with its usage.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.start(out);
        self.close(out);
        let (status, _) = status_of(self.finish.as_ref());
        let kind = match status {
            "incomplete" => "response.incomplete",
            "failed" => "response.failed",
            _ => "response.completed",
        };
        let response = self.response(status);
        self.last = Some(response.clone());
        self.emit(kind, json!({"response": response}), out);
        self.done = true;
    }

    /// The final `response` object the stream ended with, once.
    pub fn take_response(&mut self) -> Option<Value> {
        self.last.take()
    }

    /// A failure after the stream began: OpenAI's `error` event ends it.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.start(out);
        self.emit(
            "error",
            json!({"code": "upstream_error", "message": message, "param": null}),
            out,
        );
        self.done = true;
    }

    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or(FALLBACK_ID)
    }

    fn stem(&self) -> String {
        self.id()
            .strip_prefix("resp_")
            .unwrap_or(self.id())
            .to_owned()
    }

    fn response(&self, status: &str) -> Value {
        let finished = status != "in_progress";
        let (_, incomplete) = if finished {
            status_of(self.finish.as_ref())
        } else {
            ("in_progress", Value::Null)
        };
        let mut obj = Map::new();
        obj.insert("id".into(), json!(self.id()));
        obj.insert("object".into(), json!("response"));
        obj.insert("created_at".into(), json!(self.created));
        obj.insert("status".into(), json!(status));
        obj.insert("background".into(), json!(false));
        let error = if status == "failed" {
            json!({"code": "server_error", "message": "the provider ended its answer with an error"})
        } else {
            Value::Null
        };
        obj.insert("error".into(), error);
        obj.insert("incomplete_details".into(), incomplete);
        obj.insert("model".into(), json!(self.model));
        let output = if finished {
            self.output.clone()
        } else {
            Vec::new()
        };
        obj.insert("output".into(), Value::Array(output));
        obj.extend(self.echo.clone());
        let usage = if finished {
            let cost = self
                .usage
                .as_ref()
                .zip(self.price.as_ref())
                .map(|(u, p)| p.cost(u));
            usage_json(self.usage.as_ref(), cost)
        } else {
            Value::Null
        };
        obj.insert("usage".into(), usage);
        Value::Object(obj)
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response("in_progress");
        self.emit(
            "response.created",
            json!({"response": response.clone()}),
            out,
        );
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    /// One event: `type` first, as OpenAI writes it, then the fields, then
    /// the `sequence_number`.
    fn emit(&mut self, kind: &str, data: Value, out: &mut Vec<u8>) {
        let mut obj = Map::new();
        obj.insert("type".into(), json!(kind));
        if let Value::Object(fields) = data {
            obj.extend(fields);
        }
        obj.insert("sequence_number".into(), json!(self.seq));
        self.seq += 1;
        write_event(out, Some(kind), &Value::Object(obj).to_string());
    }

    fn next_output_index(&self) -> usize {
        self.output.len()
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.start(out);
        if !matches!(self.open, Open::Message { .. }) {
            self.close(out);
            let output_index = self.next_output_index();
            let item_id = item_id("msg", &self.stem(), self.messages);
            self.messages += 1;
            let item = json!({"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"});
            self.emit(
                "response.output_item.added",
                json!({"output_index": output_index, "item": item}),
                out,
            );
            self.emit(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "part": output_text("")}),
                out,
            );
            self.open = Open::Message {
                output_index,
                item_id,
                text: String::new(),
            };
        }
        let Open::Message {
            output_index,
            item_id,
            text: have,
        } = &mut self.open
        else {
            return;
        };
        have.push_str(text);
        let data = json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "delta": text, "logprobs": []});
        self.emit("response.output_text.delta", data, out);
    }

    fn reasoning(&mut self, text: &str, signature: Option<&str>, out: &mut Vec<u8>) {
        if text.is_empty() && signature.is_none() {
            return;
        }
        self.start(out);
        let signed = matches!(
            &self.open,
            Open::Reasoning {
                signature: Some(_),
                ..
            }
        );
        if !matches!(self.open, Open::Reasoning { .. }) || signed {
            self.close(out);
            let output_index = self.next_output_index();
            let item_id = item_id("rs", &self.stem(), self.reasonings);
            self.reasonings += 1;
            let item = json!({"id": item_id, "type": "reasoning", "summary": []});
            self.emit(
                "response.output_item.added",
                json!({"output_index": output_index, "item": item}),
                out,
            );
            self.open = Open::Reasoning {
                output_index,
                item_id,
                text: String::new(),
                signature: None,
            };
        }
        let Open::Reasoning {
            output_index,
            item_id,
            text: have,
            signature: sig,
        } = &mut self.open
        else {
            return;
        };
        // A signature ends the thought: more reasoning opens a new item.
        if let Some(signature) = signature {
            *sig = Some(signature.to_owned());
        }
        if text.is_empty() {
            return;
        }
        let first = have.is_empty();
        have.push_str(text);
        let (output_index, item_id) = (*output_index, item_id.clone());
        if first {
            let part = json!({"type": "summary_text", "text": ""});
            self.emit(
                "response.reasoning_summary_part.added",
                json!({"item_id": item_id, "output_index": output_index, "summary_index": 0, "part": part}),
                out,
            );
        }
        let data = json!({"item_id": item_id, "output_index": output_index, "summary_index": 0, "delta": text});
        self.emit("response.reasoning_summary_text.delta", data, out);
    }

    fn call_start(
        &mut self,
        index: u32,
        id: &str,
        name: &str,
        signature: Option<&str>,
        out: &mut Vec<u8>,
    ) {
        self.start(out);
        if !matches!(self.open, Open::Calls(_)) {
            self.close(out);
            self.open = Open::Calls(Vec::new());
        }
        let output_index = self.next_output_index() + self.open_calls();
        let call_id = id_with_signature(id, signature);
        let item_id = item_id("fc", &self.stem(), self.calls);
        self.calls += 1;
        let item = json!({"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": "", "status": "in_progress"});
        self.emit(
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
            out,
        );
        if let Open::Calls(calls) = &mut self.open {
            calls.push(Call {
                index,
                output_index,
                item_id,
                call_id,
                name: name.to_owned(),
                arguments: String::new(),
            });
        }
    }

    fn open_calls(&self) -> usize {
        match &self.open {
            Open::Calls(calls) => calls.len(),
            _ => 0,
        }
    }

    fn call_arguments(&mut self, index: u32, fragment: &str, out: &mut Vec<u8>) {
        if fragment.is_empty() {
            return;
        }
        let Open::Calls(calls) = &mut self.open else {
            // The call was closed by other content: its arguments cannot
            // be delivered any more (an upstream interleaving text and
            // calls, which none is known to do).
            return;
        };
        let Some(call) = calls.iter_mut().rev().find(|c| c.index == index) else {
            return;
        };
        call.arguments.push_str(fragment);
        let data =
            json!({"item_id": call.item_id, "output_index": call.output_index, "delta": fragment});
        self.emit("response.function_call_arguments.delta", data, out);
    }

    /// Closes the open item(s) with their `.done` events.
    fn close(&mut self, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Message {
                output_index,
                item_id,
                text,
            } => {
                self.emit(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "text": text, "logprobs": []}),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "part": output_text(&text)}),
                    out,
                );
                self.done_item(output_index, message_item(&item_id, &text), out);
            }
            Open::Reasoning {
                output_index,
                item_id,
                text,
                signature,
            } => {
                if !text.is_empty() {
                    self.emit(
                        "response.reasoning_summary_text.done",
                        json!({"item_id": item_id, "output_index": output_index, "summary_index": 0, "text": text}),
                        out,
                    );
                    self.emit(
                        "response.reasoning_summary_part.done",
                        json!({"item_id": item_id, "output_index": output_index, "summary_index": 0, "part": {"type": "summary_text", "text": text}}),
                        out,
                    );
                }
                let item = reasoning_item(&item_id, &text, signature.as_deref(), None);
                self.done_item(output_index, item, out);
            }
            Open::Calls(calls) => {
                for call in calls {
                    let arguments = if call.arguments.is_empty() {
                        "{}"
                    } else {
                        call.arguments.as_str()
                    };
                    self.emit(
                        "response.function_call_arguments.done",
                        json!({"item_id": call.item_id, "output_index": call.output_index, "arguments": arguments}),
                        out,
                    );
                    let item =
                        function_call_item(&call.item_id, &call.call_id, &call.name, arguments);
                    self.done_item(call.output_index, item, out);
                }
            }
        }
    }

    fn done_item(&mut self, output_index: usize, item: Value, out: &mut Vec<u8>) {
        self.emit(
            "response.output_item.done",
            json!({"output_index": output_index, "item": item.clone()}),
            out,
        );
        self.output.push(item);
    }
}
