//! Configuration: command-line flags over environment over the optional
//! TOML file over defaults.

mod batches;
mod error;
mod file;
mod gateway;
mod keys;
mod limits;
mod otlp;
mod providers;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use arouter_core::gateway::ProviderKind;
use arouter_core::Limits;

use crate::cli::ServeArgs;
use crate::pricing::PriceOverride;
use crate::store::location::StoreLocation;
use crate::store::RateLimit;

pub use batches::BatchSettings;
pub use error::ConfigError;
pub use otlp::OtlpEndpoint;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_STORE_POLL_MS: u64 = 2_000;
const MIN_STORE_POLL_MS: u64 = 50;
const MAX_STORE_POLL_MS: u64 = 3_600_000;
pub const DEFAULT_DATA_DIR: &str = "./arouter-data";
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_WRITE_STALL_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_LINGER_MS: u64 = 500;
pub const DEFAULT_UPSTREAM_POOL_MAX_IDLE: usize = 64;

/// One upstream provider.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// As each official SDK spells it: OpenAI's includes `/v1`, Anthropic's
    /// and Gemini's are the host root.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Models to list; empty means the shipped catalog for well-known providers.
    pub models: Vec<String>,
    /// Extra CA certificates (PEM) trusted for this provider's TLS, beside
    /// the public roots: for servers behind a private CA.
    pub ca_file: Option<PathBuf>,
    /// The environment variable meant to hold the key, for messages.
    pub key_var: Option<String>,
    /// Takes `/responses` natively; `None` = only OpenAI's own API does.
    pub responses: Option<bool>,
}

impl ProviderConfig {
    /// The vendor's own API (its official base URL, or the provider named
    /// after its kind): the shipped catalog and prices apply to it.
    pub fn is_vendor(&self) -> bool {
        self.base_url == providers::default_base_url(self.kind) || self.name == self.kind.as_str()
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("models", &self.models)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[derive(Clone)]
pub struct Config {
    pub listen: String,
    /// `--metrics-listen`: `/metrics` without a key on this address.
    pub metrics_listen: Option<String>,
    /// Where request spans go (`--otlp-endpoint`); `None`: not exported.
    pub otlp_endpoint: Option<otlp::OtlpEndpoint>,
    pub data_dir: PathBuf,
    /// The SQLite file in `data_dir`, or a Postgres database (`--store`).
    pub store: StoreLocation,
    /// With a shared store: how often the keys table is read for other
    /// gateways' changes.
    pub store_poll: Duration,
    /// `--call-journal`: metered calls are written down before they go
    /// upstream (`crate::journal`).
    pub call_journal: bool,
    pub master_key: Option<String>,
    pub default_model: Option<String>,
    pub providers: Vec<ProviderConfig>,
    pub limits: Limits,
    /// Concurrent client connections; more are refused at accept.
    pub max_connections: usize,
    pub shutdown_grace_secs: u64,
    /// Worker threads; `None`: one per CPU.
    pub threads: Option<usize>,
    /// A write to a client or provider making no progress this long fails.
    pub write_stall_timeout_ms: u64,
    /// How long unread client bytes are drained after our side closes.
    pub linger_ms: u64,
    /// Idle provider connections kept per provider and serving thread.
    pub upstream_pool_max_idle: usize,
    /// `[pricing."provider/model"]`: prices over the shipped ones.
    pub pricing: BTreeMap<String, PriceOverride>,
    /// A model with no price is refused (404) instead of billed at 0.
    pub refuse_unpriced_models: bool,
    /// The rate limit of every key that has none of its own.
    pub default_rate_limit: Option<RateLimit>,
    /// `[billing] prepaid`: every call must be covered by the account
    /// balance (credits added through `POST /api/v1/balance` or `arouter
    /// credits add`); off, only keys' own limits are enforced.
    pub prepaid: bool,
    /// `--log-format`: how the access record is written.
    pub log_format: crate::cli::LogFormat,
    /// Message batches: their limits and the worker's concurrency.
    pub batches: BatchSettings,
    /// Seconds a Responses API answer is kept; 0: none is.
    pub responses_retention_secs: i64,
    /// Every OpenAI-dialect chat stream ends with the usage chunk, asked
    /// for or not (`--always-include-usage`).
    pub always_include_usage: bool,
    /// `--redis`: where per-key rate limits are shared.
    pub redis_url: Option<String>,
    /// `--redis-failure`: what admissions do while Redis is away.
    pub redis_failure: crate::failure_policy::FailurePolicy,
    /// `--store-failure`: what requests get while the store is down.
    pub store_failure: crate::failure_policy::FailurePolicy,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("data_dir", &self.data_dir)
            .field("store", &self.store)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("default_model", &self.default_model)
            .field("providers", &self.providers)
            .field("limits", &self.limits)
            .field("default_rate_limit", &self.default_rate_limit)
            .finish()
    }
}

impl Config {
    /// Builds the config from flags, the process environment and the file.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        Config::from_sources(args, &|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// `env` looks a variable up; tests pass a map instead of the process
    /// environment.
    pub fn from_sources(
        args: &ServeArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => file::read_file(path)?,
            None => file::FileConfig::default(),
        };
        // A flag (or its environment variable) beats the file's value.
        let chosen = args.limits.clone().or(file.limits);
        let limits = chosen.apply(Limits::default());
        limits::validate_limits(&limits)?;
        limits::validate_serving(&chosen)?;
        let mut providers = providers::well_known(args, env);
        providers::merge_file(&mut providers, file.providers, env)?;
        for p in &providers {
            providers::upstream_addr(p)?;
        }
        let default_rate_limit = match non_empty(&args.rate_limit).or(file.rate_limit) {
            Some(text) => Some(keys::parse_rate_limit(&text)?),
            None => None,
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store_url = non_empty(&args.store_url).or(file.store_url);
        let store = StoreLocation::choose(store_url.as_deref(), data_dir.clone())
            .map_err(ConfigError::Store)?;
        let store_poll_ms = args
            .store_poll_ms
            .or(file.store_poll_ms)
            .unwrap_or(DEFAULT_STORE_POLL_MS);
        if !(MIN_STORE_POLL_MS..=MAX_STORE_POLL_MS).contains(&store_poll_ms) {
            return Err(ConfigError::StorePoll {
                min: MIN_STORE_POLL_MS,
                max: MAX_STORE_POLL_MS,
                got: store_poll_ms,
            });
        }
        let store_poll = Duration::from_millis(store_poll_ms);
        let call_journal = match args.call_journal.or(file.call_journal) {
            Some(setting) => setting == crate::journal::JournalSetting::On,
            // Several gateways on one store is where a kill is expected
            // (and where the store is written over a network anyway).
            None => matches!(store, StoreLocation::Postgres(_)),
        };
        let otlp_endpoint = match non_empty(&args.otlp_endpoint).or(file.otlp_endpoint) {
            Some(url) => Some(otlp::OtlpEndpoint::parse(&url)?),
            None => None,
        };

        Ok(Config {
            listen: args
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            metrics_listen: non_empty(&args.metrics_listen).or(file.metrics_listen),
            otlp_endpoint,
            data_dir,
            store,
            store_poll,
            call_journal,
            master_key: non_empty(&args.master_key).or_else(|| env("AROUTER_MASTER_KEY")),
            default_model: non_empty(&args.default_model)
                .or_else(|| env("AROUTER_DEFAULT_MODEL"))
                .or(file.default_model),
            providers,
            max_connections: chosen.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            limits,
            shutdown_grace_secs: args.shutdown_grace,
            threads: args.threads.filter(|&n| n > 0),
            write_stall_timeout_ms: chosen
                .write_stall_timeout_ms
                .unwrap_or(DEFAULT_WRITE_STALL_TIMEOUT_MS),
            linger_ms: chosen.linger_ms.unwrap_or(DEFAULT_LINGER_MS),
            upstream_pool_max_idle: chosen
                .upstream_pool_max_idle
                .unwrap_or(DEFAULT_UPSTREAM_POOL_MAX_IDLE),
            pricing: file.pricing,
            refuse_unpriced_models: file.refuse_unpriced_models,
            default_rate_limit,
            prepaid: file.billing.prepaid,
            log_format: args.log_format,
            batches: batches::settings(args.batches.clone().or(file.batches))?,
            redis_url: non_empty(&args.redis_url).or(file.redis_url),
            redis_failure: args
                .redis_failure
                .or(file.redis_failure)
                .unwrap_or_default(),
            store_failure: args
                .store_failure
                .or(file.store_failure)
                .unwrap_or_default(),
            responses_retention_secs: responses_retention(
                args.responses_retention_days
                    .or(file.responses_retention_days),
            )?,
            always_include_usage: args
                .always_include_usage
                .or(file.always_include_usage)
                .unwrap_or(false),
        })
    }

    /// The upstream pool's limits.
    pub fn pool_limits(&self) -> crate::upstream::PoolLimits {
        crate::upstream::PoolLimits {
            max_idle: self.upstream_pool_max_idle,
            max_idle_age: Duration::from_millis(self.limits.upstream_pool_idle_ms),
            connect_timeout: Duration::from_millis(self.limits.upstream_connect_timeout_ms),
        }
    }

    /// The connection driver's settings.
    pub fn driver_settings(&self) -> crate::driver::Settings {
        crate::driver::Settings {
            write_stall: Duration::from_millis(self.write_stall_timeout_ms),
            linger: Duration::from_millis(self.linger_ms),
        }
    }
}

/// The store an offline command (`arouter keys`, `credits`) uses, chosen
/// as `serve` chooses it: `--store` or `AROUTER_STORE_URL`, else the
/// config file's `store_url`; without one, the SQLite file in the
/// directory of `--data-dir` or `AROUTER_DATA_DIR`, else the config
/// file's `data_dir`, else the default.
pub fn store_location(args: &crate::cli::StoreArgs) -> Result<StoreLocation, ConfigError> {
    let (dir, url) = store_places(args)?;
    StoreLocation::choose(url.as_deref(), dir).map_err(ConfigError::Store)
}

/// The data directory and the shared store's URL (if any) that `serve`
/// would read with the same flags, environment and config file.
pub fn store_places(
    args: &crate::cli::StoreArgs,
) -> Result<(PathBuf, Option<String>), ConfigError> {
    let file = match &args.config {
        Some(path) => file::read_file(path)?,
        None => file::FileConfig::default(),
    };
    let dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    Ok((dir, non_empty(&args.store_url).or(file.store_url)))
}

/// Days a Responses API answer is kept, as seconds: OpenAI keeps them 30
/// days; at most ten years.
pub const DEFAULT_RESPONSES_RETENTION_DAYS: u32 = 30;

fn responses_retention(days: Option<u32>) -> Result<i64, ConfigError> {
    let days = days.unwrap_or(DEFAULT_RESPONSES_RETENTION_DAYS);
    if days > 3650 {
        return Err(ConfigError::RetentionOutOfRange {
            max: 3650,
            got: days,
        });
    }
    Ok(i64::from(days) * 86_400)
}

/// An empty value (`OPENAI_API_KEY=`) counts as unset.
fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}
