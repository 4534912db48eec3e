//! Process-wide (or per-core) gateway state that every connection reads:
//! limits, configured providers and the model catalog. Pure lookups.

use std::sync::Arc;

use serde::Serialize;

use crate::billing::{MicroUsd, Price, PriceTable};
use crate::budget::BodyBudget;
use crate::upstream::UpstreamAddr;
use crate::usage::Usage;
use crate::Limits;

/// The API family a provider speaks upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenAI, or any OpenAI-compatible server (vLLM, Ollama, other routers).
    OpenAi,
    Anthropic,
    Gemini,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s {
            "openai" | "openai-compatible" | "openai_compatible" => Some(ProviderKind::OpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            "gemini" | "google" => Some(ProviderKind::Gemini),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }
}

/// The provider name that also means `gemini` (see `Gateway::provider_index`).
pub const GOOGLE_ALIAS: &str = "google";

/// A configured upstream provider.
#[derive(Clone, PartialEq, Eq)]
pub struct Provider {
    /// The routing prefix: `name/model`.
    pub name: String,
    pub kind: ProviderKind,
    pub addr: UpstreamAddr,
    /// The provider's own key, sent upstream in place of the client's.
    pub api_key: Option<String>,
    /// The vendor's own API (not a compatible server): parameters it does
    /// not document are dropped instead of forwarded.
    pub official: bool,
    /// Takes OpenAI's Responses API (`/responses`) natively: a Responses
    /// client's body is passed through, not translated to chat.
    pub responses: bool,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("official", &self.official)
            .field("responses", &self.responses)
            .finish()
    }
}

/// One model listed by `/v1/models`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelEntry {
    /// `provider/model`.
    pub id: String,
    pub object: &'static str,
    /// Unix seconds the model was published (0 when unknown).
    pub created: u64,
    pub owned_by: String,
    /// A human-readable name (Anthropic's `display_name`, Gemini's
    /// `displayName`); the model's own id when the catalog has none.
    #[serde(skip)]
    pub display_name: Option<String>,
    /// Context window and output cap in tokens, where the catalog knows them.
    #[serde(skip)]
    pub input_token_limit: Option<u32>,
    #[serde(skip)]
    pub output_token_limit: Option<u32>,
    /// An embedding model (served by `embedContent`, not `generateContent`).
    #[serde(skip)]
    pub embedding: bool,
}

impl ModelEntry {
    pub fn new(provider: &str, model: &str, created: u64, owned_by: &str) -> ModelEntry {
        ModelEntry {
            id: format!("{provider}/{model}"),
            object: "model",
            created,
            owned_by: owned_by.to_string(),
            display_name: None,
            input_token_limit: None,
            output_token_limit: None,
            embedding: false,
        }
    }
}

/// Everything a connection needs to know about the deployment. A clone
/// shares the original's body budget.
#[derive(Clone, Debug)]
pub struct Gateway {
    limits: Limits,
    body_budget: Arc<BodyBudget>,
    providers: Vec<Provider>,
    default_model: Option<String>,
    models: Vec<ModelEntry>,
    /// `/v1/models` is answered from this pre-rendered body.
    models_body: Vec<u8>,
    pricing: Pricing,
    /// Responses API answers are kept (`store`), so `previous_response_id`
    /// and `item_reference` can refer to them.
    store_responses: bool,
    /// OpenAI-dialect chat streams end with the usage chunk whether or not
    /// the client asked (`--always-include-usage`).
    always_include_usage: bool,
}

/// What the gateway charges for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pricing {
    /// List prices by configured provider name and model.
    pub prices: PriceTable,
    /// A model with no price is refused instead of served for free.
    pub refuse_unpriced: bool,
}

impl Gateway {
    pub fn new(
        limits: Limits,
        providers: Vec<Provider>,
        models: Vec<ModelEntry>,
        default_model: Option<String>,
    ) -> Gateway {
        #[derive(Serialize)]
        struct List<'a> {
            object: &'static str,
            data: &'a [ModelEntry],
        }
        let models_body = serde_json::to_vec(&List {
            object: "list",
            data: &models,
        })
        .unwrap_or_default();
        Gateway {
            body_budget: BodyBudget::new(
                u64::try_from(limits.max_inflight_body_bytes).unwrap_or(u64::MAX),
            ),
            limits,
            providers,
            default_model,
            models,
            models_body,
            pricing: Pricing::default(),
            store_responses: true,
            always_include_usage: false,
        }
    }

    /// Whether Responses API answers are kept (a retention of 0 days: not).
    pub fn with_stored_responses(mut self, yes: bool) -> Gateway {
        self.store_responses = yes;
        self
    }

    /// Responses API answers are kept for `previous_response_id`,
    /// `item_reference` and `GET /v1/responses/{id}`.
    pub fn stores_responses(&self) -> bool {
        self.store_responses
    }

    /// Whether OpenAI-dialect chat streams always end with the usage chunk,
    /// for clients that never ask for it (LangChain's `ChatOpenAI` sends no
    /// `stream_options` to a custom base URL).
    pub fn with_always_include_usage(mut self, yes: bool) -> Gateway {
        self.always_include_usage = yes;
        self
    }

    /// OpenAI-dialect chat streams end with the usage chunk even when the
    /// client did not ask for it.
    pub fn always_includes_usage(&self) -> bool {
        self.always_include_usage
    }

    /// The prices billed, and whether unpriced models are served.
    pub fn with_pricing(mut self, pricing: Pricing) -> Gateway {
        self.pricing = pricing;
        self
    }

    /// Unpriced models are refused rather than served for free.
    pub fn refuses_unpriced(&self) -> bool {
        self.pricing.refuse_unpriced
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Request body bytes held across every connection of this gateway.
    pub fn body_budget(&self) -> &Arc<BodyBudget> {
        &self.body_budget
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.provider_index(name).map(|i| &self.providers[i])
    }

    /// The provider a name (a model prefix, a proxy path segment) stands
    /// for: the one configured under that name, or for `google`, when no
    /// provider has that name, the one named `gemini`. Google's own model
    /// ids are written `google/gemini-…` in most catalogs, so clients send
    /// them that way.
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        let named = |n: &str| self.providers.iter().position(|p| p.name == n);
        named(name).or_else(|| match name {
            GOOGLE_ALIAS => named(ProviderKind::Gemini.as_str()),
            _ => None,
        })
    }

    /// The list price of `provider/model` (the configured provider's
    /// name, the model as sent upstream), if one is known.
    pub fn price(&self, provider: &str, model: &str) -> Option<Price> {
        self.pricing.prices.get(provider, model)
    }

    /// What `usage` of `provider/model` costs; `None` when the model has
    /// no price (it is then billed as free). The one place a call's cost
    /// is computed: the answer's `usage.cost` and the recorded
    /// transaction both come from here.
    pub fn cost(&self, provider: &str, model: &str, usage: &Usage) -> Option<MicroUsd> {
        self.price(provider, model).map(|p| p.cost(usage))
    }

    /// The most tokens `provider/model` writes in one answer: its price
    /// row's `max_output`, else [`crate::billing::DEFAULT_OUTPUT_CAP`]. A
    /// reservation assumes it for a request that sets no output cap.
    pub fn output_cap(&self, provider: &str, model: &str) -> u64 {
        self.pricing
            .prices
            .output_cap(provider, model)
            .unwrap_or(crate::billing::DEFAULT_OUTPUT_CAP)
    }

    /// The listed model `name` names: `provider/model` (the provider as
    /// routing reads it, so `google/…` is a `gemini/…` model), or a bare
    /// model name as routing resolves it (the first provider listing it).
    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        if let Some(found) = self.models.iter().find(|m| m.id == name) {
            return Some(found);
        }
        if let Some((prefix, bare)) = name.split_once('/') {
            if let Some(provider) = self.provider(prefix).filter(|p| p.name != prefix) {
                let listed =
                    |m: &&ModelEntry| m.id.split_once('/') == Some((provider.name.as_str(), bare));
                return self.models.iter().find(listed);
            }
        }
        self.models
            .iter()
            .find(|m| m.id.split_once('/').is_some_and(|(_, bare)| bare == name))
    }

    /// The provider whose listed models include `model` (a bare name).
    pub fn provider_listing(&self, model: &str) -> Option<&Provider> {
        self.models.iter().find_map(|m| {
            let (provider, name) = m.id.split_once('/')?;
            (name == model).then(|| self.provider(provider)).flatten()
        })
    }

    pub fn is_provider(&self, name: &str) -> bool {
        self.provider(name).is_some()
    }

    /// The dialect the provider `name` speaks, if it is one.
    pub fn provider_dialect(&self, name: &str) -> Option<crate::api::Dialect> {
        self.provider(name)
            .map(|p| crate::translate::dispatch::dialect_of(p.kind))
    }

    pub fn default_model(&self) -> Option<&str> {
        self.default_model.as_deref()
    }

    pub fn models(&self) -> &[ModelEntry] {
        &self.models
    }

    /// The `/v1/models` response body (OpenAI list shape).
    pub fn models_body(&self) -> &[u8] {
        &self.models_body
    }
}
