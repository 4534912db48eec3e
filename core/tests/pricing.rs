//! Pricing through `Exchange`: `usage.cost` in OpenAI-shaped answers
//! (whole, streamed, translated from another provider's dialect) is the
//! cost the usage record bills; Anthropic- and Gemini-shaped answers get
//! no cost field; `refuse_unpriced_models` refuses a model with no price
//! before anything goes upstream.

mod support;

use serde_json::{json, Value};
use support::*;

/// An Anthropic message with cache reads and writes in its usage.
fn anthropic_message() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 7,
            "cache_read_input_tokens": 40, "cache_creation_input_tokens": 20}})
}

/// The same answer as an Anthropic stream.
fn anthropic_stream() -> String {
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null,
        "usage": {"input_tokens": 10, "output_tokens": 1,
            "cache_read_input_tokens": 40, "cache_creation_input_tokens": 20}}});
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

fn priced_anthropic() -> Scenario {
    Scenario::builder()
        .anthropic_first()
        .price("anthropic", "claude-x", TEST_PRICE)
        .build()
}

/// 10 plain + 20 written at 1 micro-USD, 40 cached at 0.5, 7 out at 2.
const ANTHROPIC_COST: u64 = 10 + 20 + 20 + 14;

#[test]
fn a_translated_answer_carries_the_recorded_cost() {
    let mut s = priced_anthropic();
    s.chat(&chat_body("anthropic/claude-x", false));
    s.upstream(&json_response(200, &anthropic_message(), &[]));
    let body = s.response().json();
    let record = s.usage_event();
    let mut usage = body["usage"].clone();
    take_cost(&mut usage, &record, "translated");
    assert_eq!(record.cost.map(|c| c.0), Some(ANTHROPIC_COST));
    assert_eq!(usage["prompt_tokens_details"]["cache_write_tokens"], 20);
}

#[test]
fn a_translated_stream_carries_the_recorded_cost_on_its_usage_chunk() {
    let mut s = priced_anthropic();
    let mut body = chat_body("anthropic/claude-x", true);
    body["stream_options"] = json!({"include_usage": true});
    s.chat(&body);
    s.upstream(&sse_response(&anthropic_stream()));
    let r = s.response();
    let chunks: Vec<Value> = r
        .sse_data()
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("json chunk"))
        .collect();
    let with_usage: Vec<&Value> = chunks.iter().filter(|c| c["usage"].is_object()).collect();
    assert_eq!(with_usage.len(), 1, "one usage chunk");
    let record = s.usage_event();
    let mut usage = with_usage[0]["usage"].clone();
    take_cost(&mut usage, &record, "translated stream");
    assert_eq!(record.cost.map(|c| c.0), Some(ANTHROPIC_COST));
}

#[test]
fn anthropic_and_gemini_shaped_answers_have_no_cost_field() {
    // Same dialect in and out: the provider's body as it sent it.
    let mut s = priced_anthropic();
    let body = json!({"model": "anthropic/claude-x", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]});
    s.send(&post("/v1/messages", &body));
    s.upstream(&json_response(200, &anthropic_message(), &[]));
    let answer = s.response().json();
    assert!(answer["usage"].is_object());
    assert!(answer["usage"].get("cost").is_none(), "{answer}");
    assert_eq!(s.usage_event().cost.map(|c| c.0), Some(ANTHROPIC_COST));

    // An OpenAI provider answering a Gemini client.
    let mut s = Scenario::builder()
        .price("openai", "gpt-x", TEST_PRICE)
        .build();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    s.send(&post("/v1beta/models/openai/gpt-x:generateContent", &body));
    s.upstream(&json_response(200, &completion("gpt-x", "hello"), &[]));
    let answer = s.response().json();
    assert!(answer["usageMetadata"].is_object(), "{answer}");
    assert!(!answer.to_string().contains("cost"), "{answer}");
    assert_eq!(s.usage_event().cost.map(|c| c.0), Some(3 + 2 * 2));
}

#[test]
fn an_unpriced_model_costs_nothing_and_says_so() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-x", false));
    s.upstream(&json_response(200, &completion("gpt-x", "hello"), &[]));
    let body = s.response().json();
    assert_eq!(body["usage"]["cost"], json!(0.0));
    let record = s.usage_event();
    assert_eq!(record.cost, None, "no price: the host warns and bills 0");
    assert_eq!(record.usage.map(|u| u.total()), Some(5));
}

#[test]
fn refusing_unpriced_models_answers_404_in_the_route_dialect_before_any_upstream_call() {
    let refusing = || Scenario::builder().refuse_unpriced().build();
    let mut s = refusing();
    s.chat(&chat_body("openai/gpt-x", false));
    let r = s.response();
    assert_eq!(r.status, 404);
    let body = r.json();
    assert_eq!(body["error"]["code"], "model_unpriced");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("openai/gpt-x")));
    assert!(s.connects().is_empty(), "nothing sent upstream");
    assert!(s.usage_events().is_empty(), "nothing billed");

    let mut s = Scenario::builder()
        .anthropic_first()
        .refuse_unpriced()
        .build();
    let body = json!({"model": "claude-x", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]});
    s.send(&post("/v1/messages", &body));
    let r = s.response();
    assert_eq!(r.status, 404);
    let body = r.json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert!(s.connects().is_empty());

    let mut s = refusing();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    s.send(&post("/v1beta/models/openai/gpt-x:generateContent", &body));
    let r = s.response();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["status"], "NOT_FOUND");
    assert!(s.connects().is_empty());

    // Counting tokens costs nothing and is not refused.
    let mut s = Scenario::builder()
        .anthropic_first()
        .refuse_unpriced()
        .build();
    let body = json!({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]});
    s.send(&post("/v1/messages/count_tokens", &body));
    assert_eq!(s.connects().len(), 1, "counting goes upstream");
}

#[test]
fn refusing_unpriced_models_skips_them_in_a_fallback_list() {
    let mut s = Scenario::builder()
        .backup()
        .price("backup", "b", TEST_PRICE)
        .refuse_unpriced()
        .build();
    let mut body = chat_body("openai/gpt-x", false);
    body["models"] = json!(["backup/b"]);
    s.chat(&body);
    assert_eq!(s.connects(), vec![(1, false)], "straight to the priced one");
    s.upstream(&json_response(200, &completion("b", "hello"), &[]));
    assert_eq!(s.response().status, 200);
    assert_eq!(s.usage_event().cost.map(|c| c.0), Some(3 + 2 * 2));
}
