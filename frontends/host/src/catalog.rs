//! The shipped model catalog (`catalog/models.json`): which models
//! `/v1/models` lists per provider kind (their prices are in `pricing`).

use std::collections::BTreeMap;

use arouter_core::gateway::ProviderKind;
use serde::Deserialize;

const SHIPPED: &str = include_str!("../catalog/models.json");

/// A catalog row.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CatalogModel {
    pub id: String,
    #[serde(default)]
    pub created: u64,
    /// Shown by the Anthropic and Gemini model listings.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Context window and output cap, in tokens.
    #[serde(default)]
    pub input_tokens: Option<u32>,
    #[serde(default)]
    pub output_tokens: Option<u32>,
    #[serde(default)]
    pub embedding: bool,
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(flatten)]
    kinds: BTreeMap<String, serde_json::Value>,
}

/// The models shipped for a provider kind.
pub fn shipped(kind: ProviderKind) -> Vec<CatalogModel> {
    let Ok(file) = serde_json::from_str::<File>(SHIPPED) else {
        return Vec::new();
    };
    file.kinds
        .get(kind.as_str())
        .and_then(|rows| serde_json::from_value(rows.clone()).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_models() {
        for kind in [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
        ] {
            let models = shipped(kind);
            assert!(models.len() >= 3, "{kind:?} has {} models", models.len());
            for m in &models {
                assert!(!m.id.is_empty() && !m.id.contains('/'), "bad id {}", m.id);
            }
        }
    }
}
