//! Configuration: command-line flags over environment over the optional
//! TOML file over defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arouter_core::gateway::{Gateway, ModelEntry, Pricing, Provider, ProviderKind};
use arouter_core::upstream::UpstreamAddr;
use arouter_core::Limits;
use serde::Deserialize;

use crate::catalog;
use crate::cli::{LimitArgs, ServeArgs};
use crate::pricing::{self, PriceOverride};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
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
}

impl ProviderConfig {
    /// The vendor's own API (its official base URL, or the provider named
    /// after its kind): the shipped catalog and prices apply to it.
    pub fn is_vendor(&self) -> bool {
        self.base_url == default_base_url(self.kind) || self.name == self.kind.as_str()
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
    pub data_dir: PathBuf,
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
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("default_model", &self.default_model)
            .field("providers", &self.providers)
            .field("limits", &self.limits)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    default_model: Option<String>,
    #[serde(default)]
    limits: LimitArgs,
    #[serde(default)]
    providers: BTreeMap<String, FileProvider>,
    #[serde(default)]
    pricing: BTreeMap<String, PriceOverride>,
    #[serde(default)]
    refuse_unpriced_models: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvider {
    kind: String,
    base_url: Option<String>,
    /// Name of the environment variable holding the key (keys stay out of files).
    api_key_env: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    ca_file: Option<PathBuf>,
}

fn default_base_url(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "https://api.openai.com/v1",
        ProviderKind::Anthropic => "https://api.anthropic.com",
        ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
    }
}

impl Config {
    /// Builds the config from flags, the process environment and the file.
    pub fn load(args: &ServeArgs) -> Result<Config, String> {
        Config::from_sources(args, &|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// `env` looks a variable up; tests pass a map instead of the process
    /// environment.
    pub fn from_sources(
        args: &ServeArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        // A flag (or its environment variable) beats the file's value.
        let chosen = args.limits.clone().or(file.limits);
        let limits = chosen.apply(Limits::default());
        validate_limits(&limits)?;
        if chosen.max_connections == Some(0) {
            return Err("limits.max_connections must be at least 1".into());
        }
        validate_serving(&chosen)?;
        let mut providers: Vec<ProviderConfig> = Vec::new();
        for (name, kind, key_var, url_var) in [
            (
                "openai",
                ProviderKind::OpenAi,
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
            ),
            (
                "anthropic",
                ProviderKind::Anthropic,
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
            ),
            (
                "gemini",
                ProviderKind::Gemini,
                "GEMINI_API_KEY",
                "GEMINI_BASE_URL",
            ),
        ] {
            // Flags, and their variables as clap read them, first; `env`
            // stands in for the process environment in tests.
            let (flag_key, flag_url) = match name {
                "openai" => (
                    &args.providers.openai_api_key,
                    &args.providers.openai_base_url,
                ),
                "anthropic" => (
                    &args.providers.anthropic_api_key,
                    &args.providers.anthropic_base_url,
                ),
                _ => (
                    &args.providers.gemini_api_key,
                    &args.providers.gemini_base_url,
                ),
            };
            let api_key = non_empty(flag_key).or_else(|| env(key_var));
            let base_url = non_empty(flag_url).or_else(|| env(url_var));
            // A base URL alone is enough: local servers (Ollama, vLLM) need no key.
            if api_key.is_some() || base_url.is_some() {
                providers.push(ProviderConfig {
                    name: name.to_string(),
                    kind,
                    base_url: base_url.unwrap_or_else(|| default_base_url(kind).to_string()),
                    api_key,
                    models: Vec::new(),
                    ca_file: None,
                    key_var: Some(key_var.to_string()),
                });
            }
        }
        for (name, p) in file.providers {
            validate_provider_name(&name)?;
            let kind = ProviderKind::parse(&p.kind).ok_or_else(|| {
                format!(
                    "provider `{name}`: unknown kind `{}` (use openai, anthropic or gemini)",
                    p.kind
                )
            })?;
            let api_key = match &p.api_key_env {
                Some(var) => env(var),
                None => None,
            };
            let config = ProviderConfig {
                base_url: p
                    .base_url
                    .unwrap_or_else(|| default_base_url(kind).to_string()),
                name: name.clone(),
                kind,
                api_key,
                models: p.models,
                ca_file: p.ca_file,
                key_var: p.api_key_env.clone(),
            };
            // A file table refines the provider of the same name from the environment.
            match providers.iter_mut().find(|existing| existing.name == name) {
                Some(existing) => {
                    if config.api_key.is_none() {
                        let key = existing.api_key.take();
                        let key_var = config.key_var.clone().or(existing.key_var.take());
                        *existing = ProviderConfig {
                            api_key: key,
                            key_var,
                            ..config
                        };
                    } else {
                        *existing = config;
                    }
                }
                None => providers.push(config),
            }
        }
        for p in &providers {
            validate_base_url(p)?;
        }

        Ok(Config {
            listen: args
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
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

    /// The core's view of this config: limits, providers, model list.
    pub fn gateway(&self) -> Result<Gateway, String> {
        let mut models = Vec::new();
        for p in &self.providers {
            if p.models.is_empty() {
                if p.is_vendor() {
                    for m in catalog::shipped(p.kind) {
                        let mut entry = ModelEntry::new(&p.name, &m.id, m.created, p.kind.as_str());
                        entry.display_name = m.display_name;
                        entry.input_token_limit = m.input_tokens;
                        entry.output_token_limit = m.output_tokens;
                        entry.embedding = m.embedding;
                        models.push(entry);
                    }
                }
            } else {
                for m in &p.models {
                    let mut entry = ModelEntry::new(&p.name, m, 0, &p.name);
                    // A configured name is all there is to go on.
                    entry.embedding = m.contains("embed");
                    models.push(entry);
                }
            }
        }
        let providers = self
            .providers
            .iter()
            .map(|p| {
                let addr = UpstreamAddr::parse(&p.base_url)
                    .map_err(|e| format!("provider `{}`: {e}", p.name))?;
                Ok(Provider {
                    name: p.name.clone(),
                    kind: p.kind,
                    official: p.base_url == default_base_url(p.kind),
                    addr,
                    api_key: p.api_key.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let pricing = Pricing {
            prices: pricing::table(&self.providers, &self.pricing)?,
            refuse_unpriced: self.refuse_unpriced_models,
        };
        Ok(Gateway::new(
            self.limits.clone(),
            providers,
            models,
            self.default_model.clone(),
        )
        .with_pricing(pricing))
    }
}

/// Limits out of range would make the gateway useless or spin (a zero
/// keep-alive interval fires at once, forever), so they are refused at start.
fn validate_limits(l: &Limits) -> Result<(), String> {
    const DAY_MS: u64 = 24 * 3600 * 1000;
    let sizes = [
        ("max_head_bytes", l.max_head_bytes, 1024),
        ("max_headers", l.max_headers, 8),
        ("max_body_bytes", l.max_body_bytes, 1024),
        ("max_inflight_body_bytes", l.max_inflight_body_bytes, 1024),
        ("max_sse_line_bytes", l.max_sse_line_bytes, 1024),
    ];
    for (name, value, min) in sizes {
        if value < min {
            return Err(format!(
                "limits.{name} must be at least {min} (got {value})"
            ));
        }
    }
    let times = [
        ("header_timeout_ms", l.header_timeout_ms, 100),
        ("idle_timeout_ms", l.idle_timeout_ms, 100),
        ("body_timeout_ms", l.body_timeout_ms, 100),
        (
            "upstream_connect_timeout_ms",
            l.upstream_connect_timeout_ms,
            100,
        ),
        (
            "upstream_first_byte_timeout_ms",
            l.upstream_first_byte_timeout_ms,
            100,
        ),
        ("upstream_idle_timeout_ms", l.upstream_idle_timeout_ms, 100),
        ("stream_keepalive_ms", l.stream_keepalive_ms, 100),
        ("upstream_pool_idle_ms", l.upstream_pool_idle_ms, 100),
    ];
    for (name, value, min) in times {
        if !(min..=DAY_MS).contains(&value) {
            return Err(format!(
                "limits.{name} must be between {min} and {DAY_MS} ms (got {value})"
            ));
        }
    }
    Ok(())
}

/// The driver's own settings: a stall timeout of zero would fail every
/// write that has to wait; a linger of a day would hold closed connections.
fn validate_serving(l: &LimitArgs) -> Result<(), String> {
    const DAY_MS: u64 = 24 * 3600 * 1000;
    if let Some(ms) = l.write_stall_timeout_ms {
        if !(100..=DAY_MS).contains(&ms) {
            return Err(format!(
                "limits.write_stall_timeout_ms must be between 100 and {DAY_MS} ms (got {ms})"
            ));
        }
    }
    // No linger at all would let unread request bytes reset the answer.
    if let Some(ms) = l.linger_ms {
        if !(1..=60_000).contains(&ms) {
            return Err(format!(
                "limits.linger_ms must be between 1 and 60000 ms (got {ms})"
            ));
        }
    }
    Ok(())
}

impl LimitArgs {
    /// Each limit set here, else in `other`.
    fn or(self, other: LimitArgs) -> LimitArgs {
        LimitArgs {
            max_body_bytes: self.max_body_bytes.or(other.max_body_bytes),
            max_inflight_body_bytes: self
                .max_inflight_body_bytes
                .or(other.max_inflight_body_bytes),
            max_head_bytes: self.max_head_bytes.or(other.max_head_bytes),
            max_headers: self.max_headers.or(other.max_headers),
            max_sse_line_bytes: self.max_sse_line_bytes.or(other.max_sse_line_bytes),
            header_timeout_ms: self.header_timeout_ms.or(other.header_timeout_ms),
            idle_timeout_ms: self.idle_timeout_ms.or(other.idle_timeout_ms),
            body_timeout_ms: self.body_timeout_ms.or(other.body_timeout_ms),
            upstream_connect_timeout_ms: self
                .upstream_connect_timeout_ms
                .or(other.upstream_connect_timeout_ms),
            upstream_first_byte_timeout_ms: self
                .upstream_first_byte_timeout_ms
                .or(other.upstream_first_byte_timeout_ms),
            upstream_idle_timeout_ms: self
                .upstream_idle_timeout_ms
                .or(other.upstream_idle_timeout_ms),
            upstream_pool_idle_ms: self.upstream_pool_idle_ms.or(other.upstream_pool_idle_ms),
            stream_keepalive_ms: self.stream_keepalive_ms.or(other.stream_keepalive_ms),
            max_connections: self.max_connections.or(other.max_connections),
            write_stall_timeout_ms: self.write_stall_timeout_ms.or(other.write_stall_timeout_ms),
            linger_ms: self.linger_ms.or(other.linger_ms),
            upstream_pool_max_idle: self.upstream_pool_max_idle.or(other.upstream_pool_max_idle),
        }
    }

    /// `limits` with every limit set here replaced.
    fn apply(&self, mut limits: Limits) -> Limits {
        let l = &mut limits;
        for (slot, value) in [
            (&mut l.max_body_bytes, self.max_body_bytes),
            (&mut l.max_inflight_body_bytes, self.max_inflight_body_bytes),
            (&mut l.max_head_bytes, self.max_head_bytes),
            (&mut l.max_headers, self.max_headers),
            (&mut l.max_sse_line_bytes, self.max_sse_line_bytes),
        ] {
            *slot = value.unwrap_or(*slot);
        }
        for (slot, value) in [
            (&mut l.header_timeout_ms, self.header_timeout_ms),
            (&mut l.idle_timeout_ms, self.idle_timeout_ms),
            (&mut l.body_timeout_ms, self.body_timeout_ms),
            (
                &mut l.upstream_connect_timeout_ms,
                self.upstream_connect_timeout_ms,
            ),
            (
                &mut l.upstream_first_byte_timeout_ms,
                self.upstream_first_byte_timeout_ms,
            ),
            (
                &mut l.upstream_idle_timeout_ms,
                self.upstream_idle_timeout_ms,
            ),
            (&mut l.upstream_pool_idle_ms, self.upstream_pool_idle_ms),
            (&mut l.stream_keepalive_ms, self.stream_keepalive_ms),
        ] {
            *slot = value.unwrap_or(*slot);
        }
        limits
    }
}

/// An empty value (`OPENAI_API_KEY=`) counts as unset.
fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid config {}: {e}", path.display()))
}

/// Provider names become URL prefixes (`/{provider}/...`, `provider/model`),
/// so they must not collide with our own routes or contain separators.
fn validate_provider_name(name: &str) -> Result<(), String> {
    const RESERVED: [&str; 5] = ["v1", "v1beta", "api", "healthz", "metrics"];
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok || RESERVED.contains(&name) {
        return Err(format!(
            "provider name `{name}` is not allowed (letters, digits, - _ . only; not one of {RESERVED:?})"
        ));
    }
    Ok(())
}

fn validate_base_url(p: &ProviderConfig) -> Result<(), String> {
    UpstreamAddr::parse(&p.base_url).map(|_| ()).map_err(|e| {
        format!(
            "provider `{}`: base URL `{}`: {e}",
            p.name,
            redacted(&p.base_url)
        )
    })
}

/// A URL fit for a message: without user info or query, either of which
/// may carry credentials.
fn redacted(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn args() -> ServeArgs {
        ServeArgs {
            shutdown_grace: 10,
            log_level: "info".into(),
            ..ServeArgs::default()
        }
    }

    fn load(args: &ServeArgs, vars: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(args, &|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_without_anything() {
        let c = load(&args(), &[]).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(c.providers.is_empty());
        assert!(c.master_key.is_none());
    }

    #[test]
    fn providers_from_env_follow_sdk_base_url_conventions() {
        let c = load(
            &args(),
            &[
                ("OPENAI_API_KEY", "sk-o"),
                ("ANTHROPIC_API_KEY", "sk-a"),
                ("GEMINI_BASE_URL", "http://127.0.0.1:9999"),
            ],
        )
        .unwrap();
        let names: Vec<_> = c.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["openai", "anthropic", "gemini"]);
        assert_eq!(c.providers[0].base_url, "https://api.openai.com/v1");
        assert_eq!(c.providers[1].base_url, "https://api.anthropic.com");
        assert_eq!(c.providers[2].base_url, "http://127.0.0.1:9999");
        assert!(c.providers[2].api_key.is_none());
        let gw = c.gateway().unwrap();
        assert!(gw.models().iter().any(|m| m.id == "openai/gpt-4o-mini"));
        assert!(gw
            .models()
            .iter()
            .any(|m| m.id.starts_with("anthropic/claude")));
        assert!(gw
            .models()
            .iter()
            .any(|m| m.id.starts_with("gemini/gemini")));
    }

    #[test]
    fn file_adds_openai_compatible_providers_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("arouter.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:9000"
default_model = "vllm/llama"
[limits]
max_body_bytes = 1024
body_timeout_ms = 5000
upstream_pool_idle_ms = 2500
[providers.vllm]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "VLLM_KEY"
models = ["llama", "qwen"]
"#,
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path);
        a.listen = Some("127.0.0.1:7000".into());
        let c = load(&a, &[("VLLM_KEY", "k")]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7000", "flag beats file");
        assert_eq!(c.limits.max_body_bytes, 1024);
        assert_eq!(c.limits.body_timeout_ms, 5000);
        assert_eq!(c.limits.upstream_pool_idle_ms, 2500);
        assert_eq!(c.default_model.as_deref(), Some("vllm/llama"));
        assert_eq!(c.providers[0].api_key.as_deref(), Some("k"));
        let ids: Vec<_> = c
            .gateway()
            .unwrap()
            .models()
            .iter()
            .map(|m| m.id.clone())
            .collect();
        assert_eq!(ids, ["vllm/llama", "vllm/qwen"]);
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        for (text, needle) in [
            ("[providers.x]\nkind = \"cohere\"\n", "unknown kind"),
            ("[providers.v1]\nkind = \"openai\"\n", "not allowed"),
            (
                "[providers.x]\nkind = \"openai\"\nbase_url = \"ftp://h\"\n",
                "must start with",
            ),
            ("nonsense = 1\n", "invalid config"),
            (
                "[limits]\nstream_keepalive_ms = 0\n",
                "stream_keepalive_ms must be between",
            ),
            (
                "[limits]\nidle_timeout_ms = 18446744073709551615\n",
                "idle_timeout_ms must be between",
            ),
            (
                "[limits]\nbody_timeout_ms = 0\n",
                "body_timeout_ms must be between",
            ),
            (
                "[limits]\nupstream_pool_idle_ms = 10\n",
                "upstream_pool_idle_ms must be between",
            ),
            (
                "[limits]\nmax_body_bytes = 0\n",
                "max_body_bytes must be at least",
            ),
            (
                "[limits]\nmax_connections = 0\n",
                "max_connections must be at least",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let mut a = args();
            a.config = Some(path.clone());
            let err = load(&a, &[]).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_bad_base_url_is_reported_without_its_credentials() {
        let err = load(
            &args(),
            &[(
                "OPENAI_BASE_URL",
                "http://user:sk-secret@h:1/v1?key=sk-secret",
            )],
        )
        .unwrap_err();
        assert!(!err.contains("sk-secret"), "{err}");
        assert!(err.contains("http://h:1/v1"), "{err}");
    }

    #[test]
    fn debug_never_prints_secrets() {
        let c = load(
            &args(),
            &[
                ("OPENAI_API_KEY", "sk-secret-1"),
                ("AROUTER_MASTER_KEY", "sk-secret-2"),
            ],
        )
        .unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("sk-secret"), "{text}");
    }

    /// Setting a flag to the default its help shows changes nothing: the
    /// documented defaults are the real ones.
    #[test]
    fn defaults_in_help_are_the_real_defaults() {
        use clap::{CommandFactory, Parser};

        let cli = crate::cli::Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        let plain = load(&args(), &[]).unwrap();
        let summary = |c: &Config| {
            format!(
                "{} {:?} {:?} {} {} {} {} {}",
                c.listen,
                c.data_dir,
                c.limits,
                c.max_connections,
                c.shutdown_grace_secs,
                c.write_stall_timeout_ms,
                c.linger_ms,
                c.upstream_pool_max_idle
            )
        };
        let mut checked = 0;
        for arg in serve.get_arguments() {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let default = match (help.split_once("[default: "), arg.get_default_values()) {
                (Some((_, rest)), _) => rest.split(']').next().unwrap().to_string(),
                (None, [value]) => value.to_string_lossy().into_owned(),
                _ => continue,
            };
            if default.contains(' ') {
                continue; // a description such as "the number of CPUs"
            }
            let flag = format!("--{}", arg.get_long().unwrap());
            let parsed = crate::cli::Cli::try_parse_from(["arouter", "serve", &flag, &default])
                .unwrap_or_else(|e| panic!("{flag} {default}: {e}"));
            let crate::cli::Command::Serve(with) = parsed.command else {
                panic!("parsed as serve");
            };
            let c = load(&with, &[]).unwrap();
            if flag.ends_with("-base-url") {
                let kind =
                    ProviderKind::parse(flag.trim_start_matches("--").split('-').next().unwrap())
                        .unwrap();
                assert_eq!(default, default_base_url(kind), "{flag}");
            } else if flag == "--log-level" {
                assert_eq!(with.log_level, "info");
            } else {
                assert_eq!(summary(&c), summary(&plain), "{flag} {default}");
            }
            checked += 1;
        }
        assert!(checked >= 18, "only {checked} defaults checked");
    }

    #[test]
    fn driver_settings_come_from_flags_or_the_file_and_are_checked() {
        let mut a = args();
        a.limits.linger_ms = Some(1);
        let c = load(&a, &[]).unwrap();
        assert_eq!(
            c.driver_settings().linger,
            std::time::Duration::from_millis(1)
        );
        assert_eq!(
            c.driver_settings().write_stall,
            std::time::Duration::from_millis(DEFAULT_WRITE_STALL_TIMEOUT_MS)
        );
        assert_eq!(c.pool_limits().max_idle, DEFAULT_UPSTREAM_POOL_MAX_IDLE);
        let mut a = args();
        a.limits.write_stall_timeout_ms = Some(0);
        let err = load(&a, &[]).unwrap_err();
        assert!(
            err.contains("write_stall_timeout_ms must be between"),
            "{err}"
        );
        let mut a = args();
        a.limits.linger_ms = Some(120_000);
        let err = load(&a, &[]).unwrap_err();
        assert!(err.contains("linger_ms must be between"), "{err}");
    }
}
