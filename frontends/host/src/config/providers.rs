//! Which upstream providers are configured: the well-known ones from flags
//! and their environment variables, refined or extended by the file's
//! `[providers.*]` tables; names and base URLs are checked here.

use std::collections::BTreeMap;

use arouter_core::gateway::ProviderKind;
use arouter_core::upstream::UpstreamAddr;

use super::file::FileProvider;
use super::{non_empty, ConfigError, ProviderConfig};
use crate::cli::ServeArgs;

/// Provider names become URL prefixes (`/{provider}/...`, `provider/model`),
/// so these, our own first path segments, are refused.
pub(super) const RESERVED_NAMES: [&str; 6] =
    ["v1", "v1beta", "api", "healthz", "metrics", "dashboard"];

pub(super) fn default_base_url(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "https://api.openai.com/v1",
        ProviderKind::Anthropic => "https://api.anthropic.com",
        ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
    }
}

/// The well-known providers set by a flag or, failing that, `env`.
pub(super) fn well_known(
    args: &ServeArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<ProviderConfig> {
    let flags = &args.providers;
    let known = [
        (
            "openai",
            ProviderKind::OpenAi,
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            (&flags.openai_api_key, &flags.openai_base_url),
        ),
        (
            "anthropic",
            ProviderKind::Anthropic,
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            (&flags.anthropic_api_key, &flags.anthropic_base_url),
        ),
        (
            "gemini",
            ProviderKind::Gemini,
            "GEMINI_API_KEY",
            "GEMINI_BASE_URL",
            (&flags.gemini_api_key, &flags.gemini_base_url),
        ),
    ];
    let mut providers = Vec::new();
    for (name, kind, key_var, url_var, (flag_key, flag_url)) in known {
        // Flags, and their variables as clap read them, first; `env`
        // stands in for the process environment in tests.
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
                responses: None,
            });
        }
    }
    providers
}

/// Adds the file's providers; a table named like a well-known provider
/// refines it (keeping its key unless the table names another variable).
pub(super) fn merge_file(
    providers: &mut Vec<ProviderConfig>,
    file: BTreeMap<String, FileProvider>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (name, p) in file {
        validate_provider_name(&name)?;
        let kind = ProviderKind::parse(&p.kind).ok_or_else(|| ConfigError::UnknownKind {
            provider: name.clone(),
            kind: p.kind.clone(),
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
            responses: p.responses,
        };
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
    Ok(())
}

fn validate_provider_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok || RESERVED_NAMES.contains(&name) {
        return Err(ConfigError::ProviderName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The provider's parsed address; the error carries the URL without
/// anything that may be a credential.
pub(super) fn upstream_addr(p: &ProviderConfig) -> Result<UpstreamAddr, ConfigError> {
    UpstreamAddr::parse(&p.base_url).map_err(|reason| ConfigError::BaseUrl {
        provider: p.name.clone(),
        url: redacted(&p.base_url),
        reason,
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
