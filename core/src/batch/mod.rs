//! Anthropic's Message Batches API (`/v1/messages/batches`) as data. The
//! core validates a batch operation into a [`BatchRequest`] (handed to the
//! host with the management hand-off), writes the host's [`BatchAnswer`]
//! in Anthropic's shapes, and turns each request's HTTP answer, as the
//! gateway itself gave it, into its result line. Storage, the worker that
//! runs the requests and billing are the host's.

mod answer;
mod parse;
mod render;
mod result;

pub use answer::{parse_answer, Answer, AnswerError};
pub use parse::{parse, MAX_LIST_LIMIT};
pub use render::{render, render_error};
pub use result::{result_line, verdict, ItemEnd, Verdict};

/// Every batch id starts with this, as Anthropic's do.
pub const ID_PREFIX: &str = "msgbatch_";

/// One batch operation, validated.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchRequest {
    Create(NewBatch),
    Get(String),
    List(ListQuery),
    Cancel(String),
    Delete(String),
    Results(String),
}

/// Who asked (a batch belongs to the key that made it; `None`: the master
/// key), where the answer's `results_url` points, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchCall {
    pub owner: Option<i64>,
    /// `scheme://host` of the request, for absolute `results_url`s.
    pub origin: String,
    pub request: BatchRequest,
}

/// A batch to create: its requests in order, and the bytes of the body.
#[derive(Clone, Debug, PartialEq)]
pub struct NewBatch {
    pub items: Vec<NewItem>,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    pub custom_id: String,
    /// The `params` object as JSON text: the body of a `/v1/messages` call.
    pub params: String,
    /// The most the request can cost (its prompt bounded by its bytes,
    /// plus its `max_tokens`, at the dearest rate of its model), micro-USD.
    pub max_cost_micros: u64,
}

/// `GET /v1/messages/batches`: newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: u32,
    pub cursor: Option<ListCursor>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListCursor {
    /// The page of batches older than this one.
    After(String),
    /// The page of batches newer than this one.
    Before(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Canceling,
    Ended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Canceling => "canceling",
            Status::Ended => "ended",
        }
    }
}

/// How many of a batch's requests are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub processing: u64,
    pub succeeded: u64,
    pub errored: u64,
    pub canceled: u64,
    pub expired: u64,
}

/// A batch as the API shows it. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchView {
    pub id: String,
    pub status: Status,
    pub counts: Counts,
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub cancel_initiated_at: Option<i64>,
}

/// The host's successful answer.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchAnswer {
    /// Create, retrieve and cancel.
    View(BatchView),
    Page {
        batches: Vec<BatchView>,
        has_more: bool,
    },
    Deleted(String),
    /// The results as JSONL, one line per request in the batch's order.
    Results(Vec<u8>),
}

/// Why the host refused a batch operation (Anthropic's error types).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// No such batch, or it belongs to another key.
    NotFound,
    /// Results asked for, or a delete, before the batch ended.
    NotEnded { action: &'static str },
    /// More requests than `--max-batch-requests`.
    TooManyRequests { max: u64 },
    /// A body larger than `--max-batch-bytes`.
    TooLarge { max: u64 },
    /// The key's limit or the account's balance cannot hold what the
    /// batch may cost, micro-USD.
    InsufficientCredit {
        needed_micros: u64,
        what: &'static str,
    },
    /// The store failed (logged by the host); the client may retry.
    Unavailable,
}
