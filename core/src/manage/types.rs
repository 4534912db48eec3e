//! The vocabulary between the core and the host's accounts service.

use super::{ModelAllowlist, TransactionPage, TransactionQuery, TransactionView};
use crate::batch::{BatchAnswer, BatchCall, BatchError};
use crate::exchange::Caller;
use crate::stored::{StoredAnswer, StoredCall, StoredError};

/// A management operation, validated; `caller` is who asked (the master
/// key or a stored key), as admission established it.
#[derive(Clone, Debug, PartialEq)]
pub enum ManageRequest {
    CreateKey(KeySpec),
    ListKeys {
        offset: u32,
        include_disabled: bool,
        include_expired: bool,
    },
    GetKey {
        hash: String,
    },
    UpdateKey {
        hash: String,
        patch: KeyPatch,
    },
    DeleteKey {
        hash: String,
    },
    /// `GET /api/v1/key`: the caller's own record.
    CurrentKey {
        caller: Caller,
    },
    /// `GET /api/v1/transactions`: any key may ask; a key that is not a
    /// management key sees only its own calls (its filters are ANDed with
    /// its own `key_id`), as OpenRouter shows a key its own activity.
    ListTransactions {
        query: TransactionQuery,
        caller: Caller,
    },
    /// `GET /api/v1/generation?id=`: any key may ask, and sees only its
    /// own calls unless it is a management key or the master key.
    GetGeneration {
        id: String,
        caller: Caller,
    },
    /// `GET /api/v1/credits` or `GET /api/v1/balance`.
    Credits {
        shape: CreditsShape,
    },
    /// `POST /api/v1/balance`: credit added to the account (answered
    /// with the balance after it).
    AddCredits {
        amount_micros: u64,
        note: Option<String>,
    },
    /// `GET /metrics`: the host's metrics in Prometheus' text format.
    Metrics,
    /// `GET /readyz`: whether the host's store answers now.
    Ready,
    /// `/v1/messages/batches`: any key may make batches, and sees only
    /// its own.
    Batch(BatchCall),
    /// `/v1/responses/{id}…`: a key sees only the responses it made.
    Stored(StoredCall),
}

/// Which answer a credits request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditsShape {
    /// OpenRouter's `{"data": {total_credits, total_usage}}`.
    Credits,
    /// `{"data": {balance, currency, total_credits, total_usage}}`.
    Balance,
}

/// Every credit added and every cost billed, micro-USD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreditTotals {
    pub credits: u64,
    pub usage: u64,
}

/// When a key's spending limit starts over (UTC; weeks start on Monday).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitReset {
    Daily,
    Weekly,
    Monthly,
}

impl LimitReset {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }

    pub fn parse(text: &str) -> Option<LimitReset> {
        [LimitReset::Daily, LimitReset::Weekly, LimitReset::Monthly]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// A key's own rate limit: `requests` per `interval_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitSpec {
    pub requests: u32,
    pub interval_secs: u32,
}

/// A key to create.
#[derive(Clone, Debug, PartialEq)]
pub struct KeySpec {
    pub name: String,
    /// Spending limit in micro-USD; `None` is unlimited.
    pub limit_micros: Option<u64>,
    pub limit_reset: Option<LimitReset>,
    pub include_byok_in_limit: bool,
    /// Unix seconds after which the key is refused.
    pub expires_at: Option<i64>,
    pub rate_limit: Option<RateLimitSpec>,
    /// May use the management API (and then not call models).
    pub management: bool,
    /// `None` allows every model.
    pub allowed_models: Option<ModelAllowlist>,
}

/// A change to a key: `None` leaves a field as it is; `Some(None)` clears
/// a nullable one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    pub limit_micros: Option<Option<u64>>,
    pub limit_reset: Option<Option<LimitReset>>,
    pub include_byok_in_limit: Option<bool>,
    pub expires_at: Option<Option<i64>>,
    pub rate_limit: Option<Option<RateLimitSpec>>,
    pub management: Option<bool>,
    pub allowed_models: Option<Option<ModelAllowlist>>,
}

/// Spending of a key in micro-USD, from its transactions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyUsage {
    pub total: u64,
    pub daily: u64,
    pub weekly: u64,
    pub monthly: u64,
}

/// A key as the API shows it (never its secret).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyView {
    /// The public id: hex SHA-256 of the secret.
    pub hash: String,
    pub name: String,
    /// A masked form of the secret (`sk-ar-v1-ab…xyz`).
    pub label: String,
    pub disabled: bool,
    pub management: bool,
    pub limit_micros: Option<u64>,
    pub limit_reset: Option<LimitReset>,
    pub include_byok_in_limit: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub usage: KeyUsage,
    pub rate_limit: Option<RateLimitSpec>,
    pub allowed_models: Option<ModelAllowlist>,
}

impl KeyView {
    /// What is left of the limit in the current window; `None` when the
    /// key has no limit.
    pub fn limit_remaining_micros(&self) -> Option<u64> {
        let spent = match self.limit_reset {
            None => self.usage.total,
            Some(LimitReset::Daily) => self.usage.daily,
            Some(LimitReset::Weekly) => self.usage.weekly,
            Some(LimitReset::Monthly) => self.usage.monthly,
        };
        self.limit_micros.map(|limit| limit.saturating_sub(spent))
    }
}

/// The host's successful answer.
#[derive(Clone, Debug, PartialEq)]
pub enum ManageAnswer {
    /// A new key and its secret, shown this once.
    Created {
        key: KeyView,
        secret: String,
    },
    Key(KeyView),
    Keys(Vec<KeyView>),
    Deleted,
    /// `GET /api/v1/key`. `is_master` for the master key, which has no
    /// stored record (its view is made up by the host).
    Current {
        key: KeyView,
        is_master: bool,
        /// The gateway's default limit, which applies when the key has
        /// none of its own (`None`: no default configured).
        default_rate_limit: Option<RateLimitSpec>,
    },
    Transactions(TransactionPage),
    Generation(Box<TransactionView>),
    Credits {
        shape: CreditsShape,
        totals: CreditTotals,
    },
    /// The Prometheus text exposition, rendered by the host.
    Metrics(String),
    /// `/readyz`: what the host's dependencies answered.
    Readiness(Readiness),
    /// A batch answer; `origin` makes its `results_url` absolute.
    Batch {
        answer: BatchAnswer,
        origin: String,
    },
    /// A stored response, its deletion or its input items.
    Stored(StoredAnswer),
}

/// Why the host could not carry a request out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManageError {
    /// No key with that hash.
    NotFound,
    /// No generation with that id that the caller may see.
    GenerationNotFound,
    /// The store failed; the message is for the log, the client sees a 503.
    Unavailable,
    /// A batch operation refused, in Anthropic's shape.
    Batch(BatchError),
    /// A stored-response operation refused, in OpenAI's shape.
    Stored(StoredError),
}

pub type ManageResult = Result<ManageAnswer, ManageError>;

/// Whether each dependency of the gateway answers (`GET /readyz`): 200
/// when all it needs do, 503 otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// The store answered a trivial query.
    pub store: bool,
    /// The shared rate limiter (`--redis`), when there is one.
    pub redis: Option<LimiterCheck>,
}

/// Whether the shared rate limiter answered, and whether the gateway
/// needs it (`--redis-failure closed`) or decides alone without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimiterCheck {
    pub ok: bool,
    pub required: bool,
}
