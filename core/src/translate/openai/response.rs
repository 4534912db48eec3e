//! OpenAI-compatible responses normalized for the client: finish reasons in
//! OpenAI's five values with the provider's own kept, the model named as
//! `provider/model`, usage read for billing and priced as `usage.cost`.

use serde_json::{Map, Value};

use crate::billing::Price;
use crate::translate::finish::FinishReason;
use crate::usage::Usage;

/// Rewrites `model` to `provider/model` (the served model as the upstream
/// named it, so a client sees which fallback answered).
pub fn prefix_model(obj: &mut Map<String, Value>, provider: &str, requested: &str) {
    let served = obj
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(requested);
    let slug = Value::String(format!("{provider}/{served}"));
    // Replaced in place when present: a new key would cost an allocation.
    match obj.get_mut("model") {
        Some(model) => *model = slug,
        None => {
            obj.insert("model".into(), slug);
        }
    }
}

/// Normalizes one choice's `finish_reason`, keeping the provider's word as
/// `native_finish_reason`. `final_choice` says a missing reason must be
/// filled in (a non-stream response always ends its choices).
pub fn normalize_finish(choice: &mut Map<String, Value>, final_choice: bool, saw_tool_calls: bool) {
    let native = match choice.get("finish_reason") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let normalized = match &native {
        Some(n) => Some(FinishReason::normalize(n)),
        None if final_choice => Some(if saw_tool_calls {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        }),
        None => None,
    };
    if let Some(reason) = normalized {
        let word = Value::String(reason.as_str().into());
        // In place when present, as for `model` above.
        match choice.get_mut("finish_reason") {
            Some(slot) => *slot = word,
            None => {
                choice.insert("finish_reason".into(), word);
            }
        }
        if !choice.contains_key("native_finish_reason") {
            choice.insert(
                "native_finish_reason".into(),
                native.map_or(Value::Null, Value::String),
            );
        }
    }
}

/// A non-stream chat completion, normalized. `None` when the body is not a
/// JSON object (the caller passes such bodies through untouched).
pub fn normalize_chat(
    body: &[u8],
    provider: &str,
    requested: &str,
    price: &Price,
) -> Option<NormalizedChat> {
    // One pass, reading and writing at once; the tree where it cannot.
    super::chat_rewrite::rewrite_chat(body, provider, requested, price)
        .ok()
        .or_else(|| normalize_chat_tree(body, provider, requested, price))
}

/// `normalize_chat` through a `serde_json::Value`: the reference the one
/// pass is held to, and what answers it cannot follow take.
pub(crate) fn normalize_chat_tree(
    body: &[u8],
    provider: &str,
    requested: &str,
    price: &Price,
) -> Option<NormalizedChat> {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    prefix_model(&mut obj, provider, requested);
    if let Some(Value::Array(choices)) = obj.get_mut("choices") {
        for choice in choices.iter_mut() {
            if let Value::Object(choice) = choice {
                let saw_tools = choice
                    .get("message")
                    .and_then(|m| m.get("tool_calls"))
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                normalize_finish(choice, true, saw_tools);
            }
        }
    }
    let usage = priced_usage(&mut obj, price);
    let mut value = Value::Object(obj);
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    // The id the client sees, moved out of the parsed answer once it is
    // written: no copy.
    let id = match value.get_mut("id").map(Value::take) {
        Some(Value::String(id)) if !id.is_empty() => Some(id),
        _ => None,
    };
    Some(NormalizedChat { bytes, usage, id })
}

/// A chat answer as the client gets it, with what billing reads from it.
#[derive(Debug)]
pub struct NormalizedChat {
    pub bytes: Vec<u8>,
    pub usage: Option<Usage>,
    /// The answer's `id`, when it has one.
    pub id: Option<String>,
}

/// An embeddings response: model prefixed, usage read and priced.
pub fn normalize_embeddings(
    body: &[u8],
    provider: &str,
    requested: &str,
    price: &Price,
) -> Option<(Vec<u8>, Option<Usage>)> {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    prefix_model(&mut obj, provider, requested);
    let usage = priced_usage(&mut obj, price);
    Some((
        serde_json::to_vec(&Value::Object(obj)).unwrap_or_default(),
        usage,
    ))
}

/// Reads the answer's `usage` and sets its `cost` (USD, OpenRouter's
/// field) to what it costs at `price`, replacing any `cost` an upstream
/// router reported: the client pays this gateway's price.
pub fn priced_usage(obj: &mut Map<String, Value>, price: &Price) -> Option<Usage> {
    let value = obj.get_mut("usage")?;
    let usage = Usage::from_openai(value)?;
    if let Value::Object(fields) = value {
        fields.insert("cost".into(), Value::from(price.cost(&usage).as_usd()));
    }
    Some(usage)
}
