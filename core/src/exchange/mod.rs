//! `Exchange`: one downstream connection as a state machine, including the
//! upstream call it makes on a client's behalf.
//!
//! Driver contract (str0m's): after every `handle_input`, call `poll_output`
//! until it returns `Output::Wait`. Each `Output` variant says what the
//! driver must do before polling again. Time only ever arrives as the `Tick`
//! inside an `Input`.

mod allowed;
mod attribution;
mod body;
mod call;
mod count;
mod deadlines;
mod dispatch;
mod drive;
mod end_call;
mod models;
mod plan;
mod proxy;
mod rejection;
pub mod request_id;
mod types;

pub(crate) use proxy::scan_fuzz as proxy_scan_fuzz;
pub use types::{
    AccessLog, Admission, AdmitRequest, Attempt, AttemptFailure, Attempts, CallIntent, Caller,
    ConnectError, Event, Input, Outcome, Output, Refusal, Rejection, ReserveRequest, UsageError,
    UsageRecord,
};

use std::collections::VecDeque;
use std::sync::Arc;

use http::Method;

use self::call::{Call, Finished, Io};
use self::plan::Plan;
use self::request_id::{RequestId, RequestIds};
use crate::api::{self, ApiError, Dialect, Endpoint, Response, Scope};
use crate::auth::{self, AuthError};
use crate::budget::BodyReservation;
use crate::gateway::Gateway;
use crate::http1::{encode, BodyKind, RequestHead, ServerCodec};
use crate::manage::ModelAllowlist;
use crate::Tick;

#[derive(Debug)]
enum Admit {
    /// `/healthz`: no credential needed.
    NotNeeded,
    Pending,
    Allowed {
        key_id: Option<i64>,
        headers: Vec<(&'static str, String)>,
        models: Option<Arc<ModelAllowlist>>,
        metered: bool,
    },
}

impl Admit {
    /// Who the request is from, as far as it has been authenticated.
    fn caller(&self) -> Caller {
        match self {
            Admit::Allowed { key_id, .. } => key_id.map_or(Caller::Master, Caller::Key),
            Admit::NotNeeded | Admit::Pending => Caller::Anonymous,
        }
    }
}

/// The request being read.
#[derive(Debug)]
struct Current {
    head: Box<RequestHead>,
    started: Tick,
    body: Vec<u8>,
    body_done: bool,
    admit: Admit,
    request_id: RequestId,
    /// The body's share of the gateway's body budget.
    reservation: Option<BodyReservation>,
    /// An `Output::Manage` is out; its answer comes as `Input::Managed`.
    managing: bool,
    /// An `Output::Recall` is out; its answer comes as `Input::Recalled`
    /// (the body is kept to plan the call with it).
    recalling: bool,
    /// For the provider proxy: a body longer than `proxy_buffer_bytes`
    /// is not held whole but streams upstream (`proxy::upload`).
    proxy: bool,
    /// The dialect of the gateway's own errors for this request, and the
    /// endpoint's name for logs and metrics: read off the route once, at
    /// the head, instead of routing again each time they are needed.
    dialect: Dialect,
    endpoint: &'static str,
}

impl Current {
    /// The body held so far is as much as a proxied call holds: the call
    /// starts now and takes the rest as it comes.
    fn streams_from_here(&self, limits: &crate::Limits) -> bool {
        self.proxy && !self.body_done && self.body.len() >= limits.proxy_buffer_bytes
    }
}

/// A request handed to an upstream call.
#[derive(Debug)]
struct Calling {
    call: Box<Call>,
    method: Method,
    path: String,
    endpoint: &'static str,
    started: Tick,
    caller: Caller,
    request_id: RequestId,
    trace: Option<crate::trace::TraceContext>,
    /// Held while the call keeps the parsed request (for fallback).
    _reservation: Option<BodyReservation>,
    keep_alive: bool,
    referer: Option<String>,
    title: Option<String>,
}

#[derive(Debug)]
enum State {
    /// A new connection; nothing has arrived yet. The first head's
    /// header timeout runs from here.
    Accepted {
        since: Tick,
    },
    /// Between requests; nothing of the next one has arrived.
    Idle {
        since: Tick,
    },
    /// Part of a request head has arrived.
    Head {
        since: Tick,
    },
    /// Head parsed: reading the body and/or waiting for admission.
    Request {
        current: Current,
        last_progress: Tick,
        /// When the head was complete: the body deadline counts from here.
        head_done: Tick,
    },
    /// Waiting on a provider.
    Calling(Calling),
    /// A final response has been queued and the connection ends after it.
    Closing,
    Closed,
}

/// One downstream connection. `Debug` shows the state only: the buffers
/// and the request hold credentials (the client's key, the provider's).
pub struct Exchange {
    gateway: Arc<Gateway>,
    codec: ServerCodec,
    state: State,
    down: Vec<u8>,
    up: Vec<u8>,
    outputs: VecDeque<Output>,
    draining: bool,
    /// Unix milliseconds at `Tick(0)`, when the driver provides it.
    unix_origin_ms: Option<u64>,
    /// Every call reserves, for the host's call journal.
    journaled: bool,
    /// A call cut short whose usage the gateway estimates when its usage
    /// event is polled, after the driver has let the upstream go.
    unbilled: Option<Box<Call>>,
    request_ids: RequestIds,
    /// A response to keep, handed out before anything else.
    keep: Option<Box<crate::stored::Kept>>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Accepted { .. } => "accepted",
            State::Idle { .. } => "idle",
            State::Head { .. } => "head",
            State::Request { .. } => "request",
            State::Calling(_) => "calling",
            State::Closing => "closing",
            State::Closed => "closed",
        };
        f.debug_struct("Exchange")
            .field("state", &state)
            .field("pending_down", &self.down.len())
            .field("pending_up", &self.up.len())
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    pub fn new(gateway: Arc<Gateway>, now: Tick) -> Exchange {
        let codec = ServerCodec::new(gateway.limits());
        Exchange {
            gateway,
            codec,
            state: State::Accepted { since: now },
            down: Vec::new(),
            up: Vec::new(),
            outputs: VecDeque::new(),
            draining: false,
            unix_origin_ms: None,
            journaled: false,
            unbilled: None,
            request_ids: RequestIds::new("req-"),
            keep: None,
        }
    }

    /// Sets the prefix of the request ids this connection makes (for
    /// requests that bring no valid `X-Request-Id`). The driver makes it
    /// unique per connection and process; ids are `{prefix}{n}`.
    pub fn with_request_id_prefix(mut self, prefix: &str) -> Exchange {
        self.request_ids = RequestIds::new(prefix);
        self
    }

    /// Tells the exchange which Unix time (ms) `Tick(0)` is, so answers
    /// built by translation can carry a real `created` timestamp. Time
    /// stays an input: the frontend reads its clock once, the core only adds.
    pub fn with_unix_origin(mut self, unix_ms_at_tick_zero: u64) -> Exchange {
        self.unix_origin_ms = Some(unix_ms_at_tick_zero);
        self
    }

    /// Makes every call reserve (`Output::Reserve`) before each attempt,
    /// metered or not, so the host can write it to its call journal
    /// (`Exchange::call_intent`) before it goes upstream. A call that is
    /// not metered still reserves nothing the host must refuse, and a
    /// proxied call naming no model is not refused for it.
    pub fn with_call_journal(mut self) -> Exchange {
        self.journaled = true;
        self
    }

    /// The upstream attempt the outstanding `Output::Reserve` is for;
    /// `None` when none is out. For the host's call journal: asked only
    /// when it keeps one, so the request path pays nothing otherwise.
    pub fn call_intent(&self) -> Option<CallIntent> {
        match &self.state {
            State::Calling(calling) => calling.call.call_intent(&self.gateway),
            _ => None,
        }
    }

    /// Whether the request in progress is relaying an event stream to the
    /// client (for the host's in-flight streams gauge).
    pub fn streaming(&self) -> bool {
        matches!(&self.state, State::Calling(calling) if calling.call.streaming())
    }

    /// Feeds one input. For `Downstream` and `Upstream`, returns how many
    /// bytes were taken; the driver offers the rest again after draining
    /// `poll_output`.
    pub fn handle_input(&mut self, input: Input<'_>) -> Result<usize, UsageError> {
        if matches!(self.state, State::Closed) {
            return Err(UsageError::Closed);
        }
        match input {
            Input::Downstream(now, bytes) => {
                if matches!(self.state, State::Closing) {
                    // The answer is final; drop whatever else the client sends.
                    return Ok(bytes.len());
                }
                let taken = self.codec.feed(bytes);
                if taken > 0 {
                    self.progress(now);
                }
                self.drive(now);
                Ok(taken)
            }
            Input::DownstreamEof(now) => {
                self.codec.feed_eof();
                if let State::Calling(calling) = &mut self.state {
                    // The client is gone: abort the upstream at once and
                    // bill what was seen.
                    let finished = calling.call.on_client_gone(&mut Io {
                        down: &mut self.down,
                        up: &mut self.up,
                        outputs: &mut self.outputs,
                    });
                    self.down.clear();
                    self.end_call(now, finished, true);
                    return Ok(0);
                }
                self.drive(now);
                Ok(0)
            }
            Input::Admission(now, admission) => {
                self.admission(now, admission)?;
                Ok(0)
            }
            Input::Managed(now, result) => {
                self.managed(now, result)?;
                Ok(0)
            }
            Input::Recalled(now, result) => {
                self.recalled(now, result)?;
                Ok(0)
            }
            Input::Reserved(now, result) => {
                let State::Calling(calling) = &self.state else {
                    return Err(UsageError::UnexpectedReserved);
                };
                if !calling.call.reserving() {
                    return Err(UsageError::UnexpectedReserved);
                }
                self.with_call(now, |call, gateway, io| {
                    call.on_reserved(now, gateway, io, result)
                })?;
                Ok(0)
            }
            Input::UpstreamConnected { now, reused } => {
                self.with_call(now, |call, gateway, io| {
                    call.on_connected(now, gateway, io, reused)
                })?;
                // A streamed body's bytes waited for the connection.
                self.drive(now);
                Ok(0)
            }
            Input::UpstreamFailed(now, error) => {
                self.with_call(now, |call, gateway, io| {
                    call.on_connect_failed(gateway, io, error)
                })?;
                Ok(0)
            }
            Input::Upstream(now, bytes) => {
                let mut taken = 0;
                self.with_call(now, |call, gateway, io| {
                    let (n, finished) = call.on_upstream(now, gateway, bytes, io);
                    taken = n;
                    finished
                })?;
                Ok(taken)
            }
            Input::UpstreamEof(now) => {
                self.with_call(now, |call, gateway, io| {
                    call.on_upstream_eof(now, gateway, io)
                })?;
                Ok(0)
            }
            Input::Timeout(now) => {
                self.timeout(now);
                Ok(0)
            }
            Input::Drain(_) => {
                self.drain();
                Ok(0)
            }
            Input::GraceExpired(now) => {
                self.grace_expired(now);
                Ok(0)
            }
        }
    }

    /// The next thing for the driver to do. Bytes to transmit are appended
    /// to `out` when this returns `TransmitDownstream` / `TransmitUpstream`.
    pub fn poll_output(&mut self, out: &mut Vec<u8>) -> Output {
        if let Some(kept) = self.keep.take() {
            // Ahead of the answer's last bytes: see `Output::Keep`.
            return Output::Keep(kept);
        }
        if !self.down.is_empty() {
            move_bytes(&mut self.down, out);
            return Output::TransmitDownstream;
        }
        if let Some(mut output) = self.outputs.pop_front() {
            if output == Output::Close {
                self.state = State::Closed;
            }
            if let Output::Event(Event::Usage(record)) = &mut output {
                if record.estimated {
                    self.complete_estimate(record);
                }
                let usage = record.usage.unwrap_or_default();
                record.cost = self.gateway.cost(&record.provider, &record.model, &usage);
            }
            return output;
        }
        if !self.up.is_empty() {
            move_bytes(&mut self.up, out);
            return Output::TransmitUpstream;
        }
        Output::Wait(self.deadline())
    }

    /// Counts the prompt of an estimated usage record whose provider did
    /// not report it, now that the driver has let the upstream go; the
    /// call is dropped with the last record that needs it.
    fn complete_estimate(&mut self, record: &mut UsageRecord) {
        if let (Some(call), Some(usage)) = (self.unbilled.as_mut(), record.usage.as_mut()) {
            if usage.prompt_tokens == 0 {
                usage.prompt_tokens = call.count_prompt(&record.model);
            }
        }
        let more = self
            .outputs
            .iter()
            .any(|o| matches!(o, Output::Event(Event::Usage(r)) if r.estimated));
        if !more {
            self.unbilled = None;
        }
    }

    fn with_call(
        &mut self,
        now: Tick,
        f: impl FnOnce(&mut Call, &Gateway, &mut Io<'_>) -> Option<Finished>,
    ) -> Result<(), UsageError> {
        let State::Calling(calling) = &mut self.state else {
            return Err(UsageError::UnexpectedUpstream);
        };
        let finished = f(
            &mut calling.call,
            &self.gateway,
            &mut Io {
                down: &mut self.down,
                up: &mut self.up,
                outputs: &mut self.outputs,
            },
        );
        if let Some(finished) = finished {
            self.end_call(now, finished, false);
        }
        Ok(())
    }

    fn on_head(&mut self, now: Tick, head: Box<RequestHead>) {
        let started = match self.state {
            State::Head { since } => since,
            _ => now,
        };
        let endpoint = route(&head, &self.gateway);
        let proxy = matches!(endpoint, Ok(Endpoint::ProviderProxy { .. }));
        let errors_dialect = errors_dialect(&endpoint, &head);
        let endpoint_name = endpoint.as_ref().map_or("unknown", Endpoint::name);
        let (scope, dialect, route_error, public_answer) = match endpoint {
            Ok(endpoint) => (
                endpoint.scope(),
                endpoint.dialect(),
                None,
                public_answer(&endpoint),
            ),
            Err(err) => (Scope::Inference, err.dialect, Some(err), None),
        };
        let mut reservation = None;
        let admit = if scope == Scope::Public {
            Ok(Admit::NotNeeded)
        } else {
            match auth::extract(&head.headers, head.query()) {
                // The body's bytes are reserved before any is buffered;
                // one that does not fit is not read at all.
                Ok(credential) => match self.reserve_body(head.body, dialect, proxy) {
                    Ok(reserved) => {
                        reservation = Some(reserved);
                        self.outputs.push_back(Output::Admit(AdmitRequest {
                            secret: credential.secret.into_owned(),
                            scope,
                        }));
                        Ok(Admit::Pending)
                    }
                    Err(busy) => Err(busy),
                },
                Err(AuthError::Missing) => {
                    Err(Response::from(&ApiError::missing_credential(dialect)))
                }
                Err(AuthError::Malformed) => {
                    Err(Response::from(&ApiError::invalid_credential(dialect)))
                }
            }
        };
        let expect_continue = head.expect_continue;
        let head_body = head.body;
        static REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
        let request_id = self.request_ids.for_request(head.header(&REQUEST_ID));
        let body = match (head_body, &reservation) {
            // Reserved, so within `max_body_bytes`: sized once, no regrowth.
            (BodyKind::Length(n), Some(reserved)) => {
                Vec::with_capacity(usize::try_from(n.min(reserved.bytes())).unwrap_or(0))
            }
            _ => Vec::new(),
        };
        self.state = State::Request {
            current: Current {
                head,
                started,
                body,
                body_done: false,
                admit: Admit::NotNeeded,
                request_id,
                reservation,
                managing: false,
                recalling: false,
                proxy,
                dialect: errors_dialect,
                endpoint: endpoint_name,
            },
            last_progress: now,
            head_done: now,
        };
        match admit {
            // Unauthenticated requests learn nothing about routes: 401 first.
            Err(response) => self.respond(now, response, Caller::Anonymous),
            Ok(admit) => {
                let public = matches!(admit, Admit::NotNeeded);
                if let State::Request { current, .. } = &mut self.state {
                    current.admit = admit;
                }
                let announced_body = !matches!(head_body, BodyKind::Empty | BodyKind::Length(0));
                match route_error {
                    Some(err) if public => self.respond_error(now, &err),
                    // A public endpoint takes no body: answer at the head,
                    // rather than let anyone without a key make the server
                    // hold an announced body, and close (the body is unread).
                    None if public && announced_body => {
                        let answer = public_answer.map_or_else(health, PublicAnswer::response);
                        self.respond_with(now, answer, Caller::Anonymous, true);
                    }
                    // Otherwise the route error is answered once the key is known good.
                    Some(_) => {}
                    None if expect_continue && public => encode::write_continue(&mut self.down),
                    None => {}
                }
            }
        }
    }

    fn start_call(
        &mut self,
        now: Tick,
        plan: Plan,
        caller: Caller,
        headers: Vec<(&'static str, String)>,
        metered: bool,
    ) {
        let State::Request { mut current, .. } = std::mem::replace(&mut self.state, State::Closing)
        else {
            return;
        };
        // An HTTP/1.0 client may be answered with a body that runs until
        // close, so its connection ends with the call.
        let keep_alive =
            current.head.keep_alive && !self.draining && current.head.version_minor > 0;
        let mut call = Call::new(
            &self.gateway,
            plan.kind,
            plan.dialect,
            plan.request,
            plan.candidates,
            keep_alive,
            headers,
        );
        if current.head.version_minor == 0 {
            call.set_http10();
        }
        if api::openrouter::is_openrouter_path(current.head.path()) {
            call.set_openrouter_errors();
        }
        if metered {
            call.set_metered(caller.key_id());
        } else if self.journaled {
            call.set_journaled(caller.key_id());
        }
        call.set_stored(plan.stored);
        call.set_request_id(current.request_id);
        let traceparent = client_traceparent(&current.head);
        call.set_traceparent(traceparent.map(str::to_owned));
        let trace = traceparent.and_then(crate::trace::context);
        call.set_created(
            self.unix_origin_ms
                .map(|origin| origin.saturating_add(now.as_millis()) / 1000),
        );
        let endpoint = current.endpoint;
        // The log's path is the target without its query (which may carry
        // `key=`), cut in place: the head is not needed after this.
        let mut path = std::mem::take(&mut current.head.target);
        if let Some(query) = path.find('?') {
            path.truncate(query);
        }
        self.state = State::Calling(Calling {
            call: Box::new(call),
            endpoint,
            method: current.head.method.clone(),
            path,
            started: current.started,
            caller,
            request_id: current.request_id,
            trace,
            _reservation: current.reservation.take(),
            keep_alive,
            referer: attribution::referer(&current.head),
            title: attribution::title(&current.head),
        });
        let _ = self.with_call(now, |call, gateway, io| call.start(gateway, io));
    }

    fn dialect(&self) -> Dialect {
        match &self.state {
            State::Request { current, .. } => current.dialect,
            _ => Dialect::OpenAi,
        }
    }

    fn respond_error(&mut self, now: Tick, err: &ApiError) {
        self.respond(now, Response::from(err), Caller::Anonymous);
    }

    /// Writes a response to the current request and moves on to the next
    /// (or closes when the connection cannot be reused).
    fn respond(&mut self, now: Tick, response: Response, caller: Caller) {
        self.respond_with(now, response, caller, false);
    }

    fn respond_with(&mut self, now: Tick, response: Response, caller: Caller, force_close: bool) {
        let State::Request { current, .. } = std::mem::replace(&mut self.state, State::Closing)
        else {
            return;
        };
        // Answering before the body was read leaves unread bytes on the
        // wire; closing is the only safe way to resynchronise.
        let keep_alive =
            current.head.keep_alive && current.body_done && !force_close && !self.draining;
        let response = if api::openrouter::is_openrouter_path(current.head.path()) {
            api::openrouter::reshape_error(response)
        } else {
            response
        };
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .chain([("X-Request-Id", current.request_id.as_str())])
            .collect();
        let body: &[u8] = if current.head.method == Method::HEAD {
            &[]
        } else {
            &response.body
        };
        encode::write_response(&mut self.down, response.status, &headers, body, keep_alive);
        self.outputs
            .push_back(Output::Event(Event::Access(AccessLog {
                method: current.head.method.clone(),
                path: current.head.path().to_string(),
                endpoint: current.endpoint,
                status: response.status,
                caller,
                request_id: current.request_id,
                model: None,
                requested: None,
                dialect: None,
                stream: false,
                attempts: Attempts::default(),
                trace: client_traceparent(&current.head).and_then(crate::trace::context),
                started: current.started,
                finished: now,
            })));
        if keep_alive {
            self.next_request(now);
        } else {
            self.close();
        }
    }

    /// Readies the connection for the next request. Callers inside the
    /// `drive` loop just return to it; others call `drive` afterwards, so a
    /// buffer full of pipelined requests is answered iteratively, never by
    /// recursion.
    fn next_request(&mut self, now: Tick) {
        self.codec.start_next();
        self.state = if self.codec.buffered() > 0 {
            State::Head { since: now }
        } else {
            State::Idle { since: now }
        };
    }

    /// A fault before or outside a parsed request: answer and close.
    fn fail(&mut self, now: Tick, err: &ApiError) {
        if let State::Request { current, .. } = &self.state {
            let caller = current.admit.caller();
            let mut response = Response::from(err);
            if let Admit::Allowed { headers, .. } = &current.admit {
                // The key was counted: its rate-limit headers still apply.
                response.headers.extend(headers.iter().cloned());
            }
            self.respond_with(now, response, caller, true);
            return;
        }
        let response = Response::from(err);
        // No request head was parsed, so no client id: a new one.
        let request_id = self.request_ids.make();
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .chain([("X-Request-Id", request_id.as_str())])
            .collect();
        encode::write_response(
            &mut self.down,
            response.status,
            &headers,
            &response.body,
            false,
        );
        self.close();
    }

    fn close(&mut self) {
        self.state = State::Closing;
        self.outputs.push_back(Output::Close);
    }
}

fn health() -> Response {
    Response::json(200, br#"{"status":"ok"}"#.to_vec())
}

/// How an endpoint that needs no credential is answered (a value, so a
/// body is built only when it is sent).
#[derive(Clone, Copy)]
enum PublicAnswer {
    Health,
    OpenApi,
    Dashboard(Option<&'static api::dashboard::Asset>),
}

impl PublicAnswer {
    fn response(self) -> Response {
        match self {
            PublicAnswer::Health => health(),
            PublicAnswer::OpenApi => api::spec::openapi_response(),
            PublicAnswer::Dashboard(Some(asset)) => api::dashboard::response(asset),
            PublicAnswer::Dashboard(None) => Response::from(&ApiError::not_found(Dialect::OpenAi)),
        }
    }
}

fn public_answer(endpoint: &Endpoint<'_>) -> Option<PublicAnswer> {
    match endpoint {
        Endpoint::Health => Some(PublicAnswer::Health),
        Endpoint::OpenApi => Some(PublicAnswer::OpenApi),
        Endpoint::Dashboard(asset) => Some(PublicAnswer::Dashboard(*asset)),
        _ => None,
    }
}

fn move_bytes(from: &mut Vec<u8>, to: &mut Vec<u8>) {
    if to.is_empty() {
        std::mem::swap(from, to);
    } else {
        to.extend_from_slice(from);
        from.clear();
    }
}

/// The endpoint a request names (the core's one routing table).
fn route<'h>(head: &'h RequestHead, gateway: &Gateway) -> Result<Endpoint<'h>, ApiError> {
    let speaks = api::endpoint::spoken_dialect(&|name| head.header(name));
    api::classify(&head.method, head.path(), speaks, &|name| {
        gateway.provider_dialect(name)
    })
}

/// The dialect the gateway's own errors for a request are written in.
fn errors_dialect(endpoint: &Result<Endpoint<'_>, ApiError>, head: &RequestHead) -> Dialect {
    match endpoint {
        // The proxy's own errors are in its provider's dialect.
        Ok(Endpoint::ProviderProxy { dialect, .. }) => *dialect,
        // `/v1/{provider}/{model}:generateContent` and kin.
        Ok(Endpoint::Gemini { .. }) => Dialect::Google,
        _ => api::endpoint::dialect_of_path(head.path()),
    }
}

/// The request's `traceparent` when it is valid (a malformed one is
/// neither forwarded nor traced).
fn client_traceparent(head: &RequestHead) -> Option<&str> {
    head.headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::trace::traceparent)
}
