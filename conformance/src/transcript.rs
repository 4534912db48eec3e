//! Loading recorded transcripts and turning their responses into wire pieces.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// Size of the pieces a `body_raw` (or a Content-Length body, for fault
/// purposes) is cut into.
pub const RAW_PIECE_BYTES: usize = 100;

/// One loaded transcript.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// Name relative to the transcript dir it was loaded from, with `/`
    /// separators, e.g. `openai/chat_nonstream_user_id.json`.
    pub name: String,
    /// Full path of the file.
    pub file: PathBuf,
    pub provider: Option<String>,
    pub scenario: Option<String>,
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path as recorded, with its query.
    pub path: String,
    pub headers: BTreeMap<String, String>,
    /// Parsed request body (`Value::Null` if absent).
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct RecordedResponse {
    pub status: u16,
    /// Recorded headers, framing headers removed, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: ResponseBody,
}

/// What the replay sends as the response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body (`Content-Length: 0`).
    Empty,
    /// A JSON body, compact, original key order and number text; sent with
    /// `Content-Length`.
    Json(Vec<u8>),
    /// Verbatim SSE text, sent chunked, one event per chunk.
    Sse(String),
    /// Verbatim raw text (Gemini JSON-array stream), sent chunked in
    /// [`RAW_PIECE_BYTES`] pieces.
    Raw(String),
}

impl ResponseBody {
    /// The exact bytes a client receives (after dechunking).
    pub fn bytes(&self) -> &[u8] {
        match self {
            ResponseBody::Empty => b"",
            ResponseBody::Json(b) => b,
            ResponseBody::Sse(s) | ResponseBody::Raw(s) => s.as_bytes(),
        }
    }

    /// The pieces the body is written in. For SSE: one event each (with its
    /// terminating blank line). Otherwise fixed-size pieces.
    pub fn pieces(&self) -> Vec<&[u8]> {
        match self {
            ResponseBody::Empty => Vec::new(),
            ResponseBody::Sse(s) => split_sse_events(s),
            ResponseBody::Json(b) => b.chunks(RAW_PIECE_BYTES).collect(),
            ResponseBody::Raw(s) => s.as_bytes().chunks(RAW_PIECE_BYTES).collect(),
        }
    }

    /// Whether the body is sent with `Transfer-Encoding: chunked`.
    pub fn is_chunked(&self) -> bool {
        matches!(self, ResponseBody::Sse(_) | ResponseBody::Raw(_))
    }
}

#[derive(Deserialize)]
struct FileRequest {
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    #[serde(default)]
    body: Option<Value>,
}

#[derive(Deserialize)]
struct FileResponse {
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    #[serde(default)]
    body: Option<Box<RawValue>>,
    #[serde(default)]
    sse: Option<String>,
    #[serde(default)]
    body_raw: Option<String>,
}

#[derive(Deserialize)]
struct FileTranscript {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    scenario: Option<String>,
    request: FileRequest,
    response: FileResponse,
}

fn header_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(header_value)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Headers never copied from a recording: the replay sets its own framing.
pub fn is_framing_header(name: &str) -> bool {
    matches!(
        name,
        "content-length" | "transfer-encoding" | "content-encoding" | "connection" | "keep-alive"
    )
}

/// Parse one transcript file's text.
pub fn parse_transcript(name: &str, file: &Path, text: &str) -> Result<Transcript, String> {
    let t: FileTranscript = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let body = if let Some(raw) = t.response.body_raw {
        ResponseBody::Raw(raw)
    } else if let Some(sse) = t.response.sse {
        ResponseBody::Sse(sse)
    } else if let Some(b) = t.response.body {
        ResponseBody::Json(minify_json(b.get()).into_bytes())
    } else {
        ResponseBody::Empty
    };
    let headers = t
        .response
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), header_value(v)))
        .filter(|(k, _)| !is_framing_header(k))
        .collect();
    Ok(Transcript {
        name: name.to_string(),
        file: file.to_path_buf(),
        provider: t.provider,
        scenario: t.scenario,
        request: RecordedRequest {
            method: t.request.method.to_ascii_uppercase(),
            path: t.request.path,
            headers: t
                .request
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), header_value(v)))
                .collect(),
            body: t.request.body.unwrap_or(Value::Null),
        },
        response: RecordedResponse {
            status: t.response.status,
            headers,
            body,
        },
    })
}

/// Load every `*.json` under `dir`, recursively, sorted by name. Names are
/// relative to `dir`.
pub fn load_dir(dir: &Path) -> io::Result<Vec<Transcript>> {
    let mut files = Vec::new();
    collect_json(dir, &mut files)?;
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(dir).unwrap_or(&file);
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let text = fs::read_to_string(&file)?;
        let t = parse_transcript(&name, &file, &text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", file.display()),
            )
        })?;
        out.push(t);
    }
    Ok(out)
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Remove insignificant whitespace from JSON text, keeping key order and
/// number spelling exactly.
pub fn minify_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else {
            match c {
                ' ' | '\t' | '\n' | '\r' => {}
                '"' => {
                    in_string = true;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
    }
    out
}

/// Split SSE text into events, each ending after its blank line (the exact
/// separator bytes are kept: `\n\n`, `\r\n\r\n`, `\r\r`, mixed). A trailing
/// part without a blank line is the last piece. The concatenation of the
/// pieces is the input.
pub fn split_sse_events(text: &str) -> Vec<&[u8]> {
    let b = text.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Whether the previous thing seen was a line terminator (so the line we
    // are on is empty so far).
    let mut at_line_start = true;
    // Whether the current piece has any event text yet.
    let mut has_text = false;
    while i < b.len() {
        let term_len = match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => 2,
            b'\r' | b'\n' => 1,
            _ => 0,
        };
        if term_len == 0 {
            at_line_start = false;
            has_text = true;
            i += 1;
            continue;
        }
        i += term_len;
        // An empty line ends the event. Blank lines before any event text
        // stay with the next event.
        if at_line_start && has_text {
            pieces.push(&b[start..i]);
            start = i;
            has_text = false;
        }
        at_line_start = true;
    }
    if start < b.len() {
        pieces.push(&b[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_strings_and_order() {
        let s = "{\n  \"b\": \"a b\\\" c\",\n  \"a\": [1.50, 2e-05]\n}";
        assert_eq!(minify_json(s), "{\"b\":\"a b\\\" c\",\"a\":[1.50,2e-05]}");
    }

    #[test]
    fn sse_split_keeps_separators() {
        let s = "data: a\n\ndata: b\r\n\r\nevent: x\ndata: c\n\ndata: tail";
        let p: Vec<&str> = split_sse_events(s)
            .into_iter()
            .map(|b| std::str::from_utf8(b).unwrap())
            .collect();
        assert_eq!(
            p,
            vec![
                "data: a\n\n",
                "data: b\r\n\r\n",
                "event: x\ndata: c\n\n",
                "data: tail"
            ]
        );
        assert_eq!(p.concat(), s);
    }

    #[test]
    fn sse_split_leading_blank_lines_join_next_event() {
        let s = "\n\ndata: a\n\n";
        let p = split_sse_events(s);
        assert_eq!(p.concat(), s.as_bytes());
        assert_eq!(p.len(), 1);
    }
}
