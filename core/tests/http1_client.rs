//! Client codec (upstream responses) and both request/response writers,
//! including round trips through the opposite codec.

use arouter_core::http1::client::write_request;
use arouter_core::http1::encode::{
    write_chunk, write_chunked_head, write_continue, write_last_chunk, write_response,
};
use arouter_core::http1::testing::{run_client, run_server, Seen};
use arouter_core::http1::{
    BodyKind, ClientCodec, ClientEvent, HttpError, ResponseHead, ServerEvent,
};
use arouter_core::Limits;
use bytes::Bytes;
use proptest::prelude::*;

fn run(input: &[u8], head_request: bool) -> Vec<Seen<ResponseHead>> {
    let limits = Limits::default();
    let whole = run_client(&limits, input, &[], head_request);
    assert_eq!(
        whole,
        run_client(&limits, input, &[1], head_request),
        "byte-at-a-time feeding disagrees"
    );
    whole
}

fn error(input: &[u8]) -> HttpError {
    match run(input, false).last() {
        Some(Seen::Error(err)) => *err,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The single response the input holds, with its body.
fn one(input: &[u8], head_request: bool) -> (ResponseHead, Vec<u8>) {
    match run(input, head_request).as_slice() {
        [Seen::Head(head), Seen::Body(body), Seen::End] => (head.clone(), body.clone()),
        [Seen::Head(head), Seen::End] => (head.clone(), Vec::new()),
        other => panic!("expected one response, got {other:?}"),
    }
}

#[test]
fn content_length_body() {
    let (head, body) = one(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        false,
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.body, BodyKind::Length(2));
    assert!(head.keep_alive);
    assert_eq!(
        head.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(body, b"{}");
}

#[test]
fn chunked_body_with_trailers() {
    let (head, body) = one(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\ndata\r\n2\r\n: \r\n0\r\nX-Usage: 5\r\n\r\n",
        false,
    );
    assert_eq!(head.body, BodyKind::Chunked);
    assert_eq!(body, b"data: ");
}

#[test]
fn close_delimited_body() {
    let (head, body) = one(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n",
        false,
    );
    assert_eq!(head.body, BodyKind::UntilClose);
    assert!(
        !head.keep_alive,
        "a close-delimited body ends the connection"
    );
    assert_eq!(body, b"data: 1\n\ndata: 2\n\n");
}

#[test]
fn bodiless_responses() {
    let (head, body) = one(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", true);
    assert_eq!((head.body, body.len()), (BodyKind::Empty, 0), "HEAD");
    let (head, _) = one(b"HTTP/1.1 204 No Content\r\n\r\n", false);
    assert_eq!(head.body, BodyKind::Empty);
    assert!(head.keep_alive);
    let (head, _) = one(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        false,
    );
    assert_eq!(head.body, BodyKind::Empty);
}

#[test]
fn interim_responses_are_skipped() {
    let (head, body) = one(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
        false,
    );
    assert_eq!(head.status, 201);
    assert_eq!(body, b"x");
}

#[test]
fn switching_protocols_is_an_error() {
    assert_eq!(
        error(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
        HttpError::Malformed("unexpected protocol switch")
    );
}

#[test]
fn eof_mid_message_is_incomplete() {
    assert_eq!(error(b""), HttpError::Incomplete);
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"),
        HttpError::Incomplete
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"),
        HttpError::Incomplete
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
        HttpError::Incomplete
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"),
        HttpError::Incomplete
    );
}

#[test]
fn framing_errors() {
    assert_eq!(
        error(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        HttpError::Malformed("both Content-Length and Transfer-Encoding")
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        HttpError::Malformed("conflicting Content-Length values")
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
        HttpError::Malformed("Transfer-Encoding does not end with chunked")
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        HttpError::Malformed("unsupported transfer coding")
    );
    assert_eq!(
        error(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        HttpError::Malformed("Transfer-Encoding in HTTP/1.0 message")
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n"),
        HttpError::Malformed("invalid chunk size")
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
        HttpError::Malformed("obsolete line folding in header")
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"),
        HttpError::Malformed("bare CR in message head")
    );
    assert_eq!(
        error(b"HTTP/1.1 20 OK\r\n\r\n"),
        HttpError::Malformed("invalid status line")
    );
    assert_eq!(
        error(b"HTTP/1.1 099 Odd\r\n\r\n"),
        HttpError::Malformed("invalid status code")
    );
    assert_eq!(
        error(b"HTTP/2.0 200 OK\r\n\r\n"),
        HttpError::UnsupportedVersion
    );
    assert_eq!(
        error(b"HTTP/1.x 200 OK\r\n\r\n"),
        HttpError::Malformed("invalid HTTP version")
    );
}

#[test]
fn head_limits() {
    let limits = Limits {
        max_upstream_head_bytes: 64,
        max_headers: 2,
        ..Limits::default()
    };
    let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(64));
    assert_eq!(
        run_client(&limits, big.as_bytes(), &[], false),
        vec![Seen::Error(HttpError::HeadTooLarge)]
    );
    let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        run_client(&limits, many, &[], false),
        vec![Seen::Error(HttpError::TooManyHeaders)]
    );
}

#[test]
fn keep_alive_and_reuse() {
    let limits = Limits::default();
    let mut codec = ClientCodec::new(&limits, false);
    assert!(!codec.has_started());
    codec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
    assert!(codec.has_started());
    assert!(matches!(codec.poll_event(), Ok(Some(ClientEvent::Head(h))) if h.keep_alive));
    assert!(!codec.is_reusable(), "body not read yet");
    assert_eq!(
        codec.poll_event(),
        Ok(Some(ClientEvent::Body(Bytes::from_static(b"a"))))
    );
    assert_eq!(codec.poll_event(), Ok(Some(ClientEvent::End)));
    assert!(codec.is_reusable());
    assert_eq!(codec.poll_event(), Ok(None));

    codec.reset(true);
    assert!(!codec.has_started());
    codec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
    assert!(
        matches!(codec.poll_event(), Ok(Some(ClientEvent::Head(h))) if h.body == BodyKind::Empty)
    );
    assert_eq!(codec.poll_event(), Ok(Some(ClientEvent::End)));
    assert!(codec.is_reusable());

    codec.reset(false);
    codec.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(codec.poll_event(), Ok(Some(ClientEvent::Head(h))) if !h.keep_alive));
    assert_eq!(codec.poll_event(), Ok(Some(ClientEvent::End)));
    assert!(!codec.is_reusable(), "Connection: close");

    // Stray bytes after a response mean the connection is out of step.
    let mut codec = ClientCodec::new(&limits, false);
    codec.feed(b"HTTP/1.1 204 No Content\r\n\r\njunk");
    assert!(matches!(codec.poll_event(), Ok(Some(ClientEvent::Head(_)))));
    assert_eq!(codec.poll_event(), Ok(Some(ClientEvent::End)));
    assert!(!codec.is_reusable());

    // HTTP/1.0 keeps alive only when asked.
    let (head, _) = one(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
    assert!(!head.keep_alive);
    let (head, _) = one(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        false,
    );
    assert!(head.keep_alive);
}

#[test]
fn reset_mid_response_fails_closed() {
    let mut codec = ClientCodec::new(&Limits::default(), false);
    codec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    assert!(matches!(codec.poll_event(), Ok(Some(ClientEvent::Head(_)))));
    codec.reset(false);
    assert_eq!(
        codec.poll_event(),
        Err(HttpError::Malformed(
            "connection reused before the response ended"
        ))
    );
}

#[test]
fn eof_after_end_is_not_reusable() {
    let mut codec = ClientCodec::new(&Limits::default(), false);
    codec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    codec.feed_eof();
    assert!(matches!(codec.poll_event(), Ok(Some(ClientEvent::Head(_)))));
    assert_eq!(codec.poll_event(), Ok(Some(ClientEvent::End)));
    assert!(!codec.is_reusable());
}

#[test]
fn backpressure_streams_body() {
    let limits = Limits {
        max_upstream_head_bytes: 512,
        ..Limits::default()
    };
    let mut codec = ClientCodec::new(&limits, false);
    let bound = codec.buffer_bound();
    let body = vec![b'z'; bound * 4];
    let input = [&b"HTTP/1.1 200 OK\r\n\r\n"[..], &body].concat();
    let mut offset = codec.feed(&input);
    assert_eq!(offset, bound);
    let mut received = 0;
    loop {
        match codec.poll_event() {
            Ok(Some(ClientEvent::Head(_))) => {}
            Ok(Some(ClientEvent::Body(data))) => received += data.len(),
            Ok(Some(ClientEvent::End)) => break,
            Ok(None) if offset < input.len() => offset += codec.feed(&input[offset..]),
            Ok(None) => codec.feed_eof(),
            Err(err) => panic!("{err:?}"),
        }
        assert!(codec.buffered() <= bound);
    }
    assert_eq!(received, body.len());
}

#[test]
fn write_request_format() {
    let mut out = Vec::new();
    write_request(
        &mut out,
        "POST",
        "/v1/chat/completions",
        "api.example.com",
        &[("Authorization", "Bearer k")],
        b"{}",
    );
    assert_eq!(
        out,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer k\r\nContent-Length: 2\r\n\r\n{}"
    );
    out.clear();
    write_request(&mut out, "GET", "/v1/models", "h", &[], b"");
    assert_eq!(out, b"GET /v1/models HTTP/1.1\r\nHost: h\r\n\r\n");
    out.clear();
    write_request(&mut out, "POST", "/", "h", &[], b"");
    assert_eq!(
        out,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn written_requests_parse_back() {
    let mut out = Vec::new();
    write_request(
        &mut out,
        "PUT",
        "/a?b=c",
        "h:8080",
        &[("X-A", "1")],
        b"payload",
    );
    write_request(&mut out, "GET", "/next", "h:8080", &[], b"");
    let seen = run_server(&Limits::default(), &out, &[3]);
    assert_eq!(seen.len(), 6, "{seen:?}");
    let Some(Seen::Head(head)) = seen.first() else {
        panic!("no head")
    };
    assert_eq!(head.method, http::Method::PUT);
    assert_eq!(head.header("host"), Some("h:8080"));
    assert_eq!(head.header("x-a"), Some("1"));
    assert_eq!(seen.get(1), Some(&Seen::Body(b"payload".to_vec())));
}

#[test]
fn written_responses_parse_back() {
    let mut out = Vec::new();
    write_continue(&mut out);
    write_response(
        &mut out,
        200,
        &[("Content-Type", "application/json")],
        b"{\"a\":1}",
        true,
    );
    write_chunked_head(
        &mut out,
        200,
        &[("Content-Type", "text/event-stream")],
        false,
    );
    write_chunk(&mut out, b"data: x\n\n");
    write_chunk(&mut out, b"");
    write_chunk(&mut out, b"data: [DONE]\n\n");
    write_last_chunk(&mut out);
    let seen = run_client(&Limits::default(), &out, &[7, 1], false);
    let [Seen::Head(first), Seen::Body(b1), Seen::End, Seen::Head(second), Seen::Body(b2), Seen::End] =
        seen.as_slice()
    else {
        panic!("{seen:?}")
    };
    assert_eq!((first.status, first.keep_alive), (200, true));
    assert_eq!(b1, b"{\"a\":1}");
    assert_eq!((second.body, second.keep_alive), (BodyKind::Chunked, false));
    assert_eq!(b2, b"data: x\n\ndata: [DONE]\n\n");
}

#[test]
fn server_codec_reads_continue_flow() {
    // The 100 Continue dance seen from both ends.
    let mut server = arouter_core::http1::ServerCodec::new(&Limits::default());
    server.feed(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    let Ok(Some(ServerEvent::Head(head))) = server.poll_event() else {
        panic!("no head")
    };
    assert!(head.expect_continue);
    assert_eq!(server.poll_event(), Ok(None));
    let mut out = Vec::new();
    write_continue(&mut out);
    let mut client = ClientCodec::new(&Limits::default(), false);
    client.feed(&out);
    assert_eq!(client.poll_event(), Ok(None), "interim response swallowed");
    server.feed(b"ok");
    assert_eq!(
        server.poll_event(),
        Ok(Some(ServerEvent::Body(Bytes::from_static(b"ok"))))
    );
}

// ---- properties ---------------------------------------------------------------

#[derive(Clone, Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Chunk sizes when chunked, else Content-Length.
    chunks: Option<Vec<usize>>,
    interim: bool,
}

impl Resp {
    fn write(&self, out: &mut Vec<u8>) {
        if self.interim {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        out.extend_from_slice(format!("HTTP/1.1 {} Whatever\r\n", self.status).as_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        match &self.chunks {
            None => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
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
                    out.extend_from_slice(format!("{size:X};i={index}\r\n").as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                    rest = tail;
                    index += 1;
                }
                out.extend_from_slice(b"0\r\nX-T: 1\r\n\r\n");
            }
        }
    }
}

fn resp_strategy() -> impl Strategy<Value = Resp> {
    (
        prop::sample::select(vec![200u16, 201, 400, 401, 429, 500, 503]),
        prop::collection::vec(("x-[a-z]{1,10}", "[!-~]([ -~]{0,30}[!-~])?"), 0..6),
        prop::collection::vec(any::<u8>(), 0..600),
        prop::option::of(prop::collection::vec(1usize..200, 1..6)),
        any::<bool>(),
    )
        .prop_map(|(status, headers, body, chunks, interim)| Resp {
            status,
            headers,
            body,
            chunks,
            interim,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn splitting_never_changes_events(
        resps in prop::collection::vec(resp_strategy(), 1..4),
        sizes in prop::collection::vec(1usize..40, 1..20),
    ) {
        let mut input = Vec::new();
        for resp in &resps {
            resp.write(&mut input);
        }
        let limits = Limits::default();
        let whole = run_client(&limits, &input, &[], false);
        prop_assert_eq!(&whole, &run_client(&limits, &input, &sizes, false));
        prop_assert_eq!(&whole, &run_client(&limits, &input, &[1], false));

        let mut seen = whole.iter();
        for resp in &resps {
            let Some(Seen::Head(head)) = seen.next() else {
                return Err(TestCaseError::fail("missing head"));
            };
            prop_assert_eq!(head.status, resp.status);
            prop_assert!(head.keep_alive);
            prop_assert_eq!(head.body == BodyKind::Chunked, resp.chunks.is_some());
            if !resp.body.is_empty() {
                prop_assert_eq!(seen.next(), Some(&Seen::Body(resp.body.clone())));
            }
            prop_assert_eq!(seen.next(), Some(&Seen::End));
        }
        prop_assert_eq!(seen.next(), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..2048),
        sizes in prop::collection::vec(1usize..64, 1..8),
        head_request in any::<bool>(),
    ) {
        let limits = Limits { max_upstream_head_bytes: 128, max_headers: 4, ..Limits::default() };
        let whole = run_client(&limits, &data, &[], head_request);
        prop_assert_eq!(whole, run_client(&limits, &data, &sizes, head_request));
    }

    #[test]
    fn mutated_responses_never_panic(
        resp in resp_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let mut input = Vec::new();
        resp.write(&mut input);
        for (index, byte) in edits {
            let at = index.index(input.len());
            input[at] = byte;
        }
        let limits = Limits { max_upstream_head_bytes: 256, max_headers: 8, ..Limits::default() };
        let whole = run_client(&limits, &input, &[], false);
        prop_assert_eq!(whole, run_client(&limits, &input, &sizes, false));
    }
}
