//! The management API as data (keys, credits, transactions, generations): the core parses and
//! validates a management request into a [`ManageRequest`], hands it to
//! the host as `Output::Manage`, takes the host's [`ManageResult`] back as
//! `Input::Managed` and writes the HTTP answer. No store types and no SQL
//! here: the host's accounts service owns those.

pub mod allowlist;
mod credits;
mod parse;
mod render;
mod timestamp;
pub mod transactions;
mod types;

pub use allowlist::{AllowlistError, ModelAllowlist};
pub use parse::{interval as parse_interval, parse};
pub use render::{render, METRICS_CONTENT_TYPE};
pub use timestamp::{format_rfc3339, parse_rfc3339};
pub use transactions::{
    Cursor, TransactionKind, TransactionPage, TransactionQuery, TransactionStatus, TransactionView,
};
pub use types::{
    CreditTotals, CreditsShape, KeyPatch, KeySpec, KeyUsage, KeyView, LimitReset, LimiterCheck,
    ManageAnswer, ManageError, ManageRequest, ManageResult, RateLimitSpec, Readiness,
};
