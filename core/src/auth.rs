//! Credential extraction. Only *finding* the key happens here; checking it
//! (hash lookup, constant-time compare) is the host's job, asked through
//! `Output::Admit`.
//!
//! Precedence, first present wins: `Authorization: Bearer`, `X-Api-Key`,
//! `x-goog-api-key`, then the `key` query parameter. The order follows how
//! specific each form is to us: SDKs for OpenAI send Bearer, Anthropic's
//! SDK sends X-Api-Key, Google's sends x-goog-api-key or `?key=`.

use std::borrow::Cow;

use http::HeaderMap;

use crate::api::endpoint::percent_decode;

/// Where a credential was found, for logs (never the key itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    Bearer,
    XApiKey,
    GoogApiKey,
    QueryKey,
}

/// A presented API key. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    pub source: CredentialSource,
    pub secret: Cow<'a, str>,
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("source", &self.source)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why no usable credential was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No credential in any accepted place.
    Missing,
    /// A credential header was present but unusable (wrong scheme, empty,
    /// not UTF-8, or a malformed `key` parameter).
    Malformed,
}

/// Finds the credential of a request. `query` is the part after `?`.
pub fn extract<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
) -> Result<Credential<'a>, AuthError> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        return non_empty(CredentialSource::Bearer, Cow::Borrowed(token.trim()));
    }
    for (name, source) in [
        ("x-api-key", CredentialSource::XApiKey),
        ("x-goog-api-key", CredentialSource::GoogApiKey),
    ] {
        if let Some(value) = headers.get(name) {
            let value = value.to_str().map_err(|_| AuthError::Malformed)?;
            return non_empty(source, Cow::Borrowed(value.trim()));
        }
    }
    if let Some(query) = query {
        for pair in query.split('&') {
            if let Some(value) = pair.strip_prefix("key=") {
                let value = percent_decode(value).ok_or(AuthError::Malformed)?;
                return non_empty(CredentialSource::QueryKey, value);
            }
        }
    }
    Err(AuthError::Missing)
}

fn non_empty(source: CredentialSource, secret: Cow<'_, str>) -> Result<Credential<'_>, AuthError> {
    if secret.is_empty() {
        Err(AuthError::Malformed)
    } else {
        Ok(Credential { source, secret })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, http::HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn bearer_wins_over_everything() {
        let h = headers(&[
            ("authorization", "Bearer sk-a"),
            ("x-api-key", "sk-b"),
            ("x-goog-api-key", "sk-c"),
        ]);
        let c = extract(&h, Some("key=sk-d")).unwrap();
        assert_eq!(c.source, CredentialSource::Bearer);
        assert_eq!(c.secret, "sk-a");
    }

    #[test]
    fn each_form_alone() {
        let cases = [
            (
                headers(&[("authorization", "bearer  sk-1 ")]),
                None,
                CredentialSource::Bearer,
                "sk-1",
            ),
            (
                headers(&[("x-api-key", "sk-2")]),
                None,
                CredentialSource::XApiKey,
                "sk-2",
            ),
            (
                headers(&[("x-goog-api-key", "sk-3")]),
                None,
                CredentialSource::GoogApiKey,
                "sk-3",
            ),
            (
                headers(&[]),
                Some("alt=sse&key=sk%2D4"),
                CredentialSource::QueryKey,
                "sk-4",
            ),
        ];
        for (h, q, source, secret) in cases {
            let c = extract(&h, q).unwrap();
            assert_eq!((c.source, c.secret.as_ref()), (source, secret));
        }
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(extract(&headers(&[]), None), Err(AuthError::Missing));
        assert_eq!(
            extract(&headers(&[]), Some("alt=sse")),
            Err(AuthError::Missing)
        );
        assert_eq!(
            extract(&headers(&[]), Some("monkey=1")),
            Err(AuthError::Missing)
        );
        assert_eq!(
            extract(&headers(&[("authorization", "Basic abc")]), None),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            extract(&headers(&[("authorization", "Bearer ")]), None),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            extract(&headers(&[("x-api-key", "")]), None),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            extract(&headers(&[]), Some("key=%zz")),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn debug_redacts_secret() {
        let h = headers(&[("x-api-key", "sk-very-secret")]);
        let c = extract(&h, None).unwrap();
        assert!(!format!("{c:?}").contains("sk-very-secret"));
    }
}
