//! A small HTTP/1.1 server codec on `httparse`: read one request (with
//! Content-Length or chunked body), write heads and chunks.
//!
//! Deliberately independent of `arouter-core`'s codec, so the gateway's
//! client side is not tested against itself.

use std::io;
use std::net::TcpStream;

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::Async;

pub const MAX_HEAD_BYTES: usize = 64 * 1024;
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
const MAX_HEADERS: usize = 128;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Request target as received (path and query).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Names lowercased, in order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after this exchange.
    pub fn keep_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.has_token("connection", "keep-alive")
        } else {
            !self.has_token("connection", "close")
        }
    }
}

#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// Connection closed in the middle of a request.
    Truncated,
    /// Unparseable or over a limit: answer 400/413/431 and close.
    Bad(u16, String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

async fn fill(stream: &Async<TcpStream>, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut tmp = [0u8; 16 * 1024];
    let n = (&*stream).read(&mut tmp).await?;
    buf.extend_from_slice(&tmp[..n]);
    Ok(n)
}

/// Read one request. `buf` holds bytes already received (pipelining) and
/// keeps any bytes past this request. `Ok(None)`: clean EOF between
/// requests.
pub async fn read_request(
    stream: &Async<TcpStream>,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>, ReadError> {
    // Head.
    let (mut req, head_len, framing) = loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let req = Request {
                    method: parsed.method.unwrap_or("GET").to_string(),
                    target: parsed.path.unwrap_or("/").to_string(),
                    minor_version: parsed.version.unwrap_or(1),
                    headers,
                    body: Vec::new(),
                };
                let framing = body_framing(&req)?;
                break (req, n, framing);
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD_BYTES {
                    return Err(ReadError::Bad(431, "request head too large".into()));
                }
                if fill(stream, buf).await? == 0 {
                    return if buf.iter().all(|b| b.is_ascii_whitespace()) {
                        Ok(None)
                    } else {
                        Err(ReadError::Truncated)
                    };
                }
            }
            Err(e) => return Err(ReadError::Bad(400, format!("bad request head: {e}"))),
        }
    };
    buf.drain(..head_len);

    if req.minor_version == 1
        && req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        && !matches!(framing, Framing::Length(0))
    {
        (&*stream)
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }

    match framing {
        Framing::Length(n) => {
            while buf.len() < n {
                if fill(stream, buf).await? == 0 {
                    return Err(ReadError::Truncated);
                }
            }
            req.body = buf.drain(..n).collect();
        }
        Framing::Chunked => loop {
            match decode_chunked(buf) {
                Ok(Some((body, used))) => {
                    req.body = body;
                    buf.drain(..used);
                    break;
                }
                Ok(None) => {
                    if buf.len() > MAX_BODY_BYTES + MAX_HEAD_BYTES {
                        return Err(ReadError::Bad(413, "request body too large".into()));
                    }
                    if fill(stream, buf).await? == 0 {
                        return Err(ReadError::Truncated);
                    }
                }
                Err(e) => return Err(ReadError::Bad(400, e)),
            }
        },
    }
    Ok(Some(req))
}

enum Framing {
    Length(usize),
    Chunked,
}

fn body_framing(req: &Request) -> Result<Framing, ReadError> {
    if let Some(te) = req.header("transfer-encoding") {
        if te
            .rsplit(',')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
        {
            return Ok(Framing::Chunked);
        }
        return Err(ReadError::Bad(
            400,
            format!("unsupported transfer-encoding {te}"),
        ));
    }
    let mut len = None;
    for (k, v) in &req.headers {
        if k == "content-length" {
            let n: usize = v
                .trim()
                .parse()
                .map_err(|_| ReadError::Bad(400, format!("bad content-length {v:?}")))?;
            if len.is_some_and(|l| l != n) {
                return Err(ReadError::Bad(400, "conflicting content-length".into()));
            }
            len = Some(n);
        }
    }
    let n = len.unwrap_or(0);
    if n > MAX_BODY_BYTES {
        return Err(ReadError::Bad(413, "request body too large".into()));
    }
    Ok(Framing::Length(n))
}

/// Decode a complete chunked body at the start of `buf`: `Ok(None)` if
/// more bytes are needed, else the body and the bytes used (trailers
/// included).
pub fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find_crlf(&buf[pos..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + eol]).map_err(|_| "bad chunk size")?;
        let size_txt = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_txt, 16)
            .map_err(|_| format!("bad chunk size {size_txt:?}"))?;
        if size > MAX_BODY_BYTES || body.len() + size > MAX_BODY_BYTES {
            return Err("chunked body too large".into());
        }
        pos += eol + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let Some(eol) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err("missing CRLF after chunk".into());
        }
        pos += size + 2;
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Framing of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Length(usize),
    Chunked,
}

/// Serialize a response head.
pub fn response_head(
    status: u16,
    headers: &[(String, String)],
    framing: BodyFraming,
    keep_alive: bool,
) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        h.push_str(k);
        h.push_str(": ");
        h.push_str(v);
        h.push_str("\r\n");
    }
    match framing {
        BodyFraming::Length(n) => h.push_str(&format!("content-length: {n}\r\n")),
        BodyFraming::Chunked => h.push_str("transfer-encoding: chunked\r\n"),
    }
    if !keep_alive {
        h.push_str("connection: close\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// One chunk of a chunked body (must not be empty).
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_decode() {
        let b = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: v\r\n\r\nNEXT";
        let (body, used) = decode_chunked(b).unwrap().unwrap();
        assert_eq!(body, b"Wikipedia");
        assert_eq!(&b[used..], b"NEXT");
        assert!(decode_chunked(b"4\r\nWi").unwrap().is_none());
    }
}
