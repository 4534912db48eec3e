//! One upstream call on behalf of a client request: connect, send, read
//! the response, translate it for the client, and fall back to the next
//! candidate while nothing has reached the client yet.

mod embed;
mod finished;
mod keep;
mod relay;
mod request;
mod reserve;
mod response;
mod streaming;
mod timeout;
mod upload;
mod usage;

pub(crate) use finished::{EarlierUsage, Finished};
pub(crate) use keep::ToKeep;

use std::collections::VecDeque;

use serde_json::{Map, Value};

use super::proxy::{ProxyRequest, Sniffer};
use super::request_id::RequestId;
use super::{count, Attempt, AttemptFailure, Attempts, ConnectError, Output};
use crate::api::{ApiError, Dialect, ErrorKind, Response};
use crate::billing::Price;
use crate::gateway::{Gateway, Provider, ProviderKind};
use crate::http1::encode::StreamFraming;
use crate::http1::{client, encode, ClientCodec, ClientEvent, HttpError};
use crate::route::Candidate;
use crate::sse::SseDecoder;
use crate::stream::openai::OpenAiStream;
use crate::stream::passthrough::PassThroughStream;
use crate::stream::translated::TranslatedStream;
use crate::stream::ClientStream;
use crate::translate::canonical::ChatRequest;
use crate::translate::dispatch;
use crate::translate::embed::{EmbedRequest, GeminiShape};
use crate::translate::openai::{normalize_chat, normalize_embeddings, request::upstream_body};
use crate::upstream;
use crate::usage::Usage;
use crate::Tick;

/// What the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    Chat {
        stream: bool,
        include_usage: bool,
        /// Gemini's `streamGenerateContent` without `alt=sse`: the client
        /// reads one JSON array, not events.
        json_array: bool,
    },
    Embeddings,
    /// Input tokens of a would-be chat request (never streamed, never billed).
    CountTokens,
    /// A pass-through to a provider's own API (`/{provider}/{path}`);
    /// `stream` when the request asked for one.
    Proxy {
        stream: bool,
    },
}

impl CallKind {
    pub(crate) fn stream(self) -> bool {
        matches!(
            self,
            CallKind::Chat { stream: true, .. } | CallKind::Proxy { stream: true }
        )
    }
}

/// The client's request, as the call keeps it for every candidate.
#[derive(Debug)]
pub(crate) enum CallRequest {
    /// An OpenAI-dialect body, parsed: the same-dialect fast path writes
    /// it upstream as it is; its canonical form is derived once, only when
    /// a candidate speaks another dialect or a cut-short call needs its
    /// prompt counted.
    OpenAi {
        body: Map<String, Value>,
        canonical: Option<Box<ChatRequest>>,
    },
    /// A request in another dialect (Anthropic, Gemini): its body kept
    /// for a provider of the same dialect (minimal rewrite), its canonical
    /// form for any other.
    Foreign {
        body: Map<String, Value>,
        canonical: Box<ChatRequest>,
        /// Client headers a same-dialect provider gets too
        /// (`anthropic-version`, `anthropic-beta`).
        forward: Vec<(&'static str, String)>,
        /// Why the request has no canonical form (`canonical` is then a
        /// stand-in): only a provider of the client's own dialect serves it.
        refused: Option<Box<ApiError>>,
    },
    /// An embeddings request: the client's body for a provider of its own
    /// dialect, its canonical form for any other (or why it has none: a
    /// token-array input, an image part).
    Embed {
        body: Map<String, Value>,
        /// The Gemini method the client called; `None` for OpenAI's route.
        shape: Option<GeminiShape>,
        canonical: Result<Box<EmbedRequest>, ApiError>,
    },
    /// A pass-through request, its head already rebuilt.
    Proxy(Box<ProxyRequest>),
}

/// Where the driver's byte sinks and output queue are.
pub(crate) struct Io<'a> {
    pub down: &'a mut Vec<u8>,
    pub up: &'a mut Vec<u8>,
    pub outputs: &'a mut VecDeque<Output>,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the host's `Input::Reserved` (a metered call).
    Reserving,
    Connecting,
    /// A proxied body streaming upstream as the client sends it (see
    /// `upload`); `last` is when the client last sent some.
    Uploading {
        since: Tick,
        last: Tick,
    },
    AwaitingHead {
        since: Tick,
    },
    /// Reading a whole body (non-stream answer, or an error to relay).
    Buffering {
        last: Tick,
    },
    Streaming {
        last_upstream: Tick,
        last_keepalive: Tick,
        /// The response head went to the client: from here on a failure
        /// is an in-stream error, not a fallback to the next candidate.
        head_sent: bool,
    },
    /// A proxied answer going to the client as it arrives; `framing` is
    /// `None` for a body relayed with its own `Content-Length`.
    Relaying {
        last: Tick,
        framing: Option<StreamFraming>,
    },
    Done,
}

/// A failed attempt kept to answer with if no candidate succeeds.
#[derive(Debug)]
struct Failure {
    response: Response,
}

#[derive(Debug)]
pub(crate) struct Call {
    kind: CallKind,
    /// The client's dialect: responses and errors are rendered in it.
    dialect: Dialect,
    request: CallRequest,
    candidates: Vec<Candidate>,
    attempt: usize,
    phase: Phase,
    codec: ClientCodec,
    status: u16,
    content_type: Option<String>,
    retry_after: Option<String>,
    buffered: Vec<u8>,
    sse: SseDecoder,
    stream: Option<ClientStream>,
    scratch: Vec<u8>,
    keep_alive: bool,
    usage: Option<Usage>,
    /// How a streamed answer is delimited for this client.
    framing: StreamFraming,
    /// Unix seconds when the call started, for `created` in translated
    /// answers (the upstream's own dialect may carry none); `None` when the
    /// driver gave no wall-clock origin.
    created: Option<u64>,
    /// Response headers decided before the call (rate-limit values).
    extra_headers: Vec<(&'static str, String)>,
    /// Errors in OpenRouter's shape (the request came under `/api/v1/`).
    openrouter_errors: bool,
    /// Goes back as `X-Request-Id` on the response.
    request_id: RequestId,
    failure: Option<Failure>,
    /// The current connection came from the pool.
    reused: bool,
    /// A stale pooled connection was already replaced once this attempt.
    refreshed: bool,
    /// The current attempt's request went to a provider: only then is
    /// there anything to bill.
    reached: bool,
    /// This attempt needs the gateway's usage estimate (see
    /// `mark_for_estimate`).
    estimated: bool,
    /// Stream bytes written before the first token (role chunk, message
    /// start), held until a token commits the response to this candidate.
    held: Vec<u8>,
    /// Usage that providers of earlier, failed attempts reported: they
    /// charged for it, so it is billed too.
    earlier: Vec<EarlierUsage>,
    /// The id a whole answer showed the client (a stream's is read from
    /// its transducer at the end).
    response_id: Option<String>,
    /// Each attempt reserves credit first (`Output::Reserve`), billed to
    /// `key_id` (`None`: the master key).
    metered: bool,
    key_id: Option<i64>,
    /// Reserves only for the host's call journal (see `set_journaled`).
    journal_only: bool,
    /// The current attempt's prompt tokens as its reservation estimated
    /// them (see `max_cost`).
    reserved_prompt: u64,
    /// Reads a proxied answer's usage on the side.
    sniffer: Option<Box<Sniffer>>,
    /// The attempts that went upstream, for the access record.
    attempts: Attempts,
    /// An attempt is under way and not yet in `attempts`.
    in_attempt: bool,
    /// Why the current attempt's answer broke after the client got part
    /// of it (it is not retried, but it failed).
    broke: Option<AttemptFailure>,
    /// A valid `traceparent` from the client, sent to each provider.
    traceparent: Option<String>,
    /// A Responses answer to keep (`store`).
    keeping: keep::Keeping,
}

impl Call {
    /// An event stream to the client is open: the provider answered a
    /// streamed request with events, which are being relayed.
    pub(crate) fn streaming(&self) -> bool {
        self.stream.is_some()
    }

    pub(crate) fn new(
        gateway: &Gateway,
        kind: CallKind,
        dialect: Dialect,
        request: CallRequest,
        candidates: Vec<Candidate>,
        keep_alive: bool,
        extra_headers: Vec<(&'static str, String)>,
    ) -> Call {
        Call {
            kind,
            dialect,
            request,
            candidates,
            attempt: 0,
            phase: Phase::Done,
            codec: ClientCodec::new(gateway.limits(), false),
            status: 0,
            content_type: None,
            retry_after: None,
            buffered: Vec::new(),
            sse: SseDecoder::new(gateway.limits().max_sse_line_bytes),
            stream: None,
            scratch: Vec::new(),
            keep_alive,
            framing: StreamFraming::Chunked,
            usage: None,
            created: None,
            extra_headers,
            openrouter_errors: false,
            request_id: RequestId::default(),
            failure: None,
            reused: false,
            refreshed: false,
            reached: false,
            estimated: false,
            held: Vec::new(),
            earlier: Vec::new(),
            response_id: None,
            metered: false,
            key_id: None,
            reserved_prompt: 0,
            journal_only: false,
            sniffer: None,
            attempts: Attempts::default(),
            in_attempt: false,
            broke: None,
            traceparent: None,
            keeping: keep::Keeping::default(),
        }
    }

    /// The first candidate: what the request asked for, as routed.
    pub(crate) fn requested(&self) -> Option<&Candidate> {
        self.candidates.first()
    }

    /// Passes the client's trace context (W3C `traceparent`) to providers.
    pub(crate) fn set_traceparent(&mut self, value: Option<String>) {
        self.traceparent = value;
    }

    /// The current candidate's attempt goes upstream now. A streamed body
    /// cannot be sent again, so it never risks a pooled connection that
    /// may turn out stale.
    fn begin_attempt(&mut self, io: &mut Io<'_>, provider: usize) {
        self.in_attempt = true;
        self.broke = None;
        io.outputs.push_back(Output::ConnectUpstream {
            provider,
            fresh: self.upload().is_some(),
        });
    }

    /// The attempt under way ended; `failure` says why it failed, if so.
    fn end_attempt(&mut self, failure: Option<AttemptFailure>) {
        if !std::mem::take(&mut self.in_attempt) {
            return;
        }
        if let Some(c) = self.candidates.get(self.attempt) {
            let provider = c.provider;
            self.attempts.push(Attempt { provider, failure });
        }
    }

    /// The client speaks HTTP/1.0: a streamed answer runs until close, and
    /// the connection is not kept.
    pub(crate) fn set_http10(&mut self) {
        self.framing = StreamFraming::UntilClose;
        self.keep_alive = false;
    }

    /// The call came in under `/api/v1/`: its errors are answered in
    /// OpenRouter's shape ([`crate::api::openrouter`]).
    pub(crate) fn set_openrouter_errors(&mut self) {
        self.openrouter_errors = true;
    }

    /// Sets the id the response carries as `X-Request-Id`.
    pub(crate) fn set_request_id(&mut self, id: RequestId) {
        self.request_id = id;
    }

    /// Sets the Unix time (seconds) this call started.
    pub(crate) fn set_created(&mut self, unix_s: Option<u64>) {
        self.created = unix_s;
    }

    /// The connection will close after this response (the server is
    /// draining): say so in the response head if it is not written yet.
    pub(crate) fn disable_keep_alive(&mut self) {
        self.keep_alive = false;
    }

    fn candidate(&self) -> Option<&Candidate> {
        self.candidates.get(self.attempt)
    }

    /// Whether a provider of `kind` takes the client's request as it is
    /// (same dialect): minimal rewrite, no canonical translation.
    /// The client's body, for a dialect whose answers echo the request
    /// (the Responses API's `response` object).
    fn echoed_request(&self) -> Option<&Map<String, Value>> {
        match (&self.request, self.dialect) {
            (CallRequest::Foreign { body, .. }, Dialect::Responses) => Some(body),
            _ => None,
        }
    }

    /// Whether `provider` takes the client's request in its own dialect
    /// (the same-dialect path: passed through, not translated).
    fn native(&self, provider: &Provider) -> bool {
        match self.dialect {
            Dialect::Responses => provider.responses,
            dialect => dispatch::dialect_of(provider.kind) == dialect,
        }
    }

    /// `native` for the current candidate's provider.
    fn native_now(&self, gateway: &Gateway) -> bool {
        self.candidate()
            .and_then(|c| gateway.providers().get(c.provider))
            .is_some_and(|p| self.native(p))
    }

    /// Decodes the client's request into the canonical form, once.
    fn canonical(&mut self) -> Result<(), ApiError> {
        if let CallRequest::OpenAi { body, canonical } = &mut self.request {
            if canonical.is_none() {
                let bytes = serde_json::to_vec(body).unwrap_or_default();
                let mut req = crate::translate::openai::canonical::decode_request(&bytes)?;
                if let CallKind::Chat { include_usage, .. } = self.kind {
                    req.include_usage = include_usage;
                }
                *canonical = Some(Box::new(req));
            }
        }
        Ok(())
    }

    fn upstream_kind(&self, gateway: &Gateway) -> ProviderKind {
        self.candidate()
            .and_then(|c| gateway.providers().get(c.provider))
            .map_or(ProviderKind::OpenAi, |p| p.kind)
    }

    /// Opens the connection for the current candidate.
    pub(crate) fn start(&mut self, gateway: &Gateway, io: &mut Io<'_>) -> Option<Finished> {
        let Some(candidate) = self.candidate() else {
            return Some(self.give_up(io));
        };
        let provider = candidate.provider;
        let upstream_kind = gateway.providers().get(provider).map(|p| p.kind);
        if let Some(err) = self.embed_refusal(gateway, provider) {
            self.failure = Some(Failure {
                response: Response::from(&err),
            });
            self.attempt += 1;
            return self.start(gateway, io);
        }
        if self.kind == CallKind::CountTokens && upstream_kind == Some(ProviderKind::OpenAi) {
            return Some(self.count_locally(io));
        }
        let native = gateway
            .providers()
            .get(provider)
            .is_some_and(|p| self.native(p));
        if let (
            false,
            CallRequest::Foreign {
                refused: Some(err), ..
            },
        ) = (native, &self.request)
        {
            // Untranslatable: this candidate cannot serve it; a later one
            // of the client's own dialect may.
            self.failure = Some(Failure {
                response: Response::from(err.as_ref()),
            });
            self.attempt += 1;
            return self.start(gateway, io);
        }
        if upstream_kind.is_some() && !native {
            // The client's request must be understood before another
            // dialect can be written: a bad one is the client's error.
            if let Err(err) = self.canonical() {
                self.attempt = self.candidates.len();
                self.failure = Some(Failure {
                    response: Response::from(&err),
                });
                return Some(self.give_up(io));
            }
        }
        // A fresh codec per connection: a pooled one starts clean too.
        self.codec = ClientCodec::new(gateway.limits(), false);
        self.status = 0;
        self.buffered.clear();
        self.refreshed = false;
        self.reached = false;
        // A streamed body's call reserves once the body has said what it
        // may cost, before its end goes upstream (see `upload`).
        if self.metered && self.upload().is_none() {
            return self.reserve(gateway, io);
        }
        self.phase = Phase::Connecting;
        self.begin_attempt(io, provider);
        None
    }

    pub(crate) fn on_connect_failed(
        &mut self,
        gateway: &Gateway,
        io: &mut Io<'_>,
        error: ConnectError,
    ) -> Option<Finished> {
        // The provider's name, never its URL (which may carry credentials).
        let (name, _) = self.served(gateway);
        let kind = match error {
            ConnectError::Timeout => ErrorKind::GatewayTimeout,
            _ => ErrorKind::BadGateway,
        };
        let message = format!("provider \"{name}\" is unreachable ({})", error.describe());
        let err = ApiError::new(self.dialect, kind, message).with_code("upstream_unavailable");
        let cause = AttemptFailure::Connect(error);
        self.retry(gateway, io, Response::from(&err), false, cause)
    }

    /// Upstream bytes. Returns how many were taken and whether the call ended.
    pub(crate) fn on_upstream(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        bytes: &[u8],
        io: &mut Io<'_>,
    ) -> (usize, Option<Finished>) {
        let taken = self.codec.feed(bytes);
        (taken, self.drain(now, gateway, io))
    }

    pub(crate) fn on_upstream_eof(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        self.codec.feed_eof();
        self.drain(now, gateway, io)
    }

    /// The client went away: stop the upstream at once and bill what was seen.
    pub(crate) fn on_client_gone(&mut self, io: &mut Io<'_>) -> Finished {
        if !matches!(self.phase, Phase::Done) {
            io.outputs
                .push_back(Output::ReleaseUpstream { reuse: false });
            self.mark_for_estimate();
        }
        if self.relaying() {
            self.take_sniffed();
        }
        self.phase = Phase::Done;
        self.finished(499, false)
    }

    /// The server's shutdown grace is over: end the call now, as a
    /// provider failure would, and bill what the provider was asked for.
    pub(crate) fn on_shutdown(&mut self, io: &mut Io<'_>) -> Finished {
        const MESSAGE: &str = "the server is shutting down";
        if self.relaying() {
            return self.relay_abort(io);
        }
        if !matches!(self.phase, Phase::Done) {
            io.outputs
                .push_back(Output::ReleaseUpstream { reuse: false });
        }
        if self.head_sent() {
            return self.end_stream_with_error(io, MESSAGE);
        }
        // Nothing reached the client yet: an ordinary error answer.
        if !matches!(self.phase, Phase::Done) {
            self.mark_for_estimate();
        }
        self.held.clear();
        let err =
            ApiError::new(self.dialect, ErrorKind::Unavailable, MESSAGE).with_code("shutting_down");
        self.respond(io, Response::from(&err), false)
    }

    fn drain(&mut self, now: Tick, gateway: &Gateway, io: &mut Io<'_>) -> Option<Finished> {
        loop {
            let event = match self.codec.poll_event() {
                Ok(Some(event)) => event,
                Ok(None) => return None,
                Err(err) => return self.upstream_broke(gateway, io, err),
            };
            let done = match event {
                ClientEvent::Head(head) if matches!(self.kind, CallKind::Proxy { .. }) => {
                    self.relay_head(now, gateway, io, &head)
                }
                ClientEvent::Head(head) => self.on_head(now, gateway, io, &head),
                ClientEvent::Body(bytes) if self.relaying() => {
                    self.relay_body(now, io, &bytes);
                    None
                }
                ClientEvent::Body(bytes) => self.on_body(now, gateway, io, &bytes),
                ClientEvent::End if self.relaying() => {
                    io.outputs.push_back(Output::ReleaseUpstream {
                        reuse: self.codec.is_reusable(),
                    });
                    Some(self.relay_end(io))
                }
                ClientEvent::End => self.on_end(gateway, io),
            };
            if done.is_some() {
                return done;
            }
            if matches!(self.phase, Phase::Connecting | Phase::Reserving) {
                // A retry started: the old connection's bytes are void.
                return None;
            }
        }
    }

    fn on_head(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
        head: &client::ResponseHead,
    ) -> Option<Finished> {
        self.status = head.status;
        self.content_type = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.retry_after = head
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let is_sse = self
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if (200..300).contains(&head.status) && self.kind.stream() && is_sse {
            let (provider, model) = self.served(gateway);
            let include_usage = matches!(
                self.kind,
                CallKind::Chat {
                    include_usage: true,
                    ..
                }
            );
            let json_array = matches!(
                self.kind,
                CallKind::Chat {
                    json_array: true,
                    ..
                }
            );
            let upstream = self.upstream_kind(gateway);
            self.stream = Some(if self.native_now(gateway) {
                match self.dialect {
                    Dialect::OpenAi => {
                        let stream = OpenAiStream::new(
                            &provider,
                            &model,
                            include_usage,
                            self.price(gateway),
                        );
                        ClientStream::Native(if self.openrouter_errors {
                            stream.with_error_in_chunk()
                        } else {
                            stream
                        })
                    }
                    _ => ClientStream::PassThrough(PassThroughStream::new(
                        upstream,
                        self.dialect,
                        json_array,
                    )),
                }
            } else {
                let label = format!("{provider}/{model}");
                ClientStream::Translated(
                    TranslatedStream::new(
                        upstream,
                        self.dialect,
                        &label,
                        include_usage,
                        json_array,
                        self.created,
                        Some(self.price(gateway)),
                    )
                    .with_request(self.echoed_request())
                    .with_error_in_chunk(self.openrouter_errors),
                )
            });
            self.sse = SseDecoder::new(gateway.limits().max_sse_line_bytes);
            // The client's head waits for the first bytes of the answer, so
            // an upstream that dies before then can still fall back.
            self.phase = Phase::Streaming {
                last_upstream: now,
                last_keepalive: now,
                head_sent: false,
            };
            return None;
        }
        let retryable = head.status == 429 || head.status == 408 || head.status >= 500;
        if retryable && self.attempt + 1 < self.candidates.len() {
            let err = ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                format!("the provider answered {}", head.status),
            );
            let cause = AttemptFailure::Status(head.status);
            return self.retry(gateway, io, Response::from(&err), false, cause);
        }
        self.phase = Phase::Buffering { last: now };
        None
    }

    /// Tries the next candidate, or answers with the last failure; the
    /// current attempt failed for `cause`.
    fn retry(
        &mut self,
        gateway: &Gateway,
        io: &mut Io<'_>,
        failure: Response,
        released: bool,
        cause: AttemptFailure,
    ) -> Option<Finished> {
        self.end_attempt(Some(cause));
        if !released && !matches!(self.phase, Phase::Connecting | Phase::Reserving) {
            io.outputs
                .push_back(Output::ReleaseUpstream { reuse: false });
        }
        self.bank_reported_usage();
        self.failure = Some(Failure { response: failure });
        self.attempt += 1;
        if self.attempt < self.candidates.len() {
            return self.start(gateway, io);
        }
        Some(self.give_up(io))
    }

    fn give_up(&mut self, io: &mut Io<'_>) -> Finished {
        let response = match self.failure.take() {
            Some(f) => f.response,
            None => Response::from(&ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                "no provider could serve the request",
            )),
        };
        self.attempt = self.attempt.min(self.candidates.len().saturating_sub(1));
        self.respond(io, response, false)
    }

    fn respond(&mut self, io: &mut Io<'_>, response: Response, complete: bool) -> Finished {
        self.end_keep_alive_if_body_unread();
        let response = if self.openrouter_errors {
            crate::api::openrouter::reshape_error(response)
        } else {
            response
        };
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .chain(&self.extra_headers)
            .map(|(k, v)| (*k, v.as_str()))
            .chain([("X-Request-Id", self.request_id.as_str())])
            .collect();
        encode::write_response(
            io.down,
            response.status,
            &headers,
            &response.body,
            self.keep_alive,
        );
        self.phase = Phase::Done;
        self.finished(response.status, complete)
    }

    /// The provider name and model of the candidate being tried.
    fn served(&self, gateway: &Gateway) -> (String, String) {
        match self.candidate() {
            Some(c) => (
                gateway
                    .providers()
                    .get(c.provider)
                    .map_or_else(String::new, |p| p.name.clone()),
                c.model.clone(),
            ),
            None => (String::new(), String::new()),
        }
    }

    /// The price of the candidate being tried: what `usage.cost` in an
    /// OpenAI-shaped answer is computed at, and (through the same
    /// `Gateway::price`) what its usage record is billed at. An unpriced
    /// model costs 0.
    fn price(&self, gateway: &Gateway) -> Price {
        self.candidate()
            .and_then(|c| {
                let provider = gateway.providers().get(c.provider)?;
                gateway.price(&provider.name, &c.model)
            })
            .unwrap_or_default()
    }
}
