//! Server side of HTTP/1.1: request heads and bodies in.
//!
//! The codec follows h11's cycle: one request is parsed (`Head`, `Body`*,
//! `End`), then nothing more until the caller has answered it and called
//! `start_next`. Pipelined bytes wait in the buffer meanwhile, which stays
//! bounded because `feed` stops accepting at the bound.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{EXPECT, HOST};

use super::body::BodyDecoder;
use super::chunked::{Chunk, ChunkedDecoder};
use super::head::{self, Framing, HeadPoll, HeadReader};
use super::{BodyKind, HttpError};
use crate::Limits;

/// Room beyond `max_head_bytes` that the buffer may hold: enough for a
/// chunk-size line and a useful slice of body per read.
pub const BUFFER_SLACK: usize = 8 * 1024;

/// A parsed request head.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: http::Method,
    /// The request-target in origin-form (path and query). An absolute-form
    /// target has been reduced to its path and query; `*` is kept as is.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    pub headers: http::HeaderMap,
    /// Whether the connection may stay open after this exchange
    /// (HTTP/1.1 default yes unless `Connection: close`; 1.0 only with keep-alive).
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent in an HTTP/1.1 request (RFC 9110
    /// §10.1.1 says to ignore it in 1.0).
    pub expect_continue: bool,
    pub body: BodyKind,
}

impl RequestHead {
    /// The target without its query.
    pub fn path(&self) -> &str {
        match self.target.split_once('?') {
            Some((path, _)) => path,
            None => &self.target,
        }
    }

    /// The query (after `?`), if the target has one.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The first value of a header, if it is valid UTF-8.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
    }
}

/// What the server codec yields, in order, for each request:
/// `Head`, zero or more `Body`, then `End`.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    Head(Box<RequestHead>),
    Body(Bytes),
    End,
    /// The client closed cleanly between requests.
    Closed,
}

impl PartialEq for RequestHead {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method
            && self.target == other.target
            && self.version_minor == other.version_minor
            && self.headers == other.headers
            && self.keep_alive == other.keep_alive
            && self.expect_continue == other.expect_continue
            && self.body == other.body
    }
}

#[derive(Debug)]
enum State {
    Head(HeadReader),
    Body(BodyDecoder),
    /// `End` was returned; waiting for `start_next`.
    Finished,
    /// `Closed` was returned.
    Closed,
    Failed(HttpError),
}

/// Incremental request parser for one connection.
#[derive(Debug)]
pub struct ServerCodec {
    max_head_bytes: usize,
    max_headers: usize,
    max_body_bytes: u64,
    bound: usize,
    buf: BytesMut,
    state: State,
    eof: bool,
}

impl ServerCodec {
    pub fn new(limits: &Limits) -> ServerCodec {
        let bound = limits.max_head_bytes.saturating_add(BUFFER_SLACK);
        ServerCodec {
            max_head_bytes: limits.max_head_bytes,
            max_headers: limits.max_headers,
            max_body_bytes: u64::try_from(limits.max_body_bytes).unwrap_or(u64::MAX),
            bound,
            buf: BytesMut::with_capacity(bound.min(BUFFER_SLACK)),
            state: State::Head(HeadReader::new()),
            eof: false,
        }
    }

    /// Takes input bytes; returns how many were accepted. Fewer than given
    /// means the internal buffer is at its bound (backpressure): the caller
    /// keeps the rest and offers it again after draining events.
    ///
    /// After an error, `Closed` or `feed_eof`, input is meaningless and is
    /// dropped (reported as accepted so a caller loop cannot spin on it).
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        if self.eof || matches!(self.state, State::Failed(_) | State::Closed) {
            return bytes.len();
        }
        let room = self.bound.saturating_sub(self.buf.len());
        let accepted = bytes.get(..room).unwrap_or(bytes);
        self.buf.extend_from_slice(accepted);
        accepted.len()
    }

    /// The client half-closed / closed its side.
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }

    /// Next event of the current request; `Ok(None)` means more bytes are
    /// needed (or the current request is finished and `start_next` has not
    /// been called). An error is final for the connection: every later call
    /// returns it again.
    pub fn poll_event(&mut self) -> Result<Option<ServerEvent>, HttpError> {
        let result = self.step();
        if let Err(err) = result {
            self.state = State::Failed(err);
        }
        result
    }

    /// The response to the current request is done; begin parsing the next
    /// (pipelined bytes already buffered are kept).
    ///
    /// Does nothing unless the current request has reached `End`: unread
    /// body bytes would otherwise be parsed as a request. A caller that
    /// answers before reading the whole body must close the connection.
    pub fn start_next(&mut self) {
        if matches!(self.state, State::Finished) {
            self.state = State::Head(HeadReader::new());
        }
    }

    /// Whether the current request has been read to its `End`.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Bytes held in the internal buffer (never more than `buffer_bound`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The most the internal buffer will hold.
    pub fn buffer_bound(&self) -> usize {
        self.bound
    }

    fn step(&mut self) -> Result<Option<ServerEvent>, HttpError> {
        match &mut self.state {
            State::Failed(err) => Err(*err),
            State::Finished | State::Closed => Ok(None),
            State::Head(reader) => {
                match reader.poll(&mut self.buf, self.max_head_bytes, self.eof)? {
                    HeadPoll::NeedMore => Ok(None),
                    HeadPoll::CleanEof => {
                        self.state = State::Closed;
                        Ok(Some(ServerEvent::Closed))
                    }
                    HeadPoll::Ready(end) => {
                        let head = parse_request(
                            self.buf.get(..end).unwrap_or_default(),
                            self.max_headers,
                        )?;
                        self.buf.advance(end);
                        self.state = State::Body(match head.body {
                            BodyKind::Length(n) if n > self.max_body_bytes => {
                                return Err(HttpError::BodyTooLarge)
                            }
                            BodyKind::Length(n) => BodyDecoder::Length(n),
                            BodyKind::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new(
                                self.max_body_bytes,
                                self.max_head_bytes,
                                self.max_headers,
                            )),
                            BodyKind::Empty | BodyKind::UntilClose => BodyDecoder::Length(0),
                        });
                        Ok(Some(ServerEvent::Head(Box::new(head))))
                    }
                }
            }
            State::Body(decoder) => match decoder.decode(&mut self.buf, self.eof)? {
                Some(Chunk::Data(data)) => Ok(Some(ServerEvent::Body(data))),
                Some(Chunk::End) => {
                    self.state = State::Finished;
                    Ok(Some(ServerEvent::End))
                }
                None => Ok(None),
            },
        }
    }
}

/// Parses and validates a complete request head (`head` ends with its
/// empty line).
fn parse_request(head: &[u8], max_headers: usize) -> Result<RequestHead, HttpError> {
    head::with_header_slots(max_headers, |slots| {
        let mut request = httparse::Request::new(slots);
        match request.parse(head) {
            Ok(httparse::Status::Complete(len)) if len == head.len() => {}
            Ok(_) => return Err(HttpError::Malformed("invalid request head")),
            Err(err) => return Err(head::map_parse_error(err, head, true)),
        }
        let method = request.method.unwrap_or_default();
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| HttpError::Malformed("invalid method"))?;
        let version_minor = request.version.unwrap_or(1);
        let target = normalize_target(&method, request.path.unwrap_or_default())?;
        let headers = head::to_header_map(request.headers)?;

        match headers.get_all(HOST).iter().count() {
            0 if version_minor >= 1 => return Err(HttpError::Malformed("missing Host header")),
            0 | 1 => {}
            _ => return Err(HttpError::Malformed("multiple Host headers")),
        }
        let body = match head::framing(&headers, version_minor)? {
            Framing::None => BodyKind::Empty,
            Framing::Length(n) => BodyKind::Length(n),
            Framing::Chunked => BodyKind::Chunked,
        };
        let expect_continue = version_minor >= 1
            && headers
                .get(EXPECT)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        Ok(RequestHead {
            keep_alive: head::keep_alive(&headers, version_minor),
            method,
            target,
            version_minor,
            headers,
            expect_continue,
            body,
        })
    })
}

/// RFC 9112 §3.2: origin-form is the norm; asterisk-form only for
/// OPTIONS; absolute-form must be accepted and is reduced to origin-form.
/// Authority-form (CONNECT) is not something a gateway serves.
fn normalize_target(method: &http::Method, raw: &str) -> Result<String, HttpError> {
    // httparse lets obs-text through; a target is visible ASCII, and a
    // fragment is never sent.
    if raw.bytes().any(|b| !b.is_ascii_graphic() || b == b'#') {
        return Err(HttpError::Malformed("invalid request target"));
    }
    if raw.starts_with('/') {
        return Ok(raw.to_owned());
    }
    if raw == "*" {
        return if method == http::Method::OPTIONS {
            Ok(raw.to_owned())
        } else {
            Err(HttpError::Malformed(
                "asterisk-form target is only for OPTIONS",
            ))
        };
    }
    let after_scheme = strip_prefix_ignore_case(raw, "http://")
        .or_else(|| strip_prefix_ignore_case(raw, "https://"));
    let Some(rest) = after_scheme else {
        return Err(HttpError::Malformed("request target is not origin-form"));
    };
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at_checked(authority_len).unwrap_or((rest, ""));
    if authority.is_empty() || authority.contains('@') {
        return Err(HttpError::Malformed("invalid authority in request target"));
    }
    Ok(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let get = http::Method::GET;
        assert_eq!(normalize_target(&get, "/a?b").as_deref(), Ok("/a?b"));
        assert_eq!(
            normalize_target(&get, "HTTP://h:1/p?q").as_deref(),
            Ok("/p?q")
        );
        assert_eq!(normalize_target(&get, "https://h?q").as_deref(), Ok("/?q"));
        assert_eq!(normalize_target(&get, "http://h").as_deref(), Ok("/"));
        assert!(normalize_target(&get, "http:///p").is_err());
        assert!(normalize_target(&get, "http://u@h/p").is_err());
        assert!(normalize_target(&get, "h:443").is_err());
        assert!(normalize_target(&get, "*").is_err());
        assert!(normalize_target(&http::Method::OPTIONS, "*").is_ok());
        assert!(normalize_target(&get, "/a#f").is_err());
    }
}
