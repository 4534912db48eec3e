//! The transactions list (`GET /api/v1/transactions`) and a generation's
//! record (`GET /api/v1/generation?id=`): the query, validated, and the
//! rows the host's store answers with.

mod query;
mod render;

pub use query::{parse_generation, parse_list};
pub(super) use render::{generation_json, page_json};

/// Rows per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// A validated `GET /api/v1/transactions` query. Filters combine with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransactionQuery {
    /// Only rows of the key with this public id (hex SHA-256, lower case).
    pub key_hash: Option<String>,
    /// Only rows of this model: `provider/model` or the bare model.
    pub model: Option<String>,
    /// Only rows whose `HTTP-Referer` or app title is exactly this.
    pub app: Option<String>,
    pub status: Option<TransactionStatus>,
    /// Unix seconds: rows created at or after `since`, before `until`
    /// (`since` after `until` selects nothing).
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// 1 to [`MAX_LIMIT`].
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

/// A position in the list, newest first: rows strictly older than this
/// `(created_at, row)` pair come next. Keyset paging, so rows inserted
/// meanwhile neither repeat nor shift a page; clients see it as an opaque
/// string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub row: i64,
}

impl Cursor {
    pub fn encode(self) -> String {
        format!("{}_{}", self.created_at, self.row)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (created_at, row) = text.split_once('_')?;
        let number = |s: &str| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            let ok = !digits.is_empty()
                && digits.len() <= 19
                && digits.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| s.parse::<i64>().ok()).flatten()
        };
        Some(Cursor {
            created_at: number(created_at)?,
            row: number(row)?,
        })
    }
}

/// How a call ended, as the transactions list shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionStatus {
    /// The client got the whole answer.
    Complete,
    /// Cut short before the provider reported usage: the tokens are the
    /// gateway's estimate.
    Estimated,
    /// The provider failed the call.
    Failed,
    /// The provider answered but the client did not take all of it (it
    /// left, or the stream was cut).
    Cancelled,
    /// A provider-proxy answer the client got whole, whose usage the
    /// gateway could not read: recorded with zero tokens.
    Unrecognized,
    /// The gateway ended before the call's usage was stored: billed from
    /// its call journal at the prompt's estimated cost (no output).
    Interrupted,
}

impl TransactionStatus {
    pub const ALL: [TransactionStatus; 6] = [
        TransactionStatus::Complete,
        TransactionStatus::Estimated,
        TransactionStatus::Failed,
        TransactionStatus::Cancelled,
        TransactionStatus::Unrecognized,
        TransactionStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransactionStatus::Complete => "complete",
            TransactionStatus::Estimated => "estimated",
            TransactionStatus::Failed => "failed",
            TransactionStatus::Cancelled => "cancelled",
            TransactionStatus::Unrecognized => "unrecognized",
            TransactionStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<TransactionStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The status of a call that ended with `outcome`.
    pub fn of(outcome: crate::exchange::Outcome) -> TransactionStatus {
        use crate::exchange::Outcome;
        match outcome {
            Outcome::Complete => TransactionStatus::Complete,
            Outcome::Incomplete => TransactionStatus::Cancelled,
            Outcome::Estimated => TransactionStatus::Estimated,
            Outcome::Error => TransactionStatus::Failed,
            Outcome::Unrecognized => TransactionStatus::Unrecognized,
            Outcome::Interrupted => TransactionStatus::Interrupted,
        }
    }

    /// The outcome the store keeps for this status (the inverse of `of`).
    pub fn outcome(self) -> crate::exchange::Outcome {
        use crate::exchange::Outcome;
        match self {
            TransactionStatus::Complete => Outcome::Complete,
            TransactionStatus::Cancelled => Outcome::Incomplete,
            TransactionStatus::Estimated => Outcome::Estimated,
            TransactionStatus::Failed => Outcome::Error,
            TransactionStatus::Unrecognized => Outcome::Unrecognized,
            TransactionStatus::Interrupted => Outcome::Interrupted,
        }
    }
}

/// What a row records: a billed call, or credits added to the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionKind {
    Usage,
    Credit,
}

impl TransactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Usage => "usage",
            TransactionKind::Credit => "credit",
        }
    }
}

/// One row as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionView {
    /// The generation id (what the completion returned to the client).
    pub id: String,
    pub kind: TransactionKind,
    /// The key's public id; `None` for the master key (or a deleted key).
    pub key_hash: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_micros: u64,
    pub app_referer: Option<String>,
    pub app_title: Option<String>,
    pub status: TransactionStatus,
    pub upstream_status: Option<u16>,
    pub stream: bool,
    /// `None` for rows written before latency was recorded.
    pub latency_ms: Option<u64>,
    /// Unix seconds.
    pub created_at: i64,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
    /// A credit's note; `None` for calls.
    pub note: Option<String>,
    /// The message batch the call ran for, and its request's `custom_id`.
    pub batch_id: Option<String>,
    pub custom_id: Option<String>,
}

/// One page of the list, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionPage {
    pub rows: Vec<TransactionView>,
    /// Set when more rows may follow.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let c = Cursor {
            created_at: 1_764_559_497,
            row: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "1",
            "_",
            "a_1",
            "1_b",
            "1_2_3",
            "+1_2",
            "99999999999999999999_1",
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_map_outcomes_both_ways() {
        for status in TransactionStatus::ALL {
            assert_eq!(TransactionStatus::of(status.outcome()), status);
            assert_eq!(TransactionStatus::parse(status.as_str()), Some(status));
        }
    }
}
