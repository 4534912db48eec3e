//! How long the gateway holds a client that is silent or slow: the header
//! timeout from accept, the idle timeout between keep-alive requests, and
//! the total body deadline.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use arouter_e2e::{closed_within, read_response, Options, Server, MASTER_KEY};

fn server(limits: &str) -> Server {
    Server::start_with(Options {
        config_toml: Some(format!("[limits]\n{limits}")),
        ..Default::default()
    })
}

/// Seconds until the server closes a connection that never sends a byte.
fn silent_hold(s: &Server) -> Duration {
    let mut c = s.connect();
    let opened = Instant::now();
    assert!(
        closed_within(&mut c, Duration::from_secs(10)),
        "silent connection held over 10 s"
    );
    opened.elapsed()
}

#[test]
fn a_silent_connection_is_closed_at_the_header_timeout_not_the_idle_timeout() {
    let s = server("header_timeout_ms = 1000\nidle_timeout_ms = 30000\n");
    let held = silent_hold(&s);
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_millis(2500),
        "held {held:?}"
    );
    eprintln!("silent connection held {held:?} (header_timeout_ms = 1000)");
}

#[test]
fn a_keep_alive_connection_may_idle_between_requests_for_the_idle_timeout() {
    let s = server("header_timeout_ms = 500\nidle_timeout_ms = 3000\n");
    let mut c = s.connect();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c).unwrap().status, 200);
    let answered = Instant::now();
    assert!(
        !closed_within(&mut c, Duration::from_millis(1500)),
        "closed at the header timeout while idle between requests"
    );
    assert!(closed_within(&mut c, Duration::from_secs(5)));
    let held = answered.elapsed();
    assert!(
        held >= Duration::from_millis(2800) && held < Duration::from_millis(4500),
        "idle keep-alive connection held {held:?}"
    );
}

/// Sends a head announcing a 1000-byte body, then one byte a second.
/// Returns what the server answered and how long after the head.
fn trickle(s: &Server, target: &str, extra: &str) -> (String, Duration) {
    let mut c = s.connect();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {MASTER_KEY}\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    c.write_all(head.as_bytes()).unwrap();
    let sent = Instant::now();
    let mut answered = Vec::new();
    c.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while sent.elapsed() < Duration::from_secs(15) {
        match c.read(&mut buf) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&answered).into_owned(),
                    sent.elapsed(),
                )
            }
            Ok(n) => answered.extend_from_slice(&buf[..n]),
            Err(_) => {
                if c.write_all(b" ").is_err() {
                    break;
                }
            }
        }
    }
    (
        String::from_utf8_lossy(&answered).into_owned(),
        sent.elapsed(),
    )
}

#[test]
fn a_body_trickled_a_byte_a_second_gets_a_408_at_the_body_deadline() {
    let s = server("body_timeout_ms = 3000\nidle_timeout_ms = 30000\n");
    let (answer, took) = trickle(&s, "/v1/chat/completions", "");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    assert!(
        took >= Duration::from_millis(2800) && took < Duration::from_secs(5),
        "cut after {took:?}"
    );
    // The route's dialect: Gemini's error shape on a Gemini route.
    let (answer, _) = trickle(&s, "/v1beta/models/gemini-2.0-flash:generateContent", "");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"status\""),
        "Google error shape: {answer}"
    );
    assert_eq!(s.get("/healthz", "").status, 200, "others still served");
}
