//! `/v1beta/{provider}/{model}:{method}` through `Exchange`: the path the
//! AI SDK's Google provider writes for `google('openai/gpt-x')` is served
//! as the Gemini call `models/openai/gpt-x:{method}` would be, and the
//! gateway's own errors on it are Google-shaped.

mod support;

use serde_json::{json, Value};
use support::*;

fn gemini_body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
}

#[test]
fn generate_content_under_a_provider_prefix_reaches_that_provider() {
    for path in [
        "/v1beta/openai/gpt-x:generateContent",
        "/v1/openai/gpt-x:generateContent",
    ] {
        let mut s = Scenario::new();
        s.send(&post(path, &gemini_body()));
        s.upstream(&json_response(200, &completion("gpt-x", "hello"), &[]));
        let up = s.upstream_request(0);
        assert_eq!(up.head.path(), "/v1/chat/completions", "{path}");
        assert_eq!(up.body["model"], "gpt-x", "{path}");
        let r = s.response();
        assert_eq!(r.status, 200, "{path}");
        let answer = r.json();
        assert_eq!(
            answer["candidates"][0]["content"]["parts"][0]["text"], "hello",
            "{path}: {answer}"
        );
        assert_eq!(answer["usageMetadata"]["totalTokenCount"], 5, "{path}");
    }
}

#[test]
fn stream_generate_content_under_a_provider_prefix_streams_gemini_events() {
    let mut s = Scenario::new();
    s.send(&post(
        "/v1beta/openai/gpt-x:streamGenerateContent?alt=sse",
        &gemini_body(),
    ));
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hel"}, "finish_reason": null}]});
    let end = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]});
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
        "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
    s.upstream(&sse_response(&format!(
        "data: {chunk}\n\ndata: {end}\n\ndata: {usage}\n\ndata: [DONE]\n\n"
    )));
    let up = s.upstream_request(0);
    assert_eq!(up.body["model"], "gpt-x");
    assert_eq!(up.body["stream"], true);
    let r = s.response();
    assert_eq!(r.status, 200);
    let events: Vec<Value> = r
        .sse_data()
        .iter()
        .map(|d| serde_json::from_str(d).expect("a Gemini event is JSON"))
        .collect();
    let text: String = events
        .iter()
        .filter_map(|e| e["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "hello");
    assert_eq!(
        events
            .last()
            .map(|e| e["usageMetadata"]["totalTokenCount"].clone()),
        Some(json!(5))
    );
}

#[test]
fn the_gateways_own_errors_there_are_google_shaped() {
    // No key: a 401 as Google answers it, under /v1/ as under /v1beta/.
    let body = serde_json::to_vec(&gemini_body()).expect("json");
    let mut s = Scenario::new();
    let mut request = format!(
        "POST /v1/openai/gpt-x:generateContent HTTP/1.1\r\nHost: gateway.test\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    s.send(&request);
    let r = s.response();
    assert_eq!(r.status, 401);
    let err = r.json();
    assert_eq!(err["error"]["status"], "UNAUTHENTICATED", "{err}");
    assert!(s.connects().is_empty());

    // A key the host refuses: the same, under /v1/ (which alone does not
    // say Gemini).
    let mut s = Scenario::new();
    s.admit = AdmitScript::Reject(arouter_core::exchange::Rejection::InvalidKey, Vec::new());
    s.send(&post("/v1/openai/gpt-x:generateContent", &gemini_body()));
    let r = s.response();
    assert_eq!(r.status, 401);
    let err = r.json();
    assert_eq!(err["error"]["status"], "UNAUTHENTICATED", "{err}");
    assert!(s.connects().is_empty());

    // A model the provider prefix leaves empty.
    let mut s = Scenario::new();
    s.send(&post("/v1beta/openai/:generateContent", &gemini_body()));
    let r = s.response();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["status"].is_string(), "{}", r.text());
    assert!(s.connects().is_empty());
}
