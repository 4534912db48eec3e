//! The HTTP/1.1 layer, on async-h1: `server::decode` parses each request
//! (head, Content-Length or chunked body, `Expect: 100-continue`) and
//! `server::Encoder` frames each response (head, Content-Length or chunked
//! body). Both are async-h1's own code, independent of `arouter-core`'s
//! codec, so the gateway's client side is not tested against itself.
//!
//! async-h1's `accept` loop is not used: it copies the whole response into
//! the socket itself, so nothing could read the socket meanwhile to notice
//! a client that has gone while the response stalls. `server.rs` drives
//! the encoder instead (see [`send`]).

use std::io;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::time::Duration;

use async_h1::server::Encoder;
use http_types::headers::{HeaderName, HeaderValue, CONTENT_TYPE};
use http_types::{Body, Method, Response, StatusCode};
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::Timer;

use crate::conn::Conn;

pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as async-h1 (the `url` crate) parsed the target.
    pub target: String,
    /// Names lowercased; the values of a repeated header in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the body's first byte was read (a Content-Length body only).
    pub body_started: Option<std::time::Instant>,
}

impl Request {
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after this exchange (async-h1
    /// speaks HTTP/1.1 only, where that is the default).
    pub fn keep_alive(&self) -> bool {
        !self.has_token("connection", "close")
    }
}

#[derive(Debug)]
pub enum ReadError {
    /// The connection closed or failed (also in the middle of a request).
    Closed,
    /// Rejected by async-h1's parser or over a limit: answer and close.
    Bad(u16, String),
}

/// Read one request. `Ok(None)`: EOF between requests.
pub async fn read_request(conn: &Conn) -> Result<Option<Request>, ReadError> {
    // http-types panics on some input (a header value that is UTF-8 but not
    // ASCII); a panic here must cost one connection, not the server.
    match AssertUnwindSafe(decode_request(conn)).catch_unwind().await {
        Ok(result) => result,
        Err(_) => Err(ReadError::Bad(
            400,
            "bad request: async-h1 could not decode it (non-ASCII header?)".into(),
        )),
    }
}

async fn decode_request(conn: &Conn) -> Result<Option<Request>, ReadError> {
    conn.record();
    let decoded = async_h1::server::decode(conn.clone()).await;
    let head = conn.take_recorded();
    let (mut req, _body_reader) = match decoded {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return Ok(None),
        Err(e) if e.downcast_ref::<io::Error>().is_some() => return Err(ReadError::Closed),
        Err(e) => {
            let status = u16::from(e.status());
            let status = if (400..500).contains(&status) {
                status
            } else {
                400
            };
            return Err(ReadError::Bad(status, format!("bad request: {e}")));
        }
    };
    let headers = wire_headers(&req, &head);
    let declared = req.len();
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ReadError::Bad(413, "request body too large".into()));
    }
    // async-h1's reader for a Content-Length body may buffer ahead; only
    // the body's bytes may reach it (see `conn`).
    conn.expect_body(declared.unwrap_or(0));
    let mut body = Vec::new();
    let read = req
        .take_body()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .or(nudge())
        .await;
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(ReadError::Bad(400, format!("bad chunked body: {e}")))
        }
        Err(_) => return Err(ReadError::Closed),
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(ReadError::Bad(413, "request body too large".into()));
    }
    if declared.is_some_and(|n| body.len() < n) {
        // EOF before Content-Length bytes arrived.
        return Err(ReadError::Closed);
    }

    let url = req.url();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    Ok(Some(Request {
        method: req.method().to_string(),
        target,
        headers,
        body,
        body_started: conn.body_started(),
    }))
}

/// Never resolves; wakes its task every few ms. async-h1's chunked decoder
/// returns `Pending` without arranging a wake-up when a trailer section
/// arrives in more than one read (async-h1 2.3.4, `chunked/decoder.rs`,
/// `Status::Partial`), which would leave the request hanging forever; raced
/// against the body read, this polls the decoder again.
async fn nudge() -> io::Result<usize> {
    loop {
        Timer::after(Duration::from_millis(5)).await;
    }
}

/// The request's headers as sent. http-types gives a request with a body a
/// `content-type: application/octet-stream` of its own when it has none
/// (`set_body`), so that one is dropped unless the head has the field.
fn wire_headers(req: &http_types::Request, head: &[u8]) -> Vec<(String, String)> {
    let sent_content_type = head.split(|&b| b == b'\n').any(|line| {
        line.get(..13)
            .is_some_and(|name| name.eq_ignore_ascii_case(b"content-type:"))
    });
    let mut headers: Vec<(String, String)> = req
        .iter()
        .filter(|(name, _)| sent_content_type || **name != CONTENT_TYPE)
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.as_str().to_string(), v.as_str().to_string()))
        })
        .collect();
    // The header map has no order across names; sort for a stable log.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers
}

/// A response ready for async-h1's encoder.
pub struct Outgoing {
    encoder: Encoder,
    /// http-types knows only the registered status codes; for others
    /// (Anthropic's 529) the status line the encoder wrote is replaced.
    status_line: Option<String>,
    /// Room for the largest body piece plus its chunk framing, so that one
    /// piece is one chunk and one write.
    buf_len: usize,
}

/// Build a response: `body` is read by async-h1's encoder, `len` is its
/// Content-Length (`None`: chunked, one chunk per read of `body`).
pub fn response(
    method: &str,
    status: u16,
    headers: &[(String, String)],
    body: impl smol::io::AsyncBufRead + Unpin + Send + Sync + 'static,
    len: Option<usize>,
    max_piece: usize,
    keep_alive: bool,
) -> Outgoing {
    let (code, status_line) = match StatusCode::try_from(status) {
        Ok(code) => (code, None),
        Err(_) => (
            StatusCode::InternalServerError,
            Some(format!("HTTP/1.1 {status} {}", reason(status))),
        ),
    };
    let mut res = Response::new(code);
    res.set_body(Body::from_reader(body, len));
    // set_body supplies a content type; the plan's headers decide it.
    res.remove_header(CONTENT_TYPE);
    for (k, v) in headers {
        match (
            HeaderName::from_bytes(k.as_bytes().to_vec()),
            HeaderValue::from_bytes(v.as_bytes().to_vec()),
        ) {
            (Ok(k), Ok(v)) => res.append_header(k, v),
            _ => eprintln!("replay: dropping header {k:?} (not ASCII)"),
        }
    }
    if !keep_alive {
        res.insert_header("connection", "close");
    }
    let method = Method::from_str(method).unwrap_or(Method::Post);
    Outgoing {
        encoder: Encoder::new(res, method),
        status_line,
        buf_len: max_piece.max(4096) + 64,
    }
}

/// How writing a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Complete,
    /// The body reader failed: a fault cut the body.
    BodyFailed,
    /// A write failed: the client is gone.
    WriteFailed,
}

/// Copy the encoder's output to the socket, one encoder read per write
/// (head, then each body piece as one chunk). `on_write` runs after each
/// successful write; its argument is true for the head.
pub async fn send(conn: &Conn, out: Outgoing, mut on_write: impl FnMut(bool)) -> Written {
    let Outgoing {
        mut encoder,
        status_line,
        buf_len,
    } = out;
    let mut buf = vec![0u8; buf_len];
    let mut head = true;
    let mut w = conn.clone();
    loop {
        let n = match encoder.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return Written::BodyFailed,
        };
        let mut bytes = &buf[..n];
        let patched;
        if head {
            if let Some(line) = &status_line {
                let end = bytes.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
                patched = [line.as_bytes(), &bytes[end..]].concat();
                bytes = &patched;
            }
        }
        if w.write_all(bytes).await.is_err() {
            return Written::WriteFailed;
        }
        on_write(head);
        head = false;
    }
    match w.flush().await {
        Ok(()) => Written::Complete,
        Err(_) => Written::WriteFailed,
    }
}

/// Reason phrases of statuses http-types does not know.
fn reason(status: u16) -> &'static str {
    match status {
        499 => "Client Closed Request",
        529 => "Overloaded",
        _ => "Status",
    }
}
