//! `--otlp-endpoint`: the collector request spans are exported to. Only
//! plain `http://` is spoken (the exporter is a small std::net client);
//! an `https://` URL is refused at start rather than sent in clear.

use super::ConfigError;

/// A checked `http://host[:port][/path]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpEndpoint {
    /// `host:port`, to connect to and for the `Host` header.
    pub authority: String,
    /// Where spans are posted: the URL's path + `/v1/traces`.
    pub traces_path: String,
}

impl OtlpEndpoint {
    pub fn parse(url: &str) -> Result<OtlpEndpoint, ConfigError> {
        let refuse = |reason: &'static str| ConfigError::OtlpEndpoint {
            // A URL with credentials is not echoed.
            url: if url.contains('@') {
                "<redacted>".into()
            } else {
                url.to_string()
            },
            reason,
        };
        if !cfg!(feature = "otlp") {
            return Err(refuse(
                "this build has no OTLP export (built without the `otlp` cargo feature)",
            ));
        }
        if url.starts_with("https://") {
            return Err(refuse(
                "https is not supported; use http://host:port (a collector or agent on a trusted network)",
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| refuse("must be http://host:port"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let valid = !authority.is_empty()
            && authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
        if !valid || path.contains(['?', '#']) {
            return Err(refuse("must be http://host:port (no credentials or query)"));
        }
        let authority = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_string()
        };
        Ok(OtlpEndpoint {
            authority,
            traces_path: format!("{}/v1/traces", path.trim_end_matches('/')),
        })
    }
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    use super::OtlpEndpoint;

    #[test]
    fn http_urls_are_split_into_address_and_path() {
        let e = OtlpEndpoint::parse("http://127.0.0.1:4318").expect("valid");
        assert_eq!(e.authority, "127.0.0.1:4318");
        assert_eq!(e.traces_path, "/v1/traces");
        let e = OtlpEndpoint::parse("http://collector/otel/").expect("valid");
        assert_eq!(e.authority, "collector:80");
        assert_eq!(e.traces_path, "/otel/v1/traces");
    }

    #[test]
    fn https_and_malformed_urls_are_refused() {
        for url in [
            "https://collector:4318",
            "collector:4318",
            "http://",
            "http://user:secret@collector:4318",
            "http://collector:4318/?x=1",
        ] {
            let error = OtlpEndpoint::parse(url).expect_err(url).to_string();
            assert!(!error.contains("secret"), "{error}");
        }
        let error = OtlpEndpoint::parse("https://c:4318").expect_err("https");
        assert!(error.to_string().contains("https is not supported"));
    }
}
