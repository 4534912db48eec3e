//! One upstream call on behalf of a client request: connect, send, read
//! the response, translate it for the client, and fall back to the next
//! candidate while nothing has reached the client yet.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use super::{count, ConnectError, Output};
use crate::api::{ApiError, Dialect, ErrorKind, Response};
use crate::gateway::{Gateway, ProviderKind};
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
}

impl CallKind {
    fn path(self) -> &'static str {
        match self {
            CallKind::Chat { .. } | CallKind::CountTokens => "/chat/completions",
            CallKind::Embeddings => "/embeddings",
        }
    }

    fn stream(self) -> bool {
        matches!(self, CallKind::Chat { stream: true, .. })
    }
}

/// The client's request, as the call keeps it for every candidate.
#[derive(Debug)]
pub(crate) enum CallRequest {
    /// An OpenAI-dialect body: parsed for the same-dialect fast path, raw
    /// for decoding into the canonical form when a candidate speaks
    /// another dialect (decoded once, on first need).
    OpenAi {
        body: Map<String, Value>,
        raw: Vec<u8>,
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
    },
}

/// Where the driver's byte sinks and output queue are.
pub(crate) struct Io<'a> {
    pub down: &'a mut Vec<u8>,
    pub up: &'a mut Vec<u8>,
    pub outputs: &'a mut VecDeque<Output>,
}

/// How a call ended, for the access log and billing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finished {
    pub status: u16,
    pub provider: Option<usize>,
    pub model: Option<String>,
    pub usage: Option<Usage>,
    /// The response reached the client whole (no abort, no cut stream).
    pub complete: bool,
}

#[derive(Debug)]
enum Phase {
    Connecting,
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
    failure: Option<Failure>,
    /// The current connection came from the pool.
    reused: bool,
    /// A stale pooled connection was already replaced once this attempt.
    refreshed: bool,
    /// The current attempt's request went to a provider: only then is
    /// there anything to bill.
    reached: bool,
}

impl Call {
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
            failure: None,
            reused: false,
            refreshed: false,
            reached: false,
        }
    }

    /// The client speaks HTTP/1.0: a streamed answer runs until close, and
    /// the connection is not kept.
    pub(crate) fn set_http10(&mut self) {
        self.framing = StreamFraming::UntilClose;
        self.keep_alive = false;
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
    fn native(&self, kind: ProviderKind) -> bool {
        dispatch::dialect_of(kind) == self.dialect
    }

    /// Decodes the client's request into the canonical form, once.
    fn canonical(&mut self) -> Result<(), ApiError> {
        if let CallRequest::OpenAi { raw, canonical, .. } = &mut self.request {
            if canonical.is_none() {
                let mut req = crate::translate::openai::canonical::decode_request(raw)?;
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
            return Some(self.give_up(gateway, io));
        };
        let provider = candidate.provider;
        let upstream_kind = gateway.providers().get(provider).map(|p| p.kind);
        if self.kind == CallKind::Embeddings && upstream_kind != Some(ProviderKind::OpenAi) {
            let err = ApiError::new(
                self.dialect,
                ErrorKind::InvalidRequest,
                "embeddings are served by OpenAI-compatible providers only",
            )
            .with_code("unsupported_provider");
            self.failure = Some(Failure {
                response: Response::from(&err),
            });
            self.attempt += 1;
            return self.start(gateway, io);
        }
        if self.kind == CallKind::CountTokens && upstream_kind == Some(ProviderKind::OpenAi) {
            return Some(self.count_locally(gateway, io));
        }
        if upstream_kind.is_some_and(|k| !self.native(k)) {
            // The client's request must be understood before another
            // dialect can be written: a bad one is the client's error.
            if let Err(err) = self.canonical() {
                self.attempt = self.candidates.len();
                self.failure = Some(Failure {
                    response: Response::from(&err),
                });
                return Some(self.give_up(gateway, io));
            }
        }
        // A fresh codec per connection: a pooled one starts clean too.
        self.codec = ClientCodec::new(gateway.limits(), false);
        self.status = 0;
        self.buffered.clear();
        self.phase = Phase::Connecting;
        self.refreshed = false;
        self.reached = false;
        io.outputs.push_back(Output::ConnectUpstream {
            provider,
            fresh: false,
        });
        None
    }

    pub(crate) fn on_connected(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
        reused: bool,
    ) {
        self.reused = reused;
        let (Some(candidate), Phase::Connecting) = (self.candidate(), &self.phase) else {
            return;
        };
        let Some(provider) = gateway.providers().get(candidate.provider) else {
            return;
        };
        let stream = self.kind.stream();
        let mut forward: &[(&'static str, String)] = &[];
        let (target, body) = match &self.request {
            _ if self.kind == CallKind::CountTokens => {
                let (native, canonical) = match &self.request {
                    CallRequest::Foreign {
                        body,
                        canonical,
                        forward: headers,
                    } => {
                        if self.native(provider.kind) {
                            forward = headers;
                        }
                        (
                            self.native(provider.kind).then_some(body),
                            canonical.as_ref(),
                        )
                    }
                    CallRequest::OpenAi {
                        canonical: Some(canonical),
                        ..
                    } => (None, canonical.as_ref()),
                    CallRequest::OpenAi { .. } => return,
                };
                (
                    format!(
                        "{}{}",
                        provider.addr.base_path,
                        count::target(provider.kind, &candidate.model)
                    ),
                    count::body(provider.kind, &candidate.model, native, canonical),
                )
            }
            CallRequest::OpenAi { body, .. } if self.native(provider.kind) => (
                format!("{}{}", provider.addr.base_path, self.kind.path()),
                upstream_body(body, &candidate.model, provider.official, stream),
            ),
            CallRequest::Foreign {
                body,
                forward: headers,
                ..
            } if self.native(provider.kind) => {
                forward = headers;
                (
                    format!(
                        "{}{}",
                        provider.addr.base_path,
                        dispatch::chat_target(provider.kind, &candidate.model, stream)
                    ),
                    dispatch::native_body(provider.kind, body, &candidate.model, stream),
                )
            }
            CallRequest::OpenAi {
                canonical: Some(req),
                ..
            }
            | CallRequest::Foreign { canonical: req, .. } => {
                let mut req = ChatRequest::clone(req);
                req.model = candidate.model.clone();
                req.stream = stream;
                (
                    format!(
                        "{}{}",
                        provider.addr.base_path,
                        dispatch::chat_target(provider.kind, &candidate.model, stream)
                    ),
                    dispatch::encode_request(provider.kind, &req),
                )
            }
            // `start` decoded the canonical form before connecting.
            CallRequest::OpenAi { .. } => return,
        };
        let host = provider.addr.host_header();
        let auth = provider
            .api_key
            .as_deref()
            .map(|key| upstream::auth_header(provider.kind, key));
        let mut headers: Vec<(&str, &str)> = vec![
            ("Content-Type", "application/json"),
            (
                "Accept",
                if self.kind.stream() {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            ),
            ("User-Agent", concat!("arouter/", env!("CARGO_PKG_VERSION"))),
        ];
        if let Some((name, value)) = &auth {
            headers.push((name, value.as_str()));
        }
        for (name, value) in dispatch::extra_headers(provider.kind) {
            // The client's own version header, when it sent one, wins.
            if !forward.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                headers.push((name, value));
            }
        }
        headers.extend(forward.iter().map(|(n, v)| (*n, v.as_str())));
        client::write_request(io.up, "POST", &target, &host, &headers, &body);
        self.reached = true;
        self.phase = Phase::AwaitingHead { since: now };
    }

    pub(crate) fn on_connect_failed(
        &mut self,
        gateway: &Gateway,
        io: &mut Io<'_>,
        error: ConnectError,
    ) -> Option<Finished> {
        let (kind, message) = match error {
            ConnectError::Timeout => (
                ErrorKind::GatewayTimeout,
                "timed out connecting to the provider",
            ),
            ConnectError::Refused => (ErrorKind::BadGateway, "the provider refused the connection"),
            ConnectError::Dns => (
                ErrorKind::BadGateway,
                "the provider's host name did not resolve",
            ),
            ConnectError::Tls => (
                ErrorKind::BadGateway,
                "TLS handshake with the provider failed",
            ),
            ConnectError::Other => (ErrorKind::BadGateway, "could not connect to the provider"),
        };
        let err = ApiError::new(self.dialect, kind, message).with_code("upstream_unavailable");
        self.retry(gateway, io, Response::from(&err), false)
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
        }
        self.phase = Phase::Done;
        self.finished(499, false)
    }

    pub(crate) fn deadline(&self, gateway: &Gateway) -> Option<Tick> {
        let l = gateway.limits();
        match self.phase {
            // The frontend bounds connecting with its own timeout.
            Phase::Connecting | Phase::Done => None,
            Phase::AwaitingHead { since } => Some(since.after(l.upstream_first_byte_timeout_ms)),
            Phase::Buffering { last } => Some(last.after(l.upstream_idle_timeout_ms)),
            Phase::Streaming {
                last_upstream,
                last_keepalive,
                ..
            } => {
                let idle = last_upstream.after(l.upstream_idle_timeout_ms);
                match &self.stream {
                    Some(s) if !s.started() => {
                        Some(idle.min(last_keepalive.after(l.stream_keepalive_ms)))
                    }
                    _ => Some(idle),
                }
            }
        }
    }

    pub(crate) fn on_timeout(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        let deadline = self.deadline(gateway)?;
        let l = gateway.limits();
        let started = self.stream.as_ref().is_some_and(ClientStream::started);
        let json_array = matches!(
            self.kind,
            CallKind::Chat {
                json_array: true,
                ..
            }
        );
        if let Phase::Streaming {
            last_upstream,
            last_keepalive,
            ..
        } = &mut self.phase
        {
            if now < last_upstream.after(l.upstream_idle_timeout_ms) {
                // Only while waiting for the first token: a driver's timer
                // may fire at an older, earlier deadline, which must change
                // nothing once tokens flow.
                if !started && now >= last_keepalive.after(l.stream_keepalive_ms) {
                    *last_keepalive = now;
                    // A comment keeps proxies and clients from timing the
                    // connection out, and commits the response to this
                    // candidate. A JSON-array stream gets whitespace, which
                    // JSON allows before `[` and between elements.
                    let filler: &[u8] = if json_array {
                        b"\n"
                    } else {
                        b": keep-alive\n\n"
                    };
                    self.send_stream_bytes(io, filler);
                }
                return None;
            }
        }
        if now < deadline {
            return None;
        }
        match self.phase {
            Phase::AwaitingHead { .. } => {
                let err = ApiError::new(
                    self.dialect,
                    ErrorKind::GatewayTimeout,
                    "the provider did not answer in time",
                )
                .with_code("upstream_timeout");
                self.retry(gateway, io, Response::from(&err), false)
            }
            Phase::Buffering { .. } => {
                // Nothing of a buffered answer reached the client: the next
                // candidate may still serve it.
                let err = ApiError::new(
                    self.dialect,
                    ErrorKind::GatewayTimeout,
                    "the provider stalled mid-response",
                )
                .with_code("upstream_timeout");
                self.retry(gateway, io, Response::from(&err), false)
            }
            Phase::Streaming { .. } => {
                io.outputs
                    .push_back(Output::ReleaseUpstream { reuse: false });
                self.fail_stream(gateway, io, "the provider stalled mid-stream", true)
            }
            _ => None,
        }
    }

    fn drain(&mut self, now: Tick, gateway: &Gateway, io: &mut Io<'_>) -> Option<Finished> {
        loop {
            let event = match self.codec.poll_event() {
                Ok(Some(event)) => event,
                Ok(None) => return None,
                Err(err) => return self.upstream_broke(gateway, io, err),
            };
            let done = match event {
                ClientEvent::Head(head) => self.on_head(now, gateway, io, &head),
                ClientEvent::Body(bytes) => self.on_body(now, gateway, io, &bytes),
                ClientEvent::End => self.on_end(gateway, io),
            };
            if done.is_some() {
                return done;
            }
            if matches!(self.phase, Phase::Connecting) {
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
            self.stream = Some(if self.native(upstream) {
                match self.dialect {
                    Dialect::OpenAi => {
                        ClientStream::Native(OpenAiStream::new(&provider, &model, include_usage))
                    }
                    _ => ClientStream::PassThrough(PassThroughStream::new(
                        upstream,
                        self.dialect,
                        json_array,
                    )),
                }
            } else {
                let label = format!("{provider}/{model}");
                ClientStream::Translated(TranslatedStream::new(
                    upstream,
                    self.dialect,
                    &label,
                    include_usage,
                    json_array,
                    self.created,
                ))
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
            return self.retry(gateway, io, Response::from(&err), false);
        }
        self.phase = Phase::Buffering { last: now };
        None
    }

    fn on_body(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
        bytes: &[u8],
    ) -> Option<Finished> {
        match &mut self.phase {
            Phase::Buffering { last } => {
                *last = now;
                if self.buffered.len() + bytes.len() > gateway.limits().max_upstream_body_bytes {
                    io.outputs
                        .push_back(Output::ReleaseUpstream { reuse: false });
                    let err = ApiError::new(
                        self.dialect,
                        ErrorKind::BadGateway,
                        "the provider's response is too large",
                    );
                    return Some(self.respond(gateway, io, Response::from(&err), false));
                }
                self.buffered.extend_from_slice(bytes);
                None
            }
            Phase::Streaming { last_upstream, .. } => {
                *last_upstream = now;
                let stream = self.stream.as_mut()?;
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let result = self.sse.feed(bytes, |event| {
                    stream.on_event(event.event, event.data, &mut scratch)
                });
                if result.is_err() {
                    stream.fail(
                        "the provider sent an oversized or invalid stream event",
                        &mut scratch,
                    );
                }
                let done = stream.is_done();
                let complete = !stream.failed();
                let started = stream.started();
                if !complete && !started && !self.head_sent() {
                    // The upstream failed before the client saw anything
                    // (an error as its first event): the next candidate
                    // gets its turn.
                    self.scratch = scratch;
                    io.outputs
                        .push_back(Output::ReleaseUpstream { reuse: false });
                    return self.fail_stream(
                        gateway,
                        io,
                        "the provider's stream failed before its first token",
                        true,
                    );
                }
                self.send_stream_bytes(io, &scratch);
                self.scratch = scratch;
                if done {
                    // Nothing after the stop: the rest of the upstream body is
                    // dropped. When the body's end already arrived with
                    // `[DONE]` (the usual case), the connection is clean and
                    // goes back to the pool.
                    let reuse = complete
                        && matches!(self.codec.poll_event(), Ok(Some(ClientEvent::End)))
                        && self.codec.is_reusable();
                    io.outputs.push_back(Output::ReleaseUpstream { reuse });
                    return Some(self.end_stream(io, complete));
                }
                None
            }
            _ => None,
        }
    }

    fn on_end(&mut self, gateway: &Gateway, io: &mut Io<'_>) -> Option<Finished> {
        io.outputs.push_back(Output::ReleaseUpstream {
            reuse: self.codec.is_reusable(),
        });
        match self.phase {
            Phase::Streaming { .. } => {
                let mut complete = true;
                let head_sent = self.head_sent();
                if let Some(stream) = self.stream.as_mut() {
                    if !stream.started() && !head_sent {
                        // The stream ended, or broke, before any token: a
                        // failed attempt, not an empty answer. (The release
                        // above already let the connection go.)
                        return self.fail_stream(
                            gateway,
                            io,
                            "the provider's stream ended before its first token",
                            true,
                        );
                    }
                    let mut scratch = std::mem::take(&mut self.scratch);
                    scratch.clear();
                    let truncated = self.sse.finish();
                    stream.finish(truncated, &mut scratch);
                    complete = !stream.failed();
                    self.send_stream_bytes(io, &scratch);
                    self.scratch = scratch;
                }
                Some(self.end_stream(io, complete))
            }
            Phase::Buffering { .. } => {
                let response = self.buffered_response(gateway);
                Some(self.respond(gateway, io, response, true))
            }
            _ => None,
        }
    }

    /// The final answer from a whole upstream body.
    fn buffered_response(&mut self, gateway: &Gateway) -> Response {
        let body = std::mem::take(&mut self.buffered);
        let upstream = self.upstream_kind(gateway);
        let (provider, model) = self.served(gateway);
        if (200..300).contains(&self.status) && self.kind == CallKind::CountTokens {
            if let Some(tokens) = count::read(upstream, &body) {
                return Response::json(200, count::render(self.dialect, tokens));
            }
        } else if (200..300).contains(&self.status) && self.kind.stream() {
            // Asked to stream, answered in one piece (some compatible
            // servers ignore `stream`): the client still gets the stream
            // it asked for, in its dialect.
            if let Some(response) = self.stream_from_whole(upstream, &body, &provider, &model) {
                return response;
            }
        } else if (200..300).contains(&self.status) {
            if self.native(upstream) && self.dialect != Dialect::OpenAi {
                // Same dialect: the body goes back as sent; it is read only
                // for the usage to bill.
                if let Ok(resp) = dispatch::decode_response(upstream, &body) {
                    self.usage = resp.usage;
                    let content_type = self
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/json".into());
                    return Response {
                        status: self.status,
                        headers: vec![("Content-Type", content_type)],
                        body,
                    };
                }
            } else if self.native(upstream) {
                let normalized = match self.kind {
                    CallKind::Chat { .. } | CallKind::CountTokens => {
                        normalize_chat(&body, &provider, &model)
                    }
                    CallKind::Embeddings => normalize_embeddings(&body, &provider, &model),
                };
                if let Some((bytes, usage)) = normalized {
                    self.usage = usage;
                    return Response::json(self.status, bytes);
                }
            } else if let Ok(mut resp) = dispatch::decode_response(upstream, &body) {
                self.usage = resp.usage;
                if resp.created.is_none() {
                    resp.created = self.created;
                }
                let served = if resp.model.is_empty() {
                    &model
                } else {
                    &resp.model
                };
                let label = format!("{provider}/{served}");
                return Response::json(200, dispatch::encode_response(self.dialect, &resp, &label));
            }
            let err = ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                "the provider's response is not valid JSON",
            );
            return Response::from(&err);
        }
        if matches!(self.status, 401 | 403 | 407) {
            // The provider refused the gateway's own key. Relayed as is, the
            // client's SDK would blame the client's key, and OpenAI's text
            // even quotes part of ours.
            let err = ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                format!(
                    "provider `{provider}` rejected the gateway's credentials ({})",
                    self.status
                ),
            )
            .with_code("upstream_auth_failed");
            return Response::from(&err);
        }
        let mut response = if dispatch::dialect_of(upstream) == self.dialect {
            // A provider error in the client's own dialect is relayed as
            // sent: same status, same body, so SDKs raise the same
            // exception they would against the provider.
            let content_type = self
                .content_type
                .clone()
                .unwrap_or_else(|| "application/json".into());
            Response {
                status: self.status,
                headers: vec![("Content-Type", content_type)],
                body,
            }
        } else {
            // Another dialect's error: same status class, the provider's
            // message, in the shape the client's SDK parses.
            let message = dispatch::decode_error(upstream, &body)
                .unwrap_or_else(|| format!("the provider answered {}", self.status));
            let kind = ErrorKind::from_upstream_status(self.status);
            Response::from(&ApiError::new(self.dialect, kind, message).with_code("upstream_error"))
        };
        if let Some(retry_after) = self.retry_after.take() {
            response = response.header("Retry-After", retry_after);
        }
        response
    }

    fn upstream_broke(
        &mut self,
        gateway: &Gateway,
        io: &mut Io<'_>,
        err: HttpError,
    ) -> Option<Finished> {
        io.outputs
            .push_back(Output::ReleaseUpstream { reuse: false });
        if matches!(self.phase, Phase::AwaitingHead { .. })
            && self.reused
            && !self.refreshed
            && !self.codec.has_started()
        {
            // A pooled connection the provider had already closed: not the
            // provider's fault, so the same candidate gets a fresh one.
            self.refreshed = true;
            self.codec = ClientCodec::new(gateway.limits(), false);
            self.phase = Phase::Connecting;
            if let Some(c) = self.candidate() {
                io.outputs.push_back(Output::ConnectUpstream {
                    provider: c.provider,
                    fresh: true,
                });
            }
            return None;
        }
        match self.phase {
            Phase::Streaming { .. } => self.fail_stream(
                gateway,
                io,
                "the provider's connection broke mid-stream",
                true,
            ),
            Phase::AwaitingHead { .. } => {
                let e = ApiError::new(
                    self.dialect,
                    ErrorKind::BadGateway,
                    format!("the provider sent an invalid response ({})", err.message()),
                )
                .with_code("upstream_error");
                // Release already queued above.
                self.retry(gateway, io, Response::from(&e), true)
            }
            _ => {
                let e = ApiError::new(
                    self.dialect,
                    ErrorKind::BadGateway,
                    "the provider's response was cut off",
                )
                .with_code("upstream_error");
                // A buffered answer has not reached the client: fall back.
                // Release already queued above.
                self.retry(gateway, io, Response::from(&e), true)
            }
        }
    }

    /// Tries the next candidate, or answers with the last failure.
    fn retry(
        &mut self,
        gateway: &Gateway,
        io: &mut Io<'_>,
        failure: Response,
        released: bool,
    ) -> Option<Finished> {
        if !released && !matches!(self.phase, Phase::Connecting) {
            io.outputs
                .push_back(Output::ReleaseUpstream { reuse: false });
        }
        self.failure = Some(Failure { response: failure });
        self.attempt += 1;
        if self.attempt < self.candidates.len() {
            return self.start(gateway, io);
        }
        Some(self.give_up(gateway, io))
    }

    fn give_up(&mut self, gateway: &Gateway, io: &mut Io<'_>) -> Finished {
        let response = match self.failure.take() {
            Some(f) => f.response,
            None => Response::from(&ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                "no provider could serve the request",
            )),
        };
        self.attempt = self.attempt.min(self.candidates.len().saturating_sub(1));
        self.respond(gateway, io, response, false)
    }

    fn respond(
        &mut self,
        _gateway: &Gateway,
        io: &mut Io<'_>,
        mut response: Response,
        complete: bool,
    ) -> Finished {
        response.headers.append(&mut self.extra_headers);
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
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

    /// The upstream failed mid-stream. Before the client saw anything, the
    /// next candidate gets its turn (`released`: the connection is already
    /// let go); after, the stream ends with an error in the client's dialect.
    fn fail_stream(
        &mut self,
        gateway: &Gateway,
        io: &mut Io<'_>,
        message: &str,
        released: bool,
    ) -> Option<Finished> {
        if matches!(
            self.phase,
            Phase::Streaming {
                head_sent: false,
                ..
            }
        ) {
            let err = ApiError::new(self.dialect, ErrorKind::BadGateway, message.to_string())
                .with_code("upstream_error");
            self.stream = None;
            return self.retry(gateway, io, Response::from(&err), released);
        }
        if let Some(stream) = self.stream.as_mut() {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            stream.fail(message, &mut scratch);
            self.send_stream_bytes(io, &scratch);
            self.scratch = scratch;
        }
        Some(self.end_stream(io, false))
    }

    fn head_sent(&self) -> bool {
        matches!(
            self.phase,
            Phase::Streaming {
                head_sent: true,
                ..
            }
        )
    }

    /// Writes stream bytes to the client, sending the response head first
    /// if it has not gone out yet.
    fn send_stream_bytes(&mut self, io: &mut Io<'_>, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Phase::Streaming { head_sent, .. } = &mut self.phase {
            if !*head_sent {
                *head_sent = true;
                let json_array = matches!(
                    self.kind,
                    CallKind::Chat {
                        json_array: true,
                        ..
                    }
                );
                let content_type = if json_array {
                    "application/json"
                } else {
                    "text/event-stream"
                };
                let mut headers: Vec<(&str, &str)> = vec![
                    ("Content-Type", content_type),
                    ("Cache-Control", "no-cache"),
                    ("X-Accel-Buffering", "no"),
                ];
                headers.extend(self.extra_headers.iter().map(|(k, v)| (*k, v.as_str())));
                encode::write_stream_head(io.down, 200, &headers, self.framing, self.keep_alive);
            }
        }
        encode::write_stream_bytes(io.down, self.framing, bytes);
    }

    fn end_stream(&mut self, io: &mut Io<'_>, complete: bool) -> Finished {
        if matches!(
            self.phase,
            Phase::Streaming {
                head_sent: true,
                ..
            }
        ) {
            encode::write_stream_end(io.down, self.framing);
        }
        self.phase = Phase::Done;
        self.usage = self.stream.as_ref().and_then(ClientStream::usage);
        self.finished(200, complete)
    }

    /// A whole upstream answer as a complete stream in the client's dialect.
    fn stream_from_whole(
        &mut self,
        upstream: ProviderKind,
        body: &[u8],
        provider: &str,
        model: &str,
    ) -> Option<Response> {
        let mut resp = dispatch::decode_response(upstream, body).ok()?;
        self.usage = resp.usage;
        if resp.created.is_none() {
            resp.created = self.created;
        }
        let (include_usage, json_array) = match self.kind {
            CallKind::Chat {
                include_usage,
                json_array,
                ..
            } => (include_usage, json_array),
            _ => (false, false),
        };
        let served = if resp.model.is_empty() {
            model
        } else {
            resp.model.as_str()
        };
        let label = format!("{provider}/{served}");
        let mut encoder =
            dispatch::StreamEncoder::new(self.dialect, &label, include_usage, json_array)
                .with_created(resp.created);
        let mut out = Vec::new();
        for event in resp.to_events() {
            encoder.on_event(&event, &mut out);
        }
        encoder.finish(&mut out);
        let content_type = if json_array {
            "application/json"
        } else {
            "text/event-stream"
        };
        Some(Response {
            status: 200,
            headers: vec![
                ("Content-Type", content_type.to_string()),
                ("Cache-Control", "no-cache".to_string()),
            ],
            body: out,
        })
    }

    /// Counting for an OpenAI-compatible provider, which has no counting
    /// endpoint: the model's own tokenizer, here.
    fn count_locally(&mut self, gateway: &Gateway, io: &mut Io<'_>) -> Finished {
        let model = self
            .candidate()
            .map(|c| c.model.clone())
            .unwrap_or_default();
        let tokens = match &self.request {
            CallRequest::Foreign { canonical, .. } => {
                crate::tokens::count_chat_input(&model, canonical)
            }
            CallRequest::OpenAi {
                canonical: Some(canonical),
                ..
            } => crate::tokens::count_chat_input(&model, canonical),
            CallRequest::OpenAi { .. } => 0,
        };
        let response = Response::json(200, count::render(self.dialect, tokens));
        self.respond(gateway, io, response, true)
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

    fn finished(&self, status: u16, complete: bool) -> Finished {
        // Counting consumes nothing billable, nor does an attempt that
        // never reached its provider.
        let candidate = self
            .candidate()
            .filter(|_| self.kind != CallKind::CountTokens && self.reached);
        Finished {
            status,
            provider: candidate.map(|c| c.provider),
            model: candidate.map(|c| c.model.clone()),
            usage: self
                .usage
                .or_else(|| self.stream.as_ref().and_then(ClientStream::usage)),
            complete,
        }
    }
}
