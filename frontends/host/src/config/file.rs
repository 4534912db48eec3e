//! The optional TOML file (`--config`): its schema and reading it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::cli::LimitArgs;
use crate::pricing::PriceOverride;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub listen: Option<String>,
    /// `/metrics` without a key on an address of its own.
    pub metrics_listen: Option<String>,
    /// `http://host:port` of an OTLP/HTTP collector (`--otlp-endpoint`).
    pub otlp_endpoint: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `--store`: a Postgres URL (a password in it is better kept in
    /// `AROUTER_STORE_URL`).
    pub store_url: Option<String>,
    /// `--store-poll-ms`.
    pub store_poll_ms: Option<u64>,
    /// `--call-journal`: `on` or `off`.
    pub call_journal: Option<crate::journal::JournalSetting>,
    /// `--redis`: rate limits shared through Redis.
    pub redis_url: Option<String>,
    /// `--redis-failure`: `open` or `closed`.
    pub redis_failure: Option<crate::failure_policy::FailurePolicy>,
    /// `--store-failure`: `open` or `closed`.
    pub store_failure: Option<crate::failure_policy::FailurePolicy>,
    pub default_model: Option<String>,
    /// The default per-key rate limit, `"60/60s"`.
    pub rate_limit: Option<String>,
    /// Days a Responses API answer is kept (`--responses-retention-days`).
    pub responses_retention_days: Option<u32>,
    /// Every OpenAI-dialect chat stream ends with the usage chunk
    /// (`--always-include-usage`).
    pub always_include_usage: Option<bool>,
    #[serde(default)]
    pub limits: LimitArgs,
    #[serde(default)]
    pub providers: BTreeMap<String, FileProvider>,
    #[serde(default)]
    pub pricing: BTreeMap<String, PriceOverride>,
    #[serde(default)]
    pub refuse_unpriced_models: bool,
    #[serde(default)]
    pub billing: BillingFile,
    #[serde(default)]
    pub batches: crate::cli::BatchArgs,
}

/// `[billing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BillingFile {
    /// Every call must be covered by the account balance.
    #[serde(default)]
    pub prepaid: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileProvider {
    pub kind: String,
    pub base_url: Option<String>,
    /// Name of the environment variable holding the key (keys stay out of files).
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    pub ca_file: Option<PathBuf>,
    /// An `openai` provider that takes the Responses API natively (default:
    /// only OpenAI's own API does).
    pub responses: Option<bool>,
}

pub(super) fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}
