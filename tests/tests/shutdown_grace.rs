//! SIGTERM with streams still running: when the grace runs out, every
//! stream ends the way an upstream failure ends it, in its client's
//! dialect, and every call is billed (as an estimate).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use arouter_conformance::{spawn, Fault, FaultRule, ReplayConfig, ReplayHandle};
use arouter_e2e::{Options, Server, MASTER_KEY};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Dialect {
    OpenAi,
    Anthropic,
    Gemini,
}

const OPENAI: &str = "openai/chat_stream_text_after_tool_include_usage.json";
const ANTHROPIC: &str = "anthropic/stream_text_basic.json";
const GEMINI: &str = "gemini/stream_text_basic.json";
const GEMINI_PATH: &str = "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent";

fn setup(grace_secs: u64) -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-openai".into()),
            ("ANTHROPIC_BASE_URL".into(), url.clone()),
            ("ANTHROPIC_API_KEY".into(), "sk-anthropic".into()),
            ("GEMINI_BASE_URL".into(), url),
            ("GEMINI_API_KEY".into(), "gemini-key".into()),
            ("AROUTER_SHUTDOWN_GRACE".into(), grace_secs.to_string()),
        ],
        config_toml: None,
    });
    (replay, server)
}

/// The path and body a client of `dialect` sends for its transcript.
fn request(replay: &ReplayHandle, dialect: Dialect) -> (String, Value) {
    let name = match dialect {
        Dialect::OpenAi => OPENAI,
        Dialect::Anthropic => ANTHROPIC,
        Dialect::Gemini => GEMINI,
    };
    let mut body = replay
        .transcript(name)
        .expect("transcript")
        .request
        .body
        .clone();
    match dialect {
        Dialect::OpenAi => {
            body["model"] = json!(format!("openai/{}", body["model"].as_str().unwrap()));
            ("/v1/chat/completions".into(), body)
        }
        Dialect::Anthropic => {
            body["model"] = json!(format!("anthropic/{}", body["model"].as_str().unwrap()));
            ("/v1/messages".into(), body)
        }
        Dialect::Gemini => (format!("{GEMINI_PATH}?alt=sse"), body),
    }
}

fn open_stream(server: &Server, path: &str, body: &Value) -> TcpStream {
    let body = serde_json::to_vec(body).unwrap();
    let mut c = server.connect();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {MASTER_KEY}\r\n\
         anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body).unwrap();
    c
}

/// Reads until `needle` has arrived; what was read.
fn read_until(c: &mut TcpStream, needle: &str, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < deadline && !String::from_utf8_lossy(&got).contains(needle) {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    got
}

/// Reads until the server closes; everything read.
fn read_to_close(c: &mut TcpStream, mut got: Vec<u8>, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match c.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return got,
        }
    }
    panic!(
        "connection not closed; got {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// A whole chunked response: its head and decoded body. Panics unless the
/// terminating chunk arrived (a stream dropped mid-way has none).
fn parse_terminated(raw: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, mut rest) = text.split_once("\r\n\r\n").expect("a response head");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let mut body = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .unwrap_or_else(|| panic!("no terminating chunk:\n{text}"));
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            assert_eq!(after, "\r\n", "bytes after the last chunk");
            return (head.to_string(), body);
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

fn data_lines(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:").map(str::trim))
        .collect()
}

/// The stream ended as an upstream failure ends it in `dialect`.
fn assert_error_tail(dialect: Dialect, body: &str) {
    let data = data_lines(body);
    match dialect {
        Dialect::OpenAi => {
            let n = data.len();
            assert!(n >= 3, "{body}");
            assert_eq!(data[n - 1], "[DONE]", "{body}");
            let fin: Value = serde_json::from_str(data[n - 2]).unwrap();
            assert_eq!(fin["choices"][0]["finish_reason"], "error", "{body}");
            let err: Value = serde_json::from_str(data[n - 3]).unwrap();
            assert!(err["error"]["message"].is_string(), "{body}");
        }
        Dialect::Anthropic => {
            let last_event = body
                .split("\n\n")
                .filter(|e| !e.trim().is_empty())
                .last()
                .unwrap_or_default();
            assert!(last_event.starts_with("event: error"), "{body}");
            let err: Value = serde_json::from_str(data.last().unwrap()).unwrap();
            assert_eq!(err["type"], "error");
            assert!(err["error"]["message"].is_string());
        }
        Dialect::Gemini => {
            let err: Value = serde_json::from_str(data.last().unwrap()).unwrap();
            assert!(err["error"]["message"].is_string(), "{body}");
            assert!(err["error"]["code"].is_number(), "{body}");
        }
    }
}

/// The rows of `sql` over the gateway's store, each as its columns.
fn query(server: &Server, sql: &str) -> Vec<Vec<String>> {
    let db = server.data_dir.path().join("data/arouter.sqlite3");
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3;c=sqlite3.connect('{}')\nfor r in c.execute('{sql}'): print(' '.join(map(str, r)))",
            db.display()
        ))
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

#[test]
fn streams_running_when_the_grace_ends_get_an_error_tail_and_are_billed() {
    let (replay, mut server) = setup(1);
    let dialects: Vec<Dialect> = (0..20)
        .map(|i| match i % 3 {
            0 => Dialect::OpenAi,
            1 => Dialect::Anthropic,
            _ => Dialect::Gemini,
        })
        .collect();
    let count = |d: &str| dialects.iter().filter(|x| format!("{x:?}") == d).count() as u32;
    // Each stream sends its first token(s), then stalls far beyond the grace.
    replay.push_fault(
        FaultRule::once(Fault::stall(3, 60_000))
            .path("/v1/chat/completions")
            .times(count("OpenAi")),
    );
    replay.push_fault(
        FaultRule::once(Fault::stall(4, 60_000))
            .path("/v1/messages")
            .times(count("Anthropic")),
    );
    replay.push_fault(
        FaultRule::once(Fault::stall(1, 60_000))
            .path(GEMINI_PATH)
            .times(count("Gemini")),
    );
    let mut clients: Vec<(Dialect, TcpStream, Vec<u8>)> = dialects
        .iter()
        .map(|&d| {
            let (path, body) = request(&replay, d);
            (d, open_stream(&server, &path, &body), Vec::new())
        })
        .collect();
    // Every stream is under way: its head and first event reached the client.
    for (d, c, got) in &mut clients {
        *got = read_until(c, "data:", Duration::from_secs(10));
        assert!(
            String::from_utf8_lossy(got).contains("data:"),
            "{d:?} stream did not start: {}",
            String::from_utf8_lossy(got)
        );
    }
    let signalled = Instant::now();
    let (status, closed_after) = thread::scope(|scope| {
        let exit = scope.spawn(|| server.terminate());
        for (d, c, got) in &mut clients {
            let raw = read_to_close(c, std::mem::take(got), Duration::from_secs(10));
            let (head, body) = parse_terminated(&raw);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert_error_tail(*d, &body);
        }
        let closed_after = signalled.elapsed();
        (exit.join().expect("terminate"), closed_after)
    });
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}\n{}",
        server.stderr()
    );
    assert!(
        closed_after < Duration::from_secs(4),
        "streams ended {closed_after:?} after SIGTERM with a 1 s grace"
    );
    // One row per call, none complete, each the gateway's estimate: OpenAI
    // reports usage only at the end of a stream (prompt counted, tokens
    // relayed); Anthropic and Gemini reported their prompt as the stream
    // began (kept), their output only at the end (tokens relayed).
    let rows = query(
        &server,
        "select provider, count(*), sum(estimated), sum(complete), min(prompt_tokens) \
         from transactions group by provider order by provider",
    );
    let summary: Vec<(String, u32, u32, u32)> = rows
        .iter()
        .map(|r| {
            let n = |i: usize| r[i].parse::<u32>().unwrap();
            assert!(n(4) > 0, "every row counts its prompt: {rows:?}");
            (r[0].clone(), n(1), n(2), n(3))
        })
        .collect();
    let (a, g, o) = (count("Anthropic"), count("Gemini"), count("OpenAi"));
    assert_eq!(
        summary,
        [
            ("anthropic".to_string(), a, a, 0),
            ("gemini".to_string(), g, g, 0),
            ("openai".to_string(), o, o, 0),
        ],
        "one incomplete, estimated row per stream"
    );
    assert_eq!(a + g + o, 20);
}
