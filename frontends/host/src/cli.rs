//! The `arouter` command line. Every flag has an environment equivalent so
//! containers and the benchmark rig can configure it without arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "arouter",
    version,
    about = "ARouter: one OpenAI-, Anthropic- and Gemini-compatible endpoint in front of many LLM providers",
    after_help = "Providers come from the environment: OPENAI_API_KEY / OPENAI_BASE_URL (base URL includes /v1), \
ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL and GEMINI_API_KEY / GEMINI_BASE_URL (host root), named `openai`, \
`anthropic` and `gemini`; more from `[providers.NAME]` tables in the config file (kind = openai|anthropic|gemini, \
base_url, api_key_env, models). AROUTER_MASTER_KEY sets a key valid for every endpoint, management included. \
AROUTER_DEFAULT_MODEL sets the model used when a request names none. Logs go to stderr; RUST_LOG=debug for more."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AROUTER_LISTEN")]
    pub listen: Option<String>,
    /// Directory for the embedded store (SQLite), created on first start.
    #[arg(long, env = "AROUTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Optional TOML config file (providers, limits, defaults). Its [limits]
    /// table sets, in ms: header_timeout_ms (10000; a request head, from
    /// accept for a connection's first request), idle_timeout_ms (60000;
    /// between keep-alive requests), body_timeout_ms (120000; a whole request
    /// body, 408 beyond), upstream_pool_idle_ms (30000; a pooled idle
    /// provider connection is closed after it); see the README for the rest.
    #[arg(long, env = "AROUTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT; then
    /// each is ended as a provider failure would end it (a stream gets its
    /// dialect's error event and terminator) and its usage recorded.
    #[arg(long, env = "AROUTER_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,
}
