//! The OpenAI same-dialect stream reads the first (role) chunk and the
//! usage-only chunk without a full JSON parse: what the client gets must be
//! what the full parse gave, including the `id`/`created`/`model` the
//! gateway copies into the chunks it writes itself (the usage chunk, a
//! missing finish), and the odd shapes (null `id`, no `model`, a repeated
//! key) that have to take the full path.

use arouter_core::billing::Price;
use arouter_core::stream::openai::OpenAiStream;
use serde_json::{json, Value};

fn run(chunks: &[Value], include_usage: bool) -> (OpenAiStream, Vec<Value>) {
    let mut s = OpenAiStream::new("openai", "gpt-4o-mini", include_usage, Price::default());
    let mut out = Vec::new();
    for c in chunks {
        s.on_event(&c.to_string(), &mut out);
    }
    s.on_event("[DONE]", &mut out);
    let text = String::from_utf8(out).expect("utf-8");
    let events = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("each event is JSON"))
        .collect();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    (s, events)
}

fn delta(id: &str, model: Value, delta: Value, finish: Value) -> Value {
    json!({"id": id, "object": "chat.completion.chunk", "created": 7, "model": model,
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
           "usage": null})
}

fn usage_chunk(id: Value, created: Value) -> Value {
    json!({"id": id, "object": "chat.completion.chunk", "created": created,
           "model": "gpt-4o-mini-2024-07-18", "choices": [],
           "usage": {"prompt_tokens": 19, "completion_tokens": 2, "total_tokens": 21}})
}

#[test]
fn role_chunk_is_relayed_with_its_model_prefixed_and_opens_choice_zero() {
    let m = json!("gpt-4o-mini-2024-07-18");
    let role = delta(
        "c1",
        m.clone(),
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    );
    let (s, events) = run(
        &[
            role.clone(),
            delta("c1", m, json!({"content": "Hi"}), Value::Null),
        ],
        false,
    );
    let mut expected = role;
    expected["model"] = json!("openai/gpt-4o-mini-2024-07-18");
    assert_eq!(events[0], expected);
    assert_eq!(s.relayed(), 2);
    assert!(s.started());
    // The upstream never finished choice 0: the gateway's finish chunk
    // carries the role chunk's id, created and prefixed model.
    let last = events.last().expect("a finish chunk");
    assert_eq!(last["id"], "c1");
    assert_eq!(last["created"], 7);
    assert_eq!(last["model"], "openai/gpt-4o-mini-2024-07-18");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
}

#[test]
fn usage_only_chunk_is_held_and_sent_last_with_its_own_id_and_model() {
    let m = json!("gpt-4o-mini-2024-07-18");
    let chunks = [
        delta("c1", m.clone(), json!({"role": "assistant"}), Value::Null),
        delta("c1", m, json!({}), json!("stop")),
        usage_chunk(json!("c2"), json!(9)),
    ];
    let (s, events) = run(&chunks, true);
    assert_eq!(events.len(), 3, "{events:?}");
    let usage = &events[2];
    assert_eq!(usage["id"], "c2");
    assert_eq!(usage["created"], 9);
    assert_eq!(usage["model"], "openai/gpt-4o-mini-2024-07-18");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 21);
    assert_eq!(s.usage().map(|u| u.completion_tokens), Some(2));
    // Not asked for: the usage is still read, but never sent.
    let (s, events) = run(&chunks, false);
    assert_eq!(events.len(), 2);
    assert_eq!(s.usage().map(|u| u.prompt_tokens), Some(19));
}

#[test]
fn a_null_id_or_created_in_the_usage_chunk_is_copied_as_null() {
    let chunks = [usage_chunk(Value::Null, Value::Null)];
    let (_, events) = run(&chunks, true);
    assert_eq!(events[0]["id"], Value::Null);
    assert_eq!(events[0]["created"], Value::Null);
}

#[test]
fn a_first_chunk_without_a_model_gets_the_requested_one() {
    let mut role = delta("c1", Value::Null, json!({"role": "assistant"}), Value::Null);
    role.as_object_mut().expect("object").remove("model");
    let (_, events) = run(&[role], false);
    assert_eq!(events[0]["model"], "openai/gpt-4o-mini");
    assert_eq!(events[1]["model"], "openai/gpt-4o-mini");
}

#[test]
fn a_repeated_key_keeps_the_last_value_as_a_full_parse_does() {
    let text = r#"{"id":"a","id":"b","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}"#;
    let mut s = OpenAiStream::new("openai", "gpt-4o-mini", true, Price::default());
    let mut out = Vec::new();
    s.on_event(text, &mut out);
    s.on_event("[DONE]", &mut out);
    let text = String::from_utf8(out).expect("utf-8");
    let first = text
        .strip_prefix("data: ")
        .and_then(|t| t.split("\n\n").next())
        .expect("a usage chunk");
    let usage: Value = serde_json::from_str(first).expect("JSON");
    assert_eq!(usage["id"], "b");
    assert_eq!(usage["usage"]["total_tokens"], 11);
    assert_eq!(usage["model"], "openai/m");
}

#[test]
fn finish_chunk_is_normalized_with_the_native_word_last_in_the_choice() {
    let m = json!("gpt-4o-mini-2024-07-18");
    let chunks = [
        delta("c1", m.clone(), json!({"role": "assistant"}), Value::Null),
        delta("c1", m, json!({}), json!("MAX_TOKENS")),
    ];
    let (s, events) = run(&chunks, false);
    assert_eq!(events.len(), 2, "{events:?}");
    let mut expected = chunks[1].clone();
    expected["model"] = json!("openai/gpt-4o-mini-2024-07-18");
    expected["choices"][0]["finish_reason"] = json!("length");
    expected["choices"][0]["native_finish_reason"] = json!("MAX_TOKENS");
    assert_eq!(events[1], expected);
    let keys: Vec<&String> = events[1]["choices"][0]
        .as_object()
        .expect("choice")
        .keys()
        .collect();
    assert_eq!(
        keys.last().map(|k| k.as_str()),
        Some("native_finish_reason")
    );
    assert_eq!(s.relayed(), 2);
}

#[test]
fn a_native_reason_sent_by_the_upstream_is_kept_and_model_may_come_last() {
    let text = r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"end_turn","native_finish_reason":"END"}],"model":"m"}"#;
    let role = r#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"model":"m"}"#;
    let mut s = OpenAiStream::new("openai", "gpt-4o-mini", false, Price::default());
    let mut out = Vec::new();
    s.on_event(role, &mut out);
    out.clear();
    s.on_event(text, &mut out);
    let chunk: Value = serde_json::from_str(
        std::str::from_utf8(&out)
            .expect("utf-8")
            .strip_prefix("data: ")
            .expect("an event")
            .trim_end(),
    )
    .expect("JSON");
    assert_eq!(chunk["model"], "openai/m");
    assert_eq!(chunk["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunk["choices"][0]["native_finish_reason"], "END");
}

#[test]
fn a_second_finish_for_a_finished_choice_is_not_relayed() {
    let m = json!("m");
    let chunks = [
        delta("c1", m.clone(), json!({"role": "assistant"}), Value::Null),
        delta("c1", m.clone(), json!({}), json!("stop")),
        delta("c1", m, json!({}), json!("length")),
    ];
    let (_, events) = run(&chunks, false);
    let finishes: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"].get(0))
        .filter(|c| !c["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "{events:?}");
    assert_eq!(finishes[0]["finish_reason"], "stop");
}

/// On `/api/v1/` a failure is told OpenRouter's way: every event is a
/// chunk (its SDK validates each one as such), the error riding on the
/// chunk that ends the choice, with an integer `code`.
#[test]
fn a_failure_told_openrouters_way_is_a_chunk_that_carries_the_error() {
    for openrouter in [false, true] {
        let mut s = OpenAiStream::new("openai", "gpt-4o-mini", false, Price::default());
        if openrouter {
            s = s.with_error_in_chunk();
        }
        let mut out = Vec::new();
        let first = delta(
            "c1",
            json!("gpt-4o-mini"),
            json!({"content": "Hi"}),
            Value::Null,
        );
        s.on_event(&first.to_string(), &mut out);
        s.fail("upstream went away", &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let events: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).expect("JSON"))
            .collect();
        let last = events.last().expect("events");
        assert_eq!(last["choices"][0]["finish_reason"], "error", "{text}");
        if openrouter {
            assert!(
                events
                    .iter()
                    .all(|e| e["object"] == "chat.completion.chunk"),
                "{text}"
            );
            assert_eq!(last["error"]["code"], 502);
            assert_eq!(last["error"]["message"], "upstream went away");
            assert_eq!(last["id"], "c1");
        } else {
            let error = &events[events.len() - 2];
            assert_eq!(error["error"]["type"], "upstream_error", "{text}");
            assert!(last.get("error").is_none());
        }
    }
}
