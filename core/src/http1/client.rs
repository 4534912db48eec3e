//! Client side of HTTP/1.1: requests out to upstreams, responses in.
//!
//! One codec serves one upstream connection, one response at a time: after
//! `End`, `is_reusable` says whether the connection may carry another
//! request, and `reset` prepares the codec for that next response.

use bytes::{Buf, Bytes, BytesMut};

use super::body::BodyDecoder;
use super::chunked::{Chunk, ChunkedDecoder};
use super::encode::{push_decimal, push_line_field};
use super::head::{self, Framing, HeadPoll, HeadReader};
use super::server::BUFFER_SLACK;
use super::{BodyKind, HttpError};
use crate::Limits;

#[derive(Clone, Debug, PartialEq)]
pub struct ResponseHead {
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    pub headers: http::HeaderMap,
    pub body: BodyKind,
    /// Whether the connection may carry another request after this
    /// response (never for a close-delimited body).
    pub keep_alive: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    Head(Box<ResponseHead>),
    Body(Bytes),
    End,
}

#[derive(Debug)]
enum State {
    Head(HeadReader),
    Body(BodyDecoder),
    /// `End` was returned; waiting for `reset`.
    Finished,
    Failed(HttpError),
}

#[derive(Debug)]
pub struct ClientCodec {
    max_head_bytes: usize,
    max_headers: usize,
    bound: usize,
    buf: BytesMut,
    state: State,
    head_request: bool,
    keep_alive: bool,
    eof: bool,
    started: bool,
}

impl ClientCodec {
    /// `head_request`: the request was HEAD, so the response has no body.
    pub fn new(limits: &Limits, head_request: bool) -> ClientCodec {
        let bound = limits.max_upstream_head_bytes.saturating_add(BUFFER_SLACK);
        ClientCodec {
            max_head_bytes: limits.max_upstream_head_bytes,
            max_headers: limits.max_headers,
            bound,
            buf: BytesMut::with_capacity(bound.min(BUFFER_SLACK)),
            state: State::Head(HeadReader::new()),
            head_request,
            keep_alive: false,
            eof: false,
            started: false,
        }
    }

    /// Takes input bytes; returns how many were accepted (fewer than given
    /// when the buffer is at its bound). After an error or EOF, input is
    /// dropped and reported as accepted.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        if self.eof || matches!(self.state, State::Failed(_)) {
            return bytes.len();
        }
        let room = self.bound.saturating_sub(self.buf.len());
        let accepted = bytes.get(..room).unwrap_or(bytes);
        self.buf.extend_from_slice(accepted);
        self.started |= !accepted.is_empty();
        accepted.len()
    }

    /// The upstream closed its side.
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }

    /// Next event of the current response; `Ok(None)` means more bytes are
    /// needed, or `End` was already returned. An error is final: every
    /// later call returns it again.
    pub fn poll_event(&mut self) -> Result<Option<ClientEvent>, HttpError> {
        let result = self.step();
        if let Err(err) = result {
            self.state = State::Failed(err);
        }
        result
    }

    /// Prepares for the next response on the same connection; bytes
    /// already buffered are kept as the start of that response.
    ///
    /// Only valid after `End`: reset mid-response, the rest of the body
    /// would be read as the next head, so the codec fails instead.
    pub fn reset(&mut self, head_request: bool) {
        self.state = match self.state {
            State::Finished => State::Head(HeadReader::new()),
            State::Failed(err) => State::Failed(err),
            State::Head(_) | State::Body(_) => State::Failed(HttpError::Malformed(
                "connection reused before the response ended",
            )),
        };
        self.head_request = head_request;
        self.keep_alive = false;
        self.started = !self.buf.is_empty();
    }

    /// After `End`: the upstream may take another request on this
    /// connection. Bytes that arrived beyond the response mean the
    /// connection is out of step, so it is not reusable then either.
    pub fn is_reusable(&self) -> bool {
        matches!(self.state, State::Finished) && self.keep_alive && !self.eof && self.buf.is_empty()
    }

    /// Whether the current response has been read to its `End`.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Whether any byte of the current response has arrived. A pooled
    /// connection that fails before this is stale, and the request can be
    /// retried on a fresh one.
    pub fn has_started(&self) -> bool {
        self.started
    }

    /// Bytes held in the internal buffer (never more than `buffer_bound`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The most the internal buffer will hold.
    pub fn buffer_bound(&self) -> usize {
        self.bound
    }

    fn step(&mut self) -> Result<Option<ClientEvent>, HttpError> {
        loop {
            match &mut self.state {
                State::Failed(err) => return Err(*err),
                State::Finished => return Ok(None),
                State::Head(reader) => {
                    let end = match reader.poll(&mut self.buf, self.max_head_bytes, self.eof)? {
                        HeadPoll::NeedMore => return Ok(None),
                        HeadPoll::CleanEof => return Err(HttpError::Incomplete),
                        HeadPoll::Ready(end) => end,
                    };
                    let parsed = parse_response(
                        self.buf.get(..end).unwrap_or_default(),
                        self.max_headers,
                        self.head_request,
                    )?;
                    self.buf.advance(end);
                    let Some(head) = parsed else {
                        // An interim 1xx response: the final one follows.
                        self.state = State::Head(HeadReader::new());
                        continue;
                    };
                    self.keep_alive = head.keep_alive;
                    self.state = State::Body(match head.body {
                        BodyKind::Empty => BodyDecoder::Length(0),
                        BodyKind::Length(n) => BodyDecoder::Length(n),
                        BodyKind::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new(
                            u64::MAX,
                            self.max_head_bytes,
                            self.max_headers,
                        )),
                        BodyKind::UntilClose => BodyDecoder::UntilClose,
                    });
                    return Ok(Some(ClientEvent::Head(Box::new(head))));
                }
                State::Body(decoder) => {
                    return match decoder.decode(&mut self.buf, self.eof)? {
                        Some(Chunk::Data(data)) => Ok(Some(ClientEvent::Body(data))),
                        Some(Chunk::End) => {
                            self.state = State::Finished;
                            Ok(Some(ClientEvent::End))
                        }
                        None => Ok(None),
                    };
                }
            }
        }
    }
}

/// Parses a complete response head; `Ok(None)` for an interim 1xx.
fn parse_response(
    head: &[u8],
    max_headers: usize,
    head_request: bool,
) -> Result<Option<ResponseHead>, HttpError> {
    head::with_header_slots(max_headers, |slots| {
        let mut response = httparse::Response::new(slots);
        match response.parse(head) {
            Ok(httparse::Status::Complete(len)) if len == head.len() => {}
            Ok(_) => return Err(HttpError::Malformed("invalid response head")),
            Err(err) => return Err(head::map_parse_error(err, head, false)),
        }
        let status = response.code.unwrap_or_default();
        let version_minor = response.version.unwrap_or(1);
        match status {
            101 => return Err(HttpError::Malformed("unexpected protocol switch")),
            100..=199 => return Ok(None),
            200..=999 => {}
            _ => return Err(HttpError::Malformed("invalid status code")),
        }
        let headers = head::to_header_map(response.headers)?;
        // Framing is validated even when the status says there is no body:
        // conflicting headers mean the upstream is not to be trusted.
        let framing = head::framing(&headers, version_minor)?;
        let body = if head_request || status == 204 || status == 304 {
            BodyKind::Empty
        } else {
            match framing {
                Framing::None => BodyKind::UntilClose,
                Framing::Length(n) => BodyKind::Length(n),
                Framing::Chunked => BodyKind::Chunked,
            }
        };
        let keep_alive = body != BodyKind::UntilClose && head::keep_alive(&headers, version_minor);
        Ok(Some(ResponseHead {
            status,
            version_minor,
            headers,
            body,
            keep_alive,
        }))
    })
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Bodies from this size on are not copied behind their head (see
/// `write_request_owned`).
const MOVE_BODY_FROM: usize = 64 * 1024;

/// Writes a request with a `Content-Length` body (or none when `body` is
/// empty and the method carries none). `headers` must not contain Host,
/// Content-Length or Transfer-Encoding.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    out.reserve(64 + target.len() + host.len() + body.len());
    write_request_head(out, method, target, host, headers, Some(body.len() as u64));
    out.extend_from_slice(body);
}

/// As `write_request`, with the body by value: when `out` is empty, a large
/// body becomes the output buffer and the head is inserted before it in
/// place, so a request of many megabytes is never held twice.
pub fn write_request_owned(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    mut body: Vec<u8>,
) {
    if !out.is_empty() || body.len() < MOVE_BODY_FROM {
        write_request(out, method, target, host, headers, &body);
        return;
    }
    let mut head = Vec::with_capacity(256 + target.len() + host.len());
    write_request_head(
        &mut head,
        method,
        target,
        host,
        headers,
        Some(body.len() as u64),
    );
    body.splice(0..0, head);
    *out = body;
}

/// A request head whose body follows separately: `Some(length)`, or
/// `None` for a chunked body (the caller writes its chunks and its end).
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body_len: Option<u64>,
) {
    debug_assert!(!method.is_empty() && method.bytes().all(|b| b.is_ascii_graphic()));
    debug_assert!(!target.is_empty());
    debug_assert!(headers.iter().all(|(name, _)| {
        !name.eq_ignore_ascii_case("host")
            && !name.eq_ignore_ascii_case("content-length")
            && !name.eq_ignore_ascii_case("transfer-encoding")
    }));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    // Callers validate what goes into a target; should anything unprintable
    // slip through anyway, it is percent-encoded here rather than allowed to
    // end the request line.
    for &b in target.as_bytes() {
        if b.is_ascii_graphic() {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_line_field(out, "Host", host);
    for (name, value) in headers {
        push_line_field(out, name, value);
    }
    match body_len {
        None => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Some(len) if len > 0 || matches!(method, "POST" | "PUT" | "PATCH") => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, len);
            out.extend_from_slice(b"\r\n");
        }
        Some(_) => {}
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn an_owned_body_makes_the_same_bytes() {
        for size in [
            0,
            10,
            MOVE_BODY_FROM - 1,
            MOVE_BODY_FROM,
            3 * MOVE_BODY_FROM + 7,
        ] {
            let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
            let headers = [("Content-Type", "application/json")];
            let mut borrowed = Vec::new();
            write_request(&mut borrowed, "POST", "/v1/x", "h:1", &headers, &body);
            let mut owned = Vec::new();
            write_request_owned(&mut owned, "POST", "/v1/x", "h:1", &headers, body);
            assert_eq!(owned, borrowed, "size {size}");
            // Appending to pending bytes keeps them first.
            let mut pending = b"prev".to_vec();
            let body: Vec<u8> = vec![b'z'; size];
            write_request_owned(&mut pending, "POST", "/v1/x", "h:1", &headers, body.clone());
            let mut expect = b"prev".to_vec();
            write_request(&mut expect, "POST", "/v1/x", "h:1", &headers, &body);
            assert_eq!(pending, expect);
        }
    }
}
