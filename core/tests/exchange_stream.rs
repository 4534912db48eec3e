//! Streamed chat completions through `Exchange`: the recorded OpenAI
//! streams, split-invariance, the quirks of OpenAI-compatible servers,
//! cut and silent upstreams, keep-alives and client aborts.

mod support;

use std::collections::BTreeMap;

use arouter_core::usage::Usage;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::*;

const FINISH_REASONS: [&str; 5] = ["stop", "length", "tool_calls", "content_filter", "error"];

/// One streamed tool call: every `id` and `function.name` sent, and the
/// concatenated arguments.
type ToolSeen = (Vec<String>, Vec<String>, String);

/// What a client reconstructs from a stream.
#[derive(Debug, Default)]
struct Seen {
    /// Concatenated `delta.content` per choice index.
    content: BTreeMap<u64, String>,
    /// Per choice: the one finish reason and its native reason.
    finish: BTreeMap<u64, (String, Value)>,
    /// Per (choice, tool index): ids, names, concatenated arguments.
    tools: BTreeMap<(u64, u64), ToolSeen>,
    usage: Option<Value>,
    errors: Vec<Value>,
    chunks: usize,
}

/// Checks every invariant of a well-formed OpenAI client stream and returns
/// what it carried.
fn check_stream(r: &Resp, include_usage: bool) -> Seen {
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete, "stream ends with the chunked terminator");
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    assert_eq!(data.iter().filter(|d| *d == "[DONE]").count(), 1);
    let mut seen = Seen::default();
    let events = &data[..data.len() - 1];
    for (i, d) in events.iter().enumerate() {
        let v: Value = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
        if v.get("error").is_some() {
            assert!(v["error"]["message"].is_string(), "{d}");
            seen.errors.push(v);
            continue;
        }
        seen.chunks += 1;
        assert_eq!(v["object"], "chat.completion.chunk", "{d}");
        assert!(
            v["model"].as_str().unwrap().starts_with("openai/"),
            "model prefixed: {d}"
        );
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            assert!(seen.usage.is_none(), "one usage chunk");
            assert_eq!(i, events.len() - 1, "usage chunk is last: {d}");
            assert_eq!(v["choices"], json!([]), "usage chunk has no choices");
            seen.usage = Some(u.clone());
            continue;
        }
        for c in v["choices"].as_array().expect("choices") {
            let index = c["index"].as_u64().expect("choice index");
            assert!(
                !seen.finish.contains_key(&index),
                "nothing after choice {index} finished: {d}"
            );
            if let Some(text) = c["delta"]["content"].as_str() {
                seen.content.entry(index).or_default().push_str(text);
            }
            if let Some(calls) = c["delta"]["tool_calls"].as_array() {
                for call in calls {
                    let ti = call["index"].as_u64().expect("tool index");
                    let entry = seen.tools.entry((index, ti)).or_default();
                    if let Some(id) = call["id"].as_str() {
                        entry.0.push(id.to_string());
                    }
                    if let Some(name) = call["function"]["name"].as_str() {
                        entry.1.push(name.to_string());
                    }
                    if let Some(args) = call["function"]["arguments"].as_str() {
                        entry.2.push_str(args);
                    }
                }
            }
            match &c["finish_reason"] {
                Value::Null => {}
                Value::String(reason) => {
                    assert!(FINISH_REASONS.contains(&reason.as_str()), "{d}");
                    assert!(
                        c.get("native_finish_reason").is_some(),
                        "native_finish_reason alongside: {d}"
                    );
                    seen.finish
                        .insert(index, (reason.clone(), c["native_finish_reason"].clone()));
                }
                other => panic!("finish_reason {other}"),
            }
        }
    }
    for index in seen.content.keys() {
        assert!(seen.finish.contains_key(index), "choice {index} finished");
    }
    for ((choice, tool), (ids, names, args)) in &seen.tools {
        assert_eq!(ids.len(), 1, "choice {choice} tool {tool}: one id");
        assert_eq!(names.len(), 1, "choice {choice} tool {tool}: one name");
        serde_json::from_str::<Value>(args)
            .unwrap_or_else(|e| panic!("tool {tool} arguments {args:?}: {e}"));
    }
    if include_usage {
        assert!(seen.usage.is_some(), "usage chunk asked for");
    } else {
        assert!(seen.usage.is_none(), "usage chunk not asked for");
    }
    seen
}

/// What the recorded upstream stream carried.
fn recorded(sse: &str) -> (BTreeMap<u64, String>, BTreeMap<u64, String>, Value) {
    let mut content = BTreeMap::new();
    let mut finish = BTreeMap::new();
    let mut usage = Value::Null;
    for d in sse_data(sse.as_bytes()) {
        if d == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(&d).unwrap();
        if v["usage"].is_object() {
            usage = v["usage"].clone();
        }
        for c in v["choices"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap();
            if let Some(t) = c["delta"]["content"].as_str() {
                content.entry(i).or_insert_with(String::new).push_str(t);
            }
            if let Some(f) = c["finish_reason"].as_str() {
                finish.insert(i, f.to_string());
            }
        }
    }
    (content, finish, usage)
}

fn stream_body(t: &Value, include_usage: bool) -> Value {
    let mut body = client_body(t);
    let obj = body.as_object_mut().unwrap();
    obj.remove("stream_options");
    if include_usage {
        obj.insert("stream_options".into(), json!({"include_usage": true}));
    }
    body
}

fn stream_transcripts() -> Vec<(String, Value)> {
    transcripts(|t| is_chat(t) && is_stream(t))
}

#[test]
fn every_streamed_chat_transcript() {
    let all = stream_transcripts();
    assert_eq!(all.len(), 4);
    for (name, t) in all {
        let sse = t["response"]["sse"].as_str().unwrap();
        let (content, finish, usage) = recorded(sse);
        let model = t["request"]["body"]["model"].as_str().unwrap();
        for include_usage in [true, false] {
            let mut s = Scenario::builder()
                .price("openai", model, TEST_PRICE)
                .build();
            s.chat(&stream_body(&t, include_usage));
            let up = s.upstream_request(0);
            assert_eq!(up.head.target, "/v1/chat/completions");
            assert_eq!(up.header("accept"), Some("text/event-stream"));
            assert_eq!(up.header("authorization"), Some("Bearer sk-upstream"));
            assert_eq!(up.body["stream"], true);
            assert_eq!(
                up.body["stream_options"]["include_usage"], true,
                "{name}: usage always requested upstream"
            );
            assert!(up.body.get("models").is_none() && up.body.get("route").is_none());

            s.upstream(&transcript_response(&t));
            let r = s.response();
            let seen = check_stream(&r, include_usage);
            assert!(seen.errors.is_empty(), "{name}");
            assert_eq!(seen.content, content, "{name}: same text");
            for (i, native) in &finish {
                let (reason, got_native) = &seen.finish[i];
                assert_eq!(got_native, &Value::String(native.clone()));
                assert_eq!(reason, native, "{name}: OpenAI reasons pass as they are");
            }
            if include_usage {
                // The usage chunk carries the recorded cost, as OpenRouter's.
                let mut seen_usage = seen.usage.clone().expect("usage chunk");
                take_cost(&mut seen_usage, &s.usage_event(), &name);
                assert_eq!(seen_usage, usage, "{name}");
            }
            assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
            assert!(r.keep_alive());

            let event = s.usage_event();
            assert!(event.complete, "{name}");
            assert_eq!(event.usage, Usage::from_openai(&usage), "{name}");
            assert!(event.usage.is_some());
            assert_eq!(event.provider, "openai");
            assert!(!s.closed);
            assert_eq!(s.releases().len(), 1);
            assert_eq!(s.access_statuses(), vec![200]);
            if include_usage {
                insta::with_settings!({snapshot_suffix => name.clone()}, {
                    insta::assert_snapshot!(r.text());
                });
            }
        }
    }
}

#[test]
fn streamed_tool_call_arguments_survive() {
    let t = transcript("chat_tool_call_stream_include_usage");
    let mut s = Scenario::new();
    s.chat(&stream_body(&t, true));
    s.upstream(&transcript_response(&t));
    let seen = check_stream(&s.response(), true);
    let (ids, names, args) = &seen.tools[&(0, 0)];
    assert_eq!(ids, &["call_ZR5UUuTt3pf61kjwAJIYdVMj"]);
    assert_eq!(names, &["get_capital"]);
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"country": "UK"})
    );
    assert_eq!(seen.finish[&0].0, "tool_calls");
}

// ------------------------------------------------------- split invariance

/// The client body for a transcript stream fed whole.
fn whole_body(t: &Value) -> Vec<u8> {
    let mut s = Scenario::new();
    s.chat(&stream_body(t, true));
    s.upstream(&transcript_response(t));
    s.response().body
}

fn split_body(t: &Value, cuts: &[usize]) -> Vec<u8> {
    let mut s = Scenario::new();
    s.chat(&stream_body(t, true));
    s.upstream_split(&transcript_response(t), cuts);
    let r = s.response();
    assert!(r.complete);
    r.body
}

#[test]
fn one_byte_feeds_give_the_same_stream() {
    for (name, t) in stream_transcripts() {
        let bytes = transcript_response(&t);
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(split_body(&t, &cuts), whole_body(&t), "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn arbitrary_splits_give_the_same_stream(
        which in 0usize..4,
        cuts in proptest::collection::vec(0usize..20_000, 1..20),
    ) {
        let all = stream_transcripts();
        let (_, t) = &all[which % all.len()];
        let len = transcript_response(t).len();
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c % len).collect();
        prop_assert_eq!(split_body(t, &cuts), whole_body(t));
    }
}

// ------------------------------------------------------ compatible quirks

fn chunk_json(choices: Value) -> String {
    json!({
        "id": "chatcmpl-q",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "llama",
        "choices": choices,
    })
    .to_string()
}

fn delta(content: &str, finish: Option<&str>) -> String {
    chunk_json(json!([{"index": 0, "delta": {"content": content}, "finish_reason": finish}]))
}

fn events(datas: &[String]) -> String {
    datas.iter().map(|d| format!("data: {d}\n\n")).collect()
}

/// Runs a hand-built upstream SSE body through a fresh scenario.
fn run_stream(sse: &str, include_usage: bool) -> (Scenario, Seen) {
    let mut s = Scenario::new();
    let mut body = chat_body("openai/llama", true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    s.chat(&body);
    s.upstream(&sse_response(sse));
    let seen = check_stream(&s.response(), include_usage);
    (s, seen)
}

#[test]
fn quirk_tool_call_id_and_name_repeated_in_every_delta() {
    let call = |args: &str| {
        chunk_json(json!([{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": args}}
        ]}, "finish_reason": null}]))
    };
    let second = |args: &str| {
        chunk_json(json!([{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_2", "type": "function",
             "function": {"name": "get_time", "arguments": args}}
        ]}, "finish_reason": null}]))
    };
    let sse = events(&[
        call("{\"city\":"),
        call("\"Paris\"}"),
        second("{}"),
        second(""),
        chunk_json(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
        "[DONE]".into(),
    ]);
    let (_, seen) = run_stream(&sse, false);
    let (ids, names, args) = &seen.tools[&(0, 0)];
    assert_eq!(
        (ids.as_slice(), names.as_slice()),
        (
            &["call_1".to_string()][..],
            &["get_weather".to_string()][..]
        )
    );
    assert_eq!(args, "{\"city\":\"Paris\"}");
    let (ids, names, args) = &seen.tools[&(0, 1)];
    assert_eq!((ids.len(), names.len(), args.as_str()), (1, 1, "{}"));
    assert_eq!(names[0], "get_time");
    assert_eq!(seen.finish[&0].0, "tool_calls");
}

#[test]
fn quirk_no_finish_reason_then_done() {
    let sse = events(&[delta("Hel", None), delta("lo", None), "[DONE]".into()]);
    let (_, seen) = run_stream(&sse, false);
    assert_eq!(seen.content[&0], "Hello");
    assert_eq!(seen.finish[&0], ("stop".to_string(), Value::Null));

    let tool = chunk_json(json!([{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]}, "finish_reason": null}]));
    let (_, seen) = run_stream(&events(&[tool, "[DONE]".into()]), false);
    assert_eq!(seen.finish[&0], ("tool_calls".to_string(), Value::Null));
}

#[test]
fn quirk_usage_inside_a_chunk_with_choices() {
    let mut last: Value = serde_json::from_str(&delta("!", Some("stop"))).unwrap();
    last["usage"] = json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7});
    let sse = events(&[delta("Hi", None), last.to_string(), "[DONE]".into()]);
    for include_usage in [true, false] {
        let (s, seen) = run_stream(&sse, include_usage);
        assert_eq!(seen.content[&0], "Hi!");
        assert_eq!(seen.finish[&0].0, "stop");
        // The choices went out with `usage: null`.
        let data = s.response().sse_data();
        let with_finish: Value = data
            .iter()
            .filter(|d| d.contains("\"finish_reason\":\"stop\""))
            .map(|d| serde_json::from_str(d).unwrap())
            .next()
            .unwrap();
        assert_eq!(with_finish["usage"], Value::Null);
        if include_usage {
            assert_eq!(seen.usage.as_ref().unwrap()["total_tokens"], 7);
        }
        let u = s.usage_event().usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (5, 2));
    }
}

#[test]
fn quirk_usage_twice_gives_one_usage_chunk() {
    let mut with_choices: Value = serde_json::from_str(&delta("!", Some("stop"))).unwrap();
    with_choices["usage"] = json!({"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6});
    let usage_only = json!({"id": "x", "object": "chat.completion.chunk", "created": 7, "model": "llama",
        "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}});
    let sse = events(&[
        with_choices.to_string(),
        usage_only.to_string(),
        "[DONE]".into(),
    ]);
    let (s, seen) = run_stream(&sse, true);
    assert_eq!(
        seen.usage.unwrap()["total_tokens"],
        7,
        "the last report wins"
    );
    assert_eq!(s.usage_event().usage.unwrap().completion_tokens, 2);
}

#[test]
fn quirk_data_without_a_space() {
    let sse = format!(
        "data:{}\n\ndata:{}\n\ndata:[DONE]\n\n",
        delta("a", None),
        delta("b", Some("stop"))
    );
    let (_, seen) = run_stream(&sse, false);
    assert_eq!(seen.content[&0], "ab");
    assert_eq!(seen.finish[&0].0, "stop");
}

#[test]
fn quirk_crlf_line_endings() {
    let sse = format!(
        "data: {}\r\n\r\n: comment\r\n\r\ndata: {}\r\n\r\ndata: [DONE]\r\n\r\n",
        delta("a", None),
        delta("b", Some("length"))
    );
    let (_, seen) = run_stream(&sse, false);
    assert_eq!(seen.content[&0], "ab");
    assert_eq!(seen.finish[&0], ("length".to_string(), json!("length")));
}

#[test]
fn quirk_stream_ends_without_done() {
    let sse = events(&[delta("a", None), delta("b", None)]);
    let (s, seen) = run_stream(&sse, false);
    assert_eq!(seen.content[&0], "ab");
    assert_eq!(seen.finish[&0], ("stop".to_string(), Value::Null));
    assert!(s.usage_event().complete);
    // The upstream response ended cleanly: its connection can be pooled.
    assert_eq!(s.releases(), vec![true]);
}

#[test]
fn quirk_nothing_after_done() {
    let sse = events(&[
        delta("a", Some("stop")),
        "[DONE]".into(),
        delta("LATE", None),
        "[DONE]".into(),
    ]);
    let (s, seen) = run_stream(&sse, false);
    assert_eq!(seen.content[&0], "a");
    assert!(!contains(&s.down, b"LATE"));
}

#[test]
fn quirk_nothing_after_a_finish() {
    let sse = events(&[
        delta("a", Some("stop")),
        delta("LATE", None),
        delta("", Some("stop")),
        "[DONE]".into(),
    ]);
    let (s, seen) = run_stream(&sse, false);
    assert_eq!(seen.content[&0], "a");
    assert!(
        !contains(&s.down, b"LATE"),
        "content after the stop was sent"
    );
}

#[test]
fn two_choices_finish_independently() {
    let c = |i: u64, text: &str, finish: Option<&str>| {
        chunk_json(json!([{"index": i, "delta": {"content": text}, "finish_reason": finish}]))
    };
    let sse = events(&[
        c(0, "a", None),
        c(1, "x", None),
        c(0, "b", Some("stop")),
        c(1, "y", None),
        "[DONE]".into(),
    ]);
    let (_, seen) = run_stream(&sse, false);
    assert_eq!(seen.content[&0], "ab");
    assert_eq!(seen.content[&1], "xy");
    assert_eq!(seen.finish[&0].0, "stop");
    assert_eq!(seen.finish[&1], ("stop".to_string(), Value::Null));
}

#[test]
fn native_finish_reasons_are_normalized() {
    let sse = events(&[delta("a", Some("eos")), "[DONE]".into()]);
    let (_, seen) = run_stream(&sse, false);
    assert_eq!(seen.finish[&0], ("stop".to_string(), json!("eos")));
}

// --------------------------------------------------------- broken streams

fn start_stream(include_usage: bool) -> Scenario {
    let mut s = Scenario::new();
    let mut body = chat_body("openai/llama", true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    s.chat(&body);
    s.upstream(&sse_head());
    s
}

/// The stream ended with an error event, an `error` finish, `[DONE]`.
fn assert_error_tail(s: &Scenario) -> Seen {
    let r = s.response();
    let seen = check_stream(&r, false);
    assert_eq!(seen.errors.len(), 1, "one error event");
    let data = r.sse_data();
    let n = data.len();
    assert!(data[n - 3].starts_with("{\"error\""), "{data:?}");
    let fin: Value = serde_json::from_str(&data[n - 2]).unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "error");
    assert!(fin["choices"][0].get("native_finish_reason").is_some());
    assert_eq!(data[n - 1], "[DONE]");
    seen
}

#[test]
fn upstream_cut_mid_stream() {
    let mut s = start_stream(false);
    let mut with_usage: Value = serde_json::from_str(&delta("b", None)).unwrap();
    with_usage["usage"] = json!({"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5});
    s.upstream(&chunk(
        events(&[delta("a", None), with_usage.to_string()]).as_bytes(),
    ));
    // Half an event, then the connection drops.
    s.upstream(&chunk(b"data: {\"choi"));
    s.upstream_eof();
    let seen = assert_error_tail(&s);
    assert_eq!(seen.content[&0], "ab");
    assert!(s.response().complete, "chunked terminator written");
    let usage = s.usage_event();
    assert!(!usage.complete);
    assert_eq!(
        usage.usage.unwrap().prompt_tokens,
        4,
        "usage seen is billed"
    );
    assert_eq!(s.releases(), vec![false]);
    assert!(!s.closed, "the client connection itself is fine");
}

#[test]
fn upstream_cut_before_the_first_event() {
    // Nothing reached the client yet (the head waits for the first bytes),
    // so the failure is an ordinary error response, not a broken stream.
    let mut s = start_stream(false);
    s.upstream_eof();
    let r = s.response();
    assert_eq!(r.status, 502);
    assert!(r.header("transfer-encoding").is_none());
    assert!(r.json()["error"]["message"].is_string());
    // The provider reported nothing and the client got nothing: no bill.
    assert!(s.usage_events().is_empty(), "{:?}", s.usage_events());
}

#[test]
fn stream_fallback_when_the_upstream_dies_after_its_head() {
    let mut s = Scenario::builder().backup().build();
    let mut body = chat_body("openai/a", true);
    body["models"] = json!(["backup/b"]);
    s.chat(&body);
    s.upstream(&sse_head());
    assert!(
        s.down.is_empty(),
        "the client head waits for the first bytes"
    );
    s.upstream_eof();
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    s.upstream(&sse_response(&events(&[
        delta("ok", Some("stop")),
        "[DONE]".into(),
    ])));
    let r = s.response();
    let first: Value = serde_json::from_str(&r.sse_data()[0]).unwrap();
    assert_eq!(first["model"], "backup/llama");
    assert_eq!(s.usage_event().provider, "backup");
}

#[test]
fn upstream_error_event_mid_stream() {
    let mut s = start_stream(false);
    let sse = events(&[
        delta("a", None),
        json!({"error": {"message": "overloaded", "code": 529}}).to_string(),
    ]);
    s.upstream(&chunk(sse.as_bytes()));
    let seen = assert_error_tail(&s);
    assert_eq!(seen.errors[0]["error"]["message"], "overloaded");
    assert!(
        !s.usage_event().complete,
        "an errored stream is not complete"
    );
}

#[test]
fn malformed_event_mid_stream() {
    let mut s = start_stream(false);
    let sse = format!("{}data: {{not json\n\n", events(&[delta("a", None)]));
    s.upstream(&chunk(sse.as_bytes()));
    assert_error_tail(&s);
    assert!(
        !s.usage_event().complete,
        "an errored stream is not complete"
    );
    assert_eq!(s.releases(), vec![false]);
}

#[test]
fn upstream_body_ends_mid_event() {
    // A clean chunked terminator, but the last event was never finished.
    let mut s = start_stream(false);
    s.upstream(&chunk(events(&[delta("a", None)]).as_bytes()));
    s.upstream(&chunk(b"data: {\"choices\":"));
    s.upstream(LAST_CHUNK);
    let seen = assert_error_tail(&s);
    assert_eq!(seen.content[&0], "a");
    assert!(
        !s.usage_event().complete,
        "a truncated stream is not complete"
    );
}

#[test]
fn oversized_event_mid_stream() {
    let mut s = Scenario::builder()
        .limits(|l| l.max_sse_line_bytes = 256)
        .build();
    s.chat(&chat_body("openai/llama", true));
    s.upstream(&sse_head());
    let big = delta(&"x".repeat(400), None);
    s.upstream(&chunk(events(&[delta("a", None), big]).as_bytes()));
    let seen = assert_error_tail(&s);
    assert_eq!(seen.content[&0], "a");
    assert!(!s.usage_event().complete);
}

// -------------------------------------------------------------- keep-alive

#[test]
fn keepalive_comments_while_waiting_for_the_first_token() {
    let mut s = start_stream(false);
    let limits = s.gateway.limits().clone();
    assert!(
        s.down.is_empty(),
        "the client head waits for the first bytes"
    );
    let started = s.now;
    assert_eq!(s.deadline, Some(started.after(limits.stream_keepalive_ms)));
    for n in 1..=3u64 {
        let at = s.fire_deadline();
        assert_eq!(at, started.after(n * limits.stream_keepalive_ms));
        let r = s.response();
        assert_eq!(
            r.text().matches(": keep-alive").count(),
            n as usize,
            "one comment per interval"
        );
    }
    // The comments are invisible to an SSE client and the stream goes on.
    s.upstream(&chunk(
        events(&[delta("hi", Some("stop")), "[DONE]".into()]).as_bytes(),
    ));
    s.upstream(LAST_CHUNK);
    let seen = check_stream(&s.response(), false);
    assert_eq!(seen.content[&0], "hi");
    assert!(s.usage_event().complete);
}

#[test]
fn no_keepalive_once_tokens_flow() {
    let mut s = start_stream(false);
    let limits = s.gateway.limits().clone();
    s.advance(1_000);
    s.upstream(&chunk(events(&[delta("a", None)]).as_bytes()));
    assert_eq!(
        s.deadline,
        Some(s.now.after(limits.upstream_idle_timeout_ms))
    );
}

#[test]
fn silent_upstream_mid_stream_times_out() {
    let mut s = start_stream(false);
    let limits = s.gateway.limits().clone();
    s.upstream(&chunk(events(&[delta("a", None)]).as_bytes()));
    let last = s.now;
    // A timer that fires early changes nothing.
    s.advance_and_tick(limits.upstream_idle_timeout_ms - 1);
    assert!(!contains(&s.down, b"[DONE]"));
    let at = s.fire_deadline();
    assert_eq!(at, last.after(limits.upstream_idle_timeout_ms));
    let seen = assert_error_tail(&s);
    assert_eq!(seen.content[&0], "a");
    assert_eq!(s.releases(), vec![false]);
    assert!(!s.usage_event().complete);
}

#[test]
fn silent_upstream_before_the_first_token_times_out_too() {
    let mut s = start_stream(false);
    let limits = s.gateway.limits().clone();
    let started = s.now;
    while !contains(&s.down, b"[DONE]") {
        s.fire_deadline();
        assert!(s.now <= started.after(limits.upstream_idle_timeout_ms));
    }
    assert_eq!(s.now, started.after(limits.upstream_idle_timeout_ms));
    assert_error_tail(&s);
}

// ------------------------------------------------------------- client gone

#[test]
fn client_disconnect_mid_stream() {
    let mut s = start_stream(true);
    let mut with_usage: Value = serde_json::from_str(&delta("a", None)).unwrap();
    with_usage["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10});
    s.upstream(&chunk(events(&[with_usage.to_string()]).as_bytes()));
    let before = s.down.len();
    s.client_eof();
    assert_eq!(s.releases(), vec![false], "upstream aborted at once");
    assert!(!s.upstream_open);
    assert_eq!(s.down.len(), before, "nothing more written");
    let usage = s.usage_event();
    assert!(!usage.complete);
    assert_eq!(usage.usage.unwrap().prompt_tokens, 9);
    assert!(s.closed);
    assert_eq!(s.log.last(), Some(&Rec::Close));
}

// ------------------------------------------------------ non-200 to a stream

#[test]
fn upstream_error_status_to_a_stream_request_is_json() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/gpt-4o-mini", true));
    let err = json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}});
    s.upstream(&json_response(429, &err, &[("Retry-After", "20")]));
    let r = s.response();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("retry-after"), Some("20"));
    assert_eq!(r.json(), err);
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(s.releases(), vec![true]);
}

#[test]
fn stream_fallback_before_the_first_byte() {
    let mut s = Scenario::builder().backup().build();
    let mut body = chat_body("openai/a", true);
    body["models"] = json!(["backup/b"]);
    s.chat(&body);
    s.upstream(&json_response(
        503,
        &json!({"error": {"message": "down"}}),
        &[],
    ));
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    assert!(s.down.is_empty());
    s.upstream(&sse_response(&events(&[
        delta("ok", Some("stop")),
        "[DONE]".into(),
    ])));
    let r = s.response();
    let data = r.sse_data();
    let first: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first["model"], "backup/llama");
    assert_eq!(s.usage_event().provider, "backup");
}

// ----------------------------------------------------------------- pooling

#[test]
fn stream_connection_is_pooled_when_its_end_comes_with_done() {
    let t = transcript("chat_stream_text_after_tool_include_usage");
    let mut s = Scenario::new();
    s.chat(&stream_body(&t, true));
    s.upstream(&transcript_response(&t));
    check_stream(&s.response(), true);
    assert_eq!(s.releases(), vec![true], "clean upstream connection pooled");
}

#[test]
fn stream_connection_is_dropped_when_its_end_is_not_seen() {
    let mut s = start_stream(false);
    s.upstream(&chunk(
        events(&[delta("a", Some("stop")), "[DONE]".into()]).as_bytes(),
    ));
    check_stream(&s.response(), false);
    // The terminator has not arrived: the client is not kept waiting for it,
    // and the connection cannot be reused.
    assert_eq!(s.releases(), vec![false]);
    assert!(s.usage_event().complete);
}

#[test]
fn a_whole_answer_to_a_stream_request_is_streamed_to_the_client() {
    // Some compatible servers ignore `stream` and answer in one piece; the
    // client asked for a stream and gets one.
    let mut s = Scenario::new();
    let mut body = chat_body("openai/llama", true);
    body["stream_options"] = json!({"include_usage": true});
    s.chat(&body);
    let answer = json!({
        "id": "chatcmpl-whole", "object": "chat.completion", "created": 1700000000, "model": "llama",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "all at once"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    });
    s.upstream(&json_response(200, &answer, &[]));
    let r = s.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk json"))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "all at once");
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")]);
    let usage = chunks.last().expect("usage chunk");
    assert_eq!(usage["usage"]["total_tokens"], 8);
    assert!(chunks.iter().all(|c| c["model"] == "openai/llama"));
    assert_eq!(s.usage_event().usage.map(|u| u.completion_tokens), Some(3));
}

#[test]
fn an_http_1_0_client_gets_a_stream_delimited_by_close() {
    // HTTP/1.0 has no chunked encoding: the body runs until the close.
    let mut s = Scenario::new();
    let body = serde_json::to_vec(&chat_body("openai/llama", true)).unwrap();
    let mut raw = format!(
        "POST /v1/chat/completions HTTP/1.0\r\nAuthorization: Bearer k\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    s.send(&raw);
    s.upstream(&sse_response(&events(&[
        delta("hi", Some("stop")),
        "[DONE]".into(),
    ])));
    let text = String::from_utf8_lossy(&s.down).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert!(body.starts_with("data: "), "no chunk framing: {body:?}");
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body:?}");
    assert!(
        s.log.iter().any(|r| matches!(r, Rec::Close)),
        "closed after the stream"
    );
}

#[test]
fn a_key_name_inside_content_does_not_hide_usage_or_finish() {
    // The fast path looks for keys by their quoted names; a content string
    // equal to a key name must not be mistaken for the key.
    let mut s = Scenario::new();
    let mut body = chat_body("openai/llama", true);
    body["stream_options"] = json!({"include_usage": true});
    s.chat(&body);
    let first = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "llama",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]});
    let tricky = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "llama",
        "choices": [{"index": 0, "delta": {"content": "usage"}, "finish_reason": null}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}});
    let finish = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "llama",
        "choices": [{"index": 0, "delta": {"content": "finish_reason"}, "finish_reason": "stop"}]});
    s.upstream(&sse_response(&events(&[
        first.to_string(),
        tricky.to_string(),
        finish.to_string(),
        "[DONE]".into(),
    ])));
    let data = s.response().sse_data();
    let finishes = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|c| {
            !c["choices"][0]["finish_reason"].is_null()
                && c["choices"].as_array().is_some_and(|a| !a.is_empty())
        })
        .count();
    assert_eq!(finishes, 1, "exactly one finish: {data:?}");
    assert_eq!(s.usage_event().usage.map(|u| u.prompt_tokens), Some(7));
}

#[test]
fn no_keepalive_comment_once_tokens_flow_even_on_an_early_timer() {
    // A driver's timer may fire at an old, earlier deadline; a premature
    // Timeout must change nothing once the stream has started.
    let mut s = start_stream(false);
    let limits = s.gateway.limits().clone();
    s.upstream(&chunk(events(&[delta("a", None)]).as_bytes()));
    s.advance_and_tick(limits.stream_keepalive_ms + 1);
    s.advance_and_tick(limits.stream_keepalive_ms + 1);
    s.upstream(&chunk(
        events(&[delta("b", Some("stop")), "[DONE]".into()]).as_bytes(),
    ));
    let r = s.response();
    assert!(!r.text().contains(": keep-alive"), "{}", r.text());
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
}

#[test]
fn an_error_as_the_first_event_falls_back_to_the_next_candidate() {
    // Nothing reached the client yet, so an upstream that opens its stream
    // with an error (an overloaded provider) gives way to the next one.
    let mut s = Scenario::builder().backup().build();
    let mut body = chat_body("openai/a", true);
    body["models"] = json!(["backup/b"]);
    s.chat(&body);
    s.upstream(&sse_response(&events(&[
        json!({"error": {"message": "overloaded", "type": "server_error"}}).to_string(),
    ])));
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    assert!(
        s.down.is_empty(),
        "nothing went to the client from the failed attempt"
    );
    s.upstream(&sse_response(&events(&[
        delta("ok", Some("stop")),
        "[DONE]".into(),
    ])));
    let r = s.response();
    let data = r.sse_data();
    let first: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first["model"], "backup/llama");
    assert!(!r.text().contains("overloaded"));
}

#[test]
fn an_upstream_closing_right_after_its_head_falls_back() {
    let mut s = Scenario::builder().backup().build();
    let mut body = chat_body("openai/a", true);
    body["models"] = json!(["backup/b"]);
    s.chat(&body);
    // A complete, empty chunked body: the stream ended before any event.
    let mut empty = sse_head();
    empty.extend_from_slice(b"0\r\n\r\n");
    s.upstream(&empty);
    assert_eq!(s.connects(), vec![(0, false), (1, false)]);
    s.upstream(&sse_response(&events(&[
        delta("ok", Some("stop")),
        "[DONE]".into(),
    ])));
    let first: Value = serde_json::from_str(&s.response().sse_data()[0]).unwrap();
    assert_eq!(first["model"], "backup/llama");
}

#[test]
fn a_stream_the_client_abandons_before_usage_is_still_billed() {
    // OpenAI reports usage only at the end; a client that leaves earlier
    // must not make the call free. The gateway counts the prompt with the
    // model's tokenizer and the tokens relayed (one per content chunk, as
    // OpenAI streams them), and marks the figures as its own estimate.
    let mut s = start_stream(false);
    s.upstream(&chunk(
        events(&[
            delta("one", None),
            delta(" two", None),
            delta(" three", None),
        ])
        .as_bytes(),
    ));
    s.client_eof();
    let record = s.usage_event();
    assert!(!record.complete);
    assert!(record.estimated, "the figures are the gateway's own");
    let usage = record.usage.expect("an aborted stream is billed");
    assert_eq!(usage.completion_tokens, 3);
    assert!(usage.prompt_tokens > 0);
}

#[test]
fn usage_a_provider_reported_before_failing_is_billed_even_after_fallback() {
    // Anthropic reports the input tokens in message_start; if its stream
    // then fails and the next candidate serves the answer, the first
    // provider has still charged for the prompt.
    let mut s = Scenario::builder().anthropic_first().backup().build();
    let mut body = chat_body("anthropic/claude-x", true);
    body["models"] = json!(["backup/b"]);
    s.chat(&body);
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
        "model": "claude-x", "content": [], "stop_reason": null,
        "usage": {"input_tokens": 25, "output_tokens": 1}}});
    let error =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let sse = format!("event: message_start\ndata: {start}\n\nevent: error\ndata: {error}\n\n");
    s.upstream(&sse_response(&sse));
    assert_eq!(
        s.connects(),
        vec![(0, false), (1, false)],
        "fell back: {}",
        String::from_utf8_lossy(&s.down)
    );
    s.upstream(&sse_response(&events(&[
        delta("ok", Some("stop")),
        "[DONE]".into(),
    ])));
    let records = s.usage_events();
    assert_eq!(records.len(), 2, "{records:?}");
    let first = &records[0];
    assert_eq!(first.provider, "anthropic");
    assert!(!first.complete && !first.estimated);
    assert_eq!(first.usage.map(|u| u.prompt_tokens), Some(25));
    assert_eq!(records[1].provider, "backup");
}
