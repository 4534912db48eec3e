//! End-to-end tests of the replay server with a plain std TcpStream client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arouter_conformance::{
    load_transcripts, spawn, transcripts_dir, Fault, FaultRule, ReplayConfig, ReplayHandle,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// A tiny HTTP/1.1 client.

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    /// Dechunked body.
    body: Vec<u8>,
    /// The chunks as received (chunked responses only), with arrival times.
    chunks: Vec<(Instant, Vec<u8>)>,
    /// Whether the body ended by its framing (false: connection closed early).
    complete: bool,
    head_at: Instant,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: replay.test\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).unwrap();
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 8192];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Read a response head. `None` if the connection closed first.
    fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(n) = r.parse(&self.buf).expect("bad response head") {
                let status = r.code.unwrap();
                let hs = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                self.buf.drain(..n);
                return Some((status, hs));
            }
            match self.fill() {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                return Some(line);
            }
            match self.fill() {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    fn read_exact_buf(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Read the next chunk of a chunked body: `Some(None)` at the last chunk.
    fn read_chunk(&mut self) -> Option<Option<Vec<u8>>> {
        let line = self.read_line()?;
        let size =
            usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).expect("chunk size");
        if size == 0 {
            self.read_line()?; // end of (empty) trailers
            return Some(None);
        }
        let data = self.read_exact_buf(size)?;
        assert_eq!(self.read_exact_buf(2)?, b"\r\n");
        Some(Some(data))
    }

    fn read_response(&mut self) -> Option<Response> {
        let (status, headers) = self.read_head()?;
        let head_at = Instant::now();
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
            chunks: Vec::new(),
            complete: false,
            head_at,
        };
        if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                match self.read_chunk() {
                    Some(Some(c)) => {
                        resp.body.extend_from_slice(&c);
                        resp.chunks.push((Instant::now(), c));
                    }
                    Some(None) => {
                        resp.complete = true;
                        break;
                    }
                    None => break,
                }
            }
        } else {
            let n: usize = resp
                .header("content-length")
                .expect("content-length or chunked")
                .parse()
                .unwrap();
            if let Some(b) = self.read_exact_buf(n) {
                resp.body = b;
                resp.complete = true;
            } else {
                resp.body = std::mem::take(&mut self.buf);
            }
        }
        Some(resp)
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.send(method, path, headers, body);
        self.read_response()
            .expect("connection closed before a response")
    }

    fn post_json(&mut self, path: &str, body: &Value) -> Response {
        let b = serde_json::to_vec(body).unwrap();
        self.request("POST", path, &[("content-type", "application/json")], &b)
    }
}

fn server() -> ReplayHandle {
    spawn(ReplayConfig::default())
}

fn one_shot(replay: &ReplayHandle, path: &str, body: &Value) -> Response {
    Client::connect(replay.addr).post_json(path, body)
}

/// Recorded request of a transcript file, from the file itself (not through
/// the library's loader).
fn recorded(name: &str) -> Value {
    let path = transcripts_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const UK_STREAM: &str = "openai/chat_tool_call_stream_include_usage.json";

fn stream_transcript() -> (String, Value, usize) {
    let t = recorded(UK_STREAM);
    let sse = t["response"]["sse"].as_str().unwrap();
    let events = sse.matches("\n\n").count();
    (
        t["request"]["path"].as_str().unwrap().to_string(),
        t["request"]["body"].clone(),
        events,
    )
}

// ---------------------------------------------------------------------------

#[test]
fn every_transcript_replays_byte_for_byte() {
    let replay = server();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let loaded = load_transcripts(&[transcripts_dir()]).unwrap();
    files.extend(loaded.into_iter().map(|t| (t.file, t.name)));
    assert_eq!(files.len(), replay.transcripts().len());
    assert!(files.len() >= 60, "only {} transcripts", files.len());

    // All on one keep-alive connection.
    let mut c = Client::connect(replay.addr);
    for (file, name) in &files {
        let t: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let req = &t["request"];
        let body = serde_json::to_vec(&req["body"]).unwrap();
        let mut headers: Vec<(&str, &str)> = Vec::new();
        for (k, v) in req["headers"].as_object().unwrap() {
            headers.push((k, v.as_str().unwrap()));
        }
        let r = c.request(
            req["method"].as_str().unwrap(),
            req["path"].as_str().unwrap(),
            &headers,
            &body,
        );
        let resp = &t["response"];
        assert_eq!(r.status as u64, resp["status"].as_u64().unwrap(), "{name}");
        assert_eq!(
            r.header("x-replay-transcript"),
            Some(name.as_str()),
            "{name}: wrong match"
        );
        assert!(r.complete, "{name}: incomplete");
        if let Some(ct) = resp["headers"]["content-type"].as_str() {
            assert_eq!(r.header("content-type"), Some(ct), "{name}");
        }
        if let Some(raw) = resp["body_raw"].as_str() {
            assert_eq!(r.text(), raw, "{name}: body_raw differs");
            assert!(r.chunks.iter().all(|(_, c)| c.len() <= 100), "{name}");
            assert!(r.chunks.len() >= raw.len() / 100, "{name}");
        } else if let Some(sse) = resp["sse"].as_str() {
            assert_eq!(r.text(), sse, "{name}: sse differs");
            // One event per chunk: every chunk but the last ends with a blank
            // line, and none contains one before its end.
            for (i, (_, ch)) in r.chunks.iter().enumerate() {
                let s = String::from_utf8_lossy(ch);
                let ends = s.ends_with("\n\n") || s.ends_with("\r\n\r\n");
                if i + 1 < r.chunks.len() {
                    assert!(ends, "{name}: chunk {i} is not one event: {s:?}");
                }
                let inner = &s[..s.len().saturating_sub(4)];
                assert!(
                    !inner.contains("\n\n") && !inner.contains("\r\n\r\n"),
                    "{name}: chunk {i} holds several events: {s:?}"
                );
            }
        } else {
            assert!(r.header("transfer-encoding").is_none(), "{name}");
            assert_eq!(r.json(), resp["body"], "{name}: body differs");
            assert!(!r.body.contains(&b'\n'), "{name}: body not compact");
        }
    }
    assert_eq!(replay.requests().len(), files.len());
    assert!(replay.requests().iter().all(|r| !r.client_closed_early));
}

#[test]
fn json_body_keeps_recorded_key_order() {
    let replay = server();
    let t = recorded("openai_compat/nonstream_finish_reason_eos.json");
    let r = one_shot(&replay, "/v1/chat/completions", &t["request"]["body"]);
    assert_eq!(r.status, 200);
    // The file lists "id" first; a sorted serialization would start with
    // "choices".
    assert!(r.text().starts_with("{\"id\":\"cmpl-"), "{}", r.text());
}

/// Serialize with every object's keys in reverse order.
fn reversed_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .rev()
                .map(|(k, v)| format!("{}:{}", json!(k), reversed_json(v)))
                .collect();
            format!("{{ {} }}", parts.join(" , "))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(reversed_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[test]
fn reordered_keys_extra_fields_query_and_prefix_still_match() {
    let replay = server();
    let name = "anthropic/thinking_nonstream.json";
    let t = recorded(name);
    let body = reversed_json(&t["request"]["body"]);
    assert_ne!(body, serde_json::to_string(&t["request"]["body"]).unwrap());
    let mut c = Client::connect(replay.addr);
    for path in [
        "/v1/messages?beta=true",
        "/v1/messages",
        "/anthropic/v1/messages?beta=true",
    ] {
        let r = c.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("x-replay-transcript"), Some(name));
        assert_eq!(r.json(), t["response"]["body"]);
    }
    // Extra non-conversation fields do not break the match.
    let mut b = t["request"]["body"].clone();
    b["temperature"] = json!(0.3);
    b["metadata"] = json!({"user_id": "u1"});
    let r = c.post_json("/v1/messages", &b);
    assert_eq!(r.header("x-replay-transcript"), Some(name));
    // `stream: false` equals an absent stream (Gemini bodies have none).
    let g = recorded("gemini/generate_content_basic.json");
    let mut gb = g["request"]["body"].clone();
    gb["stream"] = json!(false);
    let r = c.post_json(g["request"]["path"].as_str().unwrap(), &gb);
    assert_eq!(
        r.header("x-replay-transcript"),
        Some("gemini/generate_content_basic.json")
    );
    // alt=sse is part of the match.
    let s = recorded("gemini/stream_text_basic.json");
    let p = s["request"]["path"].as_str().unwrap();
    let r = c.post_json(&format!("{p}&key=abc"), &s["request"]["body"]);
    assert_eq!(r.status, 200);
    let r = c.post_json(p.trim_end_matches("?alt=sse"), &s["request"]["body"]);
    assert_eq!(r.status, 404, "without alt=sse it is another request");
}

#[test]
fn no_match_is_404_and_logged() {
    let replay = server();
    let t = recorded("openai/chat_nonstream_user_id.json");
    let mut b = t["request"]["body"].clone();
    b["messages"][0]["content"] = json!("something never recorded");
    let r = one_shot(&replay, "/v1/chat/completions", &b);
    assert_eq!(r.status, 404);
    let j = r.json();
    assert_eq!(j["error"]["type"], "replay_no_match");
    let model = b["model"].as_str().unwrap();
    assert_eq!(
        j["error"]["message"],
        format!("replay: no transcript matches POST /v1/chat/completions model={model}")
    );
    assert!(j["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("differs in messages"));
    // stream flag mismatch is a miss too.
    b = t["request"]["body"].clone();
    b["stream"] = json!(true);
    assert_eq!(one_shot(&replay, "/v1/chat/completions", &b).status, 404);
    let log = replay.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].transcript, None);
    assert_eq!(log[0].status, Some(404));
    // Control paths are never matched nor logged.
    let r = Client::connect(replay.addr).request("GET", "/_replay/nope", &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(replay.requests().len(), 2);
}

#[test]
fn fault_status_429_with_retry_after_then_normal() {
    let replay = server();
    let t = recorded("openai/chat_nonstream_user_id.json");
    let body = &t["request"]["body"];
    let model = body["model"].as_str().unwrap();
    // Programmed through the HTTP control API.
    let mut c = Client::connect(replay.addr);
    let rule = json!({"match": {"path": "/v1/chat/completions", "model": model},
                      "fault": {"status": 429}, "times": 1});
    let r = c.post_json("/_replay/faults", &rule);
    assert_eq!(r.status, 200, "{}", r.text());
    let other = json!({"model": "not-this-one", "messages": [], "stream": false});
    assert_eq!(c.post_json("/v1/chat/completions", &other).status, 404);
    let r = c.post_json("/v1/chat/completions", body);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    let j = r.json();
    assert_eq!(j["error"]["code"], "rate_limit_exceeded");
    assert!(j["error"]["message"].is_string() && j["error"]["type"].is_string());
    // times: 1 -> next one is normal.
    let r = c.post_json("/v1/chat/completions", body);
    assert_eq!(r.status, 200);
    let log = replay.requests();
    assert_eq!(log[1].fault.as_ref().unwrap().status, Some(429));
    assert_eq!(log[1].status, Some(429));
    assert!(log[2].fault.is_none());
}

#[test]
fn fault_status_bodies_are_provider_shaped() {
    let replay = server();
    let mut c = Client::connect(replay.addr);
    replay.push_fault(FaultRule::once(Fault::status(529)).path("/v1/messages"));
    let a = recorded("anthropic/stream_text_basic.json");
    let r = c.post_json(
        a["request"]["path"].as_str().unwrap(),
        &a["request"]["body"],
    );
    assert_eq!(r.status, 529);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "overloaded_error");

    let g = recorded("gemini/stream_text_basic.json");
    replay.push_fault(FaultRule::once(Fault::status(503)).model("gemini-2.0-flash-exp"));
    let r = c.post_json(
        g["request"]["path"].as_str().unwrap(),
        &g["request"]["body"],
    );
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], 503);
    assert_eq!(r.json()["error"]["status"], "UNAVAILABLE");
    assert!(r.header("retry-after").is_none());

    let e = recorded("openai/embeddings_query.json");
    replay.push_fault(FaultRule::once(Fault::status(500)).path("/v1/embeddings"));
    let r = c.post_json("/v1/embeddings", &e["request"]["body"]);
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "server_error");
    // A fault applies even when no transcript matches.
    replay.push_fault(FaultRule::once(Fault::status(401)));
    let r = c.post_json(
        "/v1/chat/completions",
        &json!({"model": "unknown", "messages": []}),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn fault_delay_and_first_byte_delay() {
    let replay = server();
    let (path, body, _) = stream_transcript();
    let mut c = Client::connect(replay.addr);

    replay.push_fault(FaultRule::once(Fault::delay_ms(300)));
    let t0 = Instant::now();
    let r = c.post_json(&path, &body);
    assert!(r.complete);
    assert!(r.head_at - t0 >= Duration::from_millis(300));

    replay.push_fault(FaultRule::once(Fault::first_byte_delay_ms(800)));
    let t0 = Instant::now();
    let r = c.post_json(&path, &body);
    assert!(r.complete);
    assert!(
        r.head_at - t0 < Duration::from_millis(500),
        "head was delayed"
    );
    let first = r.chunks[0].0;
    assert!(
        first - t0 >= Duration::from_millis(800),
        "first byte was not delayed"
    );
}

#[test]
fn fault_cut_after_events_closes_without_terminator() {
    let replay = server();
    let (path, body, events) = stream_transcript();
    assert!(events > 3);
    replay.push_fault(FaultRule::once(Fault::cut_after_events(2)).path(&path));
    let mut c = Client::connect(replay.addr);
    let r = c.post_json(&path, &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.chunks.len(), 2);
    assert!(!r.complete, "terminating chunk must not be sent");
    let log = replay.wait_for_requests(Duration::from_secs(2), |l| {
        l.first().is_some_and(|r| r.finished_ms.is_some())
    });
    assert!(!log[0].client_closed_early);
    // The connection is closed: a new request on it gets nothing.
    c.send("GET", "/_replay/health", &[], b"");
    assert!(c.read_response().is_none());
}

#[test]
fn fault_stall_pauses_then_continues() {
    let replay = server();
    let (path, body, events) = stream_transcript();
    replay.push_fault(FaultRule::once(Fault::stall(2, 800)));
    let r = Client::connect(replay.addr).post_json(&path, &body);
    assert!(r.complete);
    assert_eq!(r.chunks.len(), events);
    let gap = r.chunks[2].0 - r.chunks[1].0;
    assert!(gap >= Duration::from_millis(790), "gap {gap:?}");
    let other_gap = r.chunks[4].0 - r.chunks[3].0;
    assert!(other_gap < Duration::from_millis(400), "gap {other_gap:?}");
}

#[test]
fn fault_close_without_response() {
    let replay = server();
    let (path, body, _) = stream_transcript();
    replay.push_fault(FaultRule::once(Fault::close_without_response()));
    let mut c = Client::connect(replay.addr);
    c.send(
        "POST",
        &path,
        &[("content-type", "application/json")],
        &serde_json::to_vec(&body).unwrap(),
    );
    assert!(c.read_response().is_none());
    assert!(c.buf.is_empty(), "got bytes: {:?}", c.buf);
    let log = replay.requests();
    assert_eq!(log[0].status, None);
    assert!(log[0].fault.as_ref().unwrap().close_without_response);
    // The next request is served normally.
    assert_eq!(one_shot(&replay, &path, &body).status, 200);
}

#[test]
fn request_log_records_client_closing_mid_stream() {
    let replay = server();
    let (path, body, _) = stream_transcript();
    replay.push_fault(FaultRule::once(Fault::stall(2, 5_000)).path("/v1/chat/completions"));
    let mut c = Client::connect(replay.addr);
    let b = serde_json::to_vec(&body).unwrap();
    c.send(
        "POST",
        &format!("{path}?trace=1"),
        &[
            ("content-type", "application/json"),
            ("Authorization", "Bearer sk-test"),
            ("X-Test", "abc"),
        ],
        &b,
    );
    let (status, _) = c.read_head().unwrap();
    assert_eq!(status, 200);
    assert!(c.read_chunk().unwrap().is_some());
    assert!(c.read_chunk().unwrap().is_some());
    // Now the server stalls; the client goes away.
    let closed_at = replay.now_ms();
    drop(c);
    let log = replay.wait_for_requests(Duration::from_secs(2), |l| {
        l.first().is_some_and(|r| r.client_closed_early)
    });
    let r = &log[0];
    assert!(r.client_closed_early, "{r:?}");
    let ms = r.client_closed_ms.expect("client_closed_ms");
    assert!(
        ms >= closed_at && ms - closed_at < 1000,
        "noticed after {} ms",
        ms - closed_at
    );
    assert_eq!(r.finished_ms, Some(ms));
    assert_eq!(r.path, format!("{path}?trace=1"));
    assert_eq!(r.method, "POST");
    assert_eq!(r.headers["x-test"], "abc");
    assert_eq!(r.headers["authorization"], "Bearer sk-test");
    assert_eq!(r.body, body);
    assert_eq!(r.transcript.as_deref(), Some(UK_STREAM));
    assert_eq!(r.fault, Some(Fault::stall(2, 5_000)));

    // The same through the HTTP control API.
    let mut c = Client::connect(replay.addr);
    let j = c.request("GET", "/_replay/requests", &[], b"").json();
    let e = &j[0];
    assert_eq!(e["client_closed_early"], true);
    assert_eq!(e["client_closed_ms"], ms);
    assert_eq!(e["transcript"], UK_STREAM);
    assert_eq!(e["headers"]["x-test"], "abc");
    assert_eq!(e["body"], body);
    assert_eq!(
        e["fault"],
        json!({"stall_after_events": 2, "stall_ms": 5000})
    );
    for k in ["id", "method", "path", "started_ms", "finished_ms"] {
        assert!(!e[k].is_null(), "{k}");
    }
    assert_eq!(
        c.request("DELETE", "/_replay/requests", &[], b"").status,
        200
    );
    assert_eq!(
        c.request("GET", "/_replay/requests", &[], b"").json(),
        json!([])
    );
}

#[test]
fn client_closing_during_delay_is_noticed() {
    let replay = server();
    let (path, body, _) = stream_transcript();
    replay.push_fault(FaultRule::once(Fault::delay_ms(5_000)));
    let mut c = Client::connect(replay.addr);
    c.send("POST", &path, &[], &serde_json::to_vec(&body).unwrap());
    // Make sure the server has the request before closing.
    replay.wait_for_requests(Duration::from_secs(2), |l| !l.is_empty());
    drop(c);
    let log = replay.wait_for_requests(Duration::from_secs(2), |l| l[0].client_closed_early);
    assert!(log[0].client_closed_early);
    assert_eq!(log[0].status, None, "no head was sent");
}

#[test]
fn keep_alive_two_requests_on_one_connection() {
    let replay = server();
    let (path, body, events) = stream_transcript();
    let nonstream = recorded("openai/chat_nonstream_user_id.json");
    let mut c = Client::connect(replay.addr);
    let r1 = c.post_json(&path, &body);
    assert!(r1.complete);
    assert_eq!(r1.chunks.len(), events);
    let r2 = c.post_json("/v1/chat/completions", &nonstream["request"]["body"]);
    assert_eq!(r2.status, 200);
    assert_eq!(r2.json(), nonstream["response"]["body"]);
    // Pipelined: two requests written before reading either.
    let b = serde_json::to_vec(&nonstream["request"]["body"]).unwrap();
    c.send("POST", "/v1/chat/completions", &[], &b);
    c.send("POST", "/v1/chat/completions", &[], &b);
    assert_eq!(c.read_response().unwrap().status, 200);
    assert_eq!(c.read_response().unwrap().status, 200);
    // Connection: close is honoured.
    let r = c.request(
        "POST",
        "/v1/chat/completions",
        &[("connection", "close")],
        &b,
    );
    assert_eq!(r.header("connection"), Some("close"));
    c.send("GET", "/_replay/health", &[], b"");
    assert!(c.read_response().is_none());
    assert_eq!(replay.requests().len(), 5);
}

#[test]
fn chunked_request_body_is_accepted() {
    let replay = server();
    let t = recorded("openai/embeddings_query.json");
    let b = serde_json::to_vec(&t["request"]["body"]).unwrap();
    let (a, z) = b.split_at(b.len() / 2);
    let mut body = Vec::new();
    for part in [a, z] {
        body.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut c = Client::connect(replay.addr);
    let mut req =
        b"POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(&body);
    c.stream.write_all(&req).unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), t["response"]["body"]);
}

/// async-h1's chunked decoder returns Pending without arranging a wake-up
/// when a trailer section arrives in more than one read; the server must
/// still answer.
#[test]
fn chunked_body_with_trailers_in_pieces_is_answered() {
    let replay = server();
    let t = recorded("openai/embeddings_query.json");
    let b = serde_json::to_vec(&t["request"]["body"]).unwrap();
    let mut c = Client::connect(replay.addr);
    let mut head =
        b"POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    head.extend_from_slice(format!("{:x}\r\n", b.len()).as_bytes());
    head.extend_from_slice(&b);
    head.extend_from_slice(b"\r\n0\r\nx-trailer: 1\r\n");
    c.stream.write_all(&head).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.stream.write_all(b"\r\n").unwrap();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let r = c.read_response().expect("no answer: the server hangs");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), t["response"]["body"]);
}

/// async-h1 parses each request through its own buffered reader; bytes of
/// the next request that arrive in the same segment must not be lost,
/// whatever framing the request before them had.
#[test]
fn pipelined_requests_in_one_write_survive_every_framing() {
    let replay = server();
    let t = recorded("openai/embeddings_query.json");
    let b = serde_json::to_vec(&t["request"]["body"]).unwrap();
    let mut bytes =
        b"POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    bytes.extend_from_slice(format!("{:x}\r\n", b.len()).as_bytes());
    bytes.extend_from_slice(&b);
    bytes.extend_from_slice(b"\r\n0\r\n\r\n");
    bytes.extend_from_slice(b"GET /_replay/health HTTP/1.1\r\nhost: x\r\n\r\n");
    bytes.extend_from_slice(
        format!(
            "POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            b.len()
        )
        .as_bytes(),
    );
    bytes.extend_from_slice(&b);
    bytes
        .extend_from_slice(b"GET /_replay/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut c = Client::connect(replay.addr);
    c.stream.write_all(&bytes).unwrap();
    let first = c.read_response().unwrap();
    assert_eq!(first.json(), t["response"]["body"]);
    assert_eq!(c.read_response().unwrap().json(), json!({"ok": true}));
    assert_eq!(c.read_response().unwrap().json(), t["response"]["body"]);
    let last = c.read_response().unwrap();
    assert_eq!(last.json(), json!({"ok": true}));
    assert_eq!(last.header("connection"), Some("close"));
    assert!(c.read_response().is_none());
    assert_eq!(replay.requests().len(), 2);
}

/// http-types panics on a header value that is UTF-8 but not ASCII; the
/// server answers 400 instead of losing its thread (and every connection).
#[test]
fn non_ascii_header_value_gets_400_and_server_survives() {
    let replay = server();
    let mut c = Client::connect(replay.addr);
    c.stream
        .write_all(
            "GET /_replay/health HTTP/1.1\r\nhost: x\r\nx-name: caf\u{e9}\r\n\r\n".as_bytes(),
        )
        .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 400);
    assert!(c.read_response().is_none());
    let mut c = Client::connect(replay.addr);
    let r = c.request("GET", "/_replay/health", &[], b"");
    assert_eq!(r.json(), json!({"ok": true}));
}

/// The request log shows the headers the client sent: none that
/// http-types adds of its own (`content-type` for a body).
#[test]
fn request_log_has_only_headers_sent() {
    let replay = server();
    let nonstream = recorded("openai/chat_nonstream_user_id.json");
    let b = serde_json::to_vec(&nonstream["request"]["body"]).unwrap();
    let mut c = Client::connect(replay.addr);
    c.send("POST", "/v1/chat/completions", &[("X-Mixed-Case", "v")], &b);
    assert_eq!(c.read_response().unwrap().status, 200);
    c.send(
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json")],
        &b,
    );
    assert_eq!(c.read_response().unwrap().status, 200);
    let log = replay.requests();
    let names: Vec<&str> = log[0].headers.keys().map(String::as_str).collect();
    assert_eq!(names, ["content-length", "host", "x-mixed-case"]);
    assert_eq!(log[1].headers["content-type"], "application/json");
}

/// What async-h1 rejects is answered with a JSON 400, then the connection
/// closes.
#[test]
fn malformed_request_gets_400_and_close() {
    let replay = server();
    let mut c = Client::connect(replay.addr);
    c.stream
        .write_all(b"POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n")
        .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "replay_bad_request");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.read_response().is_none());
    assert!(replay.requests().is_empty());
}

#[test]
fn control_api_lists_transcripts_and_faults() {
    let replay = server();
    let mut c = Client::connect(replay.addr);
    let names = c.request("GET", "/_replay/transcripts", &[], b"").json();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(names.contains(&"openai/chat_nonstream_user_id.json"));
    assert!(names.contains(&"openai_compat/data_no_space.json"));
    let r = c.post_json(
        "/_replay/faults",
        &json!([{"fault": {"delay_ms": 1}, "times": 3}, {"match": {"model": "m"}, "fault": {"status": 500}}]),
    );
    assert_eq!(r.json()["queued"], 2);
    let faults = c.request("GET", "/_replay/faults", &[], b"").json();
    assert_eq!(faults.as_array().unwrap().len(), 2);
    assert_eq!(faults[0]["times"], 3);
    let r = c.post_json("/_replay/faults", &json!({"fault": {"bogus": 1}}));
    assert_eq!(r.status, 400);
    assert_eq!(c.request("DELETE", "/_replay/faults", &[], b"").status, 200);
    assert!(replay.faults().is_empty());
}

#[test]
fn synthetic_quirks_replay_as_written() {
    let replay = server();
    let mut c = Client::connect(replay.addr);
    let ask = |c: &mut Client, msg: &str, stream: bool| {
        c.post_json(
            "/v1/chat/completions",
            &json!({"model": "quirk-model", "stream": stream,
                    "messages": [{"role": "user", "content": msg}]}),
        )
    };
    let r = ask(&mut c, "quirk: data without space", true);
    assert!(r.text().starts_with("data:{") && r.text().ends_with("data:[DONE]\n\n"));
    let r = ask(&mut c, "quirk: crlf line endings", true);
    assert!(r.chunks.iter().all(|(_, c)| c.ends_with(b"\r\n\r\n")));
    let r = ask(&mut c, "quirk: no done terminator", true);
    assert!(r.complete && !r.text().contains("[DONE]"));
    let r = ask(&mut c, "quirk: no finish reason", true);
    assert!(r.text().ends_with("data: [DONE]\n\n"));
    assert!(!r.text().contains("\"finish_reason\":\""));
    let r = ask(&mut c, "quirk: usage in content chunk", true);
    let last = String::from_utf8_lossy(&r.chunks[r.chunks.len() - 2].1).into_owned();
    assert!(last.contains("\"usage\":{") && last.contains("\"content\":\".\""));
    let r = ask(&mut c, "quirk: repeated tool call name", true);
    assert!(r.text().matches("\"name\":\"get_weather\"").count() >= 3);
    let r = ask(&mut c, "quirk: finish reason eos", false);
    assert_eq!(r.json()["choices"][0]["finish_reason"], "eos");
}

#[test]
fn cli_binary_prints_address_and_serves() {
    let dir = std::env::temp_dir().join(format!("arouter-replay-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let addr_file = dir.join("addr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arouter-replay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--chunk-delay-ms",
            "0",
            "--addr-file",
        ])
        .arg(&addr_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        let url = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        assert_eq!(std::fs::read_to_string(&addr_file).unwrap(), url);
        let mut c = Client::connect(url.parse().unwrap());
        let names = c.request("GET", "/_replay/transcripts", &[], b"").json();
        assert!(names.as_array().unwrap().len() >= 60);
        let (path, body, events) = stream_transcript();
        let r = c.post_json(&path, &body);
        assert_eq!(r.chunks.len(), events);
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
