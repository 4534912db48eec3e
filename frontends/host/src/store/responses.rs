//! Stored Responses API answers: each with the conversation it was made
//! from (its input items, earlier turns included) and its output items
//! indexed by id, for `item_reference`. A response belongs to the key
//! that made it; nothing past its expiry is found.

use arouter_core::stored::{Kept, Recall, Recalled};
use serde_json::Value;

use super::StoreError;

pub trait ResponseStore: Send + Sync {
    /// Keeps `kept` until `expires_at`, in place of one its owner kept
    /// under the same id before.
    fn keep_response(&self, kept: &Kept, expires_at: i64) -> Result<(), StoreError>;
    /// What `recall` refers to, for its owner, at `now`.
    fn recall_responses(&self, recall: &Recall, now: i64) -> Result<Recalled, StoreError>;
    /// The `response` object `owner` kept under `id`.
    fn stored_response(
        &self,
        id: &str,
        owner: Option<i64>,
        now: i64,
    ) -> Result<Option<Value>, StoreError>;
    /// The input items of the response `owner` kept under `id`, in order.
    fn stored_input(
        &self,
        id: &str,
        owner: Option<i64>,
        now: i64,
    ) -> Result<Option<Vec<Value>>, StoreError>;
    /// Deletes the response; whether `owner` had one with this id.
    fn delete_response(&self, id: &str, owner: Option<i64>, now: i64) -> Result<bool, StoreError>;
    /// Deletes every response expired at `now`; how many.
    fn purge_responses(&self, now: i64) -> Result<u64, StoreError>;
}

pub(crate) fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

pub(crate) fn parse(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(e.to_string()))
}

/// The output items of a `response` object.
pub(crate) fn output_of(response: &Value) -> Vec<Value> {
    response
        .get("output")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
