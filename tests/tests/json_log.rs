//! `--log-format json`: one JSON object per request with the fields an
//! operator ships to a log store, and never a key; and W3C `traceparent`
//! passed to the provider (a malformed one dropped).

use std::time::{Duration, Instant};

use arouter_conformance::{spawn, ReplayConfig, ReplayHandle};
use arouter_e2e::{Options, Server, MASTER_KEY};
use serde_json::{json, Value};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn setup() -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider-secret-abc".into()),
            ("AROUTER_LOG_FORMAT".into(), "json".into()),
        ],
        // A provider nobody listens on: the first candidate of a
        // fallback fails to connect.
        config_toml: Some(
            "[providers.dead]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             models = [\"gpt-4o-mini\"]\n"
                .into(),
        ),
    });
    (replay, server)
}

fn chat_body(replay: &ReplayHandle, stream: bool) -> Value {
    let name = if stream {
        "openai/chat_stream_text_moderation_include_usage.json"
    } else {
        "openai/chat_nonstream_user_id.json"
    };
    let t = replay.transcript(name).unwrap();
    let mut body = t.request.body.clone();
    let model = body["model"].as_str().unwrap().to_string();
    body["model"] = json!(format!("openai/{model}"));
    body
}

fn post(server: &Server, key: &str, extra: &str, body: &Value) -> u16 {
    let auth = format!("Authorization: Bearer {key}\r\n{extra}");
    server.post_json("/v1/chat/completions", &auth, body).status
}

/// Every line of the log, parsed; once `n` chat requests' access objects
/// are there (each is written right after its answer).
fn log_objects(server: &Server, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server.stderr();
        let objects: Vec<Value> = text
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line:?}"))
            })
            .collect();
        let access = objects
            .iter()
            .filter(|o| o["type"] == "access" && o["path"] == "/v1/chat/completions")
            .count();
        if access >= n || Instant::now() > deadline {
            return objects;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn access_with<'a>(objects: &'a [Value], request_path: &str, status: u64) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|o| o["type"] == "access" && o["path"] == request_path && o["status"] == status)
        .collect()
}

#[test]
fn every_line_is_json_and_each_request_has_its_fields_but_no_key() {
    let (replay, server) = setup();
    let created = server.call(
        "POST",
        "/api/v1/keys",
        MASTER_KEY,
        Some(&json!({"name": "logged"})),
    );
    assert_eq!(created.status, 201);
    let created = created.json();
    let secret = created["key"].as_str().unwrap().to_string();
    let app = "HTTP-Referer: https://app.example/\r\nX-Title: Log Test\r\n";
    assert_eq!(post(&server, &secret, app, &chat_body(&replay, false)), 200);
    assert_eq!(post(&server, &secret, app, &chat_body(&replay, true)), 200);
    assert_eq!(
        post(
            &server,
            "sk-wrong-0123456789",
            "",
            &chat_body(&replay, false)
        ),
        401
    );

    let objects = log_objects(&server, 3);
    let served = access_with(&objects, "/v1/chat/completions", 200);
    assert_eq!(served.len(), 2, "{objects:#?}");
    for (line, stream) in served.iter().zip([false, true]) {
        assert_eq!(line["caller"], "key");
        assert!(line["key_id"].as_i64().is_some(), "{line}");
        assert!(line["request_id"].as_str().unwrap().starts_with("req-"));
        assert_eq!(line["route"], "chat_completions", "{line}");
        assert_eq!(line["dialect"], "openai");
        assert_eq!(line["stream"], stream);
        assert_eq!(line["provider"], "openai");
        let asked = chat_body(&replay, stream)["model"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(line["model_requested"], asked);
        assert_eq!(format!("openai/{}", line["model"].as_str().unwrap()), asked);
        assert!(line["tokens_in"].as_u64().unwrap() > 0, "{line}");
        assert!(line["tokens_out"].as_u64().unwrap() > 0, "{line}");
        assert!(line["cost_usd"].as_f64().unwrap() > 0.0, "{line}");
        let latency = line["latency_ms"].as_f64().unwrap();
        let ttft = line["ttft_ms"].as_f64().unwrap();
        assert!(0.0 <= ttft && ttft <= latency, "{line}");
        assert_eq!(line["app_referer"], "https://app.example/");
        assert_eq!(line["app_title"], "Log Test");
        assert_eq!(line["attempts"], 1);
        assert_eq!(line["fallbacks"], 0);
    }
    let refused = access_with(&objects, "/v1/chat/completions", 401);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["caller"], "anonymous");
    assert_eq!(refused[0]["key_id"], Value::Null);
    // Other messages (start-up) are objects too.
    assert!(objects.iter().any(|o| o["type"] == "log"));
    let text = server.stderr();
    for secret in [secret.as_str(), MASTER_KEY, "sk-provider-secret-abc"] {
        assert!(!text.contains(secret), "a key is in the log");
    }
}

#[test]
fn a_fallback_is_logged_with_the_failed_attempts_cause() {
    let (replay, server) = setup();
    let mut body = chat_body(&replay, false);
    let asked = body["model"].as_str().unwrap().replace("openai/", "dead/");
    body["models"] = json!([asked.clone(), body["model"].clone()]);
    body["model"] = json!(asked);
    assert_eq!(post(&server, MASTER_KEY, "", &body), 200);
    let objects = log_objects(&server, 1);
    let lines = access_with(&objects, "/v1/chat/completions", 200);
    let line = lines.first().unwrap_or_else(|| panic!("{objects:#?}"));
    assert_eq!(line["caller"], "master");
    assert_eq!(line["model_requested"], asked);
    assert_eq!(line["provider"], "openai");
    assert_eq!(line["attempts"], 2);
    assert_eq!(line["fallbacks"], 1);
    assert_eq!(
        line["failures"],
        json!([{"provider": "dead", "cause": "connect_refused"}])
    );
}

#[test]
fn traceparent_reaches_the_provider_and_a_malformed_one_does_not() {
    let (replay, server) = setup();
    let body = chat_body(&replay, false);
    let header = format!("traceparent: {TRACEPARENT}\r\n");
    assert_eq!(post(&server, MASTER_KEY, &header, &body), 200);
    let malformed = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-zz-01\r\n";
    assert_eq!(post(&server, MASTER_KEY, malformed, &body), 200);
    assert_eq!(post(&server, MASTER_KEY, "", &body), 200);
    let seen: Vec<Option<String>> = replay
        .requests()
        .iter()
        .map(|r| r.headers.get("traceparent").cloned())
        .collect();
    assert_eq!(seen, [Some(TRACEPARENT.to_string()), None, None]);
    // The provider proxy forwards the client's headers: a valid one
    // passes, a malformed one is dropped there too.
    replay.clear_requests();
    let mut body = body;
    let native = body["model"].as_str().unwrap().replace("openai/", "");
    body["model"] = json!(native);
    for (extra, expected) in [(header.as_str(), Some(TRACEPARENT)), (malformed, None)] {
        let auth = format!("Authorization: Bearer {MASTER_KEY}\r\n{extra}");
        let r = server.post_json("/openai/v1/chat/completions", &auth, &body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let last = replay
            .requests()
            .pop()
            .expect("the proxy reached the provider");
        assert_eq!(
            last.headers.get("traceparent").map(String::as_str),
            expected
        );
    }
}
