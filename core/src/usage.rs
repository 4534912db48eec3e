//! Token usage as reported by an upstream, in one shape for every dialect.

use serde_json::Value;

/// What a response consumed. `prompt_tokens` includes cached and
/// cache-write tokens (OpenAI's convention); the details say how many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl Usage {
    /// Reads an OpenAI `usage` object (chat or embeddings).
    pub fn from_openai(v: &Value) -> Option<Usage> {
        if !v.is_object() {
            return None;
        }
        let prompt = v.get("prompt_tokens_details").unwrap_or(&Value::Null);
        let completion = v.get("completion_tokens_details").unwrap_or(&Value::Null);
        Some(Usage {
            prompt_tokens: count(v, "prompt_tokens"),
            completion_tokens: count(v, "completion_tokens"),
            cached_tokens: count(prompt, "cached_tokens"),
            cache_write_tokens: count(prompt, "cache_write_tokens"),
            reasoning_tokens: count(completion, "reasoning_tokens"),
        })
    }

    /// Saturating: the counts are a provider's, and may be absurd.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}
