//! Pieces of head handling shared by the server and client codecs: finding
//! where a head ends, turning httparse output into `http` types, and the
//! framing rules (Content-Length, Transfer-Encoding, Connection) whose
//! disagreements between parsers are what request smuggling exploits.

use bytes::{Buf, BytesMut};
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING,
};

use super::HttpError;

/// RFC 9112 §2.2 lets a server skip empty lines before a request line (some
/// clients send a stray CRLF after a body); more than this many is not a
/// client bug but noise, so it is refused.
const MAX_LEADING_EMPTY_LINES: u8 = 4;

/// Above this many header slots, the slot array moves from the stack to the
/// heap; 128 slots are 4 KiB of stack.
const STACK_HEADER_SLOTS: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScanState {
    /// Inside a line.
    Line,
    /// A CR inside a line; only LF may follow.
    LineCr,
    /// Just after a line terminator.
    LineStart,
    /// A CR at the start of a line: the empty line that ends the head.
    LineStartCr,
}

/// Finds the empty line that ends a head (or a trailer section), resuming
/// where the previous call stopped so a head fed one byte at a time is
/// still scanned once. Bare CR and obs-fold are refused here, before
/// httparse sees the head, so that each has its own precise reason.
#[derive(Clone, Debug)]
pub(super) struct HeadScanner {
    pos: usize,
    state: ScanState,
}

impl HeadScanner {
    /// For a head: the start-line comes first, so the scan starts mid-line.
    pub(super) fn for_head() -> HeadScanner {
        HeadScanner {
            pos: 0,
            state: ScanState::Line,
        }
    }

    /// For a trailer section, which may be empty (a lone CRLF).
    pub(super) fn for_trailers() -> HeadScanner {
        HeadScanner {
            pos: 0,
            state: ScanState::LineStart,
        }
    }

    /// `Ok(Some(end))`: the head is `buf[..end]`, its final line terminator
    /// included. `buf` must start where the previous calls' `buf` started.
    pub(super) fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, HttpError> {
        let Some(rest) = buf.get(self.pos..) else {
            return Ok(None);
        };
        let mut i = 0;
        while i < rest.len() {
            if self.state == ScanState::Line {
                // Most head bytes are line content: jump to the next CR or LF
                // (memchr2 looks at a word or a vector of bytes at a time).
                match rest
                    .get(i..)
                    .and_then(|tail| memchr::memchr2(b'\r', b'\n', tail))
                {
                    Some(skip) => i += skip,
                    None => break,
                }
            }
            let Some(&byte) = rest.get(i) else {
                break;
            };
            self.state = match (self.state, byte) {
                (ScanState::Line, b'\r') => ScanState::LineCr,
                // The jump above stops only on CR or LF.
                (ScanState::Line, _) => ScanState::LineStart,
                (ScanState::LineCr, b'\n') => ScanState::LineStart,
                (ScanState::LineStart, b'\r') => ScanState::LineStartCr,
                (ScanState::LineStart | ScanState::LineStartCr, b'\n') => {
                    let end = self.pos + i + 1;
                    self.pos = end;
                    return Ok(Some(end));
                }
                (ScanState::LineStart, b' ' | b'\t') => {
                    return Err(HttpError::Malformed("obsolete line folding in header"));
                }
                (ScanState::LineStart, _) => ScanState::Line,
                (ScanState::LineCr | ScanState::LineStartCr, _) => {
                    return Err(HttpError::Malformed("bare CR in message head"));
                }
            };
            i += 1;
        }
        self.pos = buf.len();
        Ok(None)
    }
}

/// Where the head of the current message stands.
pub(super) enum HeadPoll {
    /// The head is `buf[..end]`.
    Ready(usize),
    /// More bytes are needed.
    NeedMore,
    /// The peer closed with nothing of a new message buffered.
    CleanEof,
}

/// Drives `HeadScanner` over the codec buffer and applies the head size
/// bound, so both codecs read heads the same way.
#[derive(Clone, Debug)]
pub(super) struct HeadReader {
    scanner: HeadScanner,
    empty_lines: u8,
}

impl HeadReader {
    pub(super) fn new() -> HeadReader {
        HeadReader {
            scanner: HeadScanner::for_head(),
            empty_lines: 0,
        }
    }

    pub(super) fn poll(
        &mut self,
        buf: &mut BytesMut,
        max_head: usize,
        eof: bool,
    ) -> Result<HeadPoll, HttpError> {
        if self.scanner.pos == 0 && !self.skip_empty_lines(buf)? {
            // A lone CR: wait to see whether it starts an empty line.
            return if eof {
                Err(HttpError::Incomplete)
            } else {
                Ok(HeadPoll::NeedMore)
            };
        }
        if buf.is_empty() {
            return Ok(if eof {
                HeadPoll::CleanEof
            } else {
                HeadPoll::NeedMore
            });
        }
        // Scanning stops at the bound, so bytes beyond it cannot turn a
        // 431 into a 400 depending on how the input was split.
        let window = buf.get(..max_head).unwrap_or(buf);
        match self.scanner.scan(window)? {
            Some(end) => Ok(HeadPoll::Ready(end)),
            None if buf.len() >= max_head => Err(HttpError::HeadTooLarge),
            None if eof => Err(HttpError::Incomplete),
            None => Ok(HeadPoll::NeedMore),
        }
    }

    /// `Ok(false)` when the buffer ends in a CR that may start an empty line.
    fn skip_empty_lines(&mut self, buf: &mut BytesMut) -> Result<bool, HttpError> {
        loop {
            let skip = match buf.first() {
                Some(b'\n') => 1,
                Some(b'\r') => match buf.get(1) {
                    Some(b'\n') => 2,
                    Some(_) => return Err(HttpError::Malformed("bare CR in message head")),
                    None => return Ok(false),
                },
                _ => return Ok(true),
            };
            if self.empty_lines >= MAX_LEADING_EMPTY_LINES {
                return Err(HttpError::Malformed("too many empty lines before message"));
            }
            self.empty_lines += 1;
            buf.advance(skip);
        }
    }
}

/// Runs `f` with `max` empty httparse header slots, on the stack when few.
pub(super) fn with_header_slots<'b, R>(
    max: usize,
    f: impl FnOnce(&mut [httparse::Header<'b>]) -> R,
) -> R {
    if max <= STACK_HEADER_SLOTS {
        let mut slots: [httparse::Header<'b>; STACK_HEADER_SLOTS] =
            [httparse::EMPTY_HEADER; STACK_HEADER_SLOTS];
        match slots.get_mut(..max) {
            Some(slots) => f(slots),
            None => f(&mut []),
        }
    } else {
        let mut slots = vec![httparse::EMPTY_HEADER; max];
        f(&mut slots)
    }
}

/// Maps an httparse error to ours. A version error is re-examined so that a
/// well-formed but unsupported version (`HTTP/2.0`) gets 505, not 400.
pub(super) fn map_parse_error(
    err: httparse::Error,
    head: &[u8],
    version_at_end: bool,
) -> HttpError {
    match err {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Status => HttpError::Malformed("invalid status line"),
        httparse::Error::Token => HttpError::Malformed("invalid request line"),
        httparse::Error::Version => {
            if looks_like_version(start_line_version(head, version_at_end)) {
                HttpError::UnsupportedVersion
            } else {
                HttpError::Malformed("invalid HTTP version")
            }
        }
    }
}

/// The version token of a start-line: last word of a request line, first
/// word of a status line.
fn start_line_version(head: &[u8], version_at_end: bool) -> &[u8] {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head.get(..line_end).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let word = if version_at_end {
        line.rsplit(|&b| b == b' ').next()
    } else {
        line.split(|&b| b == b' ').next()
    };
    word.unwrap_or_default()
}

/// `HTTP/<digit>.<digit>`: RFC 9112 §2.3 syntax for any version.
fn looks_like_version(word: &[u8]) -> bool {
    matches!(word, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// Converts httparse fields into a `HeaderMap`, keeping duplicates in order.
pub(super) fn to_header_map(fields: &[httparse::Header<'_>]) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| HttpError::Malformed("invalid header name"))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| HttpError::Malformed("invalid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Elements of a comma-separated field list across every line of `name`,
/// with optional whitespace trimmed and empty elements dropped (RFC 9110
/// §5.6.1 requires tolerating them).
fn list_elements<'a>(
    headers: &'a HeaderMap,
    name: &'a HeaderName,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(trim_ows)
        .filter(|element| !element.is_empty())
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Whether a `Connection` header lists `token` (case-insensitive).
pub(super) fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    list_elements(headers, &CONNECTION)
        .any(|element| element.eq_ignore_ascii_case(token.as_bytes()))
}

/// RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with
/// `keep-alive` (and `close` still wins when both are listed).
pub(super) fn keep_alive(headers: &HeaderMap, version_minor: u8) -> bool {
    if connection_has(headers, "close") {
        return false;
    }
    version_minor >= 1 || connection_has(headers, "keep-alive")
}

/// How a message's own headers delimit its body, before any rule about
/// methods or status codes that have no body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Applies RFC 9112 §6 strictly: every ambiguity two parsers could resolve
/// differently is an error rather than a guess.
pub(super) fn framing(headers: &HeaderMap, version_minor: u8) -> Result<Framing, HttpError> {
    let chunked = transfer_encoding(headers)?;
    let length = content_length(headers)?;
    match (chunked, length) {
        (true, Some(_)) => Err(HttpError::Malformed(
            "both Content-Length and Transfer-Encoding",
        )),
        (true, None) if version_minor == 0 => Err(HttpError::Malformed(
            "Transfer-Encoding in HTTP/1.0 message",
        )),
        (true, None) => Ok(Framing::Chunked),
        (false, Some(n)) => Ok(Framing::Length(n)),
        (false, None) => Ok(Framing::None),
    }
}

/// `Ok(true)` when the message is chunked, `Ok(false)` without the header.
fn transfer_encoding(headers: &HeaderMap) -> Result<bool, HttpError> {
    if !headers.contains_key(TRANSFER_ENCODING) {
        return Ok(false);
    }
    let mut chunked_count = 0usize;
    let mut other_coding = false;
    let mut last_is_chunked = false;
    for coding in list_elements(headers, &TRANSFER_ENCODING) {
        last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if last_is_chunked {
            chunked_count += 1;
        } else {
            other_coding = true;
        }
    }
    if !last_is_chunked {
        return Err(HttpError::Malformed(
            "Transfer-Encoding does not end with chunked",
        ));
    }
    if chunked_count > 1 {
        return Err(HttpError::Malformed("chunked applied more than once"));
    }
    // RFC 9112 §6.1 suggests 501 here; it is refused as malformed because
    // the core cannot decode other codings, and passing coded bytes on as
    // the body would misread them.
    if other_coding {
        return Err(HttpError::Malformed("unsupported transfer coding"));
    }
    Ok(true)
}

/// All `Content-Length` values, comma lists included, must be the same
/// plain decimal number.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let n = parse_decimal(trim_ows(element))
                .ok_or(HttpError::Malformed("invalid Content-Length"))?;
            match found {
                Some(previous) if previous != n => {
                    return Err(HttpError::Malformed("conflicting Content-Length values"));
                }
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// `1*DIGIT` into a u64; signs, spaces, hex and overflow are refused.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn scanner_finds_end_across_calls() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        let mut scanner = HeadScanner::for_head();
        for len in 0..head.len() {
            let got = scanner.scan(&head[..len]).unwrap();
            if len < 27 {
                assert_eq!(got, None, "len {len}");
            } else {
                assert_eq!(got, Some(27));
                return;
            }
        }
    }

    #[test]
    fn scanner_accepts_bare_lf() {
        assert_eq!(
            HeadScanner::for_head().scan(b"GET / HTTP/1.1\nHost: a\n\n"),
            Ok(Some(24))
        );
    }

    #[test]
    fn scanner_empty_trailers() {
        assert_eq!(HeadScanner::for_trailers().scan(b"\r\nX"), Ok(Some(2)));
        assert_eq!(
            HeadScanner::for_trailers().scan(b"A: b\r\n\r\n"),
            Ok(Some(8))
        );
    }

    #[test]
    fn decimal() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"0x10"), None);
    }

    #[test]
    fn framing_rules() {
        assert_eq!(
            framing(&map(&[("content-length", "5, 5")]), 1),
            Ok(Framing::Length(5))
        );
        assert!(framing(&map(&[("content-length", "5, 6")]), 1).is_err());
        assert!(framing(&map(&[("content-length", "5,")]), 1).is_err());
        assert_eq!(
            framing(&map(&[("transfer-encoding", "Chunked")]), 1),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(&map(&[("transfer-encoding", "gzip, chunked")]), 1),
            Err(HttpError::Malformed("unsupported transfer coding"))
        );
        assert!(framing(&map(&[("transfer-encoding", "")]), 1).is_err());
    }

    #[test]
    fn keep_alive_rules() {
        assert!(keep_alive(&map(&[]), 1));
        assert!(!keep_alive(&map(&[("connection", "Upgrade, CLOSE")]), 1));
        assert!(!keep_alive(&map(&[]), 0));
        assert!(keep_alive(&map(&[("connection", "Keep-Alive")]), 0));
        assert!(!keep_alive(&map(&[("connection", "keep-alive, close")]), 0));
    }

    #[test]
    fn version_words() {
        assert!(looks_like_version(start_line_version(
            b"GET / HTTP/2.0\r\n",
            true
        )));
        assert!(!looks_like_version(start_line_version(
            b"GET / HTTX/1.1\r\n",
            true
        )));
        assert!(looks_like_version(start_line_version(
            b"HTTP/3.0 200 OK\r\n",
            false
        )));
    }
}
