//! HTTP/1.1 limits and framing attacks against the running server: every
//! malformed or ambiguous request gets a clean 4xx and a closed connection.

use std::io::{Read, Write};
use std::time::Duration;

use arouter_e2e::{closed_within, read_response, Options, Server, MASTER_KEY};

fn auth() -> String {
    format!("Authorization: Bearer {MASTER_KEY}\r\n")
}

/// Sends `raw`, expects `status` and then the connection to close.
fn expect_status_and_close(s: &Server, raw: &[u8], status: u16) {
    let mut c = s.connect();
    c.write_all(raw).expect("write");
    let r = read_response(&mut c)
        .unwrap_or_else(|e| panic!("{e} for {:?}", String::from_utf8_lossy(raw)));
    assert_eq!(
        r.status,
        status,
        "for {:?}: {:?}",
        String::from_utf8_lossy(raw),
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.json()["error"]["message"].is_string());
    assert!(
        closed_within(&mut c, Duration::from_secs(3)),
        "connection left open"
    );
}

#[test]
fn oversized_head_is_431() {
    let s = Server::start();
    let big = "a".repeat(70 * 1024);
    expect_status_and_close(
        &s,
        format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n").as_bytes(),
        431,
    );
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    expect_status_and_close(
        &s,
        format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
        431,
    );
}

#[test]
fn oversized_body_is_413() {
    let s = Server::start_with(Options {
        config_toml: Some("[limits]\nmax_body_bytes = 2000\n".into()),
        ..Default::default()
    });
    let a = auth();
    expect_status_and_close(
        &s,
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Content-Length: 5000\r\n\r\n")
            .as_bytes(),
        413,
    );
    let chunk = "x".repeat(1200);
    expect_status_and_close(
        &s,
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Transfer-Encoding: chunked\r\n\r\n4b0\r\n{chunk}\r\n4b0\r\n{chunk}\r\n0\r\n\r\n"
        )
        .as_bytes(),
        413,
    );
}

#[test]
fn smuggling_vectors_are_400_and_close() {
    let s = Server::start();
    let a = auth();
    let vectors: Vec<String> = vec![
        // CL and TE together.
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        // Differing duplicate Content-Length.
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Content-Length: 5, 6\r\n\r\nhello!"),
        // Transfer-Encoding not ending in chunked.
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Transfer-Encoding: identity\r\n\r\n"),
        // Bad chunk sizes.
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
        // obs-fold.
        format!("GET /v1/models HTTP/1.1\r\nHost: t\r\n{a}X-Folded: one\r\n two\r\n\r\n"),
        // Bare CR.
        format!("GET /v1/models HTTP/1.1\r\nHost: t\r\n{a}X-Bad: a\rb\r\n\r\n"),
        // NUL in a header.
        format!("GET /v1/models HTTP/1.1\r\nHost: t\r\n{a}X-Nul: a\0b\r\n\r\n"),
        // Non-numeric Content-Length.
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Content-Length: +5\r\n\r\nhello"),
    ];
    for v in vectors {
        expect_status_and_close(&s, v.as_bytes(), 400);
    }
    // The server is still fine afterwards.
    assert_eq!(s.get("/healthz", "").status, 200);
}

#[test]
fn garbage_bytes_get_400_and_close() {
    let s = Server::start();
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-tls-hello\r\n\r\n"[..],
        b"HELLO WORLD\r\n\r\n",
        b"GET\r\n\r\n",
    ] {
        expect_status_and_close(&s, garbage, 400);
    }
    let mut c = s.connect();
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = c.write_all(&noise);
    assert!(closed_within(&mut c, Duration::from_secs(5)));
    assert_eq!(s.get("/healthz", "").status, 200);
}

#[test]
fn slowloris_is_cut_at_the_header_timeout() {
    let s = Server::start_with(Options {
        config_toml: Some("[limits]\nheader_timeout_ms = 1000\nidle_timeout_ms = 1000\n".into()),
        ..Default::default()
    });
    let mut c = s.connect();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    // Trickle a header byte every 200 ms: each byte is progress, but the
    // head as a whole must arrive within the header timeout.
    let mut answered = Vec::new();
    for _ in 0..30 {
        if c.write_all(b"X").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let mut buf = [0u8; 1024];
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answered.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "slow client held the connection {elapsed:?}"
    );
    let text = String::from_utf8_lossy(&answered);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // Others are still served.
    assert_eq!(s.get("/healthz", "").status, 200);
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let s = Server::start_with(Options {
        config_toml: Some("[limits]\nidle_timeout_ms = 500\n".into()),
        ..Default::default()
    });
    let mut c = s.connect();
    // Idle after an answer: a connection that never sent anything is the
    // header timeout's (client_deadlines.rs).
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c).unwrap().status, 200);
    assert!(
        closed_within(&mut c, Duration::from_secs(3)),
        "idle connection not closed"
    );
}

#[test]
fn keep_alive_and_pipelining() {
    let s = Server::start();
    let mut c = s.connect();
    let a = auth();
    c.write_all(format!("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: t\r\n{a}\r\nGET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut reader = arouter_e2e::Reader::new(c);
    let statuses: Vec<u16> = (0..3)
        .map(|_| reader.next_response().expect("response").status)
        .collect();
    assert_eq!(statuses, [200, 200, 200]);
    assert!(closed_within(reader.get_mut(), Duration::from_secs(3)));
}

#[test]
fn expect_continue_gets_100_then_answer() {
    let s = Server::start();
    let mut c = s.connect();
    let a = auth();
    c.write_all(format!("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n{a}Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n").as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    c.write_all(b"{}").unwrap();
    let r = read_response(&mut c).unwrap();
    assert!(
        r.status >= 400 && r.status < 600,
        "body {{}} is not a valid chat request"
    );
}

#[test]
fn http_1_0_closes_by_default() {
    let s = Server::start();
    let mut c = s.connect();
    c.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let r = read_response(&mut c).unwrap();
    assert_eq!(r.status, 200);
    assert!(closed_within(&mut c, Duration::from_secs(3)));
}

#[test]
fn connections_over_the_cap_are_refused() {
    let s = Server::start_with(Options {
        config_toml: Some("[limits]\nmax_connections = 2\n".into()),
        ..Default::default()
    });
    // The readiness probe's connection lingers briefly after it closes.
    std::thread::sleep(Duration::from_millis(800));
    let mut held: Vec<_> = (0..2).map(|_| s.connect()).collect();
    // Let the server register both before the next arrives.
    for c in &mut held {
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(c).unwrap().status, 200);
    }
    let mut extra = s.connect();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        closed_within(&mut extra, Duration::from_secs(3)),
        "third connection served"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(s.get("/healthz", "").status, 200, "capacity comes back");
}
