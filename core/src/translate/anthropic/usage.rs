//! Anthropic usage counters <-> canonical usage.
//!
//! Anthropic reports `input_tokens` WITHOUT the cached and cache-write
//! tokens; canonical `prompt_tokens` includes them (OpenAI's convention), so
//! the two directions add and subtract the cache counters.

use serde_json::{Map, Value};

use crate::usage::Usage;

/// Anthropic's counters as reported; `None` when a report left one out, so
/// a later partial report (a stream's `message_delta`) only overrides what
/// it actually carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawUsage {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_creation: Option<u64>,
}

impl RawUsage {
    /// Reads an Anthropic `usage` object; `None` when it is not an object.
    pub fn from_value(v: &Value) -> Option<RawUsage> {
        let obj = v.as_object()?;
        let get = |k: &str| obj.get(k).and_then(Value::as_u64);
        Some(RawUsage {
            input: get("input_tokens"),
            output: get("output_tokens"),
            cache_read: get("cache_read_input_tokens"),
            cache_creation: get("cache_creation_input_tokens"),
        })
    }

    /// Fields present in `later` replace ours.
    pub fn merge(&mut self, later: &RawUsage) {
        let pick = |a: &mut Option<u64>, b: Option<u64>| {
            if b.is_some() {
                *a = b;
            }
        };
        pick(&mut self.input, later.input);
        pick(&mut self.output, later.output);
        pick(&mut self.cache_read, later.cache_read);
        pick(&mut self.cache_creation, later.cache_creation);
    }

    pub fn to_canonical(self) -> Usage {
        let cache_read = self.cache_read.unwrap_or(0);
        let cache_creation = self.cache_creation.unwrap_or(0);
        Usage {
            prompt_tokens: self
                .input
                .unwrap_or(0)
                .saturating_add(cache_read)
                .saturating_add(cache_creation),
            completion_tokens: self.output.unwrap_or(0),
            cached_tokens: cache_read,
            cache_write_tokens: cache_creation,
            // Anthropic bills thinking as output and does not break it out.
            reasoning_tokens: 0,
        }
    }
}

/// Canonical usage -> an Anthropic `usage` object.
pub(crate) fn usage_object(u: &Usage) -> Map<String, Value> {
    let input = u
        .prompt_tokens
        .saturating_sub(u.cached_tokens)
        .saturating_sub(u.cache_write_tokens);
    let mut m = Map::new();
    m.insert("input_tokens".into(), input.into());
    m.insert(
        "cache_creation_input_tokens".into(),
        u.cache_write_tokens.into(),
    );
    m.insert("cache_read_input_tokens".into(), u.cached_tokens.into());
    m.insert("output_tokens".into(), u.completion_tokens.into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_includes_cache_counters_and_back() {
        let raw = RawUsage::from_value(&json!({
            "input_tokens": 10, "output_tokens": 7,
            "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20
        }))
        .unwrap_or_default();
        let u = raw.to_canonical();
        assert_eq!(u.prompt_tokens, 130);
        assert_eq!(u.cached_tokens, 100);
        assert_eq!(u.cache_write_tokens, 20);
        assert_eq!(u.completion_tokens, 7);
        let back = usage_object(&u);
        assert_eq!(back.get("input_tokens"), Some(&json!(10)));
        assert_eq!(back.get("cache_read_input_tokens"), Some(&json!(100)));
        assert_eq!(back.get("cache_creation_input_tokens"), Some(&json!(20)));
        assert_eq!(back.get("output_tokens"), Some(&json!(7)));
    }

    #[test]
    fn partial_report_keeps_earlier_fields() {
        let mut raw =
            RawUsage::from_value(&json!({"input_tokens": 5, "cache_read_input_tokens": 3}))
                .unwrap_or_default();
        raw.merge(&RawUsage::from_value(&json!({"output_tokens": 9})).unwrap_or_default());
        assert_eq!(raw.to_canonical().prompt_tokens, 8);
        assert_eq!(raw.to_canonical().completion_tokens, 9);
        assert!(RawUsage::from_value(&json!(3)).is_none());
    }

    #[test]
    fn inconsistent_canonical_usage_saturates() {
        let u = Usage {
            prompt_tokens: 1,
            cached_tokens: 5,
            ..Usage::default()
        };
        assert_eq!(usage_object(&u).get("input_tokens"), Some(&json!(0)));
    }
}
