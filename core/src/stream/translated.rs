//! A stream crossing dialects: upstream SSE → the provider's decoder →
//! canonical events → the client dialect's encoder.

use serde_json::{Map, Value};

use crate::api::Dialect;
use crate::billing::Price;
use crate::gateway::ProviderKind;
use crate::translate::canonical::{merge_usage, StreamEvent};
use crate::translate::dispatch::{StreamDecoder, StreamEncoder};
use crate::usage::Usage;

#[derive(Debug)]
pub struct TranslatedStream {
    decoder: StreamDecoder,
    encoder: StreamEncoder,
    /// Reused between events so decoding allocates no vector per event.
    events: Vec<StreamEvent>,
    usage: Option<Usage>,
    started: bool,
    /// Content events (text, reasoning, tool arguments) seen: an estimate
    /// of output tokens if the stream is abandoned before its usage.
    relayed: u64,
    /// The provider's finish was seen: the usage it reports with or after
    /// it is final.
    finished: bool,
    failed: bool,
    /// The upstream's id of the answer (from its start event, moved, not
    /// copied); the client sees it in its dialect's form.
    upstream_id: Option<String>,
}

impl TranslatedStream {
    pub fn new(
        upstream: ProviderKind,
        client: Dialect,
        model: &str,
        include_usage: bool,
        json_array: bool,
        created: Option<u64>,
        price: Option<Price>,
    ) -> TranslatedStream {
        TranslatedStream {
            decoder: StreamDecoder::new(upstream),
            encoder: StreamEncoder::new(client, model, include_usage, json_array)
                .with_created(created)
                .with_price(price),
            events: Vec::new(),
            usage: None,
            started: false,
            relayed: 0,
            finished: false,
            failed: false,
            upstream_id: None,
        }
    }

    /// The client's request body, where the client dialect's events echo
    /// it (the Responses API).
    pub fn with_request(mut self, request: Option<&Map<String, Value>>) -> TranslatedStream {
        self.encoder = self.encoder.with_request(request);
        self
    }

    /// Tells a failure OpenRouter's way (`/api/v1/` routes).
    pub fn with_error_in_chunk(mut self, yes: bool) -> TranslatedStream {
        self.encoder = self.encoder.with_error_in_chunk(yes);
        self
    }

    pub fn on_event(&mut self, event: Option<&str>, data: &str, out: &mut Vec<u8>) {
        if self.encoder.is_done() {
            return;
        }
        self.decoder.on_event(event, data, &mut self.events);
        self.pump(out);
    }

    fn pump(&mut self, out: &mut Vec<u8>) {
        for event in self.events.drain(..) {
            match &event {
                StreamEvent::Usage(u) => match &mut self.usage {
                    Some(seen) => merge_usage(seen, u),
                    None => self.usage = Some(*u),
                },
                StreamEvent::Error { .. } => self.failed = true,
                StreamEvent::Start { .. } => {}
                StreamEvent::Finish(_) => {
                    self.finished = true;
                    self.started = true;
                }
                _ => {
                    self.started = true;
                    self.relayed += 1;
                }
            }
            self.encoder.on_event(&event, out);
            if let StreamEvent::Start { id, .. } = event {
                if self.upstream_id.is_none() && !id.is_empty() {
                    self.upstream_id = Some(id);
                }
            }
        }
    }

    /// The final Responses `response` object sent, once.
    pub fn take_response(&mut self) -> Option<Value> {
        self.encoder.take_response()
    }

    /// The answer's id as the client saw it, in `client`'s form.
    pub fn response_id(&self, client: Dialect) -> Option<String> {
        crate::translate::dispatch::client_response_id(client, self.upstream_id.as_deref()?)
    }

    /// The upstream body ended; `truncated` when it stopped mid-event.
    pub fn finish(&mut self, truncated: bool, out: &mut Vec<u8>) {
        if self.encoder.is_done() {
            return;
        }
        if truncated {
            self.fail("the provider's stream ended mid-event", out);
            return;
        }
        let complete = self.decoder.finish(&mut self.events);
        self.pump(out);
        if complete {
            self.encoder.finish(out);
        } else {
            self.fail("the provider's stream ended before it was complete", out);
        }
    }

    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        self.failed = true;
        self.encoder.fail(message, out);
    }

    pub fn is_done(&self) -> bool {
        self.encoder.is_done()
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
