//! Where a provider lives and how to address it: the parsed base URL and
//! the request head each provider kind expects.

use std::fmt;

use crate::gateway::ProviderKind;

fn host_header(tls: bool, host: &str, port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if (tls && port == 443) || (!tls && port == 80) {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// A parsed provider base URL (`https://api.openai.com/v1`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpstreamAddr {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path prefix without a trailing slash (`/v1`, or empty).
    pub base_path: String,
    /// The `Host` header value, written once here rather than formatted
    /// for every request.
    host_header: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrError {
    Scheme,
    Host,
    Port,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Scheme => "base URL must start with http:// or https://",
            AddrError::Host => "base URL has no valid host",
            AddrError::Port => "base URL has an invalid port",
        })
    }
}

impl UpstreamAddr {
    pub fn parse(url: &str) -> Result<UpstreamAddr, AddrError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(AddrError::Scheme);
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, tail) = v6.split_once(']').ok_or(AddrError::Host)?;
            let port = match tail.strip_prefix(':') {
                Some(p) => Some(p),
                None if tail.is_empty() => None,
                None => return Err(AddrError::Host),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
        if !valid_host {
            return Err(AddrError::Host);
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(AddrError::Port)?,
            None if tls => 443,
            None => 80,
        };
        Ok(UpstreamAddr {
            tls,
            host: host.to_string(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
            host_header: host_header(tls, host, port),
        })
    }

    /// The `Host` header value: the port is shown only when not the default.
    pub fn host_header(&self) -> &str {
        &self.host_header
    }
}

/// The credential header a provider kind expects for its API key.
pub fn auth_header(kind: ProviderKind, key: &str) -> (&'static str, String) {
    match kind {
        ProviderKind::OpenAi => ("Authorization", format!("Bearer {key}")),
        ProviderKind::Anthropic => ("x-api-key", key.to_string()),
        ProviderKind::Gemini => ("x-goog-api-key", key.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sdk_style_base_urls() {
        let a = UpstreamAddr::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(
            (a.tls, a.host.as_str(), a.port, a.base_path.as_str()),
            (true, "api.openai.com", 443, "/v1")
        );
        assert_eq!(a.host_header(), "api.openai.com");
        let a = UpstreamAddr::parse("http://127.0.0.1:18080/stream/v1/").unwrap();
        assert_eq!(
            (a.tls, a.port, a.base_path.as_str()),
            (false, 18080, "/stream/v1")
        );
        assert_eq!(a.host_header(), "127.0.0.1:18080");
        let a = UpstreamAddr::parse("https://generativelanguage.googleapis.com").unwrap();
        assert_eq!(a.base_path, "");
        let a = UpstreamAddr::parse("http://[::1]:8000/v1").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 8000));
        assert_eq!(a.host_header(), "[::1]:8000");
    }

    #[test]
    fn rejects_bad_urls() {
        assert_eq!(UpstreamAddr::parse("ftp://x"), Err(AddrError::Scheme));
        assert_eq!(UpstreamAddr::parse("http://"), Err(AddrError::Host));
        assert_eq!(UpstreamAddr::parse("http://h:0"), Err(AddrError::Port));
        assert_eq!(UpstreamAddr::parse("http://h:99999"), Err(AddrError::Port));
        assert_eq!(UpstreamAddr::parse("http://a b/"), Err(AddrError::Host));
    }
}
