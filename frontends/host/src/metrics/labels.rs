//! Label values, bounded: providers are the configured ones, models those
//! of the gateway's catalog and config; any other model name (a client's
//! typo, a proxied path) folds into `other`, so no client can grow the
//! number of series. No label carries a key, a key id or a request id.

use arouter_core::gateway::Gateway;
use arouter_core::name_map::NameMap;

/// A request's model as a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelLabel {
    /// The request named no model (management, listings, rejections).
    None,
    /// A model outside the catalog.
    Other,
    /// An index into `Labels::models`.
    Known(u32),
}

pub struct Labels {
    providers: Vec<String>,
    provider_index: NameMap<String, usize>,
    /// The model part of each catalog id (`provider/model`).
    models: Vec<String>,
    /// Provider name, then model name: looked up without allocating.
    model_index: NameMap<String, NameMap<String, u32>>,
}

impl Labels {
    pub fn new(gateway: &Gateway) -> Labels {
        let providers: Vec<String> = gateway.providers().iter().map(|p| p.name.clone()).collect();
        let provider_index = providers
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        let mut models = Vec::new();
        let mut model_index: NameMap<String, NameMap<String, u32>> = NameMap::default();
        for entry in gateway.models() {
            let Some((provider, name)) = entry.id.split_once('/') else {
                continue;
            };
            let Ok(i) = u32::try_from(models.len()) else {
                break;
            };
            let by_name = model_index.entry(provider.to_string()).or_default();
            if !by_name.contains_key(name) {
                by_name.insert(name.to_string(), i);
                models.push(name.to_string());
            }
        }
        Labels {
            providers,
            provider_index,
            models,
            model_index,
        }
    }

    pub fn provider_count(&self) -> usize {
        self.providers.len()
    }

    /// The provider and model of a `provider/model` id.
    pub fn of(&self, id: Option<&str>) -> (Option<usize>, ModelLabel) {
        match id.map(|id| id.split_once('/')) {
            None => (None, ModelLabel::None),
            Some(None) => (None, ModelLabel::Other),
            Some(Some((provider, model))) => self.of_parts(provider, model),
        }
    }

    /// The provider and model labels of a provider's name and a model's.
    pub fn of_parts(&self, provider: &str, model: &str) -> (Option<usize>, ModelLabel) {
        let index = self.provider_index.get(provider).copied();
        let model = self
            .model_index
            .get(provider)
            .and_then(|by_name| by_name.get(model))
            .map_or(ModelLabel::Other, |&i| ModelLabel::Known(i));
        (index, model)
    }

    /// The label of provider `index`; `none` for the gateway's own answers.
    pub fn provider(&self, index: Option<usize>) -> &str {
        index
            .and_then(|i| self.providers.get(i))
            .map_or("none", String::as_str)
    }

    pub fn model(&self, model: ModelLabel) -> &str {
        match model {
            ModelLabel::None => "none",
            ModelLabel::Other => "other",
            ModelLabel::Known(i) => self.models.get(i as usize).map_or("other", String::as_str),
        }
    }
}
