//! The `arouter` command line. Every setting is a flag with an environment
//! equivalent, so containers and the benchmark rig can configure it without
//! arguments; flags beat the environment, which beats the config file, which
//! beats the defaults. Defaults shown here are checked against the code by
//! the tests of `config`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "arouter",
    version,
    about = "ARouter: one OpenAI-, Anthropic- and Gemini-compatible endpoint in front of many LLM providers",
    after_help = "Every setting, with its flag, environment variable and default, is listed by \
`arouter serve --help`: among them AROUTER_MASTER_KEY, AROUTER_DEFAULT_MODEL, OPENAI_API_KEY / OPENAI_BASE_URL, \
ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL, GEMINI_API_KEY / GEMINI_BASE_URL and the limits."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once at start-up: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the gateway.
    #[command(
        after_help = "Flags beat environment variables, which beat the config file, which beats the defaults. \
More providers (any OpenAI-compatible server) come from [providers.NAME] tables in the config file \
(kind = openai|anthropic|gemini, base_url, api_key_env, models); the limits may also be set in its [limits] table, \
in snake case (--body-timeout-ms is body_timeout_ms). \
Keys are better passed in the environment than as flags, which other users can see in the process list."
    )]
    Serve(ServeArgs),
    /// Manage API keys directly in the store (no server needed, so a
    /// gateway without a master key can be set up). On the SQLite file a
    /// running gateway sees keys changed this way at its next start (change
    /// them through its keys API instead); on a --store PostgreSQL database
    /// running gateways take the change at once.
    Keys(KeysArgs),
    /// Add credit to the account directly in the store. On the SQLite file
    /// a running gateway counts credit added this way from its next start
    /// (add through `POST /api/v1/balance` instead); on a --store
    /// PostgreSQL database running gateways count it within --store-poll-ms.
    Credits(CreditsArgs),
    /// Move the store: `arouter store copy` copies the SQLite file in
    /// --data-dir into the empty PostgreSQL store named by --store.
    Store(StoreCommandArgs),
}

/// `arouter store`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreCommandArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub action: StoreAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum StoreAction {
    /// Copy everything the SQLite store in --data-dir keeps (keys, credits,
    /// transactions, batches, stored responses, open call intents) into
    /// the PostgreSQL store named by --store (AROUTER_STORE_URL, or the
    /// config file's store_url), in one transaction. The PostgreSQL store
    /// must be empty; stop the gateway on the SQLite file first (calls it
    /// bills during the copy are not copied). Keys keep their secrets.
    Copy,
}

/// Where an offline command finds the store: as `serve` does, so that
/// `arouter keys` run beside a `--config` file edits the store the gateway
/// serves from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Directory of the embedded store [default: the config file's
    /// data_dir, else ./arouter-data].
    #[arg(long, env = "AROUTER_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The TOML config file `serve` reads; only its data_dir and store_url
    /// are used here.
    #[arg(long, env = "AROUTER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// A PostgreSQL store shared by several gateways (postgres://user:password@host:port/db)
    /// instead of the SQLite file in --data-dir [default: the config file's store_url, else
    /// none].
    #[arg(
        long = "store",
        env = "AROUTER_STORE_URL",
        hide_env_values = true,
        global = true
    )]
    pub store_url: Option<String>,
}

/// `arouter credits`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreditsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub action: CreditsAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CreditsAction {
    /// Add AMOUNT USD of credit (a transaction of type credit).
    Add {
        /// USD, above 0.
        amount: f64,
        /// Why (an invoice number, say); kept with the credit.
        #[arg(long)]
        note: Option<String>,
    },
}

/// `arouter keys`.
#[derive(Debug, Clone, clap::Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeysAction {
    /// Create a key and print its secret (shown this once only).
    Create(KeyCreateArgs),
    /// List the keys (never their secrets).
    List {
        /// Include disabled and expired keys.
        #[arg(long)]
        all: bool,
    },
    /// Disable a key, by its hash.
    Disable { hash: String },
    /// Delete a key, by its hash. Its transactions stay.
    Delete { hash: String },
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyCreateArgs {
    /// A name for people to recognise the key by.
    #[arg(long)]
    pub name: String,
    /// A management key: may use the keys API, may not call models.
    #[arg(long)]
    pub management: bool,
    /// Spending limit in USD.
    #[arg(long)]
    pub limit: Option<f64>,
    /// When the limit starts over: daily, weekly or monthly.
    #[arg(long)]
    pub limit_reset: Option<String>,
    /// Requests allowed per --rate-interval.
    #[arg(long, requires = "rate_interval")]
    pub rate_requests: Option<u32>,
    /// The rate limit's window: 60s, 5m, 1h, 1d.
    #[arg(long, requires = "rate_requests")]
    pub rate_interval: Option<String>,
    /// Models the key may call, comma-separated globs (openai/*,anthropic/claude-sonnet-4-5).
    #[arg(long, value_delimiter = ',')]
    pub allowed_models: Option<Vec<String>>,
    /// When the key stops working, RFC 3339 (2030-01-01T00:00:00Z).
    #[arg(long)]
    pub expires_at: Option<String>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; the access line only at `debug`.
    #[default]
    Text,
    /// One JSON object per line: every request's access record at `info`,
    /// other messages as `{"ts", "level", "target", "message"}`.
    Json,
}

/// `--runtime`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    #[default]
    Auto,
    Glommio,
    Smol,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "AROUTER_LISTEN", help_heading = "Server")]
    pub listen: Option<String>,
    /// Serve `GET /metrics` (Prometheus) on this address too, without a
    /// key: for a scraper on a private network. On the main address it
    /// always needs a management key.
    #[arg(long, env = "AROUTER_METRICS_LISTEN", help_heading = "Server")]
    pub metrics_listen: Option<String>,
    /// Export each request as an OpenTelemetry span (OTLP/HTTP JSON,
    /// POST {URL}/v1/traces) to this collector: `http://host:port` only
    /// (no https). Needs the `otlp` cargo feature (on by default).
    #[arg(long, env = "AROUTER_OTLP_ENDPOINT", help_heading = "Server")]
    pub otlp_endpoint: Option<String>,
    /// Directory for the embedded store (SQLite), created on first start [default: ./arouter-data].
    #[arg(long, env = "AROUTER_DATA_DIR", help_heading = "Server")]
    pub data_dir: Option<PathBuf>,
    /// Keep keys, credits, transactions, batches and stored responses in
    /// PostgreSQL instead of the SQLite file, so several gateways behind a
    /// load balancer share them: postgres://user:password@host:port/db (or
    /// postgresql://), with libpq's sslmode (prefer, require, disable) and
    /// sslrootcert=/path/ca.pem; the server's certificate is always verified.
    /// Migrated at start [default: none: SQLite in --data-dir].
    #[arg(
        long = "store",
        env = "AROUTER_STORE_URL",
        hide_env_values = true,
        help_heading = "Server"
    )]
    pub store_url: Option<String>,
    /// With --store: how often each gateway reads the keys table for keys
    /// other gateways created, changed or deleted, in ms [default: 2000].
    /// Changes also arrive as they commit (PostgreSQL LISTEN/NOTIFY); this
    /// bounds them while that connection is down.
    #[arg(long, env = "AROUTER_STORE_POLL_MS", help_heading = "Server")]
    pub store_poll_ms: Option<u64>,
    /// Write each metered call (prepaid gateway, or a key with a limit) to
    /// the store before it goes upstream, so that a gateway killed with
    /// calls in flight (`kill -9`, a crash) has them billed afterwards, at
    /// their prompts' cost, by itself at its next start or by another
    /// gateway on the same --store. Adds one group-committed store write
    /// per call [default: on with --store, off on SQLite].
    #[arg(long, env = "AROUTER_CALL_JOURNAL", help_heading = "Server")]
    pub call_journal: Option<crate::journal::JournalSetting>,
    /// While the store fails (its last usage commit or, with --store, its
    /// last keys read failed): open serves on with what this gateway
    /// holds (the keys it last read, the credit it leased; usage is held
    /// and written when the store is back); closed answers every
    /// authenticated request 503 `store_unavailable` until it is back
    /// [default: open].
    #[arg(long, env = "AROUTER_STORE_FAILURE", help_heading = "Server")]
    pub store_failure: Option<crate::failure_policy::FailurePolicy>,
    /// Keep per-key rate limits in Redis, so they hold across every gateway
    /// sharing it (each admission is one script call): redis://host:port[/db]
    /// [default: none: each gateway enforces limits alone].
    #[arg(
        long = "redis",
        env = "AROUTER_REDIS_URL",
        hide_env_values = true,
        help_heading = "Server"
    )]
    pub redis_url: Option<String>,
    /// When Redis (`--redis`) cannot be reached: open decides on this
    /// gateway's own bucket (each instance alone until Redis is back);
    /// closed refuses rate-limited keys with 503 [default: open].
    #[arg(long, env = "AROUTER_REDIS_FAILURE", help_heading = "Server")]
    pub redis_failure: Option<crate::failure_policy::FailurePolicy>,
    /// Optional TOML config file (providers, limits, default model).
    #[arg(long, env = "AROUTER_CONFIG", help_heading = "Server")]
    pub config: Option<PathBuf>,
    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT; then
    /// each is ended as a provider failure would end it (a stream gets its
    /// dialect's error event and terminator) and its usage recorded.
    #[arg(
        long,
        env = "AROUTER_SHUTDOWN_GRACE",
        default_value_t = 10,
        help_heading = "Server"
    )]
    pub shutdown_grace: u64,
    /// Event loop: glommio (io_uring, one executor pinned per core, a
    /// SO_REUSEPORT listener each; Linux only), smol (epoll; anywhere), or
    /// auto: glommio where io_uring is usable, else smol, saying why.
    #[arg(
        long,
        env = "AROUTER_RUNTIME",
        value_enum,
        default_value_t = RuntimeChoice::Auto,
        help_heading = "Server"
    )]
    pub runtime: RuntimeChoice,
    /// Worker threads, one event loop each [default: the number of CPUs].
    #[arg(long, env = "AROUTER_THREADS", help_heading = "Server")]
    pub threads: Option<usize>,
    /// Log filter: error, warn, info, debug (one access line per request) or trace.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info",
        help_heading = "Server"
    )]
    pub log_level: String,
    /// Log format: text, or json (one object per request, see README).
    #[arg(
        long,
        env = "AROUTER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        help_heading = "Server"
    )]
    pub log_format: LogFormat,
    /// A key valid on every endpoint, management included. Without it (and
    /// without stored keys) every request is refused.
    #[arg(
        long,
        env = "AROUTER_MASTER_KEY",
        hide_env_values = true,
        help_heading = "Gateway"
    )]
    pub master_key: Option<String>,
    /// Model used when a request names none (`provider/model`).
    #[arg(long, env = "AROUTER_DEFAULT_MODEL", help_heading = "Gateway")]
    pub default_model: Option<String>,
    /// Requests each key may make per interval, as REQUESTS/INTERVAL
    /// (`60/60s`, `1000/1h`), unless the key has its own `rate_limit`;
    /// every key counts on its own. Unset: keys without their own limit
    /// are not limited. The master key is never limited.
    #[arg(long, env = "AROUTER_RATE_LIMIT", help_heading = "Gateway")]
    pub rate_limit: Option<String>,
    /// Days a Responses API answer is kept for `previous_response_id`,
    /// `item_reference` and `GET /v1/responses/{id}` (requests that say
    /// `store: false` are never kept); 0 keeps none, and a provider that
    /// takes the Responses API natively is then asked to keep none either
    /// [default: 30].
    #[arg(
        long,
        env = "AROUTER_RESPONSES_RETENTION_DAYS",
        help_heading = "Gateway"
    )]
    pub responses_retention_days: Option<u32>,
    /// End every OpenAI-dialect chat stream with the usage chunk (and its
    /// `usage.cost`), also for clients that ask for it neither by
    /// `stream_options.include_usage` nor by `usage.include`: LangChain's
    /// ChatOpenAI sends no stream_options to a custom base URL.
    /// `--always-include-usage=false` overrides a config file's
    /// `always_include_usage = true` [default: false].
    #[arg(
        long,
        env = "AROUTER_ALWAYS_INCLUDE_USAGE",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Gateway"
    )]
    pub always_include_usage: Option<bool>,
    #[command(flatten)]
    pub providers: ProviderArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub batches: BatchArgs,
}

/// Message batches (`/v1/messages/batches`), as flags and as the
/// `[batches]` table of the config file (same names, in snake case).
#[derive(Debug, Clone, Default, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchArgs {
    /// Most requests in one batch (400 beyond) [default: 100000].
    #[arg(long, env = "AROUTER_MAX_BATCH_REQUESTS", help_heading = "Batches")]
    pub max_batch_requests: Option<u64>,
    /// Largest batch body, in bytes (413 beyond); a body is also bounded
    /// by --max-body-bytes [default: 33554432].
    #[arg(long, env = "AROUTER_MAX_BATCH_BYTES", help_heading = "Batches")]
    pub max_batch_bytes: Option<u64>,
    /// Days an ended batch and its results are kept [default: 29].
    #[arg(long, env = "AROUTER_BATCH_RETENTION_DAYS", help_heading = "Batches")]
    pub batch_retention_days: Option<u32>,
    /// Hours a batch may run before its unrun requests expire [default: 24].
    #[arg(long, env = "AROUTER_BATCH_EXPIRY_HOURS", help_heading = "Batches")]
    pub batch_expiry_hours: Option<u32>,
    /// Batch requests run at once, across all batches [default: 8].
    #[arg(long, env = "AROUTER_BATCH_CONCURRENCY", help_heading = "Batches")]
    pub batch_concurrency: Option<usize>,
    /// Batch requests run at once per provider [default: 4].
    #[arg(
        long,
        env = "AROUTER_BATCH_PROVIDER_CONCURRENCY",
        help_heading = "Batches"
    )]
    pub batch_provider_concurrency: Option<usize>,
}

impl BatchArgs {
    /// Each setting from `self`, else from `other` (the file's).
    pub fn or(self, other: BatchArgs) -> BatchArgs {
        BatchArgs {
            max_batch_requests: self.max_batch_requests.or(other.max_batch_requests),
            max_batch_bytes: self.max_batch_bytes.or(other.max_batch_bytes),
            batch_retention_days: self.batch_retention_days.or(other.batch_retention_days),
            batch_expiry_hours: self.batch_expiry_hours.or(other.batch_expiry_hours),
            batch_concurrency: self.batch_concurrency.or(other.batch_concurrency),
            batch_provider_concurrency: self
                .batch_provider_concurrency
                .or(other.batch_provider_concurrency),
        }
    }
}

/// The vendors' own providers, named `openai`, `anthropic` and `gemini`;
/// each is enabled by its key or its base URL (local servers need no key).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProviderArgs {
    /// Key of the `openai` provider.
    #[arg(
        long,
        env = "OPENAI_API_KEY",
        hide_env_values = true,
        help_heading = "Providers"
    )]
    pub openai_api_key: Option<String>,
    /// Base URL of the `openai` provider, `/v1` included [default: https://api.openai.com/v1].
    #[arg(long, env = "OPENAI_BASE_URL", help_heading = "Providers")]
    pub openai_base_url: Option<String>,
    /// Key of the `anthropic` provider.
    #[arg(
        long,
        env = "ANTHROPIC_API_KEY",
        hide_env_values = true,
        help_heading = "Providers"
    )]
    pub anthropic_api_key: Option<String>,
    /// Base URL of the `anthropic` provider (host root) [default: https://api.anthropic.com].
    #[arg(long, env = "ANTHROPIC_BASE_URL", help_heading = "Providers")]
    pub anthropic_base_url: Option<String>,
    /// Key of the `gemini` provider.
    #[arg(
        long,
        env = "GEMINI_API_KEY",
        hide_env_values = true,
        help_heading = "Providers"
    )]
    pub gemini_api_key: Option<String>,
    /// Base URL of the `gemini` provider (host root) [default: https://generativelanguage.googleapis.com].
    #[arg(long, env = "GEMINI_BASE_URL", help_heading = "Providers")]
    pub gemini_base_url: Option<String>,
}

/// The limits, as flags and as the `[limits]` table of the config file
/// (same names, in snake case). Unset ones keep the defaults.
#[derive(Debug, Clone, Default, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitArgs {
    /// Largest request body, in bytes (413 beyond) [default: 33554432].
    #[arg(long, env = "AROUTER_MAX_BODY_BYTES", help_heading = "Limits")]
    pub max_body_bytes: Option<usize>,
    /// Request body bytes held at once across all connections; a body that
    /// does not fit gets 503 with Retry-After before it is read (413 if it is
    /// larger than the whole budget) [default: 268435456].
    #[arg(long, env = "AROUTER_MAX_INFLIGHT_BODY_BYTES", help_heading = "Limits")]
    pub max_inflight_body_bytes: Option<usize>,
    /// A provider-proxy (`/{provider}/{path}`) request body is held up to this
    /// many bytes to plan the call from it whole; a longer one streams to the
    /// provider as it arrives, read on the side for its model [default: 65536].
    #[arg(long, env = "AROUTER_PROXY_BUFFER_BYTES", help_heading = "Limits")]
    pub proxy_buffer_bytes: Option<usize>,
    /// Largest request line plus headers, in bytes (431 beyond) [default: 65536].
    #[arg(long, env = "AROUTER_MAX_HEAD_BYTES", help_heading = "Limits")]
    pub max_head_bytes: Option<usize>,
    /// Most request header fields (431 beyond) [default: 100].
    #[arg(long, env = "AROUTER_MAX_HEADERS", help_heading = "Limits")]
    pub max_headers: Option<usize>,
    /// Longest line (and event) of a provider's stream, in bytes [default: 1048576].
    #[arg(long, env = "AROUTER_MAX_SSE_LINE_BYTES", help_heading = "Limits")]
    pub max_sse_line_bytes: Option<usize>,
    /// Time for a client to send a request head (from accept for a connection's first), in ms [default: 10000].
    #[arg(long, env = "AROUTER_HEADER_TIMEOUT_MS", help_heading = "Limits")]
    pub header_timeout_ms: Option<u64>,
    /// Time a keep-alive connection may wait for its next request, and longest gap in a body, in ms [default: 60000].
    #[arg(long, env = "AROUTER_IDLE_TIMEOUT_MS", help_heading = "Limits")]
    pub idle_timeout_ms: Option<u64>,
    /// Time for a whole request body, from the end of its head, in ms (408 beyond) [default: 120000].
    #[arg(long, env = "AROUTER_BODY_TIMEOUT_MS", help_heading = "Limits")]
    pub body_timeout_ms: Option<u64>,
    /// Time to connect to a provider, in ms [default: 10000].
    #[arg(
        long,
        env = "AROUTER_UPSTREAM_CONNECT_TIMEOUT_MS",
        help_heading = "Limits"
    )]
    pub upstream_connect_timeout_ms: Option<u64>,
    /// Time for a provider to start answering, in ms [default: 600000].
    #[arg(
        long,
        env = "AROUTER_UPSTREAM_FIRST_BYTE_TIMEOUT_MS",
        help_heading = "Limits"
    )]
    pub upstream_first_byte_timeout_ms: Option<u64>,
    /// Longest silence of a provider mid-answer, in ms [default: 120000].
    #[arg(
        long,
        env = "AROUTER_UPSTREAM_IDLE_TIMEOUT_MS",
        help_heading = "Limits"
    )]
    pub upstream_idle_timeout_ms: Option<u64>,
    /// Time a pooled idle provider connection is kept, in ms [default: 30000].
    #[arg(long, env = "AROUTER_UPSTREAM_POOL_IDLE_MS", help_heading = "Limits")]
    pub upstream_pool_idle_ms: Option<u64>,
    /// Interval of `: keep-alive` comments while a stream waits for its first token, in ms [default: 15000].
    #[arg(long, env = "AROUTER_STREAM_KEEPALIVE_MS", help_heading = "Limits")]
    pub stream_keepalive_ms: Option<u64>,
    /// Concurrent client connections; more are refused at accept [default: 10000].
    #[arg(long, env = "AROUTER_MAX_CONNECTIONS", help_heading = "Limits")]
    pub max_connections: Option<usize>,
    /// Time a write to a client or provider may make no progress before the
    /// peer counts as gone (a client that stops reading ends its call), in ms [default: 60000].
    #[arg(long, env = "AROUTER_WRITE_STALL_TIMEOUT_MS", help_heading = "Limits")]
    pub write_stall_timeout_ms: Option<u64>,
    /// After the gateway closes a connection, how long it still reads what
    /// the client sends, so unread bytes do not turn into a reset that
    /// destroys the answer in flight, in ms [default: 500].
    #[arg(long, env = "AROUTER_LINGER_MS", help_heading = "Limits")]
    pub linger_ms: Option<u64>,
    /// Idle provider connections kept per provider and serving thread [default: 64].
    #[arg(long, env = "AROUTER_UPSTREAM_POOL_MAX_IDLE", help_heading = "Limits")]
    pub upstream_pool_max_idle: Option<usize>,
}
