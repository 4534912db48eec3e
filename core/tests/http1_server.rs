//! Server codec: every rejection vector, the request cycle, limits, and
//! properties over generated and arbitrary input.

use arouter_core::http1::testing::{run_server, Seen};
use arouter_core::http1::{BodyKind, HttpError, RequestHead, ServerCodec, ServerEvent};
use arouter_core::Limits;
use proptest::prelude::*;

fn run(input: &[u8]) -> Vec<Seen<RequestHead>> {
    let whole = run_server(&Limits::default(), input, &[]);
    let bytewise = run_server(&Limits::default(), input, &[1]);
    assert_eq!(whole, bytewise, "byte-at-a-time feeding disagrees");
    whole
}

/// The error the input ends in.
fn error(input: &[u8]) -> HttpError {
    match run(input).last() {
        Some(Seen::Error(err)) => *err,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn malformed(input: &[u8], reason: &'static str) {
    let err = error(input);
    assert_eq!(
        err,
        HttpError::Malformed(reason),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(err.status(), 400);
}

/// The single request the input holds, with its body.
fn one(input: &[u8]) -> (RequestHead, Vec<u8>) {
    let seen = run(input);
    match seen.as_slice() {
        [Seen::Head(head), Seen::Body(body), Seen::End, Seen::Closed] => {
            (head.clone(), body.clone())
        }
        [Seen::Head(head), Seen::End, Seen::Closed] => (head.clone(), Vec::new()),
        other => panic!("expected one request, got {other:?}"),
    }
}

// ---- rejection vectors -------------------------------------------------

#[test]
fn content_length_and_transfer_encoding() {
    malformed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "both Content-Length and Transfer-Encoding",
    );
}

#[test]
fn conflicting_content_lengths() {
    malformed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "conflicting Content-Length values",
    );
    malformed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd",
        "conflicting Content-Length values",
    );
}

#[test]
fn identical_content_lengths_are_allowed() {
    let (head, body) =
        one(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc");
    assert_eq!(head.body, BodyKind::Length(3));
    assert_eq!(body, b"abc");
}

#[test]
fn content_length_not_decimal() {
    for value in [
        "+3",
        "-3",
        "3 3",
        "0x3",
        "3a",
        "",
        ",",
        "3,",
        "18446744073709551616",
        "99999999999999999999999",
    ] {
        let input = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\nabc");
        malformed(input.as_bytes(), "invalid Content-Length");
    }
}

#[test]
fn transfer_encoding_not_ending_in_chunked() {
    for value in ["gzip", "chunked, gzip", "chunked;x=1", "identity"] {
        let input =
            format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {value}\r\n\r\n0\r\n\r\n");
        malformed(
            input.as_bytes(),
            "Transfer-Encoding does not end with chunked",
        );
    }
    malformed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        "Transfer-Encoding does not end with chunked",
    );
}

#[test]
fn chunked_more_than_once() {
    malformed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        "chunked applied more than once",
    );
    malformed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
        "chunked applied more than once",
    );
}

#[test]
fn other_transfer_coding_is_refused() {
    malformed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "unsupported transfer coding",
    );
}

#[test]
fn transfer_encoding_is_case_insensitive() {
    let (head, body) = one(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(head.body, BodyKind::Chunked);
    assert_eq!(body, b"abc");
}

const CHUNKED: &str = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

#[test]
fn chunk_size_not_hex() {
    malformed(format!("{CHUNKED}zz\r\n").as_bytes(), "invalid chunk size");
    malformed(format!("{CHUNKED}-1\r\n").as_bytes(), "invalid chunk size");
    malformed(
        format!("{CHUNKED}0x5\r\nhello\r\n0\r\n\r\n").as_bytes(),
        "invalid chunk extension",
    );
}

#[test]
fn chunk_size_empty() {
    malformed(format!("{CHUNKED}\r\n").as_bytes(), "invalid chunk size");
    malformed(
        format!("{CHUNKED};ext\r\n").as_bytes(),
        "invalid chunk size",
    );
}

#[test]
fn chunk_size_overflow() {
    // 17 digits, even with leading zeros, and values beyond u64.
    malformed(
        format!("{CHUNKED}00000000000000001\r\n").as_bytes(),
        "chunk size too large",
    );
    malformed(
        format!("{CHUNKED}10000000000000000\r\n").as_bytes(),
        "chunk size too large",
    );
    // 16 digits fit a u64 but exceed the body limit.
    assert_eq!(
        error(format!("{CHUNKED}ffffffffffffffff\r\n").as_bytes()),
        HttpError::BodyTooLarge
    );
}

#[test]
fn chunk_size_line_needs_crlf() {
    malformed(
        format!("{CHUNKED}3\nabc\r\n0\r\n\r\n").as_bytes(),
        "chunk size line not ended by CRLF",
    );
}

#[test]
fn chunk_size_line_too_long() {
    let ext = "a".repeat(5000);
    malformed(
        format!("{CHUNKED}3;{ext}\r\nabc\r\n0\r\n\r\n").as_bytes(),
        "chunk size line too long",
    );
}

#[test]
fn chunk_data_without_crlf() {
    malformed(
        format!("{CHUNKED}3\r\nabcd\r\n0\r\n\r\n").as_bytes(),
        "chunk data not followed by CRLF",
    );
    malformed(
        format!("{CHUNKED}3\r\nabc\n0\r\n\r\n").as_bytes(),
        "chunk data not followed by CRLF",
    );
    malformed(
        format!("{CHUNKED}3\r\nabc0\r\n\r\n").as_bytes(),
        "chunk data not followed by CRLF",
    );
}

#[test]
fn obs_fold() {
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        "obsolete line folding in header",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
        "obsolete line folding in header",
    );
    malformed(
        b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        "obsolete line folding in header",
    );
}

#[test]
fn bare_cr() {
    malformed(
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        "bare CR in message head",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        "bare CR in message head",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        "bare CR in message head",
    );
    malformed(
        b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
        "bare CR in message head",
    );
    malformed(
        b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "bare CR in message head",
    );
}

#[test]
fn control_bytes_in_fields() {
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n",
        "invalid header value",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n",
        "invalid header value",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n",
        "invalid header value",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nX\0A: b\r\n\r\n",
        "invalid header name",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nX\x01A: b\r\n\r\n",
        "invalid header name",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n",
        "invalid header name",
    );
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
        "invalid header name",
    );
}

#[test]
fn invalid_method() {
    malformed(
        b"G(ET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request line",
    );
    malformed(
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request line",
    );
    malformed(
        b" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request line",
    );
}

#[test]
fn request_target_forms() {
    malformed(
        b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n",
        "request target is not origin-form",
    );
    malformed(
        b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
        "request target is not origin-form",
    );
    malformed(
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        "asterisk-form target is only for OPTIONS",
    );
    malformed(
        b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request target",
    );
    malformed(
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request target",
    );
    malformed(
        b"GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid authority in request target",
    );
    malformed(
        b"GET http://user@h/p HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid authority in request target",
    );

    let (head, _) = one(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.target, "*");
    let (head, _) =
        one(b"GET http://example.com:8080/v1/models?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head.target, "/v1/models?x=1");
    let (head, _) = one(b"GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head.target, "/");
}

#[test]
fn http10_with_transfer_encoding() {
    malformed(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding in HTTP/1.0 message",
    );
}

#[test]
fn host_rules() {
    malformed(b"GET / HTTP/1.1\r\n\r\n", "missing Host header");
    malformed(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "multiple Host headers",
    );
    malformed(
        b"GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n",
        "multiple Host headers",
    );
    // HTTP/1.0 did not require Host.
    let (head, _) = one(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(head.version_minor, 0);
}

#[test]
fn unsupported_versions() {
    for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"] {
        let input = format!("GET / {version}\r\nHost: a\r\n\r\n");
        let err = error(input.as_bytes());
        assert_eq!(err, HttpError::UnsupportedVersion, "{version}");
        assert_eq!(err.status(), 505);
    }
    for version in ["HTTP/1", "HTTP/11", "HTTX/1.1", "http/1.1"] {
        let input = format!("GET / {version}\r\nHost: a\r\n\r\n");
        malformed(input.as_bytes(), "invalid HTTP version");
    }
    malformed(
        b"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n",
        "invalid line ending",
    );
    malformed(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "invalid line ending");
}

#[test]
fn leading_empty_lines() {
    let (head, _) = one(b"\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.method, http::Method::GET);
    malformed(
        b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "too many empty lines before message",
    );
}

#[test]
fn eof_mid_message_is_incomplete() {
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\n"),
        HttpError::Incomplete
    );
    assert_eq!(
        error(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab"),
        HttpError::Incomplete
    );
    assert_eq!(
        error(format!("{CHUNKED}5\r\nab").as_bytes()),
        HttpError::Incomplete
    );
    assert_eq!(
        error(format!("{CHUNKED}0\r\n").as_bytes()),
        HttpError::Incomplete
    );
}

#[test]
fn clean_eof_is_closed() {
    assert_eq!(run(b""), vec![Seen::Closed]);
    assert_eq!(run(b"\r\n"), vec![Seen::Closed]);
}

// ---- the request cycle ---------------------------------------------------

#[test]
fn pipelined_requests_wait_for_start_next() {
    let mut codec = ServerCodec::new(&Limits::default());
    let input = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /b?q=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(codec.feed(input), input.len());
    let Ok(Some(ServerEvent::Head(first))) = codec.poll_event() else {
        panic!("no first head");
    };
    assert_eq!(first.target, "/a");
    assert_eq!(
        codec.poll_event(),
        Ok(Some(ServerEvent::Body(bytes::Bytes::from_static(b"hi"))))
    );
    assert_eq!(codec.poll_event(), Ok(Some(ServerEvent::End)));
    assert!(codec.is_finished());
    assert_eq!(codec.poll_event(), Ok(None));
    assert_eq!(codec.poll_event(), Ok(None));
    codec.start_next();
    let Ok(Some(ServerEvent::Head(second))) = codec.poll_event() else {
        panic!("no second head");
    };
    assert_eq!(second.path(), "/b");
    assert_eq!(second.query(), Some("q=1"));
    assert_eq!(second.body, BodyKind::Empty);
    assert_eq!(codec.poll_event(), Ok(Some(ServerEvent::End)));
    codec.start_next();
    assert_eq!(codec.poll_event(), Ok(None));
    codec.feed_eof();
    assert_eq!(codec.poll_event(), Ok(Some(ServerEvent::Closed)));
    assert_eq!(codec.poll_event(), Ok(None));
}

#[test]
fn start_next_mid_body_is_ignored() {
    let mut codec = ServerCodec::new(&Limits::default());
    let input = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\nGET / HTTP/1.1\r\n";
    codec.feed(input);
    assert!(matches!(codec.poll_event(), Ok(Some(ServerEvent::Head(_)))));
    codec.start_next();
    // The body is still the body, not a smuggled request.
    assert!(
        matches!(codec.poll_event(), Ok(Some(ServerEvent::Body(b))) if b.as_ref() == b"GET / HTTP/1.1\r\n")
    );
}

#[test]
fn expect_continue() {
    let (head, body) =
        one(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi");
    assert!(head.expect_continue);
    assert_eq!(body, b"hi");
    let (head, _) = one(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert!(!head.expect_continue);
    let (head, _) = one(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n");
    assert!(!head.expect_continue, "ignored in HTTP/1.0");
    let (head, _) = one(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n");
    assert!(!head.expect_continue);
}

#[test]
fn keep_alive_rules() {
    let cases: [(&[u8], bool); 6] = [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade,  CLOSE\r\n\r\n",
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        (
            b"GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
    ];
    for (input, keep_alive) in cases {
        assert_eq!(
            one(input).0.keep_alive,
            keep_alive,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let input = format!(
        "{CHUNKED}5;name=\"quoted value\"\r\nhello\r\n1 ;a=b;c\r\n \r\n5\r\nworld\r\n0;last\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n"
    );
    let (head, body) = one(input.as_bytes());
    assert_eq!(head.body, BodyKind::Chunked);
    assert_eq!(body, b"hello world");
}

#[test]
fn malformed_trailers_are_rejected() {
    malformed(
        format!("{CHUNKED}0\r\nX-A b\r\n\r\n").as_bytes(),
        "invalid header name",
    );
    malformed(
        format!("{CHUNKED}0\r\nX-A: b\r\n c\r\n\r\n").as_bytes(),
        "obsolete line folding in header",
    );
}

#[test]
fn head_helpers() {
    let (head, _) = one(
        b"GET /v1/chat?key=k&x=%20 HTTP/1.1\r\nHost: a\r\nX-Api-Key: sk-1\r\nX-Bin: \xff\r\n\r\n",
    );
    assert_eq!(head.path(), "/v1/chat");
    assert_eq!(head.query(), Some("key=k&x=%20"));
    assert_eq!(head.header("x-api-key"), Some("sk-1"));
    assert_eq!(head.header("X-API-KEY"), Some("sk-1"));
    assert_eq!(head.header("x-bin"), None, "not UTF-8");
    assert_eq!(head.header("missing"), None);
    let (head, _) = one(b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.query(), None);
}

// ---- limits ----------------------------------------------------------------

#[test]
fn head_too_large() {
    let limits = Limits::default();
    let filler = "a".repeat(limits.max_head_bytes);
    let input = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {filler}\r\n\r\n");
    let err = error(input.as_bytes());
    assert_eq!(err, HttpError::HeadTooLarge);
    assert_eq!(err.status(), 431);
    // Never ending: still 431 once the bound is reached, without EOF.
    let mut codec = ServerCodec::new(&limits);
    let endless = vec![b'a'; limits.max_head_bytes * 2];
    let accepted = codec.feed(&endless);
    assert!(accepted < endless.len());
    assert_eq!(codec.poll_event(), Err(HttpError::HeadTooLarge));
}

#[test]
fn head_exactly_at_limit_is_accepted() {
    let limits = Limits {
        max_head_bytes: 100,
        ..Limits::default()
    };
    let base = "GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n";
    let head = base.replace("X: ", &format!("X: {}", "v".repeat(100 - base.len())));
    assert_eq!(head.len(), 100);
    let seen = run_server(&limits, head.as_bytes(), &[]);
    assert!(matches!(seen.first(), Some(Seen::Head(_))), "{seen:?}");
    let over = head.replace("X: ", "X: v");
    let seen = run_server(&limits, over.as_bytes(), &[]);
    assert_eq!(seen, vec![Seen::Error(HttpError::HeadTooLarge)]);
}

#[test]
fn too_many_headers() {
    let limits = Limits::default();
    let fields = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
    let ok = format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
        fields(limits.max_headers - 1)
    );
    assert!(matches!(run(ok.as_bytes()).first(), Some(Seen::Head(_))));
    let over = format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
        fields(limits.max_headers)
    );
    let err = error(over.as_bytes());
    assert_eq!(err, HttpError::TooManyHeaders);
    assert_eq!(err.status(), 431);
}

#[test]
fn content_length_over_limit() {
    let limits = Limits::default();
    let input = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        limits.max_body_bytes + 1
    );
    let err = error(input.as_bytes());
    assert_eq!(err, HttpError::BodyTooLarge);
    assert_eq!(err.status(), 413);
}

#[test]
fn chunked_over_limit() {
    let limits = Limits {
        max_body_bytes: 10,
        ..Limits::default()
    };
    let input = format!("{CHUNKED}6\r\nabcdef\r\n4\r\nghij\r\n1\r\nk\r\n0\r\n\r\n");
    let seen = run_server(&limits, input.as_bytes(), &[]);
    assert!(matches!(seen.first(), Some(Seen::Head(_))));
    assert_eq!(
        seen.get(1),
        Some(&Seen::Body(b"abcdefghij".to_vec())),
        "the bytes within the limit came out"
    );
    assert_eq!(seen.get(2), Some(&Seen::Error(HttpError::BodyTooLarge)));
    // Exactly at the limit is fine.
    let input = format!("{CHUNKED}6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n");
    let seen = run_server(&limits, input.as_bytes(), &[]);
    assert_eq!(seen.get(2), Some(&Seen::End));
}

#[test]
fn backpressure() {
    let limits = Limits {
        max_head_bytes: 1024,
        ..Limits::default()
    };
    let mut codec = ServerCodec::new(&limits);
    let bound = codec.buffer_bound();
    let body = vec![b'x'; bound * 3];
    let head = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let input = [head.as_bytes(), &body].concat();
    let accepted = codec.feed(&input);
    assert_eq!(accepted, bound, "feed stops at the bound");
    assert_eq!(codec.feed(&input[accepted..]), 0);
    let mut received = 0;
    let mut offset = accepted;
    loop {
        match codec.poll_event() {
            Ok(Some(ServerEvent::Head(_))) => {}
            Ok(Some(ServerEvent::Body(data))) => received += data.len(),
            Ok(Some(ServerEvent::End)) => break,
            Ok(None) => {
                let n = codec.feed(&input[offset..]);
                assert!(n > 0);
                offset += n;
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(codec.buffered() <= bound);
    }
    assert_eq!(received, body.len());

    // Pipelined requests pile up while a response is pending, up to the bound.
    let mut codec = ServerCodec::new(&limits);
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let many = request.repeat(2 * bound / request.len());
    let accepted = codec.feed(&many);
    assert_eq!(accepted, bound);
    assert!(matches!(codec.poll_event(), Ok(Some(ServerEvent::Head(_)))));
    assert_eq!(codec.poll_event(), Ok(Some(ServerEvent::End)));
    assert_eq!(
        codec.feed(&many[accepted..]),
        request.len(),
        "room freed by the parsed request only"
    );
}

#[test]
fn body_limit_is_per_request() {
    let limits = Limits {
        max_body_bytes: 4,
        ..Limits::default()
    };
    let input = format!("{CHUNKED}4\r\nabcd\r\n0\r\n\r\n{CHUNKED}4\r\nefgh\r\n0\r\n\r\n");
    let seen = run_server(&limits, input.as_bytes(), &[]);
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen.last(), Some(&Seen::Closed));
}

// ---- properties ---------------------------------------------------------------

#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Chunk sizes when chunked (cycled over the body), else Content-Length.
    chunks: Option<Vec<usize>>,
    close: bool,
}

impl Req {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            format!(
                "{} {} HTTP/1.1\r\nHost: example.com\r\n",
                self.method, self.path
            )
            .as_bytes(),
        );
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        match &self.chunks {
            None => {
                if !self.body.is_empty() || self.method == "POST" {
                    out.extend_from_slice(
                        format!("Content-Length: {}\r\n", self.body.len()).as_bytes(),
                    );
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&self.body);
            }
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = self.body.as_slice();
                let mut index = 0;
                while !rest.is_empty() {
                    let size = sizes
                        .get(index % sizes.len())
                        .copied()
                        .unwrap_or(1)
                        .clamp(1, rest.len());
                    let (chunk, tail) = rest.split_at(size);
                    out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                    rest = tail;
                    index += 1;
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
    }
}

fn req_strategy() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec![
            "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "X-CUSTOM",
        ]),
        "(/[a-zA-Z0-9._~-]{0,12}){1,4}(\\?[a-z0-9=&%]{0,20})?",
        prop::collection::vec(("x-[a-z]{1,10}", "[!-~]([ -~]{0,30}[!-~])?"), 0..6),
        prop::collection::vec(any::<u8>(), 0..600),
        prop::option::of(prop::collection::vec(1usize..200, 1..6)),
        any::<bool>(),
    )
        .prop_map(|(method, path, headers, body, chunks, close)| Req {
            method,
            path,
            headers,
            body,
            chunks,
            close,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn splitting_never_changes_events(
        reqs in prop::collection::vec(req_strategy(), 1..4),
        sizes in prop::collection::vec(1usize..40, 1..20),
    ) {
        let mut input = Vec::new();
        for req in &reqs {
            req.write(&mut input);
        }
        let limits = Limits::default();
        let whole = run_server(&limits, &input, &[]);
        prop_assert_eq!(&whole, &run_server(&limits, &input, &sizes));
        prop_assert_eq!(&whole, &run_server(&limits, &input, &[1]));

        // And the events are the requests that were written.
        let mut seen = whole.iter();
        for req in &reqs {
            let Some(Seen::Head(head)) = seen.next() else {
                return Err(TestCaseError::fail("missing head"));
            };
            prop_assert_eq!(head.method.as_str(), req.method);
            prop_assert_eq!(&head.target, &req.path);
            prop_assert_eq!(head.keep_alive, !req.close);
            prop_assert_eq!(head.body == BodyKind::Chunked, req.chunks.is_some());
            for (name, value) in &req.headers {
                prop_assert!(head.headers.get_all(name.as_str()).iter().any(|v| v.as_bytes() == value.as_bytes()));
            }
            if !req.body.is_empty() {
                prop_assert_eq!(seen.next(), Some(&Seen::Body(req.body.clone())));
            }
            prop_assert_eq!(seen.next(), Some(&Seen::End));
        }
        prop_assert_eq!(seen.next(), Some(&Seen::Closed));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..2048),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let limits = Limits { max_head_bytes: 128, max_headers: 4, max_body_bytes: 256, ..Limits::default() };
        let whole = run_server(&limits, &data, &[]);
        prop_assert_eq!(whole, run_server(&limits, &data, &sizes));
    }

    #[test]
    fn mutated_requests_never_panic(
        req in req_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let mut input = Vec::new();
        req.write(&mut input);
        for (index, byte) in edits {
            let at = index.index(input.len());
            input[at] = byte;
        }
        let limits = Limits { max_head_bytes: 256, max_headers: 8, max_body_bytes: 512, ..Limits::default() };
        let whole = run_server(&limits, &input, &[]);
        prop_assert_eq!(whole, run_server(&limits, &input, &sizes));
    }
}
