//! What the proxy reads from a request body to plan and bill the call:
//! the model, whether a stream was asked for (and with a usage report),
//! and the output cap. A body the gateway holds whole is parsed
//! ([`BodyFacts::from_json`]); one that streams to the provider is read on
//! the side as it goes ([`super::scan::FieldScanner`]), to the same facts.

use serde_json::Value;

/// The fields of a body that the proxy acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BodyFacts {
    /// `model`, when a string.
    pub model: Option<String>,
    /// `stream: true`.
    pub stream: bool,
    /// `max_tokens`, `max_completion_tokens` or `max_output_tokens` (the
    /// first present, in that order), else `generationConfig.maxOutputTokens`.
    pub max_output: Option<u64>,
    /// `stream_options.include_usage: true`.
    pub asks_usage: bool,
}

/// The output-cap fields, in the order they are looked up.
pub(super) const OUTPUT_CAPS: [&str; 3] =
    ["max_tokens", "max_completion_tokens", "max_output_tokens"];

impl BodyFacts {
    /// The facts of a whole body; a body that is not a JSON object has none.
    pub(crate) fn from_json(body: &[u8]) -> BodyFacts {
        let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(body) else {
            return BodyFacts::default();
        };
        let field = |name: &str| json.get(name);
        BodyFacts {
            model: field("model").and_then(Value::as_str).map(str::to_owned),
            stream: field("stream").and_then(Value::as_bool) == Some(true),
            max_output: OUTPUT_CAPS
                .into_iter()
                .find_map(|name| field(name).and_then(Value::as_u64))
                .or_else(|| {
                    field("generationConfig")
                        .and_then(|c| c.get("maxOutputTokens"))
                        .and_then(Value::as_u64)
                }),
            asks_usage: field("stream_options")
                .and_then(|o| o.get("include_usage"))
                .and_then(Value::as_bool)
                == Some(true),
        }
    }
}
