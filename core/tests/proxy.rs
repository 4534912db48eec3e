//! The provider proxy through `Exchange`: `/{provider}/{path}` goes to the
//! provider's root with the client's credentials swapped for the
//! provider's, hop-by-hop headers dropped, the body as sent; the answer
//! comes back byte for byte while its usage is read and billed; path
//! escapes are refused before any connect; a metered key reserves what
//! the call can cost, and may not send a model-less body.

mod support;

use arouter_core::billing::MicroUsd;
use arouter_core::exchange::{Outcome, ReserveRequest};
use serde_json::json;
use support::*;

fn request(method: &str, target: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         {extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A chat request to the OpenAI proxy, with no extra headers.
fn send_chat(s: &mut Scenario) {
    s.send(&request(
        "POST",
        "/openai/v1/chat/completions",
        "",
        &chat_body(),
    ));
}

fn chat_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 40,
    }))
    .unwrap()
}

#[test]
fn a_native_call_goes_through_with_the_providers_key_and_comes_back_as_sent() {
    let mut s = Scenario::builder().price("openai", "m", TEST_PRICE).build();
    let body = chat_body();
    s.send(&request(
        "POST",
        "/openai/v1/chat/completions?key=sk-client-0123456789&trace=1",
        &format!(
            "X-Api-Key: {CLIENT_KEY}\r\nx-goog-api-key: {CLIENT_KEY}\r\nConnection: keep-alive, X-Hop\r\n\
             X-Hop: secret\r\nProxy-Authorization: Basic eA==\r\nAccept-Encoding: gzip\r\n\
             Content-Type: application/json\r\nOpenAI-Beta: test\r\n"
        ),
        &body,
    ));
    let up = s.upstream_request(0);
    assert_eq!(up.head.method, http::Method::POST);
    // The provider's base URL is `/v1`: `{path}` carries its own version.
    assert_eq!(up.head.target, "/v1/chat/completions?trace=1");
    assert_eq!(up.header("authorization"), Some("Bearer sk-upstream"));
    for gone in [
        "x-api-key",
        "x-goog-api-key",
        "x-hop",
        "proxy-authorization",
    ] {
        assert_eq!(up.header(gone), None, "{gone}");
    }
    assert_eq!(up.header("accept-encoding"), Some("identity"));
    assert_eq!(up.header("openai-beta"), Some("test"));
    let raw = String::from_utf8_lossy(&up.raw);
    assert!(
        !raw.contains(CLIENT_KEY),
        "the client's key went upstream:\n{raw}"
    );
    assert!(up.raw.ends_with(&body), "the body goes as sent");

    let answer = serde_json::to_vec(&completion("m-2024", "hello")).unwrap();
    s.upstream(&http_response(
        200,
        "application/json",
        &[("x-provider", "1"), ("x-request-id", "req_up")],
        &answer,
    ));
    let resp = s.response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, answer, "relayed byte for byte");
    assert_eq!(resp.header("x-provider"), Some("1"));
    assert_eq!(
        resp.header("content-length"),
        Some(&*answer.len().to_string())
    );
    assert_ne!(resp.header("x-request-id"), Some("req_up"));
    let record = s.usage_event();
    assert_eq!(
        (record.provider.as_str(), record.model.as_str()),
        ("openai", "m")
    );
    let usage = record.usage.expect("usage read on the side");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 2));
    // 3 in at 1 micro-USD, 2 out at 2.
    assert_eq!(record.cost, Some(MicroUsd(7)));
    assert_eq!(record.outcome, Outcome::Complete);
    assert_eq!(record.generation_id.as_deref(), Some("chatcmpl-test"));
    assert!(!s.closed, "the connection is kept");
}

#[test]
fn an_event_stream_is_relayed_as_it_comes_and_billed_from_its_usage() {
    let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\n\
               event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
               event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":6}}\n\n\
               event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let upstream = sse_response(sse);
    for cut in (0..upstream.len()).step_by(37) {
        let mut s = Scenario::builder().anthropic_first().build();
        let body = br#"{"model":"claude-x","max_tokens":9,"stream":true,"messages":[]}"#;
        s.send(&request(
            "POST",
            "/anthropic/v1/messages",
            "x-api-key: sk-client-0123456789\r\nanthropic-version: 2023-06-01\r\n",
            body,
        ));
        let up = s.upstream_request(0);
        assert_eq!(up.head.target, "/v1/messages");
        assert_eq!(up.header("x-api-key"), Some("sk-upstream"));
        assert_eq!(up.header("authorization"), None);
        assert_eq!(up.header("anthropic-version"), Some("2023-06-01"));
        s.upstream_split(&upstream, &[cut]);
        let resp = s.response();
        assert_eq!(resp.status, 200);
        assert!(resp.complete);
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
        assert!(resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")));
        assert_eq!(resp.body, sse.as_bytes(), "cut at {cut}");
        let record = s.usage_event();
        let usage = record.usage.expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (11, 6));
        assert!(record.stream);
        assert_eq!(record.generation_id.as_deref(), Some("msg_1"));
    }
}

#[test]
fn an_answer_without_a_usage_report_is_recorded_as_unrecognized() {
    let mut s = Scenario::new();
    s.send(&request("GET", "/openai/v1/models", "", b""));
    let up = String::from_utf8_lossy(&s.uploads[0]).into_owned();
    assert!(up.starts_with("GET /v1/models HTTP/1.1\r\n"), "{up}");
    assert!(
        !up.contains("Content-Length"),
        "a GET carries no body:\n{up}"
    );
    s.upstream(&json_response(
        200,
        &json!({"object": "list", "data": []}),
        &[],
    ));
    assert_eq!(s.response().status, 200);
    let record = s.usage_event();
    assert_eq!(record.usage, None);
    assert_eq!(record.model, "");
    assert_eq!(record.outcome, Outcome::Unrecognized);
}

#[test]
fn a_provider_refusing_the_gateways_key_is_a_502_not_the_clients_fault() {
    let mut s = Scenario::new();
    send_chat(&mut s);
    s.upstream(&json_response(
        401,
        &json!({"error": {"message": "Incorrect API key provided: sk-up***eam"}}),
        &[],
    ));
    let resp = s.response();
    assert_eq!(resp.status, 502);
    assert!(!String::from_utf8_lossy(&resp.body).contains("sk-up"));
}

#[test]
fn provider_errors_are_relayed_with_their_status() {
    let mut s = Scenario::new();
    send_chat(&mut s);
    let err = json!({"error": {"message": "slow down", "type": "rate_limit"}});
    s.upstream(&json_response(429, &err, &[("retry-after", "3")]));
    let resp = s.response();
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("3"));
    assert_eq!(resp.body, serde_json::to_vec(&err).unwrap());
    assert_eq!(s.usage_event().outcome, Outcome::Error);
}

#[test]
fn path_escapes_are_refused_before_any_connect() {
    for target in [
        "/openai/../admin",
        "/openai/v1/%2e%2e/%2e%2e/etc/passwd",
        "/openai//evil.example/v1",
        "/openai/http:%2F%2Fevil.example/v1",
        "/openai/v1\\..\\x",
        "/openai/user@evil.example/v1",
    ] {
        let mut s = Scenario::new();
        s.send(&request("GET", target, "", b""));
        let resp = s.response();
        assert_eq!(resp.status, 400, "{target}");
        assert!(s.connects().is_empty(), "{target}");
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_proxy_path", "{target}");
    }
    // The provider's dialect: an Anthropic error for the Anthropic proxy.
    let mut s = Scenario::builder().anthropic_first().build();
    s.send(&request("POST", "/anthropic/v1/%2e%2e/x", "", b"{}"));
    let body: serde_json::Value = serde_json::from_slice(&s.response().body).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[test]
fn an_unknown_provider_is_a_404() {
    let mut s = Scenario::new();
    s.send(&request("GET", "/nosuch/v1/models", "", b""));
    assert_eq!(s.response().status, 404);
    assert!(s.connects().is_empty());
}

#[test]
fn a_metered_key_reserves_what_the_call_can_cost() {
    let mut s = Scenario::builder().price("openai", "m", TEST_PRICE).build();
    s.admit = AdmitScript::AllowMetered;
    let body = chat_body();
    s.send(&request("POST", "/openai/v1/chat/completions", "", &body));
    let reserved = s.reserves();
    // The body's bytes bound its prompt (1 micro-USD each), 40 out at 2.
    let max = body.len() as u64 + 40 * 2;
    assert_eq!(
        reserved,
        vec![ReserveRequest {
            key_id: Some(1),
            max: MicroUsd(max)
        }]
    );
}

#[test]
fn a_metered_key_may_not_send_a_body_that_names_no_model() {
    let mut s = Scenario::builder().price("openai", "m", TEST_PRICE).build();
    s.admit = AdmitScript::AllowMetered;
    s.send(&request(
        "POST",
        "/openai/v1/audio/speech",
        "",
        b"{\"input\":\"hi\"}",
    ));
    assert_eq!(s.response().status, 403);
    assert!(s.connects().is_empty());
    // A read names no model and generates nothing: it goes.
    let mut s = Scenario::builder().price("openai", "m", TEST_PRICE).build();
    s.admit = AdmitScript::AllowMetered;
    s.send(&request("GET", "/openai/v1/models", "", b""));
    assert_eq!(s.connects().len(), 1);
}

#[test]
fn a_body_cut_mid_way_closes_the_clients_connection() {
    let mut s = Scenario::new();
    send_chat(&mut s);
    let answer = serde_json::to_vec(&completion("m", "hello")).unwrap();
    let whole = http_response(200, "application/json", &[], &answer);
    s.upstream(&whole[..whole.len() - 10]);
    s.upstream_eof();
    let resp = s.response();
    assert_eq!(resp.status, 200);
    assert!(!resp.complete, "the body never ends");
    assert!(
        s.closed,
        "the connection closes: the body cannot be completed"
    );
}
