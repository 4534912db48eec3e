//! Scenario harness for `Exchange`: a scripted driver with a virtual clock,
//! modelled on quinn's `Pair` and ureq-proto's `Scenario`.
//!
//! The driver loop does what a frontend does (drain `poll_output` until
//! `Wait`), answering `Admit` and `ConnectUpstream` from a script, and
//! records everything else so a test can assert on it: downstream bytes,
//! the bytes sent on each upstream connection, releases, events, `Close`
//! and the last `Wait` deadline. Time only moves when a test moves it.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use arouter_core::billing::Price;
use arouter_core::exchange::{
    Admission, AdmitRequest, ConnectError, Event, Exchange, Input, Output, Refusal, Rejection,
    ReserveRequest, UsageRecord,
};
use arouter_core::gateway::{Gateway, ModelEntry, Pricing, Provider, ProviderKind};
use arouter_core::http1::{ClientCodec, ClientEvent, RequestHead, ServerCodec, ServerEvent};
use arouter_core::manage::{ManageRequest, ModelAllowlist};
use arouter_core::sse::SseDecoder;
use arouter_core::upstream::UpstreamAddr;
use arouter_core::usage::Usage;
use arouter_core::{Limits, Tick};
use serde_json::Value;

/// The key the client sends; must never reach a provider.
pub const CLIENT_KEY: &str = "sk-client-0123456789";
/// The first provider's own key.
pub const UPSTREAM_KEY: &str = "sk-upstream";
pub const BACKUP_KEY: &str = "sk-backup";
pub const BACKUP_HOST: &str = "backup.internal:8080";

/// Where the recorded transcripts live.
pub fn transcripts_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/transcripts/openai"
    ))
}

/// One recorded transcript by file stem.
pub fn transcript(name: &str) -> Value {
    let path = transcripts_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Every OpenAI transcript `keep` accepts, by file stem, sorted.
pub fn transcripts(keep: impl Fn(&Value) -> bool) -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(transcripts_dir())
        .expect("transcripts directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let t = transcript(&name);
            (name, t)
        })
        .filter(|(_, t)| keep(t))
        .collect()
}

pub fn is_chat(t: &Value) -> bool {
    t["request"]["path"] == "/v1/chat/completions"
}

pub fn is_stream(t: &Value) -> bool {
    t["response"].get("sse").is_some()
}

pub fn status_of(t: &Value) -> u64 {
    t["response"]["status"].as_u64().unwrap_or(0)
}

pub fn provider(name: &str, url: &str, key: &str) -> Provider {
    Provider {
        name: name.to_string(),
        kind: ProviderKind::OpenAi,
        addr: UpstreamAddr::parse(url).expect("provider url"),
        api_key: Some(key.to_string()),
        official: false,
        responses: false,
    }
}

/// What the scripted host says to `Output::Admit`.
#[derive(Clone, Debug)]
pub enum AdmitScript {
    /// `Allowed { key_id: Some(1), headers: [X-RateLimit-Limit: 10] }`.
    Allow,
    Reject(Rejection, Vec<(&'static str, String)>),
    /// `Allow`, limited to these models.
    AllowModels(Arc<ModelAllowlist>),
    /// No answer: the test sends `Input::Admission` itself.
    Hold,
    /// `Allow`, metered: each attempt reserves credit first, answered
    /// from `Scenario::reserve_answers` (when empty, granted).
    AllowMetered,
}

/// The answer to one `Output::ConnectUpstream`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectAnswer {
    Connected { reused: bool },
    Failed(ConnectError),
}

/// Everything the driver saw, in order (bytes by length only).
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // as `Output`: events are recorded inline
pub enum Rec {
    Down(usize),
    Up(usize),
    Admit,
    Connect { provider: usize, fresh: bool },
    Release { reuse: bool },
    Reserve(ReserveRequest),
    Event(Event),
    Close,
}

pub struct Builder {
    limits: Limits,
    backup: bool,
    anthropic_first: bool,
    default_model: Option<String>,
    models: Vec<ModelEntry>,
    pricing: Pricing,
    always_include_usage: bool,
}

impl Builder {
    /// Prices `provider/model` (the configured provider's name).
    pub fn price(mut self, provider: &str, model: &str, price: Price) -> Builder {
        self.pricing.prices.insert(provider, model, price);
        self
    }

    /// Unpriced models are refused (`refuse_unpriced_models`).
    pub fn refuse_unpriced(mut self) -> Builder {
        self.pricing.refuse_unpriced = true;
        self
    }

    pub fn limits(mut self, f: impl FnOnce(&mut Limits)) -> Builder {
        f(&mut self.limits);
        self
    }

    /// Makes the first provider an Anthropic one, named `anthropic`.
    pub fn anthropic_first(mut self) -> Builder {
        self.anthropic_first = true;
        self
    }

    /// Adds a second provider, `backup`, for fallback tests.
    pub fn backup(mut self) -> Builder {
        self.backup = true;
        self
    }

    /// OpenAI-dialect streams always end with the usage chunk
    /// (`--always-include-usage`).
    pub fn always_include_usage(mut self) -> Builder {
        self.always_include_usage = true;
        self
    }

    pub fn default_model(mut self, model: &str) -> Builder {
        self.default_model = Some(model.to_string());
        self
    }

    pub fn build(self) -> Scenario {
        let mut providers = vec![provider("openai", "http://127.0.0.1:1/v1", UPSTREAM_KEY)];
        if self.anthropic_first {
            providers[0] = Provider {
                name: "anthropic".into(),
                kind: ProviderKind::Anthropic,
                addr: UpstreamAddr::parse("http://127.0.0.1:1").expect("provider url"),
                api_key: Some(UPSTREAM_KEY.into()),
                official: false,
                responses: false,
            };
        }
        if self.backup {
            providers.push(provider(
                "backup",
                &format!("http://{BACKUP_HOST}/v1"),
                BACKUP_KEY,
            ));
        }
        let gateway = Arc::new(
            Gateway::new(self.limits, providers, self.models, self.default_model)
                .with_pricing(self.pricing)
                .with_always_include_usage(self.always_include_usage),
        );
        let now = Tick::from_millis(1_000);
        Scenario {
            ex: Exchange::new(gateway.clone(), now),
            gateway,
            now,
            down: Vec::new(),
            uploads: Vec::new(),
            log: Vec::new(),
            admits: Vec::new(),
            manages: Vec::new(),
            recalls: Vec::new(),
            kept: Vec::new(),
            admit: AdmitScript::Allow,
            connects: VecDeque::new(),
            reserve_answers: VecDeque::new(),
            upstream_open: false,
            closed: false,
            deadline: None,
        }
    }
}

/// One downstream connection under test.
pub struct Scenario {
    pub ex: Exchange,
    pub gateway: Arc<Gateway>,
    /// The virtual clock.
    pub now: Tick,
    /// Every byte written to the client.
    pub down: Vec<u8>,
    /// The bytes written on each upstream connection, in connection order.
    pub uploads: Vec<Vec<u8>>,
    pub log: Vec<Rec>,
    pub admits: Vec<AdmitRequest>,
    pub admit: AdmitScript,
    /// The management requests handed to the host, in order.
    pub manages: Vec<ManageRequest>,
    /// The stored-state look-ups handed to the host (answered by the
    /// test with `Input::Recalled`).
    pub recalls: Vec<arouter_core::stored::Recall>,
    /// The responses handed out to keep.
    pub kept: Vec<arouter_core::stored::Kept>,
    /// Answers for the next `ConnectUpstream`s; when empty, a fresh connection.
    pub connects: VecDeque<ConnectAnswer>,
    /// Answers for the next `Reserve`s; when empty, granted.
    pub reserve_answers: VecDeque<Result<(), Refusal>>,
    /// An upstream connection is open (connected and not released).
    pub upstream_open: bool,
    pub closed: bool,
    /// The deadline of the last `Output::Wait`.
    pub deadline: Option<Tick>,
}

impl Scenario {
    pub fn builder() -> Builder {
        Builder {
            limits: Limits::default(),
            backup: false,
            anthropic_first: false,
            default_model: None,
            models: Vec::new(),
            pricing: Pricing::default(),
            always_include_usage: false,
        }
    }

    pub fn new() -> Scenario {
        Scenario::builder().build()
    }

    /// Another client connection to the same gateway (shared limits and
    /// body budget).
    pub fn sibling(&self) -> Scenario {
        Scenario {
            ex: Exchange::new(self.gateway.clone(), self.now),
            gateway: self.gateway.clone(),
            now: self.now,
            down: Vec::new(),
            uploads: Vec::new(),
            log: Vec::new(),
            admits: Vec::new(),
            manages: Vec::new(),
            recalls: Vec::new(),
            kept: Vec::new(),
            admit: AdmitScript::Allow,
            connects: VecDeque::new(),
            reserve_answers: VecDeque::new(),
            upstream_open: false,
            closed: false,
            deadline: None,
        }
    }

    /// Feeds one input and drains the outputs; returns the bytes taken.
    pub fn input(&mut self, input: Input<'_>) -> usize {
        let taken = self
            .ex
            .handle_input(input)
            .unwrap_or_else(|e| panic!("driver contract violated: {e:?}"));
        self.drain();
        taken
    }

    /// Drains `poll_output` until `Wait`, acting as the host and the pool.
    pub fn drain(&mut self) {
        for _ in 0..100_000 {
            let mut out = Vec::new();
            match self.ex.poll_output(&mut out) {
                Output::TransmitDownstream => {
                    assert!(!out.is_empty(), "empty TransmitDownstream");
                    self.log.push(Rec::Down(out.len()));
                    self.down.extend_from_slice(&out);
                }
                Output::TransmitUpstream => {
                    assert!(!out.is_empty(), "empty TransmitUpstream");
                    assert!(self.upstream_open, "upstream bytes without a connection");
                    self.log.push(Rec::Up(out.len()));
                    self.uploads
                        .last_mut()
                        .expect("a connection")
                        .extend_from_slice(&out);
                }
                Output::Admit(request) => {
                    self.log.push(Rec::Admit);
                    self.admits.push(request);
                    let answer = match &self.admit {
                        AdmitScript::Allow => Some(Admission::Allowed {
                            key_id: Some(1),
                            headers: vec![("X-RateLimit-Limit", "10".into())],
                            models: None,
                            metered: false,
                        }),
                        AdmitScript::AllowMetered => Some(Admission::Allowed {
                            key_id: Some(1),
                            headers: vec![("X-RateLimit-Limit", "10".into())],
                            models: None,
                            metered: true,
                        }),
                        AdmitScript::AllowModels(models) => Some(Admission::Allowed {
                            key_id: Some(1),
                            headers: vec![("X-RateLimit-Limit", "10".into())],
                            models: Some(models.clone()),
                            metered: false,
                        }),
                        AdmitScript::Reject(reason, headers) => Some(Admission::Rejected {
                            reason: *reason,
                            headers: headers.clone(),
                        }),
                        AdmitScript::Hold => None,
                    };
                    if let Some(answer) = answer {
                        self.handle(Input::Admission(self.now, answer));
                    }
                }
                Output::ConnectUpstream { provider, fresh } => {
                    self.log.push(Rec::Connect { provider, fresh });
                    let answer = self
                        .connects
                        .pop_front()
                        .unwrap_or(ConnectAnswer::Connected { reused: false });
                    match answer {
                        ConnectAnswer::Connected { reused } => {
                            self.upstream_open = true;
                            self.uploads.push(Vec::new());
                            self.handle(Input::UpstreamConnected {
                                now: self.now,
                                reused,
                            });
                        }
                        ConnectAnswer::Failed(err) => {
                            self.handle(Input::UpstreamFailed(self.now, err));
                        }
                    }
                }
                Output::ReleaseUpstream { reuse } => {
                    self.log.push(Rec::Release { reuse });
                    self.upstream_open = false;
                }
                Output::Event(event) => self.log.push(Rec::Event(event)),
                // Answered by the test with `Input::Managed`.
                Output::Manage(request) => self.manages.push(request),
                Output::Recall(recall) => self.recalls.push(recall),
                Output::Keep(kept) => self.kept.push(*kept),
                Output::Reserve(request) => {
                    self.log.push(Rec::Reserve(request));
                    let answer = self.reserve_answers.pop_front().unwrap_or(Ok(()));
                    self.handle(Input::Reserved(self.now, answer));
                }
                Output::Close => {
                    assert!(!self.closed, "Close twice");
                    self.log.push(Rec::Close);
                    self.closed = true;
                }
                Output::Wait(deadline) => {
                    self.deadline = deadline;
                    return;
                }
            }
        }
        panic!("poll_output never returned Wait");
    }

    fn handle(&mut self, input: Input<'_>) {
        self.ex
            .handle_input(input)
            .unwrap_or_else(|e| panic!("driver contract violated: {e:?}"));
    }

    /// Client bytes, offered again until all are taken (backpressure).
    pub fn send(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() && !self.closed {
            let n = self.input(Input::Downstream(self.now, rest));
            assert!(n > 0, "client bytes not taken");
            rest = &rest[n..];
        }
    }

    /// A chat completion request from the client.
    pub fn chat(&mut self, body: &Value) {
        self.send(&post("/v1/chat/completions", body));
    }

    /// Upstream bytes on the current connection. Stops, like a real driver,
    /// when the core released that connection (or opened another).
    pub fn upstream(&mut self, bytes: &[u8]) {
        self.upstream_pieces(&[bytes]);
    }

    pub fn upstream_pieces(&mut self, pieces: &[&[u8]]) {
        let conn = self.uploads.len();
        for piece in pieces {
            let mut rest = *piece;
            while !rest.is_empty() {
                if !self.upstream_open || self.uploads.len() != conn {
                    return;
                }
                let n = self.input(Input::Upstream(self.now, rest));
                assert!(n > 0, "upstream bytes not taken");
                rest = &rest[n..];
            }
        }
    }

    /// `bytes` split at the given offsets (sorted, deduplicated, in range).
    pub fn upstream_split(&mut self, bytes: &[u8], cuts: &[usize]) {
        let pieces = split_at(bytes, cuts);
        self.upstream_pieces(&pieces);
    }

    /// The upstream closes its side (the driver drops the socket first).
    pub fn upstream_eof(&mut self) {
        assert!(self.upstream_open, "no upstream connection to close");
        self.upstream_open = false;
        self.input(Input::UpstreamEof(self.now));
    }

    pub fn client_eof(&mut self) {
        self.input(Input::DownstreamEof(self.now));
    }

    /// Moves the clock without telling the core.
    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.after(ms);
    }

    /// Moves the clock by `ms` and reports a timeout.
    pub fn advance_and_tick(&mut self, ms: u64) {
        self.advance(ms);
        self.input(Input::Timeout(self.now));
    }

    /// Moves the clock to the last `Wait` deadline and reports the timeout.
    pub fn fire_deadline(&mut self) -> Tick {
        let deadline = self.deadline.expect("a deadline to wait for");
        assert!(deadline >= self.now, "deadline in the past");
        self.now = deadline;
        self.input(Input::Timeout(self.now));
        deadline
    }

    /// Downstream bytes parsed as HTTP responses.
    pub fn responses(&self) -> Vec<Resp> {
        parse_responses(&self.down)
    }

    /// The one response written so far.
    pub fn response(&self) -> Resp {
        let mut all = self.responses();
        assert_eq!(all.len(), 1, "expected exactly one response");
        all.remove(0)
    }

    /// The request sent on upstream connection `conn`.
    pub fn upstream_request(&self, conn: usize) -> UpRequest {
        parse_request(self.uploads.get(conn).expect("no such upstream connection"))
    }

    pub fn connects(&self) -> Vec<(usize, bool)> {
        self.log
            .iter()
            .filter_map(|r| match r {
                Rec::Connect { provider, fresh } => Some((*provider, *fresh)),
                _ => None,
            })
            .collect()
    }

    /// The credit reservations asked of the host, in order.
    pub fn reserves(&self) -> Vec<ReserveRequest> {
        self.log
            .iter()
            .filter_map(|r| match r {
                Rec::Reserve(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    pub fn releases(&self) -> Vec<bool> {
        self.log
            .iter()
            .filter_map(|r| match r {
                Rec::Release { reuse } => Some(*reuse),
                _ => None,
            })
            .collect()
    }

    pub fn usage_events(&self) -> Vec<UsageRecord> {
        self.log
            .iter()
            .filter_map(|r| match r {
                Rec::Event(Event::Usage(u)) => Some(u.clone()),
                _ => None,
            })
            .collect()
    }

    /// The one usage record of the scenario.
    pub fn usage_event(&self) -> UsageRecord {
        let mut all = self.usage_events();
        assert_eq!(all.len(), 1, "expected exactly one usage event");
        all.remove(0)
    }

    pub fn access_statuses(&self) -> Vec<u16> {
        self.log
            .iter()
            .filter_map(|r| match r {
                Rec::Event(Event::Access(a)) => Some(a.status),
                _ => None,
            })
            .collect()
    }

    /// Index in the log of the first record matching `f`.
    pub fn position(&self, f: impl Fn(&Rec) -> bool) -> Option<usize> {
        self.log.iter().position(f)
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::new()
    }
}

pub fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < bytes.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for c in cuts {
        pieces.push(&bytes[start..c]);
        start = c;
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// A client `POST` with a JSON body and the client's key.
pub fn post(path: &str, body: &Value) -> Vec<u8> {
    post_raw(path, &serde_json::to_vec(body).expect("json"))
}

pub fn post_raw(path: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// An upstream response with a `Content-Length` body.
pub fn http_response(
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn json_response(status: u16, body: &Value, headers: &[(&str, &str)]) -> Vec<u8> {
    http_response(
        status,
        "application/json",
        headers,
        &serde_json::to_vec(body).expect("json"),
    )
}

/// The head of a chunked SSE response.
pub fn sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()
}

pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The SSE body split into one chunk per event (as servers flush them).
pub fn sse_chunks(sse: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = sse;
    while !rest.is_empty() {
        let end = rest.find("\n\n").map_or(rest.len(), |i| i + 2);
        out.extend_from_slice(&chunk(&rest.as_bytes()[..end]));
        rest = &rest[end..];
    }
    out
}

/// A complete chunked SSE response.
pub fn sse_response(sse: &str) -> Vec<u8> {
    let mut out = sse_head();
    out.extend_from_slice(&sse_chunks(sse));
    out.extend_from_slice(LAST_CHUNK);
    out
}

/// A transcript's recorded response as the upstream's HTTP/1.1 bytes.
pub fn transcript_response(t: &Value) -> Vec<u8> {
    let response = &t["response"];
    if let Some(sse) = response["sse"].as_str() {
        return sse_response(sse);
    }
    let status = response["status"].as_u64().expect("status") as u16;
    let content_type = response["headers"]["content-type"]
        .as_str()
        .unwrap_or("application/json");
    let body = serde_json::to_vec(&response["body"]).expect("json");
    http_response(status, content_type, &[], &body)
}

/// The transcript's request body as a client of the gateway sends it: the
/// model prefixed with `openai/`, and the gateway's own routing fields set
/// (they must not reach the provider).
pub fn client_body(t: &Value) -> Value {
    let mut body = t["request"]["body"].clone();
    let model = body["model"].as_str().expect("model").to_string();
    body["model"] = Value::String(format!("openai/{model}"));
    body["models"] = serde_json::json!([format!("openai/{model}")]);
    body["route"] = Value::String("fallback".into());
    body
}

/// A response as the client parses it.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// The decoded body (chunk framing removed).
    pub body: Vec<u8>,
    /// The body's end was seen.
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }

    /// The `data` of every SSE event in the body.
    pub fn sse_data(&self) -> Vec<String> {
        sse_data(&self.body)
    }

    pub fn keep_alive(&self) -> bool {
        !self
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    }
}

/// Parses every response in `bytes` with the crate's own client codec.
pub fn parse_responses(bytes: &[u8]) -> Vec<Resp> {
    let mut codec = ClientCodec::new(&Limits::default(), false);
    let mut out = Vec::new();
    let mut current: Option<Resp> = None;
    let mut rest = bytes;
    loop {
        let n = codec.feed(rest);
        rest = &rest[n..];
        let mut progressed = n > 0;
        loop {
            match codec.poll_event() {
                Ok(Some(ClientEvent::Head(head))) => {
                    assert!(current.is_none(), "head inside a response");
                    current = Some(Resp {
                        status: head.status,
                        headers: head.headers.clone(),
                        body: Vec::new(),
                        complete: false,
                    });
                }
                Ok(Some(ClientEvent::Body(data))) => {
                    current
                        .as_mut()
                        .expect("body outside a response")
                        .body
                        .extend_from_slice(&data);
                }
                Ok(Some(ClientEvent::End)) => {
                    let mut r = current.take().expect("end outside a response");
                    r.complete = true;
                    out.push(r);
                    codec.reset(false);
                }
                Ok(None) => break,
                Err(e) => panic!(
                    "downstream bytes are not valid HTTP ({e:?}): {}",
                    String::from_utf8_lossy(bytes)
                ),
            }
            progressed = true;
        }
        if rest.is_empty() {
            break;
        }
        assert!(progressed, "response parser stuck");
    }
    out.extend(current);
    out
}

/// The `data` of every event of an SSE body; the body must not end
/// mid-event.
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let mut decoder = SseDecoder::new(1 << 22);
    let mut out = Vec::new();
    decoder
        .feed(body, |e| out.push(e.data.to_string()))
        .expect("valid SSE");
    assert!(!decoder.finish(), "SSE body ends mid-event");
    out
}

/// A request as the upstream received it.
#[derive(Debug)]
pub struct UpRequest {
    pub head: Box<RequestHead>,
    pub raw: Vec<u8>,
    pub body: Value,
}

impl UpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

pub fn parse_request(bytes: &[u8]) -> UpRequest {
    let mut codec = ServerCodec::new(&Limits::default());
    assert_eq!(
        codec.feed(bytes),
        bytes.len(),
        "request too large for the test codec"
    );
    let mut head = None;
    let mut body = Vec::new();
    loop {
        match codec.poll_event().expect("valid upstream request") {
            Some(ServerEvent::Head(h)) => head = Some(h),
            Some(ServerEvent::Body(b)) => body.extend_from_slice(&b),
            Some(ServerEvent::End) => break,
            Some(ServerEvent::Closed) | None => panic!("incomplete upstream request"),
        }
    }
    assert_eq!(codec.buffered(), 0, "bytes after the upstream request");
    UpRequest {
        head: head.expect("head"),
        raw: bytes.to_vec(),
        body: serde_json::from_slice(&body).expect("upstream body is JSON"),
    }
}

/// `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A minimal chat request body.
pub fn chat_body(model: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    })
}

/// A minimal non-stream chat completion a provider might answer with.
pub fn completion(model: &str, text: &str) -> Value {
    serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    })
}

/// $1 per million plain input tokens (1 micro-USD each), $2 output and
/// reasoning, $0.50 cached: easy to price by hand.
pub const TEST_PRICE: Price = Price {
    input: 1_000_000,
    output: 2_000_000,
    cached_input: 500_000,
    cache_write: 1_000_000,
    reasoning: 2_000_000,
};

/// What `usage` costs at `TEST_PRICE`, in micro-USD, worked out by hand:
/// cached tokens at half a micro-USD (the sum rounded up), the rest at 1
/// (input) and 2 (output, reasoning included).
pub fn hand_priced(u: &Usage) -> u64 {
    let cached = u.cached_tokens;
    (u.prompt_tokens - cached) + cached.div_ceil(2) + 2 * u.completion_tokens
}

/// The answer's `usage.cost` (USD) is the usage record's cost, and both
/// are the hand-worked price; the cost is then removed so the rest of the
/// usage can be compared with what the provider sent.
pub fn take_cost(usage: &mut Value, record: &UsageRecord, name: &str) {
    let cost = usage
        .as_object_mut()
        .and_then(|u| u.remove("cost"))
        .and_then(|c| c.as_f64())
        .unwrap_or_else(|| panic!("{name}: usage.cost in the answer"));
    let tokens = record.usage.expect("usage");
    let recorded = record.cost.expect("a priced model").0;
    assert_eq!(recorded, hand_priced(&tokens), "{name}");
    assert_eq!(
        (cost * 1e6).round() as u64,
        recorded,
        "{name}: answer = record"
    );
    assert!(recorded > 0, "{name}");
}
