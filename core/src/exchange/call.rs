//! One upstream call on behalf of a client request: connect, send, read
//! the response, translate it for the client, and fall back to the next
//! candidate while nothing has reached the client yet.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use super::{ConnectError, Output};
use crate::api::{ApiError, Dialect, ErrorKind, Response};
use crate::gateway::{Gateway, ProviderKind};
use crate::http1::{client, encode, ClientCodec, ClientEvent, HttpError};
use crate::route::Candidate;
use crate::sse::SseDecoder;
use crate::stream::openai::OpenAiStream;
use crate::translate::openai::{normalize_chat, normalize_embeddings, request::upstream_body};
use crate::upstream;
use crate::usage::Usage;
use crate::Tick;

/// What the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    Chat { stream: bool, include_usage: bool },
    Embeddings,
}

impl CallKind {
    fn path(self) -> &'static str {
        match self {
            CallKind::Chat { .. } => "/chat/completions",
            CallKind::Embeddings => "/embeddings",
        }
    }

    fn stream(self) -> bool {
        matches!(self, CallKind::Chat { stream: true, .. })
    }
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
    dialect: Dialect,
    body: Map<String, Value>,
    candidates: Vec<Candidate>,
    attempt: usize,
    phase: Phase,
    codec: ClientCodec,
    status: u16,
    content_type: Option<String>,
    retry_after: Option<String>,
    buffered: Vec<u8>,
    sse: SseDecoder,
    stream: Option<OpenAiStream>,
    scratch: Vec<u8>,
    keep_alive: bool,
    usage: Option<Usage>,
    /// Response headers decided before the call (rate-limit values).
    extra_headers: Vec<(&'static str, String)>,
    failure: Option<Failure>,
    /// The current connection came from the pool.
    reused: bool,
    /// A stale pooled connection was already replaced once this attempt.
    refreshed: bool,
}

impl Call {
    pub(crate) fn new(
        gateway: &Gateway,
        kind: CallKind,
        body: Map<String, Value>,
        candidates: Vec<Candidate>,
        keep_alive: bool,
        extra_headers: Vec<(&'static str, String)>,
    ) -> Call {
        Call {
            kind,
            dialect: Dialect::OpenAi,
            body,
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
            usage: None,
            extra_headers,
            failure: None,
            reused: false,
            refreshed: false,
        }
    }

    /// The connection will close after this response (the server is
    /// draining): say so in the response head if it is not written yet.
    pub(crate) fn disable_keep_alive(&mut self) {
        self.keep_alive = false;
    }

    fn candidate(&self) -> Option<&Candidate> {
        self.candidates.get(self.attempt)
    }

    /// Opens the connection for the current candidate.
    pub(crate) fn start(&mut self, gateway: &Gateway, io: &mut Io<'_>) -> Option<Finished> {
        let Some(candidate) = self.candidate() else {
            return Some(self.give_up(gateway, io));
        };
        let provider = candidate.provider;
        if gateway.providers().get(provider).map(|p| p.kind) != Some(ProviderKind::OpenAi) {
            let kind = gateway
                .providers()
                .get(provider)
                .map_or("unknown", |p| p.kind.as_str());
            let err = ApiError::new(
                self.dialect,
                ErrorKind::NotImplemented,
                format!("providers of kind `{kind}` are not supported on this endpoint yet"),
            );
            self.failure = Some(Failure {
                response: Response::from(&err),
            });
            self.attempt += 1;
            return self.start(gateway, io);
        }
        // A fresh codec per connection: a pooled one starts clean too.
        self.codec = ClientCodec::new(gateway.limits(), false);
        self.status = 0;
        self.buffered.clear();
        self.phase = Phase::Connecting;
        self.refreshed = false;
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
        let body = upstream_body(
            &self.body,
            &candidate.model,
            provider.official,
            self.kind.stream(),
        );
        let target = format!("{}{}", provider.addr.base_path, self.kind.path());
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
        client::write_request(io.up, "POST", &target, &host, &headers, &body);
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
        if let Phase::Streaming {
            last_upstream,
            last_keepalive,
        } = &mut self.phase
        {
            if now < last_upstream.after(l.upstream_idle_timeout_ms) {
                if now >= last_keepalive.after(l.stream_keepalive_ms) {
                    // Waiting for the first token: a comment keeps proxies
                    // and clients from timing the connection out.
                    *last_keepalive = now;
                    encode::write_chunk(io.down, b": keep-alive\n\n");
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
                Some(self.fail_stream(io, "the provider stalled mid-stream"))
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
            self.stream = Some(OpenAiStream::new(&provider, &model, include_usage));
            self.sse = SseDecoder::new(gateway.limits().max_sse_line_bytes);
            let mut headers: Vec<(&str, &str)> = vec![
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
                ("X-Accel-Buffering", "no"),
            ];
            headers.extend(self.extra_headers.iter().map(|(k, v)| (*k, v.as_str())));
            encode::write_chunked_head(io.down, 200, &headers, self.keep_alive);
            self.phase = Phase::Streaming {
                last_upstream: now,
                last_keepalive: now,
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
                self.scratch.clear();
                let scratch = &mut self.scratch;
                let result = self
                    .sse
                    .feed(bytes, |event| stream.on_event(event.data, scratch));
                if result.is_err() {
                    stream.fail(
                        "the provider sent an oversized or invalid stream event",
                        scratch,
                    );
                }
                encode::write_chunk(io.down, &self.scratch);
                if stream.is_done() {
                    // Nothing after the stop: the rest of the upstream body is
                    // dropped. When the body's end already arrived with
                    // `[DONE]` (the usual case), the connection is clean and
                    // goes back to the pool.
                    let complete = !stream.failed();
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
                if let Some(stream) = self.stream.as_mut() {
                    self.scratch.clear();
                    let truncated = self.sse.finish();
                    if truncated {
                        stream.fail("the provider's stream ended mid-event", &mut self.scratch);
                    } else {
                        stream.finish(&mut self.scratch);
                    }
                    complete = !stream.failed();
                    encode::write_chunk(io.down, &self.scratch);
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
        let content_type = self
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".into());
        if (200..300).contains(&self.status) {
            let (provider, model) = self.served(gateway);
            let normalized = match self.kind {
                CallKind::Chat { .. } => normalize_chat(&body, &provider, &model),
                CallKind::Embeddings => normalize_embeddings(&body, &provider, &model),
            };
            if let Some((bytes, usage)) = normalized {
                self.usage = usage;
                return Response::json(self.status, bytes);
            }
            let err = ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                "the provider's response is not valid JSON",
            );
            return Response::from(&err);
        }
        // A provider error is relayed as sent: same status, same body, so
        // SDKs raise the same exception they would against the provider.
        let mut response = Response {
            status: self.status,
            headers: vec![("Content-Type", content_type)],
            body,
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
            Phase::Streaming { .. } => {
                Some(self.fail_stream(io, "the provider's connection broke mid-stream"))
            }
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

    fn fail_stream(&mut self, io: &mut Io<'_>, message: &str) -> Finished {
        if let Some(stream) = self.stream.as_mut() {
            self.scratch.clear();
            stream.fail(message, &mut self.scratch);
            encode::write_chunk(io.down, &self.scratch);
        }
        self.end_stream(io, false)
    }

    fn end_stream(&mut self, io: &mut Io<'_>, complete: bool) -> Finished {
        encode::write_last_chunk(io.down);
        self.phase = Phase::Done;
        self.usage = self.stream.as_ref().and_then(OpenAiStream::usage);
        self.finished(200, complete)
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
        let candidate = self.candidate();
        Finished {
            status,
            provider: candidate.map(|c| c.provider),
            model: candidate.map(|c| c.model.clone()),
            usage: self
                .usage
                .or_else(|| self.stream.as_ref().and_then(OpenAiStream::usage)),
            complete,
        }
    }
}
