//! The vocabulary between an `Exchange` and its driver: what comes in,
//! what the driver must do, and what it is told to record.

use http::Method;

use super::request_id::RequestId;
use std::sync::Arc;

use crate::api::{Dialect, Scope};
use crate::billing::MicroUsd;
use crate::manage::{ManageRequest, ManageResult, ModelAllowlist};
use crate::stored::{Kept, Recall, Recalled, Unavailable};
use crate::usage::Usage;
use crate::Tick;

/// Something that happened outside the core.
#[derive(Debug)]
pub enum Input<'a> {
    /// Bytes read from the client.
    Downstream(Tick, &'a [u8]),
    /// The client closed its side (or the socket failed).
    DownstreamEof(Tick),
    /// The host's answer to the last `Output::Admit`.
    Admission(Tick, Admission),
    /// The host's answer to the last `Output::Manage`.
    Managed(Tick, ManageResult),
    /// The host's answer to the last `Output::Recall`.
    Recalled(Tick, Result<Recalled, Unavailable>),
    /// The host's answer to the last `Output::Reserve`: the credit is set
    /// aside, or why it could not be.
    Reserved(Tick, Result<(), Refusal>),
    /// The connection asked for by `Output::ConnectUpstream` is open;
    /// `reused` when it came from the pool (it may turn out stale).
    UpstreamConnected { now: Tick, reused: bool },
    /// The connection asked for by `Output::ConnectUpstream` failed.
    UpstreamFailed(Tick, ConnectError),
    /// Bytes read from the upstream connection.
    Upstream(Tick, &'a [u8]),
    /// The upstream closed its side (or the socket failed).
    UpstreamEof(Tick),
    /// The deadline of the last `Output::Wait` passed.
    Timeout(Tick),
    /// The server is shutting down: finish the request in progress without
    /// keep-alive, and close at once if between requests.
    Drain(Tick),
    /// The shutdown grace is over: end whatever is in progress now, as a
    /// provider failure would end it (a stream gets its dialect's error
    /// event and terminator, a pending answer a 503), bill what the
    /// provider was asked for, and close. The driver then flushes what
    /// `poll_output` hands it before the process exits.
    GraceExpired(Tick),
}

/// Why an upstream connection could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    Timeout,
    Refused,
    Dns,
    Tls,
    Other,
}

impl ConnectError {
    /// What went wrong, in a few words, for an error message or a log line.
    pub fn describe(self) -> &'static str {
        match self {
            ConnectError::Timeout => "connect timed out",
            ConnectError::Refused => "connection refused",
            ConnectError::Dns => "host name did not resolve",
            ConnectError::Tls => "TLS handshake failed",
            ConnectError::Other => "could not connect",
        }
    }
}

/// What the driver must do next.
#[derive(Debug, PartialEq)]
#[must_use]
// Events carry their request id inline so that recording a request costs
// no allocation; the output queue holds only a handful at a time.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// `poll_output`'s buffer holds bytes for the client: write them all
    /// (in order), then poll again.
    TransmitDownstream,
    /// `poll_output`'s buffer holds bytes for the upstream connection.
    TransmitUpstream,
    /// Check this credential (hash lookup, rate limit) and answer with
    /// `Input::Admission`. Nothing else happens on this connection until then.
    Admit(AdmitRequest),
    /// Carry out this management operation (on the store, off the
    /// serving thread) and answer with `Input::Managed`. Any change must
    /// be visible to every connection's admission before the answer is
    /// given. Nothing else happens on this connection until then.
    Manage(ManageRequest),
    /// Look up, for this key, the stored response and items a Responses
    /// request refers to, and answer with `Input::Recalled` (off the
    /// serving thread: it reads the store). Nothing else happens on this
    /// connection until then.
    Recall(Recall),
    /// Keep this response in the store for its key, for the configured
    /// retention. It comes ahead of the answer's last bytes: once the
    /// driver has carried it out, the response must be found by the
    /// next request (`Output::Recall`, `GET /v1/responses/{id}`), so the
    /// client cannot ask for it before it is there. No answer expected.
    Keep(Box<Kept>),
    /// Set aside `max` of credit for the upstream attempt about to be made
    /// (against the key's limit and, when the gateway is prepaid, the
    /// account balance), then answer with `Input::Reserved` at once.
    /// Comes only for a request admitted as `metered`, once per attempt,
    /// right before its `ConnectUpstream`: the host first releases what it
    /// holds for this connection (a failed attempt's reservation goes
    /// back before the next is taken). It keeps the reservation until the
    /// request's `Event::Access`: each `Event::Usage` before that is
    /// charged against it (the cost on the record, exactly), and the
    /// `Event::Access` gives back what is left. Nothing else happens on
    /// this connection until the answer.
    Reserve(ReserveRequest),
    /// Open a connection to this provider (an index into
    /// `Gateway::providers()`), taken from the pool unless `fresh`, then
    /// answer `UpstreamConnected` or `UpstreamFailed`. Bounded by
    /// `Limits::upstream_connect_timeout_ms`.
    ConnectUpstream { provider: usize, fresh: bool },
    /// Done with the upstream connection: back to the pool when `reuse`,
    /// else close it now (this is how an abandoned request is aborted).
    ReleaseUpstream { reuse: bool },
    /// Something to record (access log, usage). No answer expected.
    Event(Event),
    /// Flush what was transmitted, then close the client connection.
    Close,
    /// Nothing to do until more input arrives or, if given, this deadline
    /// passes (then send `Input::Timeout`).
    Wait(Option<Tick>),
}

/// A credential to check. `Debug` does not print the secret.
#[derive(PartialEq)]
pub struct AdmitRequest {
    pub secret: String,
    pub scope: Scope,
}

impl std::fmt::Debug for AdmitRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmitRequest")
            .field("secret", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Credit to set aside before an upstream attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The key the request is billed to; `None` for the master key.
    pub key_id: Option<i64>,
    /// The most the attempt can cost: the prompt's estimate plus its
    /// output cap, at the candidate's price (`Price::max_cost`).
    pub max: MicroUsd,
}

/// The upstream attempt an `Output::Reserve` is out for, as
/// `Exchange::call_intent` tells it: enough for the host to bill the
/// attempt if the process ends before its usage record does (its call
/// journal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallIntent {
    pub request_id: RequestId,
    /// An index into `Gateway::providers()`.
    pub provider: usize,
    pub model: String,
    /// The prompt's tokens as the reservation estimated them: the model's
    /// tokenizer for a chat call, else the body's bytes over four.
    pub prompt_tokens: u64,
    /// What `prompt_tokens` cost at the candidate's input price (0 when
    /// unpriced): what a provider bills at least once it has the request.
    pub prompt_cost: MicroUsd,
    /// The client asked for a stream.
    pub stream: bool,
}

/// Why the host could not set credit aside: answered 402 in the route's
/// dialect, before anything is sent upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The key's spending limit (in its current window) cannot cover it.
    KeyLimit,
    /// The account balance cannot cover it (a prepaid gateway).
    Balance,
    /// What this gateway holds of a line shared with other gateways cannot
    /// cover it, and the store that would lease it more is unreachable
    /// (503: the credit may well be there).
    StoreUnavailable,
}

/// Why the host refused a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Unknown, revoked or disabled key.
    InvalidKey,
    /// A stored key past its `expires_at`.
    ExpiredKey,
    /// A management key calling a model: such keys only manage.
    ManagementOnly,
    /// A valid key without the scope the endpoint needs.
    Forbidden,
    /// Over the key's rate limit (headers carry Retry-After).
    RateLimited,
    /// The key's credit limit or the balance is exhausted.
    InsufficientCredits,
    /// The rate limiter shared by several gateways (Redis) could not be
    /// reached, and the gateway is set to refuse rather than decide alone.
    LimiterUnavailable,
    /// The store (credit, keys, usage) failed its last read or write, and
    /// the gateway is set to refuse rather than go on alone
    /// (`--store-failure closed`).
    StoreUnavailable,
}

/// The host's verdict on an `AdmitRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed {
        /// The key's id in the store; `None` for the master key.
        key_id: Option<i64>,
        /// Extra response headers (the `X-RateLimit-*` values).
        headers: Vec<(&'static str, String)>,
        /// The models this key may call; `None` for any. Enforced by the
        /// core once the request names its model.
        models: Option<Arc<ModelAllowlist>>,
        /// Calls must reserve credit first (`Output::Reserve`): the key
        /// has a spending limit, or the gateway is prepaid. Unmetered
        /// calls cost the core no token counting.
        metered: bool,
    },
    Rejected {
        reason: Rejection,
        headers: Vec<(&'static str, String)>,
    },
}

/// Records for the host; never contain credentials or query strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Access(AccessLog),
    Usage(UsageRecord),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLog {
    pub method: Method,
    /// The path without the query (the query may carry `key=`).
    pub path: String,
    pub endpoint: &'static str,
    pub status: u16,
    /// Who made the request, as far as it was authenticated.
    pub caller: Caller,
    /// The `X-Request-Id` the response carried.
    pub request_id: RequestId,
    /// `provider/model` of the candidate that served, for upstream calls
    /// that reached one.
    pub model: Option<String>,
    /// `provider/model` the request asked for, as routed (its first
    /// candidate); `None` for requests that call no provider.
    pub requested: Option<String>,
    /// The dialect of the route, for requests that call a provider.
    pub dialect: Option<Dialect>,
    /// The client asked for a streamed answer.
    pub stream: bool,
    /// Each upstream attempt, in order: more than one is a fallback.
    pub attempts: Attempts,
    /// The client's valid `traceparent`, parsed (the parent of the
    /// request's span when traces are exported).
    pub trace: Option<crate::trace::TraceContext>,
    pub started: Tick,
    pub finished: Tick,
}

/// Why an upstream attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptFailure {
    /// No connection could be opened.
    Connect(ConnectError),
    /// The provider answered with an error status.
    Status(u16),
    /// No answer, or a stalled one, within the configured time.
    Timeout,
    /// An invalid or cut-off response.
    Broken,
}

impl AttemptFailure {
    /// A short, bounded label for the cause (metrics, logs).
    pub fn cause(self) -> &'static str {
        match self {
            AttemptFailure::Connect(ConnectError::Timeout) => "connect_timeout",
            AttemptFailure::Connect(ConnectError::Refused) => "connect_refused",
            AttemptFailure::Connect(ConnectError::Dns) => "dns",
            AttemptFailure::Connect(ConnectError::Tls) => "tls",
            AttemptFailure::Connect(ConnectError::Other) => "connect_error",
            AttemptFailure::Status(429) => "status_429",
            AttemptFailure::Status(s) if s >= 500 => "status_5xx",
            AttemptFailure::Status(_) => "status_4xx",
            AttemptFailure::Timeout => "timeout",
            AttemptFailure::Broken => "broken_response",
        }
    }
}

/// One upstream attempt: the provider (an index into
/// `Gateway::providers()`) and why it failed, if it did. An attempt the
/// client abandoned, or that answered with success, has no failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub provider: usize,
    pub failure: Option<AttemptFailure>,
}

/// The upstream attempts of one request, kept inline (no allocation per
/// request): the first `Attempts::KEPT` in order, and the exact count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    count: u32,
    kept: [Option<Attempt>; Attempts::KEPT],
}

impl Attempts {
    /// More candidates than this in one request are counted, not kept.
    pub const KEPT: usize = 8;

    pub(crate) fn push(&mut self, attempt: Attempt) {
        if let Some(slot) = self.kept.get_mut(self.count as usize) {
            *slot = Some(attempt);
        }
        self.count = self.count.saturating_add(1);
    }

    /// How many attempts went upstream.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Attempts after the first: each is a fallback.
    pub fn fallbacks(&self) -> u32 {
        self.count.saturating_sub(1)
    }

    /// The kept attempts, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Attempt> {
        self.kept.iter().flatten()
    }
}

/// Who a request came from. Only an authenticated request has a key: a
/// request answered before (or without) its credential was checked is
/// `Anonymous`, whatever it carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// The master key (`AROUTER_MASTER_KEY`).
    Master,
    /// A stored key, by id (never the key itself).
    Key(i64),
}

impl Caller {
    /// The stored key's id, for billing; `None` for the master key.
    pub fn key_id(self) -> Option<i64> {
        match self {
            Caller::Key(id) => Some(id),
            Caller::Anonymous | Caller::Master => None,
        }
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Anonymous => f.write_str("-"),
            Caller::Master => f.write_str("master"),
            Caller::Key(id) => write!(f, "{id}"),
        }
    }
}

/// How an upstream call ended, as billing and reports count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered with success and the client got all of it.
    Complete,
    /// The provider answered with success but the client did not get the
    /// whole answer (a stream cut short, a client gone); the provider
    /// reported its usage.
    Incomplete,
    /// Cut short before the provider reported usage: the tokens are the
    /// gateway's estimate.
    Estimated,
    /// The provider failed the call (an error status, a broken or invalid
    /// response): nothing was delivered.
    Error,
    /// A provider-proxy answer relayed whole whose usage the gateway could
    /// not read (not an OpenAI, Anthropic or Gemini usage report): billed
    /// as zero tokens.
    Unrecognized,
    /// The gateway that made the call ended (`kill -9`, a crash) before
    /// the call's usage was stored: billed afterwards from the call
    /// journal at its prompt's estimated cost, no output tokens.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Incomplete => "incomplete",
            Outcome::Estimated => "estimated",
            Outcome::Error => "error",
            Outcome::Unrecognized => "unrecognized",
            Outcome::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        [
            Outcome::Complete,
            Outcome::Incomplete,
            Outcome::Estimated,
            Outcome::Error,
            Outcome::Unrecognized,
            Outcome::Interrupted,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

/// What an upstream call consumed, for billing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecord {
    pub key_id: Option<i64>,
    pub provider: String,
    pub model: String,
    /// `None` when the upstream reported no usage before the call ended.
    pub usage: Option<Usage>,
    /// What `usage` costs at the gateway's price for `provider/model`,
    /// the same figure an OpenAI-shaped answer shows as `usage.cost`;
    /// `None` when the model has no price (billed as free). Filled in when
    /// the record is handed to the driver, once an estimate is complete.
    pub cost: Option<MicroUsd>,
    /// The response reached the client whole (no abort, no cut stream).
    pub complete: bool,
    /// `usage` is the gateway's estimate (the provider never reported it:
    /// the call was cut short), not the provider's figures.
    pub estimated: bool,
    /// Attribution headers: `HTTP-Referer`, and the app's title from
    /// `X-OpenRouter-Title` or else `X-Title`; bounded, without control
    /// characters (see `exchange::attribution`).
    pub referer: Option<String>,
    pub title: Option<String>,
    /// The request's `X-Request-Id`.
    pub request_id: RequestId,
    /// The provider's HTTP status; `None` when no response head arrived.
    pub upstream_status: Option<u16>,
    pub outcome: Outcome,
    /// The id the client saw in the answer (`chatcmpl-…`, `msg_…`, a
    /// Gemini `responseId`): the generation id it can look the call up
    /// by. `None` when the answer carried none (embeddings, a failed
    /// attempt); the host then makes one from the request id.
    pub generation_id: Option<String>,
    /// The client asked for a stream.
    pub stream: bool,
    /// From the request's first byte to the end of the call, in ms.
    pub latency_ms: u64,
}

/// Misuse of the driver contract; a bug in the frontend, not the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageError {
    /// Input after `Output::Close`.
    Closed,
    /// `Input::Admission` while no `Output::Admit` was outstanding.
    UnexpectedAdmission,
    /// Upstream input while no upstream connection was asked for.
    UnexpectedUpstream,
    /// `Input::Managed` while no `Output::Manage` was outstanding.
    UnexpectedManaged,
    /// `Input::Reserved` while no `Output::Reserve` was outstanding.
    UnexpectedReserved,
    /// `Input::Recalled` while no `Output::Recall` was outstanding.
    UnexpectedRecalled,
}
