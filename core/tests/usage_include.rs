//! OpenRouter's `"usage": {"include": true}` (its AI SDK provider sends it
//! instead of `stream_options`) and the gateway's `always_include_usage`
//! (for clients such as LangChain's `ChatOpenAI`, which ask for neither):
//! an OpenAI-dialect stream then ends with the one usage chunk, priced in
//! `usage.cost`; the field itself never goes upstream.

mod support;

use serde_json::{json, Value};
use support::*;

/// The recorded gpt-5 stream (its usage chunk included), with the client's
/// `stream_options` replaced by `usage`.
fn recorded_stream() -> (Value, Value) {
    let t = transcript("chat_stream_text_moderation_include_usage");
    let mut body = client_body(&t);
    if let Some(obj) = body.as_object_mut() {
        obj.remove("stream_options");
    }
    (t, body)
}

fn priced_openai() -> Builder {
    Scenario::builder().price("openai", "gpt-5", TEST_PRICE)
}

/// The client's chunks (JSON, `[DONE]` left out) and the one with usage.
fn usage_chunks(r: &Resp) -> Vec<Value> {
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    data.iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).expect("json chunk"))
        .filter(|c| c["usage"].is_object())
        .collect()
}

#[test]
fn usage_include_true_ends_a_native_stream_with_the_priced_usage_chunk() {
    let (t, mut body) = recorded_stream();
    body["usage"] = json!({"include": true});
    let mut s = priced_openai().build();
    s.chat(&body);
    s.upstream(&transcript_response(&t));
    let up = s.upstream_request(0);
    assert!(
        up.body.get("usage").is_none(),
        "never forwarded: {}",
        up.body
    );
    assert_eq!(up.body["stream_options"], json!({"include_usage": true}));
    let r = s.response();
    let chunks = usage_chunks(&r);
    assert_eq!(chunks.len(), 1, "one usage chunk");
    let mut usage = chunks[0]["usage"].clone();
    take_cost(&mut usage, &s.usage_event(), "usage.include");
    insta::assert_json_snapshot!("usage_include_native_usage_chunk", chunks[0]);
}

#[test]
fn without_usage_include_the_stream_has_no_usage_chunk() {
    for usage in [None, Some(json!({"include": false})), Some(json!({}))] {
        let (t, mut body) = recorded_stream();
        if let Some(usage) = &usage {
            body["usage"] = usage.clone();
        }
        let mut s = priced_openai().build();
        s.chat(&body);
        s.upstream(&transcript_response(&t));
        let r = s.response();
        assert_eq!(r.status, 200, "{usage:?}");
        assert!(usage_chunks(&r).is_empty(), "{usage:?}");
        // Billed all the same, from the usage the gateway asked for.
        assert!(s.usage_event().cost.is_some_and(|c| c.0 > 0), "{usage:?}");
    }
}

#[test]
fn usage_include_ends_a_translated_stream_with_the_priced_usage_chunk() {
    let t = transcript("../anthropic/stream_text_basic");
    let mut s = Scenario::builder()
        .anthropic_first()
        .price("anthropic", "claude-x", TEST_PRICE)
        .build();
    let mut body = chat_body("anthropic/claude-x", true);
    body["usage"] = json!({"include": true});
    s.chat(&body);
    s.upstream(&transcript_response(&t));
    let chunks = usage_chunks(&s.response());
    assert_eq!(chunks.len(), 1, "one usage chunk");
    let mut usage = chunks[0]["usage"].clone();
    take_cost(&mut usage, &s.usage_event(), "translated usage.include");
}

#[test]
fn a_whole_answer_with_usage_include_carries_its_cost() {
    let mut s = priced_openai().build();
    let mut body = chat_body("openai/gpt-5", false);
    body["usage"] = json!({"include": true});
    s.chat(&body);
    s.upstream(&json_response(200, &completion("gpt-5", "hello"), &[]));
    assert!(s.upstream_request(0).body.get("usage").is_none());
    let mut usage = s.response().json()["usage"].clone();
    take_cost(&mut usage, &s.usage_event(), "whole answer");
}

#[test]
fn a_malformed_usage_field_is_a_400() {
    for usage in [json!(true), json!("include"), json!({"include": "yes"})] {
        let mut s = Scenario::new();
        let mut body = chat_body("openai/gpt-5", true);
        body["usage"] = usage.clone();
        s.chat(&body);
        let r = s.response();
        assert_eq!(r.status, 400, "{usage}");
        let message = r.json()["error"]["message"].as_str().map(str::to_owned);
        assert!(
            message.is_some_and(|m| m.contains("usage")),
            "{usage}: {}",
            r.text()
        );
        assert!(s.connects().is_empty());
    }
}

#[test]
fn always_include_usage_ends_every_openai_stream_with_the_usage_chunk() {
    let (t, body) = recorded_stream();
    let mut s = priced_openai().always_include_usage().build();
    s.chat(&body);
    s.upstream(&transcript_response(&t));
    let chunks = usage_chunks(&s.response());
    assert_eq!(chunks.len(), 1, "one usage chunk, unasked");
    let mut usage = chunks[0]["usage"].clone();
    take_cost(&mut usage, &s.usage_event(), "always_include_usage");

    // Translated from another provider's stream too.
    let t = transcript("../anthropic/stream_text_basic");
    let mut s = Scenario::builder()
        .anthropic_first()
        .always_include_usage()
        .build();
    s.chat(&chat_body("anthropic/claude-x", true));
    s.upstream(&transcript_response(&t));
    assert_eq!(usage_chunks(&s.response()).len(), 1);
}
