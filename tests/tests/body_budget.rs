//! The gateway-wide body budget against the real binary: a body that does
//! not fit gets a 503 with `Retry-After` before it is read, and the bytes of
//! a finished, failed or abandoned request are given back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use arouter_conformance::{spawn, ReplayConfig, ReplayHandle};
use arouter_e2e::{read_response, Options, Response, Server, MASTER_KEY};
use serde_json::json;

const BUDGET: usize = 100_000;
const BIG: usize = 80_000;

fn setup() -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider".into()),
        ],
        config_toml: Some(format!("[limits]\nmax_inflight_body_bytes = {BUDGET}\n")),
    });
    (replay, server)
}

fn head(path: &str, len: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {MASTER_KEY}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// The recorded chat request, padded with JSON whitespace to `len` bytes.
fn padded_chat(replay: &ReplayHandle, len: usize) -> Vec<u8> {
    let t = replay
        .transcript("openai/chat_nonstream_user_id.json")
        .unwrap();
    let mut body = t.request.body.clone();
    let model = body["model"].as_str().unwrap().to_string();
    body["model"] = json!(format!("openai/{model}"));
    let mut bytes = serde_json::to_vec(&body).unwrap();
    bytes.resize(len, b' ');
    bytes
}

/// Sends a whole request of `body` and reads the answer.
fn send(server: &Server, path: &str, body: &[u8]) -> Response {
    let mut raw = head(path, body.len());
    raw.extend_from_slice(body);
    server.request(&raw)
}

/// Sends only the head: a refusal comes without the body being read.
fn send_head(server: &Server, path: &str, len: usize) -> Response {
    let mut c = server.connect();
    c.write_all(&head(path, len)).unwrap();
    read_response(&mut c).unwrap()
}

/// Holds `sent` bytes of a `BIG` body on an open connection. The head asks
/// for `100 Continue`, which comes once the body is reserved and admitted:
/// the reservation is certain before the test goes on.
fn hold(server: &Server, sent: usize) -> TcpStream {
    let mut c = server.connect();
    let mut raw = head("/v1/chat/completions", BIG);
    let blank = raw.len() - 2;
    raw.splice(blank..blank, b"Expect: 100-continue\r\n".iter().copied());
    c.write_all(&raw).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(c.read(&mut byte).unwrap(), 1, "closed before 100 Continue");
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    c.write_all(&vec![b' '; sent]).unwrap();
    c
}

/// Waits until a `BIG` body fits again (a refusal takes no bytes).
fn fits_again(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut bad = b"{not json".to_vec();
        bad.resize(BIG, b' ');
        let r = send(server, "/v1/chat/completions", &bad);
        if r.status == 400 {
            return;
        }
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert!(Instant::now() < deadline, "the budget was not given back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bodies_over_the_budget_are_refused_and_every_ending_gives_bytes_back() {
    let (replay, server) = setup();
    let holder = hold(&server, 1_000);
    // Refused at the head, in each route's dialect, with Retry-After.
    for (path, check) in [
        ("/v1/chat/completions", ("/error/type", "api_error")),
        ("/v1/messages", ("/error/type", "overloaded_error")),
        (
            "/v1beta/models/gemini-2.5-flash:generateContent",
            ("/error/status", "UNAVAILABLE"),
        ),
    ] {
        let r = send_head(&server, path, 30_000);
        assert_eq!(
            r.status,
            503,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("retry-after"), Some("1"), "{path}");
        assert_eq!(r.json().pointer(check.0), Some(&json!(check.1)), "{path}");
        assert!(r.header("x-request-id").is_some());
    }
    // A small body still fits.
    let r = send(&server, "/v1/chat/completions", b"{}");
    assert_eq!(r.status, 400);
    // The client that held the budget leaves mid-body.
    drop(holder);
    fits_again(&server);
    // A served request, then a failed one, each give their bytes back.
    let r = send(&server, "/v1/chat/completions", &padded_chat(&replay, BIG));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    fits_again(&server);
    fits_again(&server);
    // A chunked body is refused once it grows past what is left.
    let _holder = hold(&server, 10);
    let mut c = server.connect();
    c.write_all(
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: t\r\nx-api-key: {MASTER_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    for _ in 0..30 {
        // The server may close as soon as it refuses.
        if c.write_all(format!("{:x}\r\n{}\r\n", 1_000, " ".repeat(1_000)).as_bytes())
            .is_err()
        {
            break;
        }
    }
    let r = read_response(&mut c).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
}
