//! Why a config was refused: one variant per kind of mistake, each with
//! what the operator needs to fix it (and never a credential).

use std::fmt;
use std::path::PathBuf;

use arouter_core::upstream::AddrError;

#[derive(Debug)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML for our schema.
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// `limits.{name}` below its minimum.
    LimitTooSmall {
        name: &'static str,
        min: u64,
        got: u64,
    },
    /// `limits.{name}` outside `min..=max` milliseconds.
    LimitOutOfRange {
        name: &'static str,
        min: u64,
        max: u64,
        got: u64,
    },
    /// `[providers.x] kind` is not one we speak.
    UnknownKind { provider: String, kind: String },
    /// A provider name that would collide with a route or a model id.
    ProviderName { name: String },
    /// A base URL we cannot connect to; `url` is already redacted.
    BaseUrl {
        provider: String,
        url: String,
        reason: AddrError,
    },
    /// The price table (shipped file plus `[pricing]`) is invalid.
    Pricing(String),
    /// `--rate-limit` / `rate_limit` is not REQUESTS/INTERVAL.
    RateLimit { value: String },
    /// `--otlp-endpoint` is not `http://host:port`, or the build has no
    /// `otlp` feature; `reason` says which.
    OtlpEndpoint { url: String, reason: &'static str },
    /// `--store` / `store_url` is not a Postgres URL.
    Store(crate::store::location::LocationError),
    /// `--store-poll-ms` outside `min..=max`.
    StorePoll { min: u64, max: u64, got: u64 },
    /// `batches.{name}` outside `min..=max`.
    BatchOutOfRange {
        name: &'static str,
        min: u64,
        max: u64,
        got: u64,
    },
    /// `responses_retention_days` above its bound.
    RetentionOutOfRange { max: u32, got: u32 },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            ConfigError::Parse { path, source } => {
                write!(f, "invalid config {}: {source}", path.display())
            }
            ConfigError::OtlpEndpoint { url, reason } => {
                write!(f, "OTLP endpoint `{url}`: {reason}")
            }
            ConfigError::BatchOutOfRange {
                name,
                min,
                max,
                got,
            } => write!(f, "batches.{name} must be from {min} to {max} (got {got})"),
            ConfigError::RetentionOutOfRange { max, got } => write!(
                f,
                "responses_retention_days must be from 0 to {max} (got {got})"
            ),
            ConfigError::LimitTooSmall { name, min, got } => {
                write!(f, "limits.{name} must be at least {min} (got {got})")
            }
            ConfigError::LimitOutOfRange {
                name,
                min,
                max,
                got,
            } => write!(
                f,
                "limits.{name} must be between {min} and {max} ms (got {got})"
            ),
            ConfigError::UnknownKind { provider, kind } => write!(
                f,
                "provider `{provider}`: unknown kind `{kind}` (use openai, anthropic or gemini)"
            ),
            ConfigError::ProviderName { name } => write!(
                f,
                "provider name `{name}` is not allowed (letters, digits, - _ . only; not one of {:?})",
                super::providers::RESERVED_NAMES
            ),
            ConfigError::BaseUrl {
                provider,
                url,
                reason,
            } => write!(f, "provider `{provider}`: base URL `{url}`: {reason}"),
            ConfigError::Pricing(message) => f.write_str(message),
            ConfigError::Store(e) => e.fmt(f),
            ConfigError::StorePoll { min, max, got } => write!(
                f,
                "--store-poll-ms must be from {min} to {max} (got {got})"
            ),
            ConfigError::RateLimit { value } => write!(
                f,
                "rate limit `{value}` is not REQUESTS/INTERVAL with at least one request \
                 and an interval such as 60s, 5m, 1h or 1d (e.g. 60/60s)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Parse { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Frontends report start-up failures as text.
impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}
