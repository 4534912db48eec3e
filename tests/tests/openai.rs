//! The OpenAI-compatible path end to end: real gateway binary, replay
//! upstream playing OpenAI from recorded transcripts, raw HTTP and curl.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use arouter_conformance::{spawn, Fault, FaultRule, ReplayConfig, ReplayHandle};
use arouter_e2e::{master_bearer, Options, Reader, Response, Server, MASTER_KEY};
use serde_json::{json, Value};

const PROVIDER_KEY: &str = "sk-provider-secret-key";

fn setup(extra_toml: &str) -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), PROVIDER_KEY.into()),
        ],
        config_toml: Some(format!(
            "[providers.backup]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key_env = \"OPENAI_API_KEY\"\n{extra_toml}"
        )),
    });
    (replay, server)
}

fn post(server: &Server, path: &str, body: &Value) -> Response {
    server.post_json(path, &master_bearer(), body)
}

/// The recorded request body of a transcript, with the model prefixed.
fn recorded_body(replay: &ReplayHandle, name: &str, provider: &str) -> Value {
    let t = replay
        .transcript(name)
        .unwrap_or_else(|| panic!("no transcript {name}"));
    let mut body = t.request.body.clone();
    let model = body["model"].as_str().unwrap().to_string();
    body["model"] = json!(format!("{provider}/{model}"));
    body
}

/// `data:` payloads of an SSE body.
fn sse_data(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|event| {
            let lines: Vec<&str> = event
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("data:")
                        .map(|d| d.strip_prefix(' ').unwrap_or(d))
                })
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

fn content_of(events: &[String]) -> String {
    events
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .flat_map(|v| v["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn non_stream_chat_swaps_the_key_and_strips_the_prefix() {
    let (replay, server) = setup("");
    let body = recorded_body(&replay, "openai/chat_nonstream_user_id.json", "openai");
    let r = post(&server, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let recorded: Value = serde_json::from_slice(
        replay
            .transcript("openai/chat_nonstream_user_id.json")
            .unwrap()
            .response
            .body
            .bytes(),
    )
    .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        recorded["choices"][0]["message"]["content"]
    );
    assert!(v["model"].as_str().unwrap().starts_with("openai/"));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["native_finish_reason"], "stop");
    // The provider's usage, plus the gateway's cost of it in USD: gpt-4o's
    // shipped $2.50 in and $10 out per million, for 8 and 10 tokens.
    let mut usage = v["usage"].clone();
    let cost = usage.as_object_mut().and_then(|u| u.remove("cost"));
    assert_eq!(cost, Some(json!(0.00012)));
    assert_eq!(usage, recorded["usage"]);
    let seen = replay.requests();
    assert_eq!(seen.len(), 1);
    let upstream = &seen[0];
    assert_eq!(upstream.path, "/v1/chat/completions");
    assert_eq!(
        upstream.headers.get("authorization").map(String::as_str),
        Some(&*format!("Bearer {PROVIDER_KEY}"))
    );
    assert!(
        !format!("{:?}", upstream.headers).contains(MASTER_KEY),
        "client key leaked upstream"
    );
    assert_eq!(
        upstream.body["model"],
        recorded_body(&replay, "openai/chat_nonstream_user_id.json", "x")["model"]
            .as_str()
            .unwrap()
            .trim_start_matches("x/")
    );
}

#[test]
fn curl_streams_with_include_usage() {
    let (replay, server) = setup("");
    let body = recorded_body(
        &replay,
        "openai/chat_stream_text_after_tool_include_usage.json",
        "openai",
    );
    let out = Command::new("curl")
        .args([
            "-sS",
            "-N",
            "--max-time",
            "20",
            "-H",
            "Content-Type: application/json",
        ])
        .arg("-H")
        .arg(format!("Authorization: Bearer {MASTER_KEY}"))
        .arg("-d")
        .arg(body.to_string())
        .arg(format!("http://{}/v1/chat/completions", server.addr))
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = sse_data(&out.stdout);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(events.iter().filter(|e| *e == "[DONE]").count(), 1);
    let recorded = replay
        .transcript("openai/chat_stream_text_after_tool_include_usage.json")
        .unwrap()
        .response
        .body
        .bytes()
        .to_vec();
    assert_eq!(content_of(&events), content_of(&sse_data(&recorded)));
    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let finishes: Vec<Value> = events
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .flat_map(|v| v["choices"].as_array().cloned().unwrap_or_default())
        .filter(|c| !c["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "{finishes:?}");
    assert_eq!(finishes[0]["finish_reason"], "stop");
}

#[test]
fn stream_without_include_usage_has_no_usage_chunk_but_upstream_was_asked() {
    let (replay, server) = setup("");
    let mut body = recorded_body(
        &replay,
        "openai/chat_stream_text_after_tool_include_usage.json",
        "openai",
    );
    body.as_object_mut().unwrap().remove("stream_options");
    let r = post(&server, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = sse_data(&r.body);
    for e in events.iter().filter(|e| *e != "[DONE]") {
        let v: Value = serde_json::from_str(e).unwrap();
        assert!(
            v["usage"].is_null(),
            "usage leaked to a client that did not ask: {e}"
        );
    }
    assert_eq!(
        replay.requests()[0].body["stream_options"]["include_usage"],
        true
    );
}

#[test]
fn fallback_to_the_next_candidate_on_429_and_500() {
    for status in [429u16, 500, 503] {
        let (replay, server) = setup("");
        replay.push_fault(FaultRule::once(Fault::status(status)).path("/v1/chat/completions"));
        let mut body = recorded_body(&replay, "openai/chat_nonstream_user_id.json", "openai");
        let model = body["model"]
            .as_str()
            .unwrap()
            .trim_start_matches("openai/")
            .to_string();
        body["models"] = json!([format!("backup/{model}")]);
        body["route"] = json!("fallback");
        let r = post(&server, "/v1/chat/completions", &body);
        assert_eq!(
            r.status,
            200,
            "status {status}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            r.json()["model"].as_str().unwrap().starts_with("backup/"),
            "{}",
            r.json()["model"]
        );
        let seen = replay.requests();
        assert_eq!(seen.len(), 2);
        assert!(seen
            .iter()
            .all(|s| s.body.get("models").is_none() && s.body.get("route").is_none()));
    }
}

#[test]
fn fallback_when_the_first_provider_is_down() {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("http://{dead}/v1")),
            ("OPENAI_API_KEY".into(), PROVIDER_KEY.into()),
        ],
        config_toml: Some(format!(
            "[providers.backup]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\n"
        )),
    });
    let mut body = recorded_body(&replay, "openai/chat_nonstream_user_id.json", "openai");
    let model = body["model"]
        .as_str()
        .unwrap()
        .trim_start_matches("openai/")
        .to_string();
    body["models"] = json!([format!("backup/{model}")]);
    let r = post(&server, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["model"].as_str().unwrap().starts_with("backup/"));
    // Alone, the dead provider is a 502 in OpenAI's shape.
    body.as_object_mut().unwrap().remove("models");
    let r = post(&server, "/v1/chat/completions", &body);
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["type"], "api_error");
}

#[test]
fn upstream_errors_are_relayed_and_unknown_providers_rejected() {
    let (replay, server) = setup("");
    let body = recorded_body(&replay, "openai/error_404_model_not_found.json", "openai");
    let r = post(&server, "/v1/chat/completions", &body);
    assert_eq!(r.status, 404);
    let recorded: Value = serde_json::from_slice(
        replay
            .transcript("openai/error_404_model_not_found.json")
            .unwrap()
            .response
            .body
            .bytes(),
    )
    .unwrap();
    assert_eq!(r.json(), recorded);
    let mut bad = body.clone();
    bad["model"] = json!("nosuch/gpt-4o");
    let r = post(&server, "/v1/chat/completions", &bad);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "unknown_provider");
}

#[test]
fn embeddings_are_forwarded_with_usage() {
    let (replay, server) = setup("");
    let body = recorded_body(&replay, "openai/embeddings_query.json", "openai");
    let r = post(&server, "/v1/embeddings", &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["object"], "list");
    // The recorded client asked for base64, so the vector is a string.
    assert!(v["data"][0]["embedding"].as_str().unwrap().len() > 100);
    assert!(v["model"]
        .as_str()
        .unwrap()
        .starts_with("openai/text-embedding-3-small"));
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(replay.requests()[0].path, "/v1/embeddings");
}

/// Opens a streaming request and returns the connection for manual reads.
fn open_stream(server: &Server, body: &Value) -> std::net::TcpStream {
    let body = serde_json::to_vec(body).unwrap();
    let mut c = server.connect();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {MASTER_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body).unwrap();
    c
}

fn read_until(c: &mut std::net::TcpStream, needle: &str, timeout: Duration) -> String {
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
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn client_disconnect_aborts_the_upstream_within_a_second() {
    let (replay, server) = setup("");
    replay.push_fault(FaultRule::once(Fault::stall(3, 10_000)).path("/v1/chat/completions"));
    let body = recorded_body(
        &replay,
        "openai/chat_stream_text_after_tool_include_usage.json",
        "openai",
    );
    let mut c = open_stream(&server, &body);
    let got = read_until(&mut c, "chat.completion.chunk", Duration::from_secs(5));
    assert!(got.contains("chat.completion.chunk"), "{got}");
    let closed_at = replay.now_ms();
    drop(c);
    let log = replay.wait_for_requests(Duration::from_secs(3), |log| {
        log.first().is_some_and(|r| r.client_closed_early)
    });
    let record = &log[0];
    assert!(
        record.client_closed_early,
        "upstream never saw the abort: {record:?}"
    );
    let lag = record.client_closed_ms.unwrap().saturating_sub(closed_at);
    assert!(
        lag < 1000,
        "upstream saw the close {lag} ms after the client left"
    );
    // No usage came before the abort, yet the call is billed, as an
    // estimate: the prompt counted, the tokens relayed so far.
    let rows = wait_for_transaction(
        &server,
        "select prompt_tokens, completion_tokens, complete, estimated from transactions",
    );
    let row: Vec<i64> = rows
        .split(',')
        .map(|v| v.trim().parse().unwrap_or(-1))
        .collect();
    assert!(row[0] > 0 && row[1] > 0, "{rows}");
    assert_eq!(&row[2..], [0, 1], "incomplete, estimated: {rows}");
}

/// Polls the store until the query returns a row; the row as `a, b, …`.
fn wait_for_transaction(server: &Server, query: &str) -> String {
    let db = server.data_dir.path().join("data/arouter.sqlite3");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import sqlite3;c=sqlite3.connect('{}');r=c.execute('{query}').fetchone();print(', '.join(map(str,r)) if r else '')",
                db.display()
            ))
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !text.is_empty() {
            return text;
        }
        assert!(Instant::now() < deadline, "no transaction recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn upstream_cut_mid_stream_ends_with_an_error_event_and_done() {
    let (replay, server) = setup("");
    replay.push_fault(FaultRule::once(Fault::cut_after_events(3)).path("/v1/chat/completions"));
    let body = recorded_body(
        &replay,
        "openai/chat_stream_text_after_tool_include_usage.json",
        "openai",
    );
    let r = post(&server, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200);
    let events = sse_data(&r.body);
    let n = events.len();
    assert!(n >= 3, "{events:?}");
    assert_eq!(events[n - 1], "[DONE]");
    let error_event = events.iter().find_map(|e| {
        serde_json::from_str::<Value>(e)
            .ok()
            .filter(|v| v.get("error").is_some())
    });
    let error_event = error_event.expect("an error event");
    assert!(error_event["error"]["message"].is_string());
    let last_chunk: Value = serde_json::from_str(&events[n - 2]).unwrap();
    assert_eq!(last_chunk["choices"][0]["finish_reason"], "error");
}

#[test]
fn keep_alive_comments_while_waiting_for_the_first_token() {
    let (replay, server) = setup("[limits]\nstream_keepalive_ms = 200\n");
    replay
        .push_fault(FaultRule::once(Fault::first_byte_delay_ms(1500)).path("/v1/chat/completions"));
    let body = recorded_body(
        &replay,
        "openai/chat_stream_text_after_tool_include_usage.json",
        "openai",
    );
    let mut c = open_stream(&server, &body);
    let got = read_until(&mut c, "[DONE]", Duration::from_secs(10));
    let first_data = got.find("data:").expect("data arrived");
    let comments = got[..first_data].matches(": keep-alive").count();
    assert!(
        comments >= 3,
        "expected keep-alive comments before the first token, got {comments}:\n{got}"
    );
    let mut reader = Reader::new(std::io::Cursor::new(got.into_bytes()));
    let r = reader.next_response().unwrap();
    assert_eq!(sse_data(&r.body).last().map(String::as_str), Some("[DONE]"));
}

#[test]
fn usage_is_recorded_as_a_transaction() {
    let (replay, server) = setup("");
    let body = recorded_body(&replay, "openai/chat_nonstream_user_id.json", "openai");
    let r = post(&server, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200);
    let usage = r.json()["usage"].clone();
    let model = body["model"]
        .as_str()
        .unwrap()
        .trim_start_matches("openai/")
        .to_string();
    let row = wait_for_transaction(
        &server,
        "select provider, model, prompt_tokens, completion_tokens, cost_micros, complete from transactions",
    );
    let expect = format!(
        "openai, {model}, {}, {}, ",
        usage["prompt_tokens"], usage["completion_tokens"]
    );
    assert!(row.starts_with(&expect), "{row} lacks {expect}");
    let cost: i64 = row
        .split(", ")
        .nth(4)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    assert!(cost > 0, "priced model billed at zero: {row}");
    assert!(row.ends_with(", 1"), "complete: {row}");
}
