//! Anthropic error bodies: `{"type":"error","error":{"type","message"}}`.

use serde_json::Value;

/// The human message of an Anthropic error body; the error type when the
/// message is missing; `None` when the body is not an error at all.
pub fn decode_error(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    error_message(value.get("error")?)
}

/// The message of an `error` object (shared with the stream's `error` event).
pub(crate) fn error_message(error: &Value) -> Option<String> {
    let field = |k: &str| {
        error
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    field("message").or_else(|| field("type"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_then_type() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(decode_error(body).as_deref(), Some("Overloaded"));
        let body = br#"{"type":"error","error":{"type":"overloaded_error"}}"#;
        assert_eq!(decode_error(body).as_deref(), Some("overloaded_error"));
        assert_eq!(decode_error(b"not json"), None);
        assert_eq!(decode_error(br#"{"type":"message"}"#), None);
        assert_eq!(decode_error(br#"{"error":"flat"}"#), None);
    }
}
