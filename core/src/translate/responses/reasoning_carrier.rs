//! A provider's reasoning signature carried through a Responses client.
//!
//! Anthropic requires its signed thinking back on the next turn of a tool
//! loop; Responses clients hand reasoning items back verbatim, and the
//! item's opaque `encrypted_content` is the field made for it. The gateway
//! writes a marked value there, so it can tell its own carrier from
//! OpenAI's encrypted reasoning (which no other provider can read).

const SIGNED: &str = "arouter.sig:";
const REDACTED: &str = "arouter.redacted:";

/// The `encrypted_content` for a reasoning part, if it has anything a
/// provider must get back.
pub fn encode(signature: Option<&str>, redacted: Option<&str>) -> Option<String> {
    match (redacted, signature) {
        (Some(data), _) => Some(format!("{REDACTED}{data}")),
        (None, Some(sig)) if !sig.is_empty() => Some(format!("{SIGNED}{sig}")),
        _ => None,
    }
}

/// `(signature, redacted)` from a carrier the gateway wrote; `None` for
/// anything else.
pub fn decode(content: &str) -> Option<(Option<String>, Option<String>)> {
    if let Some(sig) = content.strip_prefix(SIGNED) {
        Some((Some(sig.to_owned()), None))
    } else {
        content
            .strip_prefix(REDACTED)
            .map(|data| (None, Some(data.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_foreign_content() {
        let sig = encode(Some("EqQBCkYI"), None).unwrap_or_default();
        assert_eq!(decode(&sig), Some((Some("EqQBCkYI".into()), None)));
        let red = encode(None, Some("opaque")).unwrap_or_default();
        assert_eq!(decode(&red), Some((None, Some("opaque".into()))));
        assert_eq!(encode(None, None), None);
        assert_eq!(decode("gAAAAABo-openai-encrypted"), None);
    }
}
