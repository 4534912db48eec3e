//! The generation id a usage record carries is the `id` the client saw in
//! its answer, for every path an answer takes: the same-dialect OpenAI
//! path (whole and streamed), a same-dialect relay (Anthropic to
//! Anthropic), a translation (Anthropic to OpenAI, OpenAI to Gemini),
//! whole and streamed; the gateway's own `gen-<request id>` where the
//! provider sent none; none at all for an answer without an id.

mod support;

use serde_json::{json, Value};
use support::*;

fn anthropic_message(id: &str) -> Value {
    json!({"id": id, "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 7}})
}

fn anthropic_stream(id: &str) -> String {
    let start = json!({"type": "message_start", "message": {"id": id, "type": "message",
        "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null,
        "usage": {"input_tokens": 10, "output_tokens": 1}}});
    let block = json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}});
    let text = json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": "Hello"}});
    let stop = json!({"type": "content_block_stop", "index": 0});
    let delta = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 7}});
    let end = json!({"type": "message_stop"});
    format!(
        "event: message_start\ndata: {start}\n\nevent: content_block_start\ndata: {block}\n\n\
         event: content_block_delta\ndata: {text}\n\nevent: content_block_stop\ndata: {stop}\n\n\
         event: message_delta\ndata: {delta}\n\nevent: message_stop\ndata: {end}\n\n"
    )
}

fn anthropic() -> Scenario {
    Scenario::builder().anthropic_first().build()
}

/// The `id` of every data event of a stream (OpenAI chunks) or of its
/// `message_start` (Anthropic).
fn stream_ids(r: &Resp) -> Vec<String> {
    r.sse_data()
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["id"]
                .as_str()
                .or(v["message"]["id"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

fn only_id(ids: Vec<String>) -> String {
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 1, "{ids:?}");
    unique.remove(0)
}

#[test]
fn openai_whole_and_streamed() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-x", false));
    s.upstream(&json_response(200, &completion("gpt-x", "hi"), &[]));
    let shown = s.response().json()["id"].as_str().unwrap().to_string();
    let record = s.usage_event();
    assert_eq!(record.generation_id.as_deref(), Some(shown.as_str()));
    assert_eq!(shown, "chatcmpl-test");
    assert!(!record.stream);

    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-x", true));
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let sse = format!(
        "data: {}\n\ndata: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "hi"}), Value::Null),
        chunk(json!({}), json!("stop")),
    );
    s.upstream(&sse_response(&sse));
    let shown = only_id(stream_ids(&s.response()));
    let record = s.usage_event();
    assert_eq!(record.generation_id, Some(shown));
    assert!(record.stream);
}

#[test]
fn anthropic_relayed_as_sent() {
    let body = json!({"model": "anthropic/claude-x", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]});
    let mut s = anthropic();
    s.send(&post("/v1/messages", &body));
    s.upstream(&json_response(200, &anthropic_message("msg_whole"), &[]));
    assert_eq!(s.response().json()["id"], "msg_whole");
    assert_eq!(s.usage_event().generation_id.as_deref(), Some("msg_whole"));

    let mut s = anthropic();
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    s.send(&post("/v1/messages", &streamed));
    s.upstream(&sse_response(&anthropic_stream("msg_stream")));
    assert_eq!(only_id(stream_ids(&s.response())), "msg_stream");
    let record = s.usage_event();
    assert_eq!(record.generation_id.as_deref(), Some("msg_stream"));
    assert!(record.stream);
}

#[test]
fn translated_ids_take_the_client_dialects_form() {
    let mut s = anthropic();
    s.chat(&chat_body("anthropic/claude-x", false));
    s.upstream(&json_response(200, &anthropic_message("msg_1"), &[]));
    let shown = s.response().json()["id"].as_str().unwrap().to_string();
    assert!(shown.starts_with("chatcmpl-"), "{shown}");
    assert_eq!(s.usage_event().generation_id, Some(shown));

    let mut s = anthropic();
    s.chat(&chat_body("anthropic/claude-x", true));
    s.upstream(&sse_response(&anthropic_stream("msg_2")));
    let shown = only_id(stream_ids(&s.response()));
    assert!(shown.starts_with("chatcmpl-"), "{shown}");
    assert_eq!(s.usage_event().generation_id, Some(shown));

    // An OpenAI provider answering a Gemini client: its `responseId`.
    let mut s = Scenario::new();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    s.send(&post("/v1beta/models/openai/gpt-x:generateContent", &body));
    s.upstream(&json_response(200, &completion("gpt-x", "hello"), &[]));
    let answer = s.response().json();
    assert_eq!(
        s.usage_event().generation_id.as_deref(),
        answer["responseId"].as_str()
    );
    assert!(answer["responseId"].is_string(), "{answer}");
}

#[test]
fn without_a_provider_id_the_gateway_makes_one_and_shows_it() {
    let mut s = anthropic();
    s.chat(&chat_body("anthropic/claude-x", false));
    let mut message = anthropic_message("");
    message.as_object_mut().unwrap().remove("id");
    s.upstream(&json_response(200, &message, &[]));
    let r = s.response();
    let request_id = r.header("x-request-id").unwrap().to_string();
    let shown = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(shown, format!("chatcmpl-gen-{request_id}"));
    assert_eq!(s.usage_event().generation_id, Some(shown));
}

#[test]
fn an_answer_without_an_id_records_none() {
    let mut s = Scenario::new();
    let body = json!({"model": "openai/emb", "input": "hi"});
    s.send(&post("/v1/embeddings", &body));
    let answer = json!({"object": "list", "model": "emb",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "usage": {"prompt_tokens": 1, "total_tokens": 1}});
    s.upstream(&json_response(200, &answer, &[]));
    assert_eq!(s.response().status, 200);
    assert_eq!(s.usage_event().generation_id, None);
}
