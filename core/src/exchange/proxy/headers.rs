//! Which headers cross the proxy. Hop-by-hop headers (RFC 9110 §7.6.1)
//! and those the `Connection` header names stay on their hop; framing is
//! redone on each side. Every credential the client sent is dropped (the
//! provider's own is added by the caller), and the upstream is asked for
//! an identity encoding so its usage can be read on the side.

use http::HeaderMap;

/// Headers that belong to one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers the gateway sets itself or that carry the client's
/// ARouter key.
const REQUEST_OWN: &[&str] = &[
    "host",
    "content-length",
    "expect",
    "accept-encoding",
    "authorization",
    "x-api-key",
    "x-goog-api-key",
];

/// Response headers the gateway sets itself on the relayed answer.
const RESPONSE_OWN: &[&str] = &[
    "content-length",
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

/// Whether a header stays on its hop: a hop-by-hop one, a `Proxy-*` one,
/// or one the message's `Connection` header names.
fn hop_only(name: &str, connection: &[String]) -> bool {
    HOP_BY_HOP.contains(&name)
        || name.starts_with("proxy-")
        || connection.iter().any(|listed| listed == name)
}

/// The names a `Connection` header lists, lower-cased.
fn connection_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The client's headers that go to the provider, in order. Values that
/// are not visible ASCII (obsolete `obs-text`) are dropped: they cannot be
/// written back faithfully as text.
/// A malformed `traceparent` is dropped, not forwarded (`crate::trace`).
pub(crate) fn forwarded_request(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut kept = kept(headers, REQUEST_OWN);
    kept.retain(|(name, value)| {
        !name.eq_ignore_ascii_case("traceparent") || crate::trace::traceparent(value).is_some()
    });
    kept
}

/// The provider's response headers that go to the client. The provider's
/// own `x-request-id` (OpenAI's, which its support asks for) is kept as
/// `x-upstream-request-id`: `X-Request-Id` is the gateway's, as on every
/// route.
pub(crate) fn forwarded_response(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut kept = kept(headers, RESPONSE_OWN);
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        kept.push(("x-upstream-request-id".to_string(), id.to_string()));
    }
    kept
}

fn kept(headers: &HeaderMap, own: &[&str]) -> Vec<(String, String)> {
    let connection = connection_names(headers);
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !hop_only(name, &connection) && !own.contains(&name)
        })
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            Some((name.as_str().to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, http::HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_behind() {
        let headers = map(&[
            ("host", "gateway"),
            ("authorization", "Bearer sk-or-client"),
            ("x-api-key", "sk-or-client"),
            ("x-goog-api-key", "sk-or-client"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("proxy-authorization", "Basic abc"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("transfer-encoding", "chunked"),
            ("content-length", "12"),
            ("accept-encoding", "gzip"),
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("openai-beta", "assistants=v2"),
        ]);
        assert_eq!(
            forwarded_request(&headers),
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("anthropic-version".to_string(), "2023-06-01".to_string()),
                ("openai-beta".to_string(), "assistants=v2".to_string()),
            ]
        );
    }

    #[test]
    fn the_response_keeps_the_providers_headers_but_not_its_framing() {
        let headers = map(&[
            ("content-type", "text/event-stream"),
            ("transfer-encoding", "chunked"),
            ("content-length", "5"),
            ("connection", "close"),
            ("x-request-id", "req_up"),
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-remaining-requests", "99"),
            ("retry-after", "2"),
        ]);
        assert_eq!(
            forwarded_response(&headers),
            vec![
                ("content-type".to_string(), "text/event-stream".to_string()),
                (
                    "x-ratelimit-remaining-requests".to_string(),
                    "99".to_string()
                ),
                ("retry-after".to_string(), "2".to_string()),
                ("x-upstream-request-id".to_string(), "req_up".to_string()),
            ]
        );
    }
}
