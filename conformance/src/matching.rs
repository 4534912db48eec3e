//! Matching an incoming request to a recorded transcript.
//!
//! Rules (see README):
//! - same method;
//! - same path, ignoring the query except `alt`; the incoming path may carry
//!   an extra prefix before the recorded path (a provider-style base path);
//! - JSON body: the *conversation* must be equal as JSON values: `model`,
//!   `messages`, `contents`, `input`, `requests`, and `stream` (absent or
//!   null = false). Other fields only rank candidates: most equal top-level
//!   fields first, then fewest differing ones, then transcript name.

use serde_json::Value;

use crate::transcript::Transcript;

/// Top-level body fields that must be equal for a transcript to match.
pub const CONVERSATION_FIELDS: &[&str] = &["model", "messages", "contents", "input", "requests"];

/// Split `path?query` and keep only the `alt` query parameter.
pub fn normalize_path(path_and_query: &str) -> (String, Option<String>) {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let alt = query.and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == "alt").then(|| v.to_string())
        })
    });
    (path.to_string(), alt)
}

/// Whether an incoming path (no query) matches a recorded one: equal, or the
/// recorded path is a suffix at a segment boundary (a base-path prefix).
pub fn path_matches(incoming: &str, recorded: &str) -> bool {
    if incoming == recorded {
        return true;
    }
    incoming.len() > recorded.len() && incoming.ends_with(recorded) && recorded.starts_with('/')
}

/// The model a request is for: the body's `model`, or for Gemini-style
/// paths the `{model}` in `.../models/{model}:method`.
pub fn request_model(path: &str, body: &Value) -> Option<String> {
    if let Some(m) = body.get("model").and_then(Value::as_str) {
        return Some(m.to_string());
    }
    gemini_path_model(path)
}

/// `gemini-2.0-flash` from `/v1beta/models/gemini-2.0-flash:generateContent`.
pub fn gemini_path_model(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let idx = path.rfind("/models/")?;
    let rest = &path[idx + "/models/".len()..];
    let model = rest.split(':').next()?;
    (!model.is_empty() && !model.contains('/')).then(|| model.to_string())
}

fn stream_flag(body: &Value) -> bool {
    match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => other.as_str() == Some("true"),
    }
}

/// Why a transcript did not match a request (for miss logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Method,
    Path,
    Alt,
    Field(&'static str),
    Stream,
}

/// Check one transcript against a request. `Ok(score)` when it matches.
pub fn check(
    t: &Transcript,
    method: &str,
    path_and_query: &str,
    body: &Value,
) -> Result<Score, Mismatch> {
    if !t.request.method.eq_ignore_ascii_case(method) {
        return Err(Mismatch::Method);
    }
    let (path, alt) = normalize_path(path_and_query);
    let (rpath, ralt) = normalize_path(&t.request.path);
    if !path_matches(&path, &rpath) {
        return Err(Mismatch::Path);
    }
    if alt != ralt {
        return Err(Mismatch::Alt);
    }
    let rec = &t.request.body;
    for f in CONVERSATION_FIELDS {
        let same = match (body.get(f), rec.get(f)) {
            (Some(a), Some(b)) => a == b || canonical_form(a) == canonical_form(b),
            (a, b) => a == b,
        };
        if !same {
            return Err(Mismatch::Field(f));
        }
    }
    if stream_flag(body) != stream_flag(rec) {
        return Err(Mismatch::Stream);
    }
    Ok(score(body, rec, path == rpath))
}

/// A conversation with the spellings that mean the same thing made equal,
/// so a request that a gateway rebuilt from another dialect still finds
/// its transcript: a message `content` string is its one text block;
/// `null`, `false` and empty-string members are left out (they are the
/// APIs' defaults: `is_error: false`, `refusal: null`, ...); a Gemini
/// turn without `role` is a `user` turn.
pub fn canonical_form(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(canonical_form).collect()),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, item) in map {
                let skip =
                    matches!(item, Value::Null | Value::Bool(false)) || item.as_str() == Some("");
                if skip {
                    continue;
                }
                let item = match (k.as_str(), item) {
                    ("content", Value::String(text)) if map.contains_key("role") => {
                        serde_json::json!([{"type": "text", "text": text}])
                    }
                    _ => canonical_form(item),
                };
                out.insert(k.clone(), item);
            }
            if map.contains_key("parts") && !out.contains_key("role") {
                out.insert("role".into(), Value::String("user".into()));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Ranking of a matching transcript: higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Score {
    pub exact_path: bool,
    pub equal_fields: usize,
    /// Negated count of differing top-level fields.
    pub neg_differing: isize,
}

fn score(body: &Value, rec: &Value, exact_path: bool) -> Score {
    let empty = serde_json::Map::new();
    let a = body.as_object().unwrap_or(&empty);
    let b = rec.as_object().unwrap_or(&empty);
    let mut equal = 0;
    let mut differing = 0isize;
    for (k, v) in a {
        match b.get(k) {
            Some(w) if w == v => equal += 1,
            _ => differing += 1,
        }
    }
    differing += b.keys().filter(|k| !a.contains_key(*k)).count() as isize;
    Score {
        exact_path,
        equal_fields: equal,
        neg_differing: -differing,
    }
}

/// Best matching transcript index, or `None`.
pub fn find_best(
    transcripts: &[Transcript],
    method: &str,
    path_and_query: &str,
    body: &Value,
) -> Option<usize> {
    let mut best: Option<(Score, usize)> = None;
    for (i, t) in transcripts.iter().enumerate() {
        if let Ok(s) = check(t, method, path_and_query, body) {
            // Strictly greater: ties go to the first (sorted by name).
            if best.is_none_or(|(bs, _)| s > bs) {
                best = Some((s, i));
            }
        }
    }
    best.map(|(_, i)| i)
}

/// A one-line hint for a miss: the transcripts with the same method, path
/// and model, and the first field where each differs.
pub fn miss_hint(
    transcripts: &[Transcript],
    method: &str,
    path_and_query: &str,
    body: &Value,
) -> String {
    let model = request_model(path_and_query, body);
    let (path, _) = normalize_path(path_and_query);
    let mut near = Vec::new();
    for t in transcripts {
        let (rpath, _) = normalize_path(&t.request.path);
        if !t.request.method.eq_ignore_ascii_case(method) || !path_matches(&path, &rpath) {
            continue;
        }
        if request_model(&t.request.path, &t.request.body) != model {
            continue;
        }
        if let Err(m) = check(t, method, path_and_query, body) {
            let what = match m {
                Mismatch::Field(f) => f.to_string(),
                Mismatch::Stream => "stream".to_string(),
                Mismatch::Alt => "alt".to_string(),
                other => format!("{other:?}").to_lowercase(),
            };
            near.push(format!("{} differs in {what}", t.name));
        }
    }
    if near.is_empty() {
        "no transcript has this method, path and model".to_string()
    } else {
        near.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        assert_eq!(
            normalize_path("/v1/messages?beta=true"),
            ("/v1/messages".to_string(), None)
        );
        assert_eq!(
            normalize_path("/v1beta/models/x:streamGenerateContent?key=k&alt=sse"),
            (
                "/v1beta/models/x:streamGenerateContent".to_string(),
                Some("sse".to_string())
            )
        );
        assert!(path_matches(
            "/openai/v1/chat/completions",
            "/v1/chat/completions"
        ));
        assert!(!path_matches(
            "/v1/chat/completionsX",
            "/v1/chat/completions"
        ));
    }

    #[test]
    fn gemini_model_from_path() {
        assert_eq!(
            gemini_path_model("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
                .as_deref(),
            Some("gemini-2.0-flash")
        );
        assert_eq!(gemini_path_model("/v1/chat/completions"), None);
    }

    #[test]
    fn equivalent_conversation_spellings_match() {
        use serde_json::json;
        let recorded = json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x", "is_error": false}]}]);
        let rebuilt = json!([{"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]);
        assert_eq!(canonical_form(&recorded), canonical_form(&rebuilt));
        let gemini = json!([{"parts": [{"text": "hi"}]}]);
        assert_eq!(
            canonical_form(&gemini),
            canonical_form(&json!([{"role": "user", "parts": [{"text": "hi"}]}]))
        );
        assert_ne!(
            canonical_form(&json!([{"role": "user", "content": "hi"}])),
            canonical_form(&json!([{"role": "user", "content": "ho"}]))
        );
    }
}
