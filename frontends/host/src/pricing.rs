//! The price table the gateway bills at: the shipped list prices
//! (`data/prices.toml`) for the vendors' own providers, with the config's
//! `[pricing."provider/model"]` tables on top; and the warning, once per
//! model, that a model with no price is being served for free.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use arouter_core::billing::{Price, PriceTable, UsdPerMtok};
use arouter_core::gateway::GOOGLE_ALIAS;
use serde::Deserialize;

use crate::config::ProviderConfig;

const SHIPPED: &str = include_str!("../data/prices.toml");

/// `data/prices.toml`. Every row states all five prices, so what is billed
/// can be read off the file without knowing any defaults. `as_of` and
/// `sources` are for people (and the test that insists on them); billing
/// reads only `models`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ShippedFile {
    /// The day the figures were checked against `sources`.
    as_of: String,
    /// The vendors' pricing pages, by provider kind.
    sources: BTreeMap<String, String>,
    /// `kind/model` -> prices.
    models: BTreeMap<String, ShippedRow>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedRow {
    input: f64,
    output: f64,
    cached_input: f64,
    cache_write: f64,
    reasoning: f64,
    /// The most tokens the model writes in one answer, where the vendor
    /// documents it: what a reservation assumes for a request with no
    /// output cap (else `billing::DEFAULT_OUTPUT_CAP`).
    #[serde(default)]
    max_output: Option<u64>,
}

impl From<ShippedRow> for UsdPerMtok {
    fn from(r: ShippedRow) -> UsdPerMtok {
        UsdPerMtok {
            input: r.input,
            output: r.output,
            cached_input: Some(r.cached_input),
            cache_write: Some(r.cache_write),
            reasoning: Some(r.reasoning),
        }
    }
}

/// One `[pricing."provider/model"]` table, in USD per million tokens. A
/// field left out keeps the shipped price; for a model with no shipped
/// price, `input` and `output` are required and the others default to what
/// vendors bill them as (cached input and cache writes as input, reasoning
/// as output).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
    pub reasoning: Option<f64>,
    /// Output tokens a reservation assumes when a request sets no cap.
    pub max_output: Option<u64>,
}

/// The shipped rows, by `kind/model`. The file is part of the binary and a
/// test parses it, so a failure here is a build that was never tested.
fn shipped() -> BTreeMap<String, ShippedRow> {
    match toml::from_str::<ShippedFile>(SHIPPED) {
        Ok(file) => file.models,
        Err(e) => {
            log::error!("the shipped price table does not parse ({e}); no model has a price");
            BTreeMap::new()
        }
    }
}

/// The price table for these providers: shipped prices for the vendors'
/// own providers, then every `[pricing."provider/model"]` of the config.
pub fn table(
    providers: &[ProviderConfig],
    overrides: &BTreeMap<String, PriceOverride>,
) -> Result<PriceTable, String> {
    let shipped = shipped();
    let mut table = PriceTable::default();
    for p in providers.iter().filter(|p| p.is_vendor()) {
        let prefix = format!("{}/", p.kind.as_str());
        for (key, row) in shipped.range(prefix.clone()..) {
            let Some(model) = key.strip_prefix(&prefix) else {
                break;
            };
            let price = Price::from_usd_per_mtok((*row).into())
                .map_err(|e| format!("shipped price of `{key}`: {e}"))?;
            table.insert(&p.name, model, price);
            if let Some(cap) = row.max_output {
                table.insert_output_cap(&p.name, model, cap);
            }
        }
    }
    for (key, o) in overrides {
        let (named, model) = key
            .split_once('/')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
            .ok_or_else(|| format!("[pricing.\"{key}\"]: the key must be \"provider/model\""))?;
        let provider = resolve_alias(providers, named);
        let base = providers
            .iter()
            .find(|p| p.name == provider && p.is_vendor())
            .and_then(|p| shipped.get(&format!("{}/{model}", p.kind.as_str())));
        let usd = merge(base.map(|row| (*row).into()), o)
            .ok_or_else(|| format!("[pricing.\"{key}\"]: `input` and `output` are required for a model with no shipped price"))?;
        let price =
            Price::from_usd_per_mtok(usd).map_err(|e| format!("[pricing.\"{key}\"]: {e}"))?;
        table.insert(provider, model, price);
        if let Some(cap) = o.max_output.or(base.and_then(|row| row.max_output)) {
            table.insert_output_cap(provider, model, cap);
        }
    }
    Ok(table)
}

/// `google/…` names the provider called `gemini` unless one is called
/// `google`, as routing reads it.
fn resolve_alias<'a>(providers: &[ProviderConfig], name: &'a str) -> &'a str {
    if name == GOOGLE_ALIAS && !providers.iter().any(|p| p.name == GOOGLE_ALIAS) {
        "gemini"
    } else {
        name
    }
}

/// The override's fields over the shipped row; `None` when there is no row
/// and the override lacks `input` or `output`.
fn merge(base: Option<UsdPerMtok>, o: &PriceOverride) -> Option<UsdPerMtok> {
    let base = match base {
        Some(b) => b,
        None => UsdPerMtok {
            input: o.input?,
            output: o.output?,
            ..UsdPerMtok::default()
        },
    };
    Some(UsdPerMtok {
        input: o.input.unwrap_or(base.input),
        output: o.output.unwrap_or(base.output),
        cached_input: o.cached_input.or(base.cached_input),
        cache_write: o.cache_write.or(base.cache_write),
        reasoning: o.reasoning.or(base.reasoning),
    })
}

/// Says once per `provider/model` that a model with no price was served
/// for free, so an operator learns of a missing price without a log line
/// per request.
#[derive(Debug, Default)]
pub struct UnpricedWarnings {
    seen: Mutex<HashSet<String>>,
}

impl UnpricedWarnings {
    /// Notes that `provider/model` was billed without a price; `true` the
    /// first time (when the warning is logged).
    pub fn note(&self, provider: &str, model: &str) -> bool {
        let key = format!("{provider}/{model}");
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen.contains(&key) {
            return false;
        }
        log::warn!(
            "model `{key}` has no price: its calls are billed at 0; \
             add [pricing.\"{key}\"] to the config, or set refuse_unpriced_models = true"
        );
        seen.insert(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use arouter_core::gateway::ProviderKind;

    use super::*;
    use crate::catalog;

    fn provider(name: &str, kind: ProviderKind, base_url: &str) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            kind,
            base_url: base_url.into(),
            api_key: None,
            models: Vec::new(),
            ca_file: None,
            responses: None,
            key_var: None,
        }
    }

    fn vendors() -> Vec<ProviderConfig> {
        vec![
            provider("openai", ProviderKind::OpenAi, "https://api.openai.com/v1"),
            provider("anthropic", ProviderKind::Anthropic, "http://127.0.0.1:1"),
            provider("gemini", ProviderKind::Gemini, "http://127.0.0.1:2"),
        ]
    }

    #[test]
    fn the_shipped_file_prices_every_catalog_model_and_states_its_sources() {
        let file: ShippedFile = toml::from_str(SHIPPED).expect("prices.toml parses");
        let date = file.as_of.as_bytes();
        assert!(
            date.len() == 10 && date[4] == b'-' && date[7] == b'-',
            "as_of is a YYYY-MM-DD date: {}",
            file.as_of
        );
        let table = table(&vendors(), &BTreeMap::new()).expect("valid prices");
        for kind in [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
        ] {
            assert!(
                file.sources
                    .get(kind.as_str())
                    .is_some_and(|url| url.starts_with("https://")),
                "no source for {kind:?}"
            );
            for m in catalog::shipped(kind) {
                let price = table.get(kind.as_str(), &m.id);
                assert!(
                    price.is_some_and(|p| p.input > 0),
                    "{}/{} has no input price",
                    kind.as_str(),
                    m.id
                );
                if !m.embedding {
                    assert!(
                        price.is_some_and(|p| p.output > 0),
                        "{} has no output price",
                        m.id
                    );
                }
            }
        }
        // Every row names a catalog model: no price for a model nobody lists.
        assert_eq!(table.len(), file.models.len());
    }

    #[test]
    fn shipped_prices_are_read_exactly() {
        let table = table(&vendors(), &BTreeMap::new()).expect("valid prices");
        assert_eq!(
            table.get("anthropic", "claude-sonnet-4-5"),
            Some(Price {
                input: 3_000_000,
                output: 15_000_000,
                cached_input: 300_000,
                cache_write: 3_750_000,
                reasoning: 15_000_000,
            })
        );
        assert_eq!(
            table.get("openai", "gpt-5-nano").map(|p| p.cached_input),
            Some(5_000)
        );
    }

    #[test]
    fn only_the_vendors_own_providers_get_shipped_prices() {
        let providers = vec![
            provider("local", ProviderKind::OpenAi, "http://127.0.0.1:11434/v1"),
            provider("direct", ProviderKind::OpenAi, "https://api.openai.com/v1"),
        ];
        let table = table(&providers, &BTreeMap::new()).expect("valid prices");
        assert_eq!(table.get("local", "gpt-4o"), None);
        assert!(table.get("direct", "gpt-4o").is_some());
    }

    #[test]
    fn overrides_replace_fields_and_price_new_models() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "openai/gpt-4o".to_string(),
            PriceOverride {
                output: Some(12.0),
                ..PriceOverride::default()
            },
        );
        overrides.insert(
            "local/llama3".to_string(),
            PriceOverride {
                input: Some(0.1),
                output: Some(0.2),
                ..PriceOverride::default()
            },
        );
        overrides.insert(
            "google/gemini-2.5-flash".to_string(),
            PriceOverride {
                cached_input: Some(0.0),
                ..PriceOverride::default()
            },
        );
        let table = table(&vendors(), &overrides).expect("valid prices");
        let gpt4o = table.get("openai", "gpt-4o").expect("priced");
        assert_eq!((gpt4o.input, gpt4o.output), (2_500_000, 12_000_000));
        assert_eq!(
            table.get("local", "llama3"),
            Some(Price {
                input: 100_000,
                output: 200_000,
                cached_input: 100_000,
                cache_write: 100_000,
                reasoning: 200_000,
            })
        );
        let flash = table.get("gemini", "gemini-2.5-flash").expect("priced");
        assert_eq!((flash.input, flash.cached_input), (300_000, 0));
        // Output caps: shipped ones kept through an override of the price,
        // none for a model the shipped table does not know.
        assert_eq!(table.output_cap("openai", "gpt-4o"), Some(16_384));
        assert_eq!(table.output_cap("local", "llama3"), None);
    }

    #[test]
    fn an_override_sets_a_models_output_cap() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "openai/gpt-4o".to_string(),
            PriceOverride {
                max_output: Some(2_000),
                ..PriceOverride::default()
            },
        );
        let table = table(&vendors(), &overrides).expect("valid prices");
        assert_eq!(table.output_cap("openai", "gpt-4o"), Some(2_000));
        assert_eq!(table.output_cap("openai", "gpt-5"), Some(128_000));
    }

    #[test]
    fn bad_overrides_are_refused_with_their_key() {
        let one = |key: &str, o: PriceOverride| {
            let mut overrides = BTreeMap::new();
            overrides.insert(key.to_string(), o);
            table(&vendors(), &overrides).expect_err("refused")
        };
        let input_only = PriceOverride {
            input: Some(1.0),
            ..PriceOverride::default()
        };
        assert!(one("gpt-4o", input_only.clone()).contains("\"provider/model\""));
        assert!(one("local/m", input_only).contains("`output` are required"));
        let negative = PriceOverride {
            input: Some(-1.0),
            ..PriceOverride::default()
        };
        let err = one("openai/gpt-4o", negative);
        assert!(
            err.contains("openai/gpt-4o") && err.contains("`input`"),
            "{err}"
        );
    }

    #[test]
    fn an_unpriced_model_is_noted_once() {
        let warnings = UnpricedWarnings::default();
        assert!(warnings.note("local", "m"));
        assert!(!warnings.note("local", "m"));
        assert!(warnings.note("local", "other"));
    }
}
