//! Token counting endpoints (`/v1/messages/count_tokens`, Gemini
//! `:countTokens`): asked of the provider's own counting endpoint where it
//! has one (Anthropic, Gemini), computed with the model's tokenizer where
//! it does not (OpenAI-compatible).

use serde_json::{json, Map, Value};

use crate::api::Dialect;
use crate::gateway::ProviderKind;
use crate::translate::canonical::ChatRequest;
use crate::translate::dispatch;

/// The provider's counting path (after its base path).
pub(crate) fn target(kind: ProviderKind, model: &str) -> String {
    match kind {
        ProviderKind::Anthropic => "/v1/messages/count_tokens".to_string(),
        ProviderKind::Gemini => format!("/v1beta/models/{model}:countTokens"),
        // Counted locally; never sent.
        ProviderKind::OpenAi => String::new(),
    }
}

/// Fields Anthropic's counting endpoint accepts; anything else (such as
/// `max_tokens` or `stream`) it rejects.
const ANTHROPIC_COUNT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
];

/// The counting request body. `native` is the client's own counting body
/// when the provider speaks the client's dialect: it goes as it came, with
/// the model renamed where the body names it.
pub(crate) fn body(
    kind: ProviderKind,
    model: &str,
    native: Option<&Map<String, Value>>,
    canonical: &ChatRequest,
) -> Vec<u8> {
    if let Some(body) = native {
        let mut body = body.clone();
        if kind == ProviderKind::Anthropic {
            body.insert("model".into(), Value::String(model.to_string()));
        }
        return serde_json::to_vec(&body).unwrap_or_default();
    }
    let mut req = canonical.clone();
    req.model = model.to_string();
    req.stream = false;
    let encoded: Map<String, Value> =
        match serde_json::from_slice(&dispatch::encode_request(kind, &req)) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
    let out = match kind {
        ProviderKind::Anthropic => Value::Object(
            encoded
                .into_iter()
                .filter(|(k, _)| ANTHROPIC_COUNT_FIELDS.contains(&k.as_str()))
                .collect(),
        ),
        // `countTokens` takes the whole generate request (the system
        // instruction and tools count too) under `generateContentRequest`.
        ProviderKind::Gemini => {
            let mut generate = encoded;
            generate.insert("model".into(), Value::String(format!("models/{model}")));
            json!({ "generateContentRequest": generate })
        }
        ProviderKind::OpenAi => return Vec::new(),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

/// The count in a provider's counting response.
pub(crate) fn read(kind: ProviderKind, body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match kind {
        ProviderKind::Anthropic => v.get("input_tokens")?.as_u64(),
        ProviderKind::Gemini => v.get("totalTokens")?.as_u64(),
        ProviderKind::OpenAi => None,
    }
}

/// A count in the client's dialect.
pub(crate) fn render(dialect: Dialect, tokens: u64) -> Vec<u8> {
    let v = match dialect {
        Dialect::Anthropic => json!({ "input_tokens": tokens }),
        Dialect::Google => json!({ "totalTokens": tokens }),
        Dialect::OpenAi | Dialect::Responses => json!({ "prompt_tokens": tokens }),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}
