//! The dashboard's static files, served at `GET /dashboard/…`: embedded in
//! the binary when it is built (nothing is fetched at run time, and no
//! bundler runs: the files in `dashboard/` are served as written). The page
//! holds no data and needs no key; everything it shows comes from the
//! management API, called by the browser with the key the user typed.

use super::Response;

/// One embedded file.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// The name under `/dashboard/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboard/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every file the dashboard has; `index.html` is also `/dashboard` and
/// `/dashboard/`.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("charts.js", JS),
    asset!("credits.js", JS),
    asset!("keys.js", JS),
    asset!("live.js", JS),
    asset!("ui.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("usage.js", JS),
    asset!("vendor/chart.umd.min.js", JS),
    asset!("vendor/chart.js-LICENSE.md", "text/plain; charset=utf-8"),
];

/// The policy every dashboard file is served with: scripts and styles from
/// this origin only (no inline script, no eval), API calls to this origin
/// only, no framing, no forms posting anywhere, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The file a path under `/dashboard` names: `rest` is what follows
/// `/dashboard` (empty, `/`, or `/name`). `None` for no such file.
pub fn find(rest: &str) -> Option<&'static Asset> {
    let name = match rest {
        "" | "/" => "index.html",
        _ => rest.strip_prefix('/')?,
    };
    ASSETS.iter().find(|asset| asset.name == name)
}

/// A file's answer, with the headers that keep a browser from reading it
/// as anything else, running it in a frame, or leaking the page's address.
pub fn response(asset: &Asset) -> Response {
    let mut headers = vec![
        ("Content-Type", asset.content_type.to_string()),
        (
            "Content-Security-Policy",
            CONTENT_SECURITY_POLICY.to_string(),
        ),
        ("X-Content-Type-Options", "nosniff".to_string()),
        ("X-Frame-Options", "DENY".to_string()),
        ("Referrer-Policy", "no-referrer".to_string()),
        // Revalidated each load, so a new build's files are used at once.
        ("Cache-Control", "no-cache".to_string()),
    ];
    if asset.content_type == HTML {
        headers.push(("Cross-Origin-Opener-Policy", "same-origin".to_string()));
    }
    Response {
        status: 200,
        headers,
        body: asset.body.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_root_and_unknown_names_are_none() {
        assert_eq!(find("").map(|a| a.name), Some("index.html"));
        assert_eq!(find("/").map(|a| a.name), Some("index.html"));
        assert_eq!(find("/app.js").map(|a| a.name), Some("app.js"));
        assert_eq!(find("/nope.js"), None);
        assert_eq!(find("x/app.js"), None);
        assert_eq!(find("/../Cargo.toml"), None);
    }

    #[test]
    fn scripts_are_served_as_javascript_with_the_policy() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            assert_eq!(asset.content_type, JS, "{}", asset.name);
            let answer = response(asset);
            assert!(answer
                .headers
                .iter()
                .any(|(n, v)| *n == "Content-Security-Policy" && v.contains("script-src 'self'")));
        }
    }

    /// The policy forbids inline script, so the page must have none: every
    /// `<script` in it loads a file of this table.
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = std::str::from_utf8(find("").map_or(&[][..], |a| a.body)).unwrap_or("");
        assert!(page.contains("<script"));
        for tag in page.split("<script").skip(1) {
            let head = tag.split('>').next().unwrap_or("");
            let src = head
                .split("src=\"")
                .nth(1)
                .and_then(|s| s.split('"').next());
            let src = src.unwrap_or_else(|| panic!("inline script: {head}"));
            assert!(
                find(src.trim_start_matches("/dashboard")).is_some(),
                "{src}"
            );
            assert!(tag.starts_with(&format!("{head}></script>")), "{head}");
        }
        assert!(!page.contains("<style"));
        assert!(!page.contains(" style="));
        // No inline event handler (` onclick="…"`).
        for (at, _) in page.match_indices(" on") {
            let word: String = page[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            assert!(!page[at + 1 + word.len()..].starts_with('='), "{word}");
        }
    }
}
