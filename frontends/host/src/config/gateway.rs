//! The core's view of a config: limits, providers, the model list and
//! the price table.

use arouter_core::gateway::{Gateway, ModelEntry, Pricing, Provider, ProviderKind};

use super::providers::{default_base_url, upstream_addr};
use super::{Config, ConfigError};
use crate::{catalog, pricing};

impl Config {
    /// The core's view of this config: limits, providers, model list.
    pub fn gateway(&self) -> Result<Gateway, ConfigError> {
        let providers = self
            .providers
            .iter()
            .map(|p| {
                let official = p.base_url == default_base_url(p.kind);
                Ok(Provider {
                    name: p.name.clone(),
                    kind: p.kind,
                    official,
                    // Only OpenAI's own API serves `/responses`, unless the
                    // config says a compatible server does too.
                    responses: p.kind == ProviderKind::OpenAi && p.responses.unwrap_or(official),
                    addr: upstream_addr(p)?,
                    api_key: p.api_key.clone(),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let pricing = Pricing {
            prices: pricing::table(&self.providers, &self.pricing).map_err(ConfigError::Pricing)?,
            refuse_unpriced: self.refuse_unpriced_models,
        };
        Ok(Gateway::new(
            self.limits.clone(),
            providers,
            self.models(),
            self.default_model.clone(),
        )
        .with_pricing(pricing)
        .with_stored_responses(self.responses_retention_secs > 0)
        .with_always_include_usage(self.always_include_usage))
    }

    /// Each provider's configured models, or the shipped catalog for a
    /// vendor's own API configured without a list.
    fn models(&self) -> Vec<ModelEntry> {
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
        models
    }
}
