//! Response writing (server side), plus the small writers the client's
//! request encoder shares. Header names are the core's own; values are
//! either the core's or `http::HeaderValue`s from a parsed request, which
//! cannot hold CR or LF. A CR or LF would split the message, so debug
//! builds check for it.

/// Writes a complete response with a `Content-Length` body.
/// `headers` must not contain Content-Length, Transfer-Encoding or Connection;
/// `Connection: close` is added when `keep_alive` is false.
///
/// For 1xx, 204 and 304, which cannot carry a body (RFC 9110 §8.6), no
/// Content-Length is written and `body` must be empty.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) {
    let bodiless = matches!(status, 100..=199 | 204 | 304);
    debug_assert!(
        !bodiless || body.is_empty(),
        "status {status} cannot carry a body"
    );
    out.reserve(128 + body.len());
    push_head_start(out, status, headers, keep_alive);
    if !bodiless {
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Writes a response head for a body of `len` bytes that follows
/// separately (a relayed body). For 1xx, 204 and 304 no length is written.
pub fn write_length_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    len: u64,
    keep_alive: bool,
) {
    out.reserve(128);
    push_head_start(out, status, headers, keep_alive);
    if !matches!(status, 100..=199 | 204 | 304) {
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, len);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a response head for a chunked (streamed) body.
pub fn write_chunked_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    keep_alive: bool,
) {
    out.reserve(128);
    push_head_start(out, status, headers, keep_alive);
    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
}

/// How a streamed response body is delimited: chunked for HTTP/1.1
/// clients; for HTTP/1.0 clients, which do not know chunked encoding, the
/// body runs until the server closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFraming {
    Chunked,
    UntilClose,
}

/// Writes the head of a streamed response.
pub fn write_stream_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    framing: StreamFraming,
    keep_alive: bool,
) {
    match framing {
        StreamFraming::Chunked => write_chunked_head(out, status, headers, keep_alive),
        StreamFraming::UntilClose => {
            out.reserve(128);
            push_head_start(out, status, headers, false);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Writes a piece of a streamed body.
pub fn write_stream_bytes(out: &mut Vec<u8>, framing: StreamFraming, data: &[u8]) {
    match framing {
        StreamFraming::Chunked => write_chunk(out, data),
        StreamFraming::UntilClose => out.extend_from_slice(data),
    }
}

/// Ends a streamed body (for `UntilClose`, closing the connection does).
pub fn write_stream_end(out: &mut Vec<u8>, framing: StreamFraming) {
    if framing == StreamFraming::Chunked {
        write_last_chunk(out);
    }
}

/// Writes one chunk; an empty `data` writes nothing (it would end the body).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.reserve(data.len() + 20);
    push_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Writes the terminating zero-length chunk.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// `HTTP/1.1 100 Continue` interim response.
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Status line, caller headers and the Connection header.
fn push_head_start(out: &mut Vec<u8>, status: u16, headers: &[(&str, &str)], keep_alive: bool) {
    debug_assert!(
        (100..=999).contains(&status),
        "status {status} is not three digits"
    );
    debug_assert!(headers.iter().all(|(name, _)| {
        !name.eq_ignore_ascii_case("content-length")
            && !name.eq_ignore_ascii_case("transfer-encoding")
            && !name.eq_ignore_ascii_case("connection")
    }));
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        push_line_field(out, name, value);
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
}

/// The registered reason phrase, or an empty one (RFC 9112 §4 allows it).
fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("")
}

/// `name: value\r\n`.
pub(super) fn push_line_field(out: &mut Vec<u8>, name: &str, value: &str) {
    debug_assert!(!name.is_empty() && !name.bytes().any(|b| b == b'\r' || b == b'\n' || b == b':'));
    debug_assert!(!value.bytes().any(|b| b == b'\r' || b == b'\n'));
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal without going through `fmt`.
pub(super) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Appends `n` in lowercase hex.
fn push_hex(out: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            *slot = HEX[(rest & 0xf) as usize];
        }
        rest >>= 4;
        if rest == 0 || start == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 255, 4096, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            out.clear();
            push_hex(&mut out, n);
            assert_eq!(out, format!("{n:x}").as_bytes());
        }
    }

    #[test]
    fn response() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            200,
            &[("Content-Type", "text/plain")],
            b"hi",
            false,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
        );
        out.clear();
        write_response(&mut out, 204, &[], b"", true);
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\n\r\n");
        out.clear();
        write_response(&mut out, 599, &[], b"", true);
        assert_eq!(out, b"HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        write_chunked_head(
            &mut out,
            200,
            &[("Content-Type", "text/event-stream")],
            true,
        );
        write_chunk(&mut out, b"");
        write_chunk(&mut out, &[b'x'; 26]);
        write_last_chunk(&mut out);
        let expected = [
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n"[..],
            &[b'x'; 26],
            b"\r\n0\r\n\r\n",
        ]
        .concat();
        assert_eq!(out, expected);
        out.clear();
        write_continue(&mut out);
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    }
}
