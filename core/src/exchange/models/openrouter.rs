//! `GET /api/v1/models` and `/api/v1/models/count` in OpenRouter's shape,
//! so that OpenRouter's SDKs (`client.models.list()`, `.count()`) read this
//! gateway's catalog: pricing as USD-per-token strings, architecture,
//! context and output caps, supported parameters, paging by
//! `offset`/`limit` with `links.next` and `total_count`. Each model also
//! keeps OpenAI's `object`/`owned_by`, and the list its `object: "list"`,
//! so an OpenAI client pointed at `/api/v1` still lists models.

use serde_json::{json, Value};

use super::{display_name, json_response, param};
use crate::api::{ApiError, Dialect, Response};
use crate::billing::Price;
use crate::gateway::{Gateway, ModelEntry, Provider, ProviderKind};

/// OpenRouter's page size when the client names none (its SDK sends 500),
/// and the most one page holds.
const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 1000;

/// What the `output_modalities` filter selects. OpenRouter lists only text
/// models unless asked (`all`, or a comma list such as `text,embeddings`).
struct Modalities {
    all: bool,
    text: bool,
    embeddings: bool,
}

impl Modalities {
    fn parse(query: Option<&str>) -> Modalities {
        let Some(asked) = param(query, "output_modalities") else {
            return Modalities {
                all: false,
                text: true,
                embeddings: false,
            };
        };
        let has = |name: &str| asked.split(',').any(|m| m.trim() == name);
        Modalities {
            all: has("all"),
            text: has("text"),
            embeddings: has("embeddings"),
        }
    }

    fn admits(&self, m: &ModelEntry) -> bool {
        self.all
            || if m.embedding {
                self.embeddings
            } else {
                self.text
            }
    }
}

/// The models a query selects, in catalog order.
fn selected<'g>(gateway: &'g Gateway, query: Option<&str>) -> Vec<&'g ModelEntry> {
    let modalities = Modalities::parse(query);
    let search = param(query, "q").map(|q| q.to_lowercase());
    let providers = param(query, "providers");
    let wanted_params = param(query, "supported_parameters");
    gateway
        .models()
        .iter()
        .filter(|m| modalities.admits(m))
        .filter(|m| {
            search.as_deref().is_none_or(|q| {
                m.id.to_lowercase().contains(q) || display_name(m).to_lowercase().contains(q)
            })
        })
        .filter(|m| {
            providers.as_deref().is_none_or(|list| {
                let provider = provider_name(m);
                list.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case(provider))
            })
        })
        .filter(|m| {
            wanted_params.as_deref().is_none_or(|list| {
                let supported = supported_parameters(gateway.provider(provider_name(m)), m);
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .all(|p| supported.contains(&p))
            })
        })
        .collect()
}

/// `GET /api/v1/models`.
pub(in crate::exchange) fn list(
    gateway: &Gateway,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let offset = match param(query, "offset") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| {
            ApiError::invalid_request(Dialect::OpenAi, "`offset` must be a non-negative integer")
        })?,
    };
    let limit = super::page_size(query, "limit", DEFAULT_LIMIT, MAX_LIMIT, Dialect::OpenAi)?;
    let models = selected(gateway, query);
    let start = offset.min(models.len());
    let end = start.saturating_add(limit).min(models.len());
    let next = (end < models.len()).then(|| next_link(query, end, limit));
    let body = json!({
        "object": "list",
        "data": models[start..end]
            .iter()
            .map(|m| model(gateway, m))
            .collect::<Vec<_>>(),
        "links": {"next": next},
        "total_count": models.len(),
    });
    Ok(json_response(&body))
}

/// `GET /api/v1/models/count`.
pub(in crate::exchange) fn count(gateway: &Gateway, query: Option<&str>) -> Response {
    json_response(&json!({"data": {"count": selected(gateway, query).len()}}))
}

/// The next page: the same query with `offset` moved on.
fn next_link(query: Option<&str>, offset: usize, limit: usize) -> String {
    let mut link = format!("/api/v1/models?offset={offset}&limit={limit}");
    for pair in query.unwrap_or("").split('&') {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if !pair.is_empty() && name != "offset" && name != "limit" {
            link.push('&');
            link.push_str(pair);
        }
    }
    link
}

fn provider_name(m: &ModelEntry) -> &str {
    m.id.split_once('/').map_or("", |(provider, _)| provider)
}

/// One model as OpenRouter's `Model` schema has it. What the catalog does
/// not know is `null`, as OpenRouter itself writes it.
fn model(gateway: &Gateway, m: &ModelEntry) -> Value {
    let provider_key = provider_name(m);
    let provider = gateway.provider(provider_key);
    let bare = m.id.split_once('/').map_or(m.id.as_str(), |(_, bare)| bare);
    let output = if m.embedding { "embeddings" } else { "text" };
    json!({
        "id": m.id,
        "canonical_slug": m.id,
        "name": display_name(m),
        "created": m.created,
        "description": format!("{bare}, served by the `{provider_key}` provider of this gateway."),
        "context_length": m.input_token_limit,
        "architecture": {
            "modality": format!("text->{output}"),
            "input_modalities": ["text"],
            "output_modalities": [output],
            "tokenizer": tokenizer(provider.map(|p| p.kind)),
            "instruct_type": null,
        },
        "pricing": pricing(gateway.price(provider_key, bare)),
        "top_provider": {
            "context_length": m.input_token_limit,
            "max_completion_tokens": m.output_token_limit,
            "is_moderated": false,
        },
        "per_request_limits": null,
        "supported_parameters": supported_parameters(provider, m),
        "default_parameters": null,
        "supported_voices": null,
        "links": {"details": format!("/v1/models/{}", m.id)},
        "object": "model",
        "owned_by": m.owned_by,
    })
}

fn tokenizer(kind: Option<ProviderKind>) -> &'static str {
    match kind {
        Some(ProviderKind::Anthropic) => "Claude",
        Some(ProviderKind::Gemini) => "Gemini",
        Some(ProviderKind::OpenAi) | None => "Other",
    }
}

/// The parameters this gateway carries to the model's provider, in
/// OpenRouter's names (docs/parameters.md is the table they come from):
/// what every route translates, plus what only that kind of provider gets.
fn supported_parameters(provider: Option<&Provider>, m: &ModelEntry) -> Vec<&'static str> {
    if m.embedding {
        return Vec::new();
    }
    let mut names = vec![
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "structured_outputs",
        "reasoning",
        "include_reasoning",
    ];
    match provider.map(|p| (p.kind, p.official)) {
        Some((ProviderKind::OpenAi, official)) => {
            names.extend([
                "frequency_penalty",
                "presence_penalty",
                "seed",
                "logit_bias",
                "logprobs",
                "top_logprobs",
                "parallel_tool_calls",
            ]);
            // The official API refuses sampling knobs it does not
            // document; compatible servers get them.
            if !official {
                names.extend(["top_k", "min_p", "top_a", "repetition_penalty"]);
            }
        }
        Some((ProviderKind::Anthropic, _)) => names.extend(["top_k", "parallel_tool_calls"]),
        Some((ProviderKind::Gemini, _)) => names.push("top_k"),
        None => {}
    }
    names
}

/// Prices as OpenRouter writes them: exact decimal USD per token. A model
/// with no price is billed nothing, so it lists `"0"`.
fn pricing(price: Option<Price>) -> Value {
    let price = price.unwrap_or_default();
    let mut body = json!({
        "prompt": per_token(price.input),
        "completion": per_token(price.output),
    });
    for (name, value) in [
        ("input_cache_read", price.cached_input),
        ("input_cache_write", price.cache_write),
        ("internal_reasoning", price.reasoning),
    ] {
        if value > 0 {
            body[name] = Value::from(per_token(value));
        }
    }
    body
}

/// Micro-USD per million tokens (the price table's unit) as USD per token:
/// the same integer scaled by 10^-12, written exactly.
fn per_token(micro_usd_per_million: u64) -> String {
    if micro_usd_per_million == 0 {
        return "0".into();
    }
    let digits = format!("{micro_usd_per_million:013}");
    let (whole, fraction) = digits.split_at(digits.len() - 12);
    match fraction.trim_end_matches('0') {
        "" => whole.to_string(),
        fraction => format!("{whole}.{fraction}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_is_exact() {
        assert_eq!(per_token(0), "0");
        // $2.50 per million tokens.
        assert_eq!(per_token(2_500_000), "0.0000025");
        assert_eq!(per_token(1), "0.000000000001");
        assert_eq!(per_token(1_000_000_000_000), "1");
        assert_eq!(per_token(15_000_000), "0.000015");
    }

    #[test]
    fn next_link_keeps_the_filters() {
        assert_eq!(
            next_link(Some("limit=2&q=gpt&offset=0"), 2, 2),
            "/api/v1/models?offset=2&limit=2&q=gpt"
        );
    }
}
