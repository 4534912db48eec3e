//! Google error bodies: `{"error":{"code","message","status"}}`, also as
//! the sole element of a JSON-array stream.

use serde_json::Value;

use super::response::error_message;

pub fn decode_error(body: &[u8]) -> Option<String> {
    let root: Value = serde_json::from_slice(body).ok()?;
    let root = match &root {
        Value::Array(items) => items.iter().find(|v| v.get("error").is_some())?,
        other => other,
    };
    let err = root.get("error")?;
    match err {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => Some(error_message(err)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            decode_error(
                br#"{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}"#
            ),
            Some("models/x is not found".into())
        );
        assert_eq!(
            decode_error(
                br#"[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]"#
            ),
            Some("quota".into())
        );
        assert_eq!(
            decode_error(br#"{"error":{"code":500,"status":"INTERNAL"}}"#),
            Some("INTERNAL".into())
        );
        assert_eq!(decode_error(br#"{"error":"plain"}"#), Some("plain".into()));
        assert_eq!(decode_error(b"<html>502</html>"), None);
        assert_eq!(decode_error(br#"{"candidates":[]}"#), None);
        assert_eq!(decode_error(br#"{"error":7}"#), None);
    }
}
