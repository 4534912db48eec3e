//! Where a proxied request goes: the client's `{path}` under the
//! provider's root, and only there. Anything that could climb out of the
//! root or name another host is refused, whether written plainly or
//! percent-encoded: dot segments, empty segments (`//`, so no
//! scheme-relative or absolute URL), backslashes, `@`, control bytes, and
//! escapes that decode to `/`, `\`, `%` or a dot segment. The query goes
//! along without any `key=` credential.

use crate::api::endpoint::percent_decode;

/// Why a proxy path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathError {
    /// A segment is empty (`//`), or the path is an absolute URL.
    EmptySegment,
    /// A `.` or `..` segment, plain or encoded (`%2e%2e`).
    DotSegment,
    /// A byte that could change where the request goes (`\`, `@`, a
    /// control byte, or an escape decoding to `/`, `\` or `%`).
    Forbidden,
    /// A malformed `%` escape, or one that is not UTF-8.
    BadEscape,
}

impl PathError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            PathError::EmptySegment => "the provider path has an empty segment (`//`)",
            PathError::DotSegment => "the provider path has a `.` or `..` segment",
            PathError::Forbidden => {
                "the provider path has a character that is not allowed in it (`\\`, `@`, an encoded `/`, a control character)"
            }
            PathError::BadEscape => "the provider path has a malformed percent escape",
        }
    }
}

/// Checks `rest` (what follows `/{provider}/`, as received) segment by
/// segment. A trailing `/` is allowed; an empty path means the root.
pub(crate) fn check_path(rest: &str) -> Result<(), PathError> {
    if rest.is_empty() {
        return Ok(());
    }
    let body = rest.strip_suffix('/').unwrap_or(rest);
    for segment in body.split('/') {
        check_segment(segment)?;
    }
    Ok(())
}

fn check_segment(raw: &str) -> Result<(), PathError> {
    if raw.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if raw
        .bytes()
        .any(|b| b == b'\\' || b == b'@' || b.is_ascii_control() || b == b' ')
    {
        return Err(PathError::Forbidden);
    }
    let decoded = percent_decode(raw).ok_or(PathError::BadEscape)?;
    if decoded
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '%' | '@') || c.is_control())
    {
        return Err(PathError::Forbidden);
    }
    // `..;x` is a dot segment to servers that strip path parameters.
    let name = decoded.split(';').next().unwrap_or_default();
    if name == "." || name == ".." {
        return Err(PathError::DotSegment);
    }
    Ok(())
}

/// The query without `key=` (Google's way to pass a key, which would be
/// the client's ARouter key): `None` when nothing is left.
pub(crate) fn forwarded_query(query: Option<&str>) -> Option<String> {
    let query = query?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            !pair.is_empty() && !is_key_param(name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

fn is_key_param(name: &str) -> bool {
    // Decoded, so `%6Bey` is caught too; an undecodable name is dropped.
    percent_decode(name).is_none_or(|n| n.eq_ignore_ascii_case("key"))
}

/// The upstream request target: `root/rest?query`.
pub(crate) fn upstream_target(root: &str, rest: &str, query: Option<&str>) -> String {
    let mut target = String::with_capacity(root.len() + rest.len() + 2 + query.map_or(0, str::len));
    target.push_str(root);
    target.push('/');
    target.push_str(rest);
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    target
}

/// The provider's root: its base path without a trailing API version
/// (`/v1`, `/v1beta`), since `{path}` is written as the provider's docs
/// write it, version included.
pub(crate) fn provider_root(base_path: &str) -> &str {
    ["/v1beta", "/v1"]
        .into_iter()
        .find_map(|version| base_path.strip_suffix(version))
        .unwrap_or(base_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn provider_paths_pass() {
        for ok in [
            "v1/chat/completions",
            "v1/messages",
            "v1beta/models/gemini-2.5-flash:generateContent",
            "v1beta/models/gemini-2.5-flash:streamGenerateContent",
            "api/tags",
            "v1/models/",
            "v1/files/file-abc%20def",
            "",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn escapes_are_refused() {
        for (bad, why) in [
            ("../admin", PathError::DotSegment),
            ("v1/../../etc/passwd", PathError::DotSegment),
            ("v1/%2e%2e/x", PathError::DotSegment),
            ("v1/%2E%2e/x", PathError::DotSegment),
            ("v1/.%2E/x", PathError::DotSegment),
            ("v1/./x", PathError::DotSegment),
            ("v1/..;x/y", PathError::DotSegment),
            ("v1//x", PathError::EmptySegment),
            ("/evil.example/x", PathError::EmptySegment),
            ("http://evil.example/x", PathError::EmptySegment),
            ("https:%2F%2Fevil.example", PathError::Forbidden),
            ("v1%2f..%2fx", PathError::Forbidden),
            ("v1\\..\\x", PathError::Forbidden),
            ("v1%5cx", PathError::Forbidden),
            ("user@evil.example/x", PathError::Forbidden),
            ("v1/%40evil", PathError::Forbidden),
            ("v1/%252e%252e", PathError::Forbidden),
            ("v1/%00", PathError::Forbidden),
            ("v1/%zz", PathError::BadEscape),
            ("v1/%ff", PathError::BadEscape),
        ] {
            assert_eq!(check_path(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn the_key_parameter_is_dropped_from_the_query() {
        assert_eq!(forwarded_query(None), None);
        assert_eq!(forwarded_query(Some("key=sk-1")), None);
        assert_eq!(
            forwarded_query(Some("alt=sse&key=sk-1&KEY=x&%6Bey=y&pageSize=2")),
            Some("alt=sse&pageSize=2".into())
        );
        assert_eq!(
            forwarded_query(Some("keys=1&monkey=2")),
            Some("keys=1&monkey=2".into())
        );
    }

    #[test]
    fn the_root_drops_a_trailing_version() {
        assert_eq!(provider_root("/v1"), "");
        assert_eq!(provider_root("/v1beta"), "");
        assert_eq!(provider_root("/openai/v1"), "/openai");
        assert_eq!(provider_root(""), "");
        assert_eq!(provider_root("/api"), "/api");
        assert_eq!(
            upstream_target("", "v1/chat/completions", Some("a=1")),
            "/v1/chat/completions?a=1"
        );
    }

    proptest! {
        /// Whatever passes the check, the target stays under the root: no
        /// segment of it, decoded, is empty or a dot segment, and no byte
        /// of it can end the path or name a host.
        #[test]
        fn an_accepted_path_stays_under_the_root(rest in "[a-z0-9./%@:;\\\\-]{0,24}") {
            if check_path(&rest).is_ok() {
                let target = upstream_target("/root", &rest, None);
                let under = target.strip_prefix("/root/").unwrap();
                let under = under.strip_suffix('/').unwrap_or(under);
                for segment in under.split('/').filter(|_| !under.is_empty()) {
                    let decoded = percent_decode(segment).unwrap();
                    prop_assert!(!decoded.is_empty());
                    prop_assert!(decoded != "." && decoded != "..");
                    prop_assert!(!decoded.contains(['/', '\\', '@', '%']));
                }
            }
        }
    }
}
