//! `Exchange` end to end without sockets: non-stream calls, routing,
//! fallback, admission and client aborts, driven by the scenario harness
//! over the recorded OpenAI transcripts.

mod support;

use arouter_core::exchange::{Admission, ConnectError, Event, Input, Rejection};
use arouter_core::usage::Usage;
use arouter_core::Tick;
use serde_json::{json, Value};
use support::*;

const FINISH_REASONS: [&str; 5] = ["stop", "length", "tool_calls", "content_filter", "error"];

fn usage_of(v: &Value) -> Usage {
    Usage::from_openai(v).expect("usage object")
}

/// The upstream request carries the provider's key, never the client's,
/// and none of the gateway's routing fields.
fn assert_clean_upstream(req: &UpRequest, path: &str, host: &str, key: &str) {
    assert_eq!(req.head.method, http::Method::POST);
    assert_eq!(req.head.target, path);
    assert_eq!(req.header("host"), Some(host));
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    assert!(
        !contains(&req.raw, CLIENT_KEY.as_bytes()),
        "client key leaked upstream"
    );
    for field in ["models", "route"] {
        assert!(req.body.get(field).is_none(), "`{field}` sent upstream");
    }
}

#[test]
fn every_nonstream_chat_transcript() {
    let all = transcripts(|t| is_chat(t) && !is_stream(t) && status_of(t) == 200);
    assert!(all.len() >= 7, "expected the recorded chat transcripts");
    for (name, t) in all {
        let recorded_req = &t["request"]["body"];
        let model = recorded_req["model"].as_str().unwrap();
        let mut s = Scenario::builder()
            .price("openai", model, TEST_PRICE)
            .build();
        s.chat(&client_body(&t));

        assert_eq!(s.admits.len(), 1, "{name}");
        assert_eq!(s.admits[0].secret, CLIENT_KEY, "{name}");
        assert_eq!(s.connects(), vec![(0, false)], "{name}");
        let up = s.upstream_request(0);
        assert_clean_upstream(&up, "/v1/chat/completions", "127.0.0.1:1", UPSTREAM_KEY);
        assert_eq!(up.body["model"], model, "{name}: prefix stripped");
        // Everything else the client sent reaches the provider unchanged.
        for (k, v) in recorded_req.as_object().unwrap() {
            if k != "model" {
                assert_eq!(&up.body[k], v, "{name}: field {k}");
            }
        }

        s.upstream(&transcript_response(&t));
        let r = s.response();
        assert_eq!(r.status, 200, "{name}");
        assert!(r.complete);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
        assert!(r.keep_alive(), "{name}: connection reusable");
        let body = r.json();
        let recorded = &t["response"]["body"];
        let served = recorded["model"].as_str().unwrap();
        assert_eq!(body["model"], format!("openai/{served}"), "{name}");
        let mut usage = body["usage"].clone();
        take_cost(&mut usage, &s.usage_event(), &name);
        let choices = body["choices"].as_array().unwrap();
        let recorded_choices = recorded["choices"].as_array().unwrap();
        assert_eq!(choices.len(), recorded_choices.len());
        for (c, rc) in choices.iter().zip(recorded_choices) {
            let reason = c["finish_reason"].as_str().unwrap();
            assert!(FINISH_REASONS.contains(&reason), "{name}: {reason}");
            assert!(c.get("native_finish_reason").is_some(), "{name}");
            assert_eq!(c["native_finish_reason"], rc["finish_reason"], "{name}");
            assert_eq!(c["message"], rc["message"], "{name}: same message");
        }
        assert_eq!(usage, recorded["usage"], "{name}");

        let usage = s.usage_event();
        assert_eq!(usage.provider, "openai");
        assert_eq!(usage.model, model);
        assert_eq!(usage.key_id, Some(1));
        assert!(usage.complete);
        let u = usage.usage.expect("usage");
        assert_eq!(u, usage_of(&recorded["usage"]), "{name}");
        assert_eq!(
            u.prompt_tokens,
            recorded["usage"]["prompt_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            u.completion_tokens,
            recorded["usage"]["completion_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            s.releases(),
            vec![true],
            "{name}: upstream back to the pool"
        );
        assert_eq!(s.access_statuses(), vec![200]);
        assert!(!s.closed, "{name}: client connection kept");
        // Idle again: the keep-alive deadline is armed.
        assert_eq!(
            s.deadline,
            Some(s.now.after(s.gateway.limits().idle_timeout_ms))
        );
        insta::with_settings!({snapshot_suffix => name.clone()}, {
            insta::assert_json_snapshot!(body);
        });
    }
}

#[test]
fn keep_alive_serves_a_second_request_on_the_same_connection() {
    let mut s = Scenario::new();
    let t = transcript("chat_nonstream_instructions");
    for round in 0..2 {
        s.chat(&client_body(&t));
        s.upstream(&transcript_response(&t));
        assert_eq!(s.responses().len(), round + 1);
    }
    let rs = s.responses();
    assert!(rs.iter().all(|r| r.status == 200 && r.complete));
    assert_eq!(rs[0].body, rs[1].body);
    assert_eq!(s.connects(), vec![(0, false), (0, false)]);
    assert_eq!(s.releases(), vec![true, true]);
    assert_eq!(s.usage_events().len(), 2);
    assert!(!s.closed);
}

#[test]
fn embeddings_transcripts() {
    let all = transcripts(|t| t["request"]["path"] == "/v1/embeddings" && status_of(t) == 200);
    assert_eq!(all.len(), 2);
    for (name, t) in all {
        let model = t["request"]["body"]["model"].as_str().unwrap();
        let mut s = Scenario::builder()
            .price("openai", model, TEST_PRICE)
            .build();
        s.send(&post("/v1/embeddings", &client_body(&t)));
        let up = s.upstream_request(0);
        assert_clean_upstream(&up, "/v1/embeddings", "127.0.0.1:1", UPSTREAM_KEY);
        assert_eq!(up.body["model"], model);
        assert_eq!(up.body["input"], t["request"]["body"]["input"]);
        assert!(up.body.get("stream_options").is_none());

        s.upstream(&transcript_response(&t));
        let r = s.response();
        assert_eq!(r.status, 200, "{name}");
        assert!(r.keep_alive());
        let body = r.json();
        let recorded = &t["response"]["body"];
        assert!(body["model"].as_str().unwrap().starts_with("openai/"));
        let mut usage = body["usage"].clone();
        take_cost(&mut usage, &s.usage_event(), &name);
        assert_eq!(body["data"], recorded["data"], "{name}: embeddings intact");
        assert_eq!(usage, recorded["usage"]);
        let usage = s.usage_event();
        assert!(usage.complete);
        assert_eq!(
            usage.usage.unwrap().prompt_tokens,
            recorded["usage"]["prompt_tokens"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(usage.usage.unwrap().completion_tokens, 0);
        assert_eq!(s.releases(), vec![true]);
        assert!(!s.closed);
    }
}

#[test]
fn upstream_errors_are_relayed() {
    let all = transcripts(|t| matches!(status_of(t), 400 | 404));
    assert_eq!(all.len(), 4);
    for (name, t) in all {
        let mut s = Scenario::new();
        let path = t["request"]["path"].as_str().unwrap();
        s.send(&post(path, &client_body(&t)));
        let upstream = transcript_response(&t);
        s.upstream(&upstream);
        let r = s.response();
        let status = status_of(&t) as u16;
        assert_eq!(r.status, status, "{name}");
        let recorded = serde_json::to_vec(&t["response"]["body"]).unwrap();
        assert_eq!(r.body, recorded, "{name}: body relayed as sent");
        assert_eq!(
            r.header("content-type"),
            t["response"]["headers"]["content-type"].as_str()
        );
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
        assert!(r.keep_alive());
        assert_eq!(s.connects(), vec![(0, false)], "{name}: not retried");
        assert_eq!(s.releases(), vec![true]);
        assert_eq!(s.access_statuses(), vec![status]);
        let usage = s.usage_event();
        assert_eq!(usage.usage, None);
    }
}

// ---------------------------------------------------------------- fallback

fn fallback_body() -> Value {
    json!({
        "models": ["openai/a", "backup/b"],
        "messages": [{"role": "user", "content": "hi"}],
    })
}

/// The backup's answer reached the client.
fn assert_backup_answered(s: &Scenario) {
    assert_backup_answered_after(s, 0);
}

/// The backup answered after `cut` earlier attempts whose whole answers
/// broke off: each of those is billed as the gateway's estimate.
fn assert_backup_answered_after(s: &Scenario, cut: usize) {
    let connects = s.connects();
    assert_eq!(connects.last(), Some(&(1, false)), "backup asked");
    let up = s.upstream_request(s.uploads.len() - 1);
    assert_clean_upstream(&up, "/v1/chat/completions", BACKUP_HOST, BACKUP_KEY);
    assert_eq!(up.body["model"], "b");
    let r = s.response();
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["model"], "backup/b-2025");
    assert_eq!(body["choices"][0]["message"]["content"], "from backup");
    let mut records = s.usage_events();
    assert_eq!(records.len(), cut + 1, "{records:?}");
    let usage = records.pop().expect("the backup's usage");
    for lost in &records {
        assert!(lost.estimated && !lost.complete, "{lost:?}");
    }
    assert_eq!(
        (usage.provider.as_str(), usage.model.as_str()),
        ("backup", "b")
    );
    assert!(usage.complete);
    assert_eq!(s.access_statuses(), vec![200]);
}

fn answer_backup(s: &mut Scenario) {
    s.upstream(&json_response(
        200,
        &completion("b-2025", "from backup"),
        &[],
    ));
}

fn fallback_scenario() -> Scenario {
    let mut s = Scenario::builder().backup().build();
    s.chat(&fallback_body());
    s
}

#[test]
fn fallback_on_connect_refused() {
    let mut s = Scenario::builder().backup().build();
    s.connects
        .push_back(ConnectAnswer::Failed(ConnectError::Refused));
    s.chat(&fallback_body());
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    assert_eq!(s.uploads.len(), 1, "only the backup got a request");
    answer_backup(&mut s);
    assert_backup_answered(&s);
}

#[test]
fn fallback_on_upstream_429_and_500() {
    for status in [429u16, 500, 503, 408] {
        let mut s = fallback_scenario();
        let up = s.upstream_request(0);
        assert_clean_upstream(&up, "/v1/chat/completions", "127.0.0.1:1", UPSTREAM_KEY);
        assert_eq!(up.body["model"], "a");
        s.upstream(&json_response(
            status,
            &json!({"error": {"message": "busy"}}),
            &[("Retry-After", "1")],
        ));
        assert_eq!(s.connects(), vec![(0, false), (1, false)], "{status}");
        // The failed connection is closed, not pooled mid-body.
        assert_eq!(s.releases(), vec![false]);
        answer_backup(&mut s);
        assert_backup_answered(&s);
        assert_eq!(s.releases(), vec![false, true]);
    }
}

#[test]
fn fallback_on_upstream_429_split_across_reads() {
    // The old response's remaining bytes never reach the new attempt.
    let mut s = fallback_scenario();
    let resp = json_response(429, &json!({"error": {"message": "busy"}}), &[]);
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    s.upstream(&resp[..head_end]);
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    answer_backup(&mut s);
    assert_backup_answered(&s);
}

#[test]
fn fallback_on_first_byte_timeout() {
    let mut s = fallback_scenario();
    let sent_at = s.now;
    let limit = s.gateway.limits().upstream_first_byte_timeout_ms;
    assert_eq!(s.deadline, Some(sent_at.after(limit)));
    // An early timer does nothing.
    s.advance_and_tick(limit - 1);
    assert_eq!(s.connects(), vec![(0, false)]);
    assert!(s.down.is_empty());
    s.fire_deadline();
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    assert_eq!(s.releases(), vec![false]);
    answer_backup(&mut s);
    assert_backup_answered(&s);
}

#[test]
fn fallback_when_upstream_closes_before_answering() {
    let mut s = fallback_scenario();
    s.upstream_eof();
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    answer_backup(&mut s);
    assert_backup_answered(&s);
}

#[test]
fn all_candidates_failing_gives_the_last_failure() {
    let mut s = fallback_scenario();
    s.upstream(&json_response(
        429,
        &json!({"error": {"message": "first busy"}}),
        &[("Retry-After", "1")],
    ));
    let last = json!({"error": {"message": "second busy", "type": "rate_limit"}});
    s.upstream(&json_response(429, &last, &[("Retry-After", "7")]));
    let r = s.response();
    assert_eq!(r.status, 429);
    assert_eq!(r.json(), last);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    let usage = s.usage_event();
    assert_eq!(usage.provider, "backup");
    assert_eq!(usage.usage, None);
    assert_eq!(s.access_statuses(), vec![429]);
}

#[test]
fn all_candidates_failing_to_connect_gives_the_last_error() {
    let mut s = Scenario::builder().backup().build();
    s.connects
        .push_back(ConnectAnswer::Failed(ConnectError::Refused));
    s.connects
        .push_back(ConnectAnswer::Failed(ConnectError::Timeout));
    s.chat(&fallback_body());
    let r = s.response();
    // The last failure was the connect timeout.
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "upstream_unavailable");
    assert!(r.keep_alive());
    assert!(s.uploads.is_empty());
    assert!(!s.closed);
}

#[test]
fn upstream_400_is_not_retried() {
    let mut s = fallback_scenario();
    let err = json!({"error": {"message": "bad", "type": "invalid_request_error"}});
    s.upstream(&json_response(400, &err, &[]));
    assert_eq!(s.connects(), vec![(0, false)]);
    let r = s.response();
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), err);
    assert_eq!(s.releases(), vec![true]);
}

#[test]
fn stale_pooled_connection_is_retried_once_fresh() {
    let mut s = Scenario::new();
    s.connects
        .push_back(ConnectAnswer::Connected { reused: true });
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    s.upstream_eof();
    assert_eq!(s.connects(), vec![(0, false), (0, true)]);
    assert_eq!(s.releases(), vec![false]);
    assert_eq!(s.uploads.len(), 2);
    assert_eq!(s.uploads[0], s.uploads[1], "same request again");
    assert!(s.down.is_empty(), "nothing reached the client");
    s.upstream(&json_response(200, &completion("gpt-4o-mini", "ok"), &[]));
    let r = s.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["model"], "openai/gpt-4o-mini");
}

#[test]
fn stale_retry_happens_only_once() {
    let mut s = Scenario::new();
    s.connects
        .push_back(ConnectAnswer::Connected { reused: true });
    s.connects
        .push_back(ConnectAnswer::Connected { reused: true });
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    s.upstream_eof();
    s.upstream_eof();
    assert_eq!(s.connects(), vec![(0, false), (0, true)]);
    let r = s.response();
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["code"], "upstream_error");
}

#[test]
fn fresh_connection_closing_is_not_a_stale_retry() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    s.upstream_eof();
    assert_eq!(s.connects(), vec![(0, false)]);
    assert_eq!(s.response().status, 502);
}

// ----------------------------------------------------------------- routing

fn error_of(s: &Scenario) -> (u16, Value) {
    let r = s.response();
    let body = r.json();
    assert!(body["error"]["message"].is_string(), "OpenAI error shape");
    assert!(body["error"]["type"].is_string());
    (r.status, body)
}

#[test]
fn a_model_no_configured_provider_serves_is_404() {
    // Like the providers themselves (OpenAI `model_not_found`, Anthropic
    // `not_found_error`, Gemini `NOT_FOUND`): the request is well formed,
    // the model it names is not here.
    let mut s = Scenario::new();
    s.chat(&chat_body("nope/gpt-4o", false));
    let (status, body) = error_of(&s);
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unknown_provider");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
    assert!(s.connects().is_empty());
    assert_eq!(s.response().header("x-ratelimit-limit"), Some("10"));
    assert!(s.usage_events().is_empty());
}

#[test]
fn no_model_and_no_default_is_400() {
    let mut s = Scenario::new();
    s.chat(&json!({"messages": [{"role": "user", "content": "hi"}]}));
    let (status, body) = error_of(&s);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "model_required");
    assert!(s.connects().is_empty());
}

#[test]
fn default_model_when_model_is_omitted() {
    let mut s = Scenario::builder()
        .default_model("openai/gpt-4o-mini")
        .build();
    s.chat(&json!({"messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(s.connects(), vec![(0, false)]);
    assert_eq!(s.upstream_request(0).body["model"], "gpt-4o-mini");
    s.upstream(&json_response(200, &completion("gpt-4o-mini", "ok"), &[]));
    assert_eq!(s.response().json()["model"], "openai/gpt-4o-mini");
}

#[test]
fn invalid_requests_are_400_with_a_clear_message() {
    let cases: Vec<(&[u8], &str)> = vec![
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1,2]", "JSON object"),
        (br#"{"model":"openai/x"}"#, "`messages` is required"),
        (
            br#"{"model":"openai/x","messages":[]}"#,
            "must not be empty",
        ),
        (
            br#"{"model":"openai/x","messages":"hi"}"#,
            "must be an array",
        ),
        (
            br#"{"model":"openai/x","messages":[{"role":"robot","content":"hi"}]}"#,
            "messages[0].role",
        ),
        (
            br#"{"model":"openai/x","messages":[{"role":"user"}],"stream":"yes"}"#,
            "`stream` must be a boolean",
        ),
        (
            br#"{"model":3,"messages":[{"role":"user"}]}"#,
            "`model` must be a string",
        ),
        (
            br#"{"models":"openai/x","messages":[{"role":"user"}]}"#,
            "`models` must be an array",
        ),
    ];
    for (body, needle) in cases {
        let mut s = Scenario::new();
        s.send(&post_raw("/v1/chat/completions", body));
        let (status, err) = error_of(&s);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{:?}: {message}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert!(s.connects().is_empty());
        // The body was read whole: the connection stays usable.
        assert!(!s.closed);
        assert!(s.response().keep_alive());
    }
}

// -------------------------------------------------------------- admission

#[test]
fn rate_limit_headers_on_nonstream_and_stream() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    s.upstream(&json_response(200, &completion("gpt-4o-mini", "ok"), &[]));
    assert_eq!(s.response().header("x-ratelimit-limit"), Some("10"));

    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-4o-mini", true));
    s.upstream(&sse_response(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
    ));
    let r = s.response();
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
}

#[test]
fn rate_limited_key_gets_429_with_retry_after() {
    let mut s = Scenario::new();
    s.admit = AdmitScript::Reject(
        Rejection::RateLimited,
        vec![
            ("Retry-After", "3".into()),
            ("X-RateLimit-Remaining", "0".into()),
        ],
    );
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    let (status, body) = error_of(&s);
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limited");
    let r = s.response();
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert!(s.connects().is_empty());
    assert!(s.usage_events().is_empty());
    assert_eq!(s.access_statuses(), vec![429]);
}

#[test]
fn invalid_key_gets_401_before_routing() {
    let mut s = Scenario::new();
    s.admit = AdmitScript::Reject(Rejection::InvalidKey, vec![]);
    s.chat(&chat_body("nope/x", false));
    let (status, body) = error_of(&s);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
}

#[test]
fn nothing_goes_upstream_before_admission() {
    let mut s = Scenario::new();
    s.admit = AdmitScript::Hold;
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    assert_eq!(s.admits.len(), 1);
    assert!(s.connects().is_empty());
    s.input(Input::Admission(
        s.now,
        Admission::Allowed {
            key_id: Some(9),
            headers: vec![],
            models: None,
            metered: false,
        },
    ));
    assert_eq!(s.connects(), vec![(0, false)]);
    s.upstream(&json_response(200, &completion("m", "ok"), &[]));
    assert_eq!(s.usage_event().key_id, Some(9));
}

// ------------------------------------------------------------ client gone

#[test]
fn client_gone_while_waiting_for_upstream() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    assert!(s.upstream_open);
    s.client_eof();
    assert_eq!(s.releases(), vec![false], "upstream aborted at once");
    assert!(!s.upstream_open);
    let usage = s.usage_event();
    assert!(!usage.complete);
    // The provider already has the prompt: it is billed, as the gateway's
    // own count, with no output.
    assert!(usage.estimated);
    let tokens = usage.usage.expect("the prompt is billed");
    assert!(tokens.prompt_tokens > 0);
    assert_eq!(tokens.completion_tokens, 0);
    assert_eq!(usage.provider, "openai");
    assert!(s.closed);
    assert!(s.down.is_empty(), "nothing written to a gone client");
    assert_eq!(s.log.last(), Some(&Rec::Close));
    assert_eq!(s.access_statuses(), vec![499]);
    // The access log and usage event come before Close.
    let release = s.position(|r| matches!(r, Rec::Release { .. })).unwrap();
    let usage_at = s
        .position(|r| matches!(r, Rec::Event(Event::Usage(_))))
        .unwrap();
    assert!(release < usage_at);
}

#[test]
fn client_gone_mid_body_of_a_buffered_answer() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    let resp = json_response(200, &completion("gpt-4o-mini", "ok"), &[]);
    s.upstream(&resp[..resp.len() - 10]);
    s.client_eof();
    assert_eq!(s.releases(), vec![false]);
    assert!(!s.usage_event().complete);
    assert!(s.closed);
}

// ------------------------------------------------- connection management

#[test]
fn client_connection_close_is_honoured() {
    let mut s = Scenario::new();
    let mut req = post("/v1/chat/completions", &chat_body("openai/m", false));
    let at = contains_at(&req, b"Content-Type");
    req.splice(at..at, b"Connection: close\r\n".iter().copied());
    s.send(&req);
    s.upstream(&json_response(200, &completion("m", "ok"), &[]));
    let r = s.response();
    assert_eq!(r.status, 200);
    assert!(!r.keep_alive());
    assert!(s.closed);
    // The upstream connection is still fine for the pool.
    assert_eq!(s.releases(), vec![true]);
}

fn contains_at(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle")
}

#[test]
fn upstream_connection_close_is_not_pooled() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/m", false));
    s.upstream(&json_response(
        200,
        &completion("m", "ok"),
        &[("Connection", "close")],
    ));
    assert_eq!(s.response().status, 200);
    assert_eq!(s.releases(), vec![false]);
    assert!(!s.closed, "the client connection is unaffected");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut s = Scenario::new();
    let mut bytes = post("/v1/chat/completions", &chat_body("openai/one", false));
    bytes.extend(post(
        "/v1/chat/completions",
        &chat_body("openai/two", false),
    ));
    s.send(&bytes);
    assert_eq!(s.connects().len(), 1, "one call at a time");
    assert_eq!(s.upstream_request(0).body["model"], "one");
    s.upstream(&json_response(200, &completion("one", "1"), &[]));
    assert_eq!(s.connects().len(), 2);
    assert_eq!(s.upstream_request(1).body["model"], "two");
    s.upstream(&json_response(200, &completion("two", "2"), &[]));
    let rs = s.responses();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].json()["model"], "openai/one");
    assert_eq!(rs[1].json()["model"], "openai/two");
}

#[test]
fn drain_during_a_call_finishes_it_then_closes() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/m", false));
    s.input(Input::Drain(s.now));
    assert!(!s.closed);
    s.upstream(&json_response(200, &completion("m", "ok"), &[]));
    let r = s.response();
    assert_eq!(r.status, 200);
    assert!(!r.keep_alive(), "no keep-alive while draining");
    assert!(s.closed);
}

#[test]
fn invalid_json_from_the_provider_is_502() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/m", false));
    s.upstream(&http_response(
        200,
        "application/json",
        &[],
        b"<html>oops</html>",
    ));
    let r = s.response();
    assert_eq!(r.status, 502);
    assert!(r.json()["error"]["message"].is_string());
}

#[test]
fn oversized_provider_answer_is_502() {
    let mut s = Scenario::builder()
        .limits(|l| l.max_upstream_body_bytes = 64)
        .build();
    s.chat(&chat_body("openai/m", false));
    s.upstream(&json_response(200, &completion("m", &"x".repeat(200)), &[]));
    assert_eq!(s.response().status, 502);
    assert_eq!(s.releases(), vec![false]);
}

#[test]
fn fallback_when_a_buffered_answer_is_cut_off() {
    // Nothing reached the client yet, so the next candidate is tried.
    let mut s = fallback_scenario();
    let resp = json_response(200, &completion("a", "partial"), &[]);
    s.upstream(&resp[..resp.len() - 5]);
    s.upstream_eof();
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    answer_backup(&mut s);
    assert_backup_answered_after(&s, 1);
}

#[test]
fn fallback_when_a_buffered_answer_stalls() {
    let mut s = fallback_scenario();
    let resp = json_response(200, &completion("a", "partial"), &[]);
    s.upstream(&resp[..resp.len() - 5]);
    let at = s.fire_deadline();
    assert_eq!(
        at,
        Tick::from_millis(1_000).after(s.gateway.limits().upstream_idle_timeout_ms)
    );
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    answer_backup(&mut s);
    assert_backup_answered_after(&s, 1);
}

#[test]
fn cut_off_answer_without_fallback_is_502() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/m", false));
    let resp = json_response(200, &completion("m", "partial"), &[]);
    s.upstream(&resp[..resp.len() - 5]);
    s.upstream_eof();
    let r = s.response();
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["code"], "upstream_error");
    assert_eq!(s.releases(), vec![false]);
}

#[test]
fn too_many_models_is_400() {
    let mut s = Scenario::builder().backup().build();
    let models: Vec<String> = (0..9).map(|i| format!("openai/m{i}")).collect();
    s.chat(&json!({"models": models, "messages": [{"role": "user", "content": "hi"}]}));
    let (status, body) = error_of(&s);
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 8"));
    assert!(s.connects().is_empty());
}

#[test]
fn a_huge_models_list_is_rejected_without_quadratic_work() {
    // Distinct candidates are de-duplicated; checking the bound only after
    // all of them were collected made this O(n²) in the client's input.
    let models: Vec<String> = (0..60_000).map(|i| format!("openai/m{i}")).collect();
    let started = std::time::Instant::now();
    let mut s = Scenario::new();
    s.chat(&json!({"models": models, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(error_of(&s).0, 400);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_model_name_cannot_inject_into_the_upstream_request() {
    for model in [
        "openai/x\r\nX-Injected: 1",
        "openai/x/../../files",
        "openai/x y",
    ] {
        let mut s = Scenario::new();
        s.chat(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
        let r = s.response();
        assert_eq!(r.status, 400, "{model:?}");
        assert_eq!(r.json()["error"]["code"], "invalid_model");
        assert!(
            s.connects().is_empty(),
            "nothing may go upstream for {model:?}"
        );
    }
}

#[test]
fn thousands_of_pipelined_requests_are_answered_without_deep_recursion() {
    // Each pipelined request already in the buffer used to add a level of
    // recursion (respond -> next request -> drive -> respond ...).
    let mut s = Scenario::new();
    let one = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * 3000).collect();
    let mut offered = 0;
    while offered < many.len() {
        let taken = s.input(Input::Downstream(s.now, &many[offered..]));
        assert!(taken > 0, "the core stopped taking bytes at {offered}");
        offered += taken;
    }
    assert_eq!(s.responses().len(), 3000);
    assert!(s.responses().iter().all(|r| r.status == 200));
}

#[test]
fn a_rejected_request_does_not_stall_the_pipelined_ones_behind_it() {
    let mut s = Scenario::new();
    s.admit = AdmitScript::Reject(Rejection::RateLimited, vec![("Retry-After", "1".into())]);
    s.send(b"GET /v1/models HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer k\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let statuses: Vec<u16> = s.responses().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[test]
fn a_stray_crlf_after_a_request_does_not_earn_a_408() {
    let mut s = Scenario::new();
    s.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n\r\n");
    assert_eq!(s.responses().len(), 1);
    let before = s.down.len();
    s.fire_deadline();
    assert_eq!(
        s.down.len(),
        before,
        "no unsolicited answer: {:?}",
        String::from_utf8_lossy(&s.down[before..])
    );
    assert!(s.log.iter().any(|r| matches!(r, Rec::Close)));
}

#[test]
fn a_provider_refusing_the_gateway_key_is_a_502_not_the_clients_401() {
    let mut s = Scenario::new();
    s.chat(
        &json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    );
    let refusal = json!({"error": {"message": "Incorrect API key provided: sk-up****tream.", "type": "invalid_request_error", "code": "invalid_api_key"}});
    s.upstream(&json_response(401, &refusal, &[]));
    let r = s.response();
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["code"], "upstream_auth_failed");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("sk-up"),
        "provider text relayed"
    );
}

#[test]
fn a_call_that_never_reached_a_provider_bills_nothing() {
    let mut s = Scenario::new();
    s.connects = [ConnectAnswer::Failed(ConnectError::Refused)].into();
    s.chat(
        &json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(s.response().status, 502);
    assert!(s.usage_events().is_empty(), "{:?}", s.usage_events());
}

#[test]
fn a_public_request_announcing_a_body_is_answered_at_the_head() {
    // Without a key, nobody may make the server hold a body (up to 32 MiB).
    let mut s = Scenario::new();
    s.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 30000000\r\n\r\n");
    let r = s.response();
    assert_eq!(r.status, 200);
    assert!(
        s.log.iter().any(|r| matches!(r, Rec::Close)),
        "closed: the body is unread"
    );
}

#[test]
fn debug_output_of_an_exchange_holds_no_credentials() {
    let mut s = Scenario::new();
    s.admit = AdmitScript::Hold;
    s.send(
        b"GET /v1/models HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-client-secret-key\r\n\r\n",
    );
    let text = format!("{:?}", s.ex);
    assert!(!text.contains("sk-client-secret-key"), "{text}");
    assert!(text.contains("request"), "{text}");
}

#[test]
fn embeddings_for_a_model_of_a_provider_without_them_is_404() {
    // As OpenAI answers a chat model on /v1/embeddings: well formed, but
    // there is no embedding model of that name here. Nothing goes upstream.
    let mut s = Scenario::builder().anthropic_first().build();
    s.send(&post(
        "/v1/embeddings",
        &json!({"model": "anthropic/claude-opus-4-6", "input": "hi"}),
    ));
    let (status, body) = error_of(&s);
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unsupported_provider");
    assert!(s.connects().is_empty());
}
