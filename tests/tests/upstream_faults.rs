//! The gateway's side of a provider's connections: a whole answer cut off
//! mid-body is still billed, and pooled connections left idle are closed
//! at their expiry even when no further request comes.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use arouter_conformance::{spawn, Fault, FaultRule, ReplayConfig, ReplayHandle};
use arouter_e2e::{master_bearer, Options, Response, Server};
use serde_json::{json, Value};

const NONSTREAM: &str = "openai/chat_nonstream_user_id.json";

fn setup(limits: &str) -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider".into()),
        ],
        config_toml: Some(format!("[limits]\n{limits}")),
    });
    (replay, server)
}

fn body(replay: &ReplayHandle) -> Value {
    let mut body = replay
        .transcript(NONSTREAM)
        .expect("transcript")
        .request
        .body
        .clone();
    body["model"] = json!(format!("openai/{}", body["model"].as_str().unwrap()));
    body
}

fn post(server: &Server, body: &Value) -> Response {
    server.post_json("/v1/chat/completions", &master_bearer(), body)
}

/// Polls the store until `sql` returns a row; its columns.
fn wait_for_row(server: &Server, sql: &str) -> Vec<String> {
    let db = server.data_dir.path().join("data/arouter.sqlite3");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import sqlite3;c=sqlite3.connect('{}');r=c.execute('{sql}').fetchone();print(' '.join(map(str,r)) if r else '')",
                db.display()
            ))
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !text.is_empty() {
            return text.split(' ').map(str::to_owned).collect();
        }
        assert!(Instant::now() < deadline, "no transaction recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_non_stream_answer_cut_mid_body_is_a_502_and_billed_as_an_estimate() {
    let (replay, server) = setup("");
    // 200 bytes of the JSON answer, then the provider's socket closes.
    replay.push_fault(FaultRule::once(Fault::cut_after_events(2)).path("/v1/chat/completions"));
    let r = post(&server, &body(&replay));
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.json()["error"]["message"].is_string(),
        "OpenAI error shape"
    );
    let row = wait_for_row(
        &server,
        "select provider, prompt_tokens, complete, estimated from transactions",
    );
    assert_eq!(row[0], "openai");
    assert!(
        row[1].parse::<u64>().unwrap() > 0,
        "prompt counted: {row:?}"
    );
    assert_eq!(&row[2..], ["0", "1"], "incomplete, estimated: {row:?}");
}

/// Socket inodes the process holds open.
fn socket_inodes(pid: u32) -> HashSet<String> {
    let mut out = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc") {
        let Ok(target) = std::fs::read_link(entry.expect("fd").path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
        {
            out.insert(inode.to_string());
        }
    }
    out
}

/// The process's open TCP connections to `port` (any state but closed).
fn connections_to(pid: u32, port: u16) -> usize {
    let mine = socket_inodes(pid);
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).expect("/proc net")
        + &std::fs::read_to_string(format!("/proc/{pid}/net/tcp6")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let remote_port = cols
                .get(2)
                .and_then(|r| r.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            remote_port == Some(port) && cols.get(9).is_some_and(|i| mine.contains(*i))
        })
        .count()
}

#[test]
fn idle_pooled_connections_are_closed_at_their_expiry_without_new_requests() {
    let (replay, server) = setup("upstream_pool_idle_ms = 1500\n");
    let pid = server.pid().expect("running");
    let port = replay.addr.port();
    let body = body(&replay);
    // Concurrent calls, so several connections go back to the pool.
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| post(&server, &body).status))
            .collect();
        for call in calls {
            assert_eq!(call.join().unwrap(), 200);
        }
    });
    let idle_from = Instant::now();
    let pooled = connections_to(pid, port);
    assert!(pooled >= 1, "no pooled connection to watch");
    // Well past the expiry, with no request in between.
    let mut left = pooled;
    while idle_from.elapsed() < Duration::from_secs(4) && left > 0 {
        std::thread::sleep(Duration::from_millis(100));
        left = connections_to(pid, port);
    }
    let closed_after = idle_from.elapsed();
    eprintln!("pooled upstream connections: {pooled} after the calls, {left} after {closed_after:?} idle (expiry 1.5 s)");
    assert_eq!(left, 0, "idle pooled connections still open");
    assert!(
        closed_after >= Duration::from_millis(1000),
        "closed before their expiry ({closed_after:?})"
    );
    // The pool still works afterwards.
    assert_eq!(post(&server, &body).status, 200);
}
