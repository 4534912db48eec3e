//! Model routing: which provider and upstream model serve a request, in
//! what order. `model` is `provider/model`; `models[]` adds ordered
//! fallbacks; an absent model falls back to the tenant default.

use crate::api::{ApiError, Dialect, ErrorKind};
use crate::gateway::{Gateway, ProviderKind, GOOGLE_ALIAS};

/// One place a request may be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Index into `Gateway::providers()`.
    pub provider: usize,
    /// The model name the provider knows (prefix stripped).
    pub model: String,
}

/// A model name goes into upstream URLs (Gemini's path) and bodies, so it
/// must not be able to carry anything else: no spaces or control bytes (a
/// CR LF would write its own request head upstream), no `?`/`#`/`%`, and no
/// `..` segment (which would climb to other provider endpoints with the
/// gateway's key). Real names fit easily: `gpt-4o-mini`,
/// `claude-sonnet-4-5@20250929`, `meta-llama/Llama-3.1-8B`, `llama3:8b`.
pub fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'@' | b'+' | b'/')
        })
        && !name
            .split('/')
            .any(|segment| segment == ".." || segment == ".")
}

/// Most candidates one request may name; more is almost certainly a
/// mistake and would multiply upstream load on failure.
pub const MAX_CANDIDATES: usize = 8;

/// Resolves one model reference to a candidate.
pub fn resolve(
    gateway: &Gateway,
    dialect: Dialect,
    reference: &str,
) -> Result<Candidate, ApiError> {
    resolve_native(gateway, dialect, None, reference)
}

/// Like `resolve`, but a bare model name the catalog does not know goes to
/// a provider of `native` kind: the Anthropic SDK names `claude-…` models
/// and the Gemini SDK `gemini-…` models without any prefix.
pub fn resolve_native(
    gateway: &Gateway,
    dialect: Dialect,
    native: Option<ProviderKind>,
    reference: &str,
) -> Result<Candidate, ApiError> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(
            ApiError::invalid_request(dialect, "`model` is empty").with_code("invalid_model")
        );
    }
    if !valid_model_name(reference) {
        return Err(ApiError::invalid_request(
            dialect,
            "`model` may contain only letters, digits and . _ - : @ + /, with no `..`, up to 256 characters",
        )
        .with_code("invalid_model"));
    }
    let index_of = |name: &str| gateway.provider_index(name);
    if let Some((prefix, model)) = reference.split_once('/') {
        if let Some(provider) = index_of(prefix) {
            if model.is_empty() {
                return Err(ApiError::invalid_request(
                    dialect,
                    format!("`{reference}` names no model"),
                )
                .with_code("invalid_model"));
            }
            return Ok(Candidate {
                provider,
                model: model.to_string(),
            });
        }
    }
    // A bare name (or one whose prefix is not a provider, like an
    // organisation in `meta-llama/Llama-3.1-8B`): the provider that lists it,
    // else the only provider there is.
    if let Some(p) = gateway.provider_listing(reference) {
        if let Some(provider) = index_of(&p.name) {
            return Ok(Candidate {
                provider,
                model: reference.to_string(),
            });
        }
    }
    if let Some(kind) = native.filter(|_| !reference.contains('/')) {
        let providers = gateway.providers();
        let pick = providers
            .iter()
            .position(|p| p.kind == kind && p.name == kind.as_str())
            .or_else(|| providers.iter().position(|p| p.kind == kind));
        if let Some(provider) = pick {
            return Ok(Candidate {
                provider,
                model: reference.to_string(),
            });
        }
    }
    // A vendor's own model name (`claude-…`, `gemini-…`) on its native
    // route is not sent to some other lone provider: its provider is missing.
    let vendor_model = native
        .and_then(model_family)
        .is_some_and(|family| reference.starts_with(family));
    if gateway.providers().len() == 1 && !reference.contains('/') && !vendor_model {
        return Ok(Candidate {
            provider: 0,
            model: reference.to_string(),
        });
    }
    let known: Vec<&str> = gateway
        .providers()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    let message = match (reference.split_once('/'), native) {
        (Some((prefix, _)), _) => format!(
            "{} (model `{reference}`; configured providers: {known})",
            not_configured(prefix)
        ),
        // A bare name on a native route (`claude-…` on /v1/messages) is
        // meant for that dialect's provider: say that one is missing
        // rather than blame the model's spelling.
        (None, Some(kind)) if vendor_model || gateway.providers().is_empty() => format!(
            "{} (model `{reference}`; configured providers: {known})",
            not_configured(kind.as_str())
        ),
        (None, _) => format!(
            "model `{reference}` must be written as provider/model (configured providers: {known})"
        ),
    };
    // 404, as each provider answers a model it does not have: the request
    // is well formed, and a client (or a spec-driven test tool) can tell
    // "no such model here" from a malformed request.
    Err(ApiError::new(dialect, ErrorKind::NotFound, message).with_code("unknown_provider"))
}

/// How a vendor's own model names begin, for the native routes.
fn model_family(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Anthropic => Some("claude"),
        ProviderKind::Gemini => Some("gemini"),
        // The OpenAI route is everyone's: no name is OpenAI's alone.
        ProviderKind::OpenAi => None,
    }
}

/// Names the missing provider and how to configure it: the vendors'
/// own providers come from their usual environment variable, any other
/// from a table in the config file.
fn not_configured(name: &str) -> String {
    let env = match name {
        "openai" => Some("OPENAI_API_KEY"),
        "anthropic" => Some("ANTHROPIC_API_KEY"),
        "gemini" | GOOGLE_ALIAS => Some("GEMINI_API_KEY"),
        _ => None,
    };
    match env {
        Some(var) => format!(
            "no provider \"{name}\" is configured: set {var} or add [providers.{name}] to the config file"
        ),
        None => format!(
            "no provider \"{name}\" is configured: add [providers.{name}] to the config file"
        ),
    }
}

/// The ordered, de-duplicated candidates for a request naming `model`
/// and/or `models`.
pub fn candidates(
    gateway: &Gateway,
    dialect: Dialect,
    model: Option<&str>,
    models: &[&str],
) -> Result<Vec<Candidate>, ApiError> {
    candidates_native(gateway, dialect, None, model, models)
}

/// `candidates` with bare names resolved towards `native` providers (see
/// `resolve_native`).
pub fn candidates_native(
    gateway: &Gateway,
    dialect: Dialect,
    native: Option<ProviderKind>,
    model: Option<&str>,
    models: &[&str],
) -> Result<Vec<Candidate>, ApiError> {
    let mut refs: Vec<&str> = Vec::new();
    if let Some(m) = model {
        refs.push(m);
    }
    refs.extend_from_slice(models);
    if refs.is_empty() {
        match gateway.default_model() {
            Some(default) => refs.push(default),
            None => {
                return Err(ApiError::invalid_request(
                    dialect,
                    "no `model` given and no default model configured (AROUTER_DEFAULT_MODEL)",
                )
                .with_code("model_required"))
            }
        }
    }
    let mut out: Vec<Candidate> = Vec::with_capacity(refs.len().min(MAX_CANDIDATES + 1));
    for r in refs {
        let c = resolve_native(gateway, dialect, native, r)?;
        if !out.contains(&c) {
            out.push(c);
        }
        // Checked as we go: the de-duplication is quadratic, so a list of
        // thousands of distinct models must stop here, not at the end.
        if out.len() > MAX_CANDIDATES {
            return Err(ApiError::invalid_request(
                dialect,
                format!("at most {MAX_CANDIDATES} models may be given"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::Provider;
    use crate::upstream::UpstreamAddr;
    use crate::Limits;

    fn gateway(names: &[(&str, ProviderKind)]) -> Gateway {
        let providers = names
            .iter()
            .map(|(name, kind)| Provider {
                name: (*name).to_string(),
                kind: *kind,
                addr: UpstreamAddr::parse("http://127.0.0.1:1").expect("url"),
                api_key: None,
                official: false,
                responses: false,
            })
            .collect();
        Gateway::new(Limits::default(), providers, Vec::new(), None)
    }

    #[test]
    fn google_prefix_names_the_gemini_provider() {
        let g = gateway(&[
            ("openai", ProviderKind::OpenAi),
            ("gemini", ProviderKind::Gemini),
        ]);
        for dialect in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Google] {
            let c = resolve(&g, dialect, "google/gemini-2.5-flash").expect("resolves");
            assert_eq!(
                c,
                Candidate {
                    provider: 1,
                    model: "gemini-2.5-flash".into()
                }
            );
        }
        assert!(g.is_provider("google"));
    }

    #[test]
    fn a_provider_named_google_wins_over_the_alias() {
        let g = gateway(&[
            ("gemini", ProviderKind::Gemini),
            ("google", ProviderKind::OpenAi),
        ]);
        let c = resolve(&g, Dialect::OpenAi, "google/gemma").expect("resolves");
        assert_eq!(c.provider, 1);
    }

    #[test]
    fn google_without_a_gemini_provider_is_unknown() {
        let g = gateway(&[("openai", ProviderKind::OpenAi)]);
        let err = resolve(&g, Dialect::OpenAi, "google/gemini-2.5-flash").expect_err("unknown");
        assert_eq!(err.code, Some("unknown_provider"));
        assert!(err.message.contains("GEMINI_API_KEY"), "{}", err.message);
    }
}
