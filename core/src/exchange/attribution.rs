//! Attribution headers, recorded on every transaction: `HTTP-Referer`,
//! and the app's title from `X-OpenRouter-Title` (the name OpenRouter's
//! SDKs send today) or else `X-Title`. They are the client's text, so they
//! are bounded and cleaned before they are stored.

use http::header::HeaderName;

use crate::http1::RequestHead;

// Names, not `&str`s: a header map parses a `&str` into a name on every
// lookup.
static HTTP_REFERER: HeaderName = HeaderName::from_static("http-referer");
static OPENROUTER_TITLE: HeaderName = HeaderName::from_static("x-openrouter-title");
static TITLE: HeaderName = HeaderName::from_static("x-title");

/// The most characters kept of an attribution header.
pub const MAX_CHARS: usize = 256;

/// The `HTTP-Referer` to record.
pub(crate) fn referer(head: &RequestHead) -> Option<String> {
    head.header(&HTTP_REFERER).and_then(clean)
}

/// The app title to record: `X-OpenRouter-Title` wins over `X-Title`.
pub(crate) fn title(head: &RequestHead) -> Option<String> {
    head.header(&OPENROUTER_TITLE)
        .and_then(clean)
        .or_else(|| head.header(&TITLE).and_then(clean))
}

/// Control characters dropped, spaces trimmed, at most [`MAX_CHARS`];
/// `None` when nothing is left.
fn clean(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.len() <= MAX_CHARS && !value.chars().any(char::is_control) {
        // The common case: one copy, sized at once.
        return Some(value.to_owned());
    }
    let cleaned: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_without_control_characters() {
        assert_eq!(clean("  My App "), Some("My App".into()));
        assert_eq!(clean("a\u{7}b\tc"), Some("abc".into()));
        assert_eq!(clean(" \t "), None);
        assert_eq!(clean("\u{1}"), None);
        let long = "é".repeat(MAX_CHARS + 10);
        assert_eq!(clean(&long).unwrap().chars().count(), MAX_CHARS);
    }
}
