//! What an operator sees of each request: the access log line (who, which
//! request id, which model), the `X-Request-Id` on every response, and the
//! usage row of a call that failed upstream.

use std::time::{Duration, Instant};

use arouter_conformance::{spawn, Fault, FaultRule, ReplayConfig, ReplayHandle};
use arouter_e2e::{master_bearer, Options, Response, Server, MASTER_KEY};
use serde_json::{json, Value};

fn setup() -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider".into()),
            ("ANTHROPIC_BASE_URL".into(), url.clone()),
            ("ANTHROPIC_API_KEY".into(), "sk-provider".into()),
        ],
        config_toml: None,
    });
    (replay, server)
}

fn chat_body(replay: &ReplayHandle) -> Value {
    transcript_body(replay, "openai/chat_nonstream_user_id.json")
}

fn transcript_body(replay: &ReplayHandle, name: &str) -> Value {
    let t = replay.transcript(name).unwrap();
    let mut body = t.request.body.clone();
    let model = body["model"].as_str().unwrap().to_string();
    body["model"] = json!(format!("openai/{model}"));
    body
}

fn post(server: &Server, path: &str, auth: &str, extra: &str, body: &Value) -> Response {
    server.post_json(path, &format!("{auth}{extra}"), body)
}

/// The access lines of the server's log (the test servers log at debug),
/// once `done` holds for them (or 5 s have passed).
fn access_lines_until(server: &Server, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = server
            .stderr()
            .lines()
            .filter(|l| l.contains(" access]"))
            .map(str::to_owned)
            .collect();
        if done(&lines) || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn line_for<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no access line with {needle:?} in {lines:#?}"))
}

#[test]
fn unauthenticated_requests_are_not_logged_as_the_master_key() {
    let (replay, server) = setup();
    assert_eq!(server.get("/healthz", "").status, 200);
    let r = post(&server, "/v1/chat/completions", "", "", &chat_body(&replay));
    assert_eq!(r.status, 401);
    let r = post(
        &server,
        "/v1/chat/completions",
        "Authorization: Bearer sk-wrong-key-0123456789\r\n",
        "",
        &chat_body(&replay),
    );
    assert_eq!(r.status, 401);
    let r = post(
        &server,
        "/v1/chat/completions",
        &master_bearer(),
        "",
        &chat_body(&replay),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Two health checks (the harness waits on one), two 401s, one 200.
    let lines = access_lines_until(&server, |lines| lines.len() >= 5);
    let health = line_for(&lines, "/healthz");
    assert!(
        health.contains("key=-") && !health.contains("master"),
        "{health}"
    );
    let denied: Vec<&String> = lines.iter().filter(|l| l.contains(" 401 ")).collect();
    assert_eq!(denied.len(), 2, "{lines:#?}");
    for line in denied {
        assert!(line.contains("key=-") && !line.contains("master"), "{line}");
    }
    let served = line_for(&lines, " 200 chat");
    assert!(served.contains("key=master"), "{served}");
    assert!(
        !server.stderr().contains(MASTER_KEY),
        "a key reached the log"
    );
}

#[test]
fn every_response_carries_a_request_id_that_the_log_names() {
    let (replay, server) = setup();
    let chat = chat_body(&replay);
    // The client's id is echoed when it is well formed.
    let r = post(
        &server,
        "/v1/chat/completions",
        &master_bearer(),
        "X-Request-Id: trace-abc.123_Z:9\r\n",
        &chat,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("trace-abc.123_Z:9"));
    // Otherwise the gateway makes one, different for each request.
    let long = "x".repeat(300);
    let mut ids = Vec::new();
    for extra in [
        String::new(),
        String::new(),
        format!("X-Request-Id: {long}\r\n"),
        "X-Request-Id: a b\"<script>\r\n".to_string(),
    ] {
        let r = post(
            &server,
            "/v1/chat/completions",
            &master_bearer(),
            &extra,
            &chat,
        );
        assert_eq!(r.status, 200);
        let id = r.header("x-request-id").expect("a request id").to_string();
        assert!(
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)),
            "{id:?}"
        );
        ids.push(id);
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    // Errors in every dialect, public endpoints, streams: all carry one.
    let anthropic = json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let stream = transcript_body(
        &replay,
        "openai/chat_stream_text_after_tool_include_usage.json",
    );
    replay.push_fault(FaultRule::once(Fault::status(500)).path("/v1/chat/completions"));
    let cases = [
        post(&server, "/v1/messages", "", "", &anthropic),
        post(
            &server,
            "/v1beta/models/gemini-2.5-flash:generateContent",
            "",
            "",
            &gemini,
        ),
        post(&server, "/v1/nope", &master_bearer(), "", &chat),
        post(
            &server,
            "/v1/chat/completions",
            &master_bearer(),
            "",
            &json!({}),
        ),
        post(&server, "/v1/chat/completions", &master_bearer(), "", &chat),
        server.get("/healthz", ""),
        server.request(b"GET /healthz HTTP/1.1\r\n\r\n"),
        post(
            &server,
            "/v1/chat/completions",
            &master_bearer(),
            "",
            &stream,
        ),
    ];
    let statuses: Vec<u16> = cases.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 404, 400, 500, 200, 400, 200]);
    for r in &cases {
        assert!(
            r.header("x-request-id").is_some_and(|id| !id.is_empty()),
            "{} without a request id: {:?}",
            r.status,
            r.headers
        );
    }
    // The log names the id and the model that served. (A line is written
    // just after its answer: a stream's after its last byte.)
    let stream_id = cases[7].header("x-request-id").unwrap();
    let lines = access_lines_until(&server, |lines| {
        lines.iter().any(|l| l.contains(&format!("id={stream_id}")))
    });
    let line = line_for(&lines, "id=trace-abc.123_Z:9");
    let model = chat["model"].as_str().unwrap();
    assert!(line.contains(&format!("model={model}")), "{line}");
    let line = line_for(&lines, &format!("id={stream_id}"));
    let model = stream["model"].as_str().unwrap();
    assert!(line.contains(&format!("model={model}")), "{line}");
}

#[test]
fn failed_upstream_calls_are_recorded_as_errors_with_their_status() {
    let (replay, server) = setup();
    let chat = chat_body(&replay);
    let query =
        "select status, outcome, complete, prompt_tokens, request_id from transactions order by id";
    let r = post(&server, "/v1/chat/completions", &master_bearer(), "", &chat);
    assert_eq!(r.status, 200);
    let id = r.header("x-request-id").unwrap().to_string();
    // A row is written just after its answer: wait for each before the
    // next request, so the rows come in request order.
    let rows = server.wait_for_rows(query, 1);
    assert!(
        rows[0].starts_with("200, complete, 1, ") && rows[0].ends_with(&format!(", {id}")),
        "{rows:?}"
    );
    for (n, status) in [400u16, 429, 500, 503].into_iter().enumerate() {
        replay.push_fault(FaultRule::once(Fault::status(status)).path("/v1/chat/completions"));
        let r = post(&server, "/v1/chat/completions", &master_bearer(), "", &chat);
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
        let id = r.header("x-request-id").unwrap();
        let rows = server.wait_for_rows(query, n + 2);
        assert_eq!(
            rows[n + 1],
            format!("{status}, error, 0, 0, {id}"),
            "{rows:?}"
        );
    }
}
