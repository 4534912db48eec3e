//! The Anthropic dialect against every recorded Anthropic exchange, plus
//! the mapping rules, malformed input, truncated streams, and the stream
//! shape the Anthropic SDK's accumulator relies on.

use std::collections::BTreeMap;

use arouter_core::api::{Dialect, ErrorKind};
use arouter_core::sse::SseDecoder;
use arouter_core::translate::anthropic::{
    decode_error, decode_request, decode_response, encode_request, encode_response,
    upstream_target, StreamDecoder, StreamEncoder, JSON_OBJECT_INSTRUCTION,
};
use arouter_core::translate::canonical::{
    merge_usage, ChatRequest, ChatResponse, Finish, Image, Message, Part, Reasoning,
    ResponseFormat, Role, StreamEvent, Tool, ToolChoice,
};
use arouter_core::translate::finish::FinishReason;
use arouter_core::usage::Usage;
use proptest::prelude::*;
use serde_json::{json, Value};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../conformance/transcripts/anthropic"
);

fn transcripts() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(DIR).expect("transcripts dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("name")
                .to_owned();
            let text = std::fs::read_to_string(&path).expect("read transcript");
            out.push((name, serde_json::from_str(&text).expect("transcript json")));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 19,
        "expected the recorded Anthropic transcripts"
    );
    out
}

fn body_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other).expect("body"),
    }
}

fn status(t: &Value) -> u64 {
    t["response"]["status"].as_u64().expect("status")
}

// ---------------------------------------------------------------- helpers

/// Feeds SSE text, split at `cuts`, through the SSE decoder and ours.
fn decode_stream_split(sse: &str, cuts: &[usize]) -> (Vec<StreamEvent>, bool) {
    let bytes = sse.as_bytes();
    let mut sse_dec = SseDecoder::new(1 << 20);
    let mut dec = StreamDecoder::new();
    let mut out = Vec::new();
    let mut last = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for p in points {
        if p < last {
            continue;
        }
        sse_dec
            .feed(&bytes[last..p], |ev| {
                dec.on_event(ev.event, ev.data, &mut out)
            })
            .expect("valid SSE");
        last = p;
    }
    assert!(!sse_dec.finish(), "no partial SSE event left over");
    let complete = dec.finish(&mut out);
    (out, complete)
}

fn decode_stream(sse: &str) -> (Vec<StreamEvent>, bool) {
    decode_stream_split(sse, &[])
}

fn encode_stream(events: &[StreamEvent], model: &str) -> String {
    let mut enc = StreamEncoder::new(model, false);
    let mut out = Vec::new();
    for ev in events {
        enc.on_event(ev, &mut out);
    }
    enc.finish(&mut out);
    assert!(enc.is_done());
    String::from_utf8(out).expect("utf-8 stream")
}

/// What a client ends up with from a stream, for comparisons.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    text: String,
    reasoning: String,
    signatures: Vec<String>,
    /// tool index -> (id, name, arguments)
    tools: BTreeMap<u32, (String, String, String)>,
    finish: Option<Finish>,
    usage: Usage,
    errors: Vec<String>,
}

fn summarize(events: &[StreamEvent]) -> Summary {
    let mut s = Summary::default();
    for ev in events {
        match ev {
            StreamEvent::Start { .. } => {}
            StreamEvent::Text(t) => s.text.push_str(t),
            StreamEvent::Reasoning { text, signature } => {
                s.reasoning.push_str(text);
                s.signatures.extend(signature.clone());
            }
            StreamEvent::ToolCallStart {
                index, id, name, ..
            } => {
                s.tools
                    .insert(*index, (id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallArguments { index, fragment } => {
                s.tools.entry(*index).or_default().2.push_str(fragment);
            }
            StreamEvent::Usage(u) => merge_usage(&mut s.usage, u),
            StreamEvent::Finish(f) => s.finish = Some(f.clone()),
            StreamEvent::Error { message } => s.errors.push(message.clone()),
        }
    }
    s
}

/// Parses our own SSE output into (event name, data) pairs.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    let mut dec = SseDecoder::new(1 << 20);
    let mut out = Vec::new();
    dec.feed(text.as_bytes(), |ev| {
        let data: Value = serde_json::from_str(ev.data).expect("event data is JSON");
        out.push((ev.event.unwrap_or("").to_owned(), data));
    })
    .expect("valid SSE");
    assert!(!dec.finish());
    out
}

/// The invariants the Anthropic SDK's stream accumulator relies on.
/// `failed` streams end with an `error` event instead of the message end.
fn assert_well_formed(text: &str) {
    let events = sse_events(text);
    let mut open: Option<u64> = None;
    let mut next_index = 0u64;
    let mut starts = 0;
    let mut stops = 0;
    let mut saw_delta_msg = false;
    let mut ended = false;
    for (i, (name, data)) in events.iter().enumerate() {
        assert!(!ended, "nothing after message_stop / error: {text}");
        assert_eq!(
            data["type"].as_str(),
            Some(name.as_str()),
            "event name matches payload type"
        );
        match name.as_str() {
            "message_start" => {
                assert_eq!(i, 0, "message_start comes first");
                starts += 1;
                assert_eq!(data["message"]["type"], "message");
                assert_eq!(data["message"]["role"], "assistant");
                assert!(data["message"]["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("msg_")));
                assert!(data["message"]["usage"]["input_tokens"].is_u64());
            }
            "ping" => assert!(starts == 1),
            "content_block_start" => {
                assert!(starts == 1 && !saw_delta_msg);
                assert_eq!(open, None, "one block at a time");
                assert_eq!(data["index"].as_u64(), Some(next_index), "indexes increase");
                open = Some(next_index);
                next_index += 1;
            }
            "content_block_delta" => {
                assert_eq!(data["index"].as_u64(), open, "delta targets the open block");
            }
            "content_block_stop" => {
                assert_eq!(data["index"].as_u64(), open, "stop targets the open block");
                open = None;
            }
            "message_delta" => {
                assert_eq!(open, None, "message_delta after every block stopped");
                assert!(!saw_delta_msg);
                saw_delta_msg = true;
                assert!(data["usage"]["output_tokens"].is_u64());
            }
            "message_stop" => {
                assert!(saw_delta_msg);
                stops += 1;
                ended = true;
            }
            "error" => {
                assert_eq!(open, None, "blocks are closed before the error");
                assert_eq!(data["error"]["type"], "api_error");
                ended = true;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(ended, "stream has an end: {text}");
    assert!(starts <= 1 && stops <= 1);
}

/// Normalizes request bodies where Anthropic has two spellings of one thing.
fn normalize_request(mut v: Value) -> Value {
    if let Some(messages) = v.get_mut("messages").and_then(Value::as_array_mut) {
        for m in messages {
            if let Some(Value::String(s)) = m.get("content").cloned() {
                m["content"] = json!([{"type": "text", "text": s}]);
            }
            if let Some(blocks) = m.get_mut("content").and_then(Value::as_array_mut) {
                for b in blocks {
                    if b.get("is_error") == Some(&json!(false)) {
                        b.as_object_mut().map(|o| o.remove("is_error"));
                    }
                }
            }
        }
    }
    v
}

fn anthropic_stream_text(t: &Value) -> Option<&str> {
    t["response"]["sse"].as_str()
}

// ------------------------------------------------------- the transcripts

#[test]
fn every_recorded_request_round_trips() {
    for (name, t) in transcripts() {
        let body = body_bytes(&t["request"]["body"]);
        let decoded = decode_request(None, &body);
        if t["request"]["path"]
            .as_str()
            .is_some_and(|p| p.contains("count_tokens"))
        {
            // Not a Messages request: no max_tokens, refused as Anthropic would.
            let err = decoded.expect_err("count_tokens body lacks max_tokens");
            assert_eq!(err.dialect, Dialect::Anthropic);
            assert_eq!(err.status(), 400);
            assert!(err.message.contains("max_tokens"), "{name}");
            continue;
        }
        let req = decoded.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let encoded: Value = serde_json::from_slice(&encode_request(&req)).expect("json");
        insta::with_settings!({snapshot_suffix => name.clone()}, {
            insta::assert_debug_snapshot!("request_canonical", req);
            insta::assert_json_snapshot!("request_reencoded", encoded);
        });
        let recorded: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            normalize_request(encoded),
            normalize_request(recorded),
            "{name}: re-encoded request differs"
        );
    }
}

#[test]
fn every_recorded_nonstream_response_translates_both_ways() {
    for (name, t) in transcripts() {
        if status(&t) != 200 || anthropic_stream_text(&t).is_some() {
            continue;
        }
        let model = t["request"]["body"]["model"].as_str().expect("model");
        let resp = decode_response(&body_bytes(&t["response"]["body"]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let body: Value = serde_json::from_slice(&encode_response(&resp, model)).expect("json");
        let stream = encode_stream(&resp.to_events(), model);
        insta::with_settings!({snapshot_suffix => name.clone()}, {
            insta::assert_debug_snapshot!("response_canonical", resp);
            insta::assert_json_snapshot!("response_reencoded", body);
            insta::assert_snapshot!("response_as_stream", stream);
        });
        // Our own body decodes to the same answer.
        let again = decode_response(&serde_json::to_vec(&body).expect("json")).expect("decode");
        assert_eq!(again.content, resp.content, "{name}");
        assert_eq!(again.finish, resp.finish, "{name}");
        assert_eq!(again.usage, resp.usage, "{name}");
        assert_eq!(again.id, resp.id, "{name}: msg_ ids are kept");
        // The recorded body and ours agree block by block.
        assert_eq!(body["content"], t["response"]["body"]["content"], "{name}");
        assert_eq!(body["stop_reason"], t["response"]["body"]["stop_reason"]);
        // And the stream form carries the same answer.
        assert_well_formed(&stream);
        let (events, complete) = decode_stream(&stream);
        assert!(complete);
        assert_eq!(summarize(&events), summarize(&resp.to_events()), "{name}");
    }
}

#[test]
fn every_recorded_stream_translates_both_ways() {
    let mut seen = 0;
    for (name, t) in transcripts() {
        let Some(sse) = anthropic_stream_text(&t) else {
            continue;
        };
        seen += 1;
        let model = t["request"]["body"]["model"].as_str().expect("model");
        let (events, complete) = decode_stream(sse);
        assert!(complete, "{name}: recorded stream ends with message_stop");
        let summary = summarize(&events);
        assert!(summary.finish.is_some(), "{name}");
        assert!(summary.usage.prompt_tokens > 0, "{name}");
        assert!(summary.usage.completion_tokens > 0, "{name}");
        assert!(summary.errors.is_empty(), "{name}");
        for (_, _, args) in summary.tools.values() {
            let args = if args.is_empty() { "{}" } else { args.as_str() };
            let parsed: Value = serde_json::from_str(args).expect("arguments are JSON");
            assert!(parsed.is_object(), "{name}");
        }

        let stream = encode_stream(&events, model);
        let resp = ChatResponse::from_events(&events);
        let body: Value = serde_json::from_slice(&encode_response(&resp, model)).expect("json");
        insta::with_settings!({snapshot_suffix => name.clone()}, {
            insta::assert_debug_snapshot!("stream_canonical", events);
            insta::assert_snapshot!("stream_reencoded", stream);
            insta::assert_json_snapshot!("stream_as_response", body);
        });
        assert_well_formed(&stream);
        let (again, complete) = decode_stream(&stream);
        assert!(complete, "{name}");
        assert_eq!(
            summarize(&again),
            summary,
            "{name}: re-decoded stream differs"
        );
        let resp_again = decode_response(&serde_json::to_vec(&body).expect("json")).expect("ok");
        assert_eq!(resp_again.usage, Some(summary.usage), "{name}");
        assert_eq!(resp_again.finish, summary.finish, "{name}");
    }
    assert!(seen >= 10, "expected the recorded streams");
}

#[test]
fn recorded_error_bodies_yield_their_message() {
    let mut seen = 0;
    for (name, t) in transcripts() {
        if status(&t) < 400 {
            continue;
        }
        seen += 1;
        let body = body_bytes(&t["response"]["body"]);
        let want = t["response"]["body"]["error"]["message"].as_str();
        assert_eq!(decode_error(&body).as_deref(), want, "{name}");
        let message = match decode_response(&body) {
            Err(arouter_core::translate::DecodeError::Upstream(message)) => Some(message),
            _ => None,
        };
        assert_eq!(message.as_deref(), want, "{name}");
    }
    assert_eq!(seen, 3);
}

#[test]
fn server_tool_blocks_are_skipped_but_text_around_them_kept() {
    let t = transcripts()
        .into_iter()
        .find(|(n, _)| n == "stream_server_tool_use_web_search")
        .expect("transcript")
        .1;
    let (events, _) = decode_stream(anthropic_stream_text(&t).expect("sse"));
    let s = summarize(&events);
    assert!(s.tools.is_empty(), "the web search ran at Anthropic");
    assert!(!s.text.is_empty());
    // message_delta's later input count supersedes message_start's.
    assert_eq!(s.usage.prompt_tokens, 12957);
    assert_eq!(s.usage.completion_tokens, 152);

    let t = transcripts()
        .into_iter()
        .find(|(n, _)| n == "tool_use_stream_tool_search")
        .expect("transcript")
        .1;
    let (events, _) = decode_stream(anthropic_stream_text(&t).expect("sse"));
    let s = summarize(&events);
    // Block 4 is the first client tool call: canonical index 0.
    assert_eq!(s.tools.len(), 1);
    let (id, name, args) = s.tools.get(&0).expect("tool 0");
    assert_eq!(id, "toolu_01EFn5wTNBYA8Reni8rbmnHT");
    assert_eq!(name, "get_exchange_rate");
    let args: Value = serde_json::from_str(args).expect("json");
    assert_eq!(args, json!({"from_currency": "USD", "to_currency": "EUR"}));
}

// ---------------------------------------------------------------- proptest

fn stream_transcripts() -> Vec<(String, String)> {
    transcripts()
        .into_iter()
        .filter_map(|(n, t)| anthropic_stream_text(&t).map(|s| (n, s.to_owned())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_split_gives_the_same_events(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        for (name, sse) in stream_transcripts() {
            let whole = decode_stream(&sse);
            let split = decode_stream_split(&sse, &cuts);
            prop_assert_eq!(&split, &whole, "{}", name);
            for (_, _, args) in summarize(&split.0).tools.into_values() {
                let args = if args.is_empty() { "{}".to_owned() } else { args };
                prop_assert!(serde_json::from_str::<Value>(&args).is_ok(), "{}", name);
            }
        }
    }

    #[test]
    fn encoder_output_is_always_well_formed(
        ops in proptest::collection::vec(0u8..9, 0..40),
        end in 0u8..3,
    ) {
        let mut enc = StreamEncoder::new("claude-test", true);
        let mut out = Vec::new();
        let mut tool = 0u32;
        for op in ops {
            let ev = match op {
                0 => StreamEvent::Start { id: "abc".into(), model: "m".into() },
                1 => StreamEvent::Text("hi ".into()),
                2 => StreamEvent::Reasoning { text: "think".into(), signature: None },
                3 => StreamEvent::Reasoning { text: String::new(), signature: Some("sig".into()) },
                4 => {
                    tool += 1;
                    StreamEvent::ToolCallStart { index: tool - 1, id: format!("t{tool}"), name: "f".into(), signature: None }
                }
                5 => StreamEvent::ToolCallArguments { index: tool.saturating_sub(1), fragment: "{\"a\":1}".into() },
                6 => StreamEvent::ToolCallArguments { index: 0, fragment: "{}".into() },
                7 => StreamEvent::Usage(Usage { prompt_tokens: 9, completion_tokens: 3, ..Usage::default() }),
                _ => StreamEvent::Finish(Finish { reason: FinishReason::Stop, native: "stop".into() }),
            };
            enc.on_event(&ev, &mut out);
        }
        match end {
            0 => enc.finish(&mut out),
            1 => enc.fail("upstream went away", &mut out),
            _ => {
                enc.on_event(&StreamEvent::Error { message: "boom".into() }, &mut out);
                enc.finish(&mut out);
            }
        }
        prop_assert!(enc.is_done());
        let text = String::from_utf8(out).expect("utf-8");
        assert_well_formed(&text);
    }
}

// ------------------------------------------------------ request mappings

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: vec![Part::Text(text.into())],
    }
}

fn encoded(req: &ChatRequest) -> Value {
    serde_json::from_slice(&encode_request(req)).expect("json")
}

fn base() -> ChatRequest {
    ChatRequest {
        model: "claude-sonnet-4-5".into(),
        messages: vec![user("hi")],
        ..ChatRequest::default()
    }
}

#[test]
fn upstream_target_is_the_messages_path() {
    assert_eq!(upstream_target("claude-x", false), "/v1/messages");
    assert_eq!(upstream_target("claude-x", true), "/v1/messages");
}

#[test]
fn request_defaults_and_scalar_fields() {
    let body = encoded(&base());
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["stream"], false);
    assert!(body.get("system").is_none());
    assert!(body.get("tools").is_none());

    let req = ChatRequest {
        system: vec!["one".into()],
        max_tokens: Some(100),
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(40),
        stop: vec!["END".into()],
        user: Some("u-1".into()),
        stream: true,
        ..base()
    };
    let body = encoded(&req);
    assert_eq!(body["system"], "one");
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["top_k"], 40);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["metadata"], json!({"user_id": "u-1"}));
    assert_eq!(body["stream"], true);

    let req = ChatRequest {
        system: vec!["one".into(), String::new(), "two".into()],
        ..base()
    };
    assert_eq!(
        encoded(&req)["system"],
        json!([{"type":"text","text":"one"},{"type":"text","text":"two"}])
    );
}

#[test]
fn messages_merge_into_alternating_turns() {
    let req = ChatRequest {
        messages: vec![
            user("a"),
            user("b"),
            Message {
                role: Role::Assistant,
                content: vec![
                    Part::Reasoning {
                        text: "unsigned, from another provider".into(),
                        signature: None,
                        redacted: None,
                    },
                    Part::Reasoning {
                        text: "signed".into(),
                        signature: Some("sig".into()),
                        redacted: None,
                    },
                    Part::Reasoning {
                        text: String::new(),
                        signature: None,
                        redacted: Some("opaque".into()),
                    },
                    Part::Text(String::new()),
                    Part::ToolCall {
                        id: "t1".into(),
                        name: "get".into(),
                        arguments: r#"{"q":1}"#.into(),
                        signature: None,
                    },
                    Part::ToolCall {
                        id: "t2".into(),
                        name: "get".into(),
                        arguments: "not json".into(),
                        signature: None,
                    },
                ],
            },
            Message {
                role: Role::Tool,
                content: vec![Part::ToolResult {
                    id: "t1".into(),
                    name: Some("get".into()),
                    content: "one".into(),
                    is_error: false,
                }],
            },
            Message {
                role: Role::Tool,
                content: vec![Part::ToolResult {
                    id: "t2".into(),
                    name: None,
                    content: "bad input".into(),
                    is_error: true,
                }],
            },
            Message {
                role: Role::User,
                content: vec![
                    Part::Text("look".into()),
                    Part::Image(Image::Url("https://x/y.png".into())),
                    Part::Image(Image::Base64 {
                        media_type: "image/png".into(),
                        data: "AAAA".into(),
                    }),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![Part::Text("Prefill".into())],
            },
        ],
        ..base()
    };
    insta::assert_json_snapshot!(
        "messages_merge_into_alternating_turns",
        encoded(&req)["messages"]
    );
    let messages = encoded(&req)["messages"].clone();
    let roles: Vec<&str> = messages
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(messages[0]["content"].as_array().map(Vec::len), Some(2));
    assert_eq!(messages[1]["content"][0]["type"], "thinking");
    assert_eq!(messages[1]["content"][1]["type"], "redacted_thinking");
    assert_eq!(messages[1]["content"][2]["input"], json!({"q": 1}));
    assert_eq!(messages[1]["content"][3]["input"], json!({}));
    assert_eq!(messages[2]["content"][0]["type"], "tool_result");
    assert!(messages[2]["content"][0].get("is_error").is_none());
    assert_eq!(messages[2]["content"][1]["is_error"], true);
    assert_eq!(messages[2]["content"][2]["type"], "text");
    assert_eq!(messages[2]["content"][3]["source"]["type"], "url");
    assert_eq!(messages[2]["content"][4]["source"]["type"], "base64");
    assert_eq!(messages[3]["content"][0]["text"], "Prefill");
}

#[test]
fn tool_results_come_before_text_in_a_merged_user_turn() {
    let req = ChatRequest {
        messages: vec![
            Message {
                role: Role::Assistant,
                content: vec![Part::ToolCall {
                    id: "t".into(),
                    name: "f".into(),
                    arguments: String::new(),
                    signature: None,
                }],
            },
            user("also this"),
            Message {
                role: Role::Tool,
                content: vec![Part::ToolResult {
                    id: "t".into(),
                    name: None,
                    content: "r".into(),
                    is_error: false,
                }],
            },
        ],
        ..base()
    };
    let body = encoded(&req);
    assert_eq!(body["messages"][0]["content"][0]["input"], json!({}));
    assert_eq!(body["messages"][1]["content"][0]["type"], "tool_result");
    assert_eq!(body["messages"][1]["content"][1]["type"], "text");
}

#[test]
fn tools_and_tool_choice() {
    let tool = Tool {
        name: "get_weather".into(),
        description: Some("Weather".into()),
        parameters: json!({"type":"object","properties":{"city":{"type":"string"}}}),
        strict: Some(true),
    };
    let no_params = Tool {
        name: "ping".into(),
        description: None,
        parameters: Value::Null,
        strict: None,
    };
    let with = |choice: Option<ToolChoice>, parallel: Option<bool>| ChatRequest {
        tools: vec![tool.clone(), no_params.clone()],
        tool_choice: choice,
        parallel_tool_calls: parallel,
        ..base()
    };
    let body = encoded(&with(None, None));
    assert_eq!(
        body["tools"],
        json!([
            {"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
            {"name":"ping","input_schema":{"type":"object","properties":{}}}
        ])
    );
    assert!(body.get("tool_choice").is_none());
    for (choice, parallel, want) in [
        (Some(ToolChoice::Auto), None, json!({"type":"auto"})),
        (Some(ToolChoice::Required), None, json!({"type":"any"})),
        (
            Some(ToolChoice::Named("ping".into())),
            None,
            json!({"type":"tool","name":"ping"}),
        ),
        (Some(ToolChoice::None), None, json!({"type":"none"})),
        (
            None,
            Some(false),
            json!({"type":"auto","disable_parallel_tool_use":true}),
        ),
        (
            Some(ToolChoice::Required),
            Some(false),
            json!({"type":"any","disable_parallel_tool_use":true}),
        ),
    ] {
        assert_eq!(
            encoded(&with(choice.clone(), parallel))["tool_choice"],
            want,
            "{choice:?}"
        );
    }
    // No tools: no tool_choice either.
    let req = ChatRequest {
        tool_choice: Some(ToolChoice::Required),
        ..base()
    };
    assert!(encoded(&req).get("tool_choice").is_none());
}

#[test]
fn response_formats() {
    let schema = json!({"type":"object","properties":{"a":{"type":"string"}}});
    let req = ChatRequest {
        response_format: Some(ResponseFormat::JsonSchema {
            name: "thing".into(),
            schema: schema.clone(),
            strict: Some(true),
        }),
        ..base()
    };
    assert_eq!(
        encoded(&req)["output_config"],
        json!({"format":{"type":"json_schema","schema":schema}})
    );
    let req = ChatRequest {
        system: vec!["Be nice.".into()],
        response_format: Some(ResponseFormat::JsonObject),
        ..base()
    };
    let body = encoded(&req);
    assert_eq!(body["system"][1]["text"], JSON_OBJECT_INSTRUCTION);
    assert!(body.get("output_config").is_none());
    let req = ChatRequest {
        response_format: Some(ResponseFormat::Text),
        ..base()
    };
    assert!(encoded(&req).get("system").is_none());
}

#[test]
fn reasoning_maps_to_thinking_with_room_for_the_answer() {
    let with = |effort: Option<&str>, budget: Option<u32>, max: Option<u32>| ChatRequest {
        reasoning: Some(Reasoning {
            effort: effort.map(str::to_owned),
            budget_tokens: budget,
        }),
        max_tokens: max,
        temperature: Some(0.2),
        top_k: Some(5),
        top_p: Some(0.5),
        ..base()
    };
    for (effort, budget, max, want_budget, want_max) in [
        (Some("low"), None, None, 1024, 1024 + 4096),
        (Some("medium"), None, None, 4096, 4096 + 4096),
        (Some("high"), None, None, 16384, 16384 + 4096),
        (None, Some(2000), Some(10000), 2000, 10000),
        (None, Some(2000), Some(1000), 2000, 3000),
    ] {
        let body = encoded(&with(effort, budget, max));
        assert_eq!(
            body["thinking"],
            json!({"type":"enabled","budget_tokens":want_budget}),
            "{effort:?}"
        );
        assert_eq!(
            body["max_tokens"], want_max,
            "{effort:?} {budget:?} {max:?}"
        );
        assert!(body["max_tokens"].as_u64() > body["thinking"]["budget_tokens"].as_u64());
        // Anthropic refuses these with thinking on.
        assert!(body.get("temperature").is_none());
        assert!(body.get("top_k").is_none());
        assert!(body.get("top_p").is_none());
    }
    let body = encoded(&with(Some("none"), None, None));
    assert!(body.get("thinking").is_none());
    assert_eq!(body["temperature"], 0.2);
}

#[test]
fn extra_is_forwarded_but_never_overrides_or_leaks_openai_keys() {
    let mut req = base();
    req.max_tokens = Some(10);
    req.user = Some("u".into());
    for (k, v) in [
        ("service_tier", json!("auto")),
        ("max_tokens", json!(99)),
        ("metadata", json!({"user_id": "other", "x": 1})),
        ("frequency_penalty", json!(0.5)),
        ("seed", json!(7)),
        ("stream_options", json!({"include_usage": true})),
        ("stop", json!(["x"])),
    ] {
        req.extra.insert(k.into(), v);
    }
    let body = encoded(&req);
    assert_eq!(body["service_tier"], "auto");
    assert_eq!(body["max_tokens"], 10);
    assert_eq!(body["metadata"], json!({"user_id": "u", "x": 1}));
    for k in ["frequency_penalty", "seed", "stream_options", "stop"] {
        assert!(body.get(k).is_none(), "{k}");
    }
}

// ------------------------------------------------------ request decoding

fn decode(body: Value) -> Result<ChatRequest, arouter_core::api::ApiError> {
    decode_request(None, &serde_json::to_vec(&body).expect("json"))
}

fn assert_invalid(body: Value, needle: &str) {
    let err = decode(body.clone()).expect_err("invalid");
    assert_eq!(err.dialect, Dialect::Anthropic);
    assert_eq!(err.kind, ErrorKind::InvalidRequest, "{body}");
    assert!(
        err.message.contains(needle),
        "{} lacks {needle}",
        err.message
    );
    let rendered: Value = serde_json::from_slice(&err.body()).expect("json");
    assert_eq!(rendered["error"]["type"], "invalid_request_error");
}

#[test]
fn decode_request_validates() {
    let ok = json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]});
    assert!(decode(ok.clone()).is_ok());
    assert_invalid(
        json!({"model":"m","messages":[{"role":"user","content":"hi"}]}),
        "max_tokens",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"hi"}]}),
        "max_tokens",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[]}),
        "messages",
    );
    assert_invalid(json!({"model":"m","max_tokens":10}), "messages");
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[{"role":"system","content":"x"}]}),
        "messages.0.role",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":5}]}),
        "messages.0.content",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text"}]}]}),
        "messages.0.content.0.text",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}),
        "document",
    );
    assert_invalid(
        json!({"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}),
        "model",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"sometimes"}}),
        "tool_choice",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"temperature":"hot"}),
        "temperature",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"system":7}),
        "system",
    );
    assert_invalid(
        json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled"}}),
        "budget_tokens",
    );
    for bad in [&b"not json"[..], b"[1,2]", b"", b"{\"model\":"] {
        let err = decode_request(None, bad).expect_err("invalid");
        assert_eq!(err.status(), 400);
        assert_eq!(err.dialect, Dialect::Anthropic);
    }
    // The route's model wins over the body's.
    let req = decode_request(Some("routed"), &serde_json::to_vec(&ok).expect("json")).expect("ok");
    assert_eq!(req.model, "routed");
    assert!(req.extra.get("model").is_none());
}

#[test]
fn decode_request_maps_every_field() {
    let body = json!({
        "model": "claude-x",
        "max_tokens": 2048,
        "system": [{"type":"text","text":"A"},{"type":"text","text":"B","cache_control":{"type":"ephemeral"}}],
        "messages": [
            {"role":"user","content":[
                {"type":"text","text":"see"},
                {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"QQ=="}},
                {"type":"image","source":{"type":"url","url":"https://i/x.png"}}
            ]},
            {"role":"assistant","content":[
                {"type":"thinking","thinking":"hmm","signature":"SIG"},
                {"type":"redacted_thinking","data":"RED"},
                {"type":"text","text":"calling"},
                {"type":"server_tool_use","id":"srv","name":"web_search","input":{}},
                {"type":"tool_use","id":"tu1","name":"lookup","input":{"k":"v"}}
            ]},
            {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"tu1","content":[{"type":"text","text":"line1"},{"type":"text","text":"line2"}],"is_error":true},
                {"type":"text","text":"and then?"}
            ]},
            {"role":"assistant","content":"Sure:"}
        ],
        "tools": [{"name":"lookup","description":"Look up","input_schema":{"type":"object"}}],
        "tool_choice": {"type":"tool","name":"lookup","disable_parallel_tool_use":true},
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": 12,
        "stop_sequences": ["###"],
        "stream": true,
        "metadata": {"user_id":"user-9"},
        "thinking": {"type":"enabled","budget_tokens":1500},
        "output_config": {"format":{"type":"json_schema","schema":{"type":"object","title":"Thing"}},"effort":"high"},
        "service_tier": "standard_only"
    });
    let req = decode(body).expect("valid");
    insta::assert_debug_snapshot!("decode_request_maps_every_field", req);
    assert_eq!(req.system, ["A", "B"]);
    assert_eq!(req.max_tokens, Some(2048));
    assert_eq!(req.messages.len(), 5);
    assert_eq!(req.messages[2].role, Role::Tool);
    assert_eq!(
        req.messages[2].content[0],
        Part::ToolResult {
            id: "tu1".into(),
            name: Some("lookup".into()),
            content: "line1\nline2".into(),
            is_error: true
        }
    );
    assert_eq!(req.messages[3].role, Role::User);
    assert_eq!(req.messages[4].role, Role::Assistant);
    assert_eq!(req.messages[1].content.len(), 4, "server_tool_use dropped");
    assert_eq!(req.tool_choice, Some(ToolChoice::Named("lookup".into())));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(
        req.reasoning.as_ref().and_then(|r| r.budget_tokens),
        Some(1500)
    );
    assert_eq!(req.user.as_deref(), Some("user-9"));
    assert!(req.stream && req.include_usage);
    assert!(
        matches!(req.response_format, Some(ResponseFormat::JsonSchema { ref name, .. }) if name == "Thing")
    );
    assert_eq!(
        req.extra.get("output_config"),
        Some(&json!({"effort":"high"}))
    );
    assert_eq!(req.extra.get("service_tier"), Some(&json!("standard_only")));
    assert!(
        req.extra.get("tools").is_none(),
        "plain tools need no raw copy"
    );

    // And back: the tool result precedes the user's text in one turn.
    let body = encoded(&req);
    assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(body["messages"][2]["content"][1]["text"], "and then?");
    assert_eq!(body["output_config"]["effort"], "high");
    assert_eq!(body["service_tier"], "standard_only");
}

#[test]
fn anthropic_only_tool_fields_survive_through_extra() {
    let tools = json!([
        {"name":"a","description":"A","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}},
        {"type":"web_search_20250305","name":"web_search","max_uses":2}
    ]);
    let req = decode(json!({
        "model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],
        "tools": tools, "thinking": {"type":"adaptive"}
    }))
    .expect("valid");
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.extra.get("thinking"), Some(&json!({"type":"adaptive"})));
    let body = encoded(&req);
    assert_eq!(body["tools"], tools);
    assert_eq!(body["thinking"], json!({"type":"adaptive"}));
}

// --------------------------------------------------------------- responses

#[test]
fn response_ids_stop_reasons_and_usage() {
    let resp = ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-x".into(),
        created: Some(1),
        content: vec![
            Part::Text("calling".into()),
            Part::ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: r#"{"a":1}"#.into(),
                signature: None,
            },
        ],
        finish: Some(Finish {
            reason: FinishReason::Stop,
            native: "stop".into(),
        }),
        usage: Some(Usage {
            prompt_tokens: 100,
            completion_tokens: 20,
            cached_tokens: 60,
            cache_write_tokens: 10,
            reasoning_tokens: 5,
        }),
    };
    let body: Value = serde_json::from_slice(&encode_response(&resp, "label")).expect("json");
    insta::assert_json_snapshot!("response_from_another_provider", body);
    assert_eq!(body["id"], "msg_chatcmpl-1");
    assert_eq!(body["model"], "label");
    assert_eq!(
        body["stop_reason"], "tool_use",
        "a tool call ended the turn"
    );
    assert_eq!(
        body["usage"],
        json!({"input_tokens":30,"cache_creation_input_tokens":10,"cache_read_input_tokens":60,"output_tokens":20})
    );
    for (reason, native, want) in [
        (FinishReason::Stop, "stop_sequence", "stop_sequence"),
        (FinishReason::Stop, "STOP", "end_turn"),
        (FinishReason::Length, "length", "max_tokens"),
        (FinishReason::ContentFilter, "content_filter", "refusal"),
    ] {
        let resp = ChatResponse {
            finish: Some(Finish {
                reason,
                native: native.into(),
            }),
            content: vec![Part::Text("x".into())],
            ..ChatResponse::default()
        };
        let body: Value = serde_json::from_slice(&encode_response(&resp, "m")).expect("json");
        assert_eq!(body["stop_reason"], want);
    }
}

#[test]
fn decode_response_rejects_malformed_bodies() {
    assert!(decode_response(b"").is_err());
    assert!(decode_response(b"[]").is_err());
    assert!(decode_response(br#"{"content":"text"}"#).is_err());
    let resp = decode_response(br#"{"id":"msg_1","content":[{"type":"mystery"}],"usage":{"input_tokens":3,"cache_read_input_tokens":4,"cache_creation_input_tokens":5,"output_tokens":6},"stop_reason":"max_tokens"}"#)
        .expect("ok");
    assert!(resp.content.is_empty());
    assert_eq!(resp.finish.map(|f| f.reason), Some(FinishReason::Length));
    assert_eq!(
        resp.usage,
        Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 6,
            cached_tokens: 4,
            cache_write_tokens: 5,
            reasoning_tokens: 0
        })
    );
}

// ----------------------------------------------------------------- streams

fn feed(dec: &mut StreamDecoder, events: &[(&str, Value)]) -> Vec<StreamEvent> {
    let mut out = Vec::new();
    for (name, data) in events {
        dec.on_event(Some(name), &data.to_string(), &mut out);
    }
    out
}

#[test]
fn stream_decoder_maps_every_event() {
    let mut dec = StreamDecoder::new();
    let out = feed(
        &mut dec,
        &[
            (
                "message_start",
                json!({"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":1,"output_tokens":1}}}),
            ),
            ("ping", json!({"type":"ping"})),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"SIG"}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":0}),
            ),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"RED"}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":1}),
            ),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Hi"}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{}}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":2}),
            ),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"tu","name":"f","input":{}}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":""}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"1}"}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":3}),
            ),
            // A delta for a block that is not open is ignored.
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"junk"}}),
            ),
            (
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}),
            ),
            ("message_stop", json!({"type":"message_stop"})),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"after stop"}}),
            ),
        ],
    );
    insta::assert_debug_snapshot!("stream_decoder_maps_every_event", out);
    let s = summarize(&out);
    assert_eq!(s.reasoning, "hmm");
    assert_eq!(s.signatures, ["SIG"]);
    assert_eq!(s.text, "Hi");
    assert_eq!(
        s.tools.get(&0),
        Some(&("tu".into(), "f".into(), "{\"a\":1}".into()))
    );
    assert_eq!(
        s.finish.as_ref().map(|f| f.reason),
        Some(FinishReason::ToolCalls)
    );
    assert_eq!(s.usage.prompt_tokens, 16);
    assert_eq!(s.usage.cached_tokens, 5);
    assert_eq!(s.usage.cache_write_tokens, 1);
    assert_eq!(s.usage.completion_tokens, 42);
    assert!(dec.finish(&mut Vec::new()));
}

#[test]
fn stream_decoder_reports_errors_and_truncation() {
    let mut dec = StreamDecoder::new();
    let out = feed(
        &mut dec,
        &[
            (
                "message_start",
                json!({"type":"message_start","message":{"id":"msg_1","model":"c","usage":{"input_tokens":1}}}),
            ),
            (
                "error",
                json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
            ),
        ],
    );
    assert_eq!(
        out.last(),
        Some(&StreamEvent::Error {
            message: "Overloaded".into()
        })
    );
    assert!(!dec.finish(&mut Vec::new()));

    // Truncated: no message_stop.
    let mut dec = StreamDecoder::new();
    feed(
        &mut dec,
        &[(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","model":"c"}}),
        )],
    );
    assert!(!dec.finish(&mut Vec::new()));

    // Malformed data is an error, not a panic; the stream is then over.
    let mut dec = StreamDecoder::new();
    let mut out = Vec::new();
    dec.on_event(Some("content_block_delta"), "{not json", &mut out);
    dec.on_event(Some("message_stop"), r#"{"type":"message_stop"}"#, &mut out);
    assert!(matches!(out.as_slice(), [StreamEvent::Error { .. }]));
    assert!(!dec.finish(&mut out));

    // Odd shapes are ignored without panicking.
    let mut dec = StreamDecoder::new();
    let mut out = Vec::new();
    for data in [
        "null",
        "[]",
        r#"{"type":"content_block_start"}"#,
        r#"{"type":"content_block_start","index":"x","content_block":{}}"#,
        r#"{"type":"content_block_delta","index":18446744073709551615,"delta":{}}"#,
        r#"{"type":"message_delta","delta":null,"usage":"lots"}"#,
        r#"{"type":"message_start"}"#,
        r#"{"type":"error"}"#,
    ] {
        dec.on_event(None, data, &mut out);
    }
    assert!(matches!(out.last(), Some(StreamEvent::Error { .. })));
}

#[test]
fn stream_encoder_waits_for_usage_that_follows_the_finish() {
    // OpenAI order: content, finish, then the usage chunk.
    let events = [
        StreamEvent::Start {
            id: "chatcmpl-9".into(),
            model: "gpt".into(),
        },
        StreamEvent::Text("Hello".into()),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "f".into(),
            signature: None,
        },
        StreamEvent::ToolCallArguments {
            index: 0,
            fragment: "{\"a\"".into(),
        },
        StreamEvent::ToolCallArguments {
            index: 0,
            fragment: ":1}".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "call_2".into(),
            name: "g".into(),
            signature: None,
        },
        StreamEvent::Finish(Finish {
            reason: FinishReason::ToolCalls,
            native: "tool_calls".into(),
        }),
        StreamEvent::Usage(Usage {
            prompt_tokens: 50,
            completion_tokens: 7,
            cached_tokens: 20,
            ..Usage::default()
        }),
    ];
    let text = encode_stream(&events, "label-model");
    insta::assert_snapshot!("stream_encoder_openai_order", text);
    assert_well_formed(&text);
    let parsed = sse_events(&text);
    let delta = parsed
        .iter()
        .find(|(n, _)| n == "message_delta")
        .expect("message_delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta.1["usage"]["output_tokens"], 7);
    assert_eq!(delta.1["usage"]["input_tokens"], 30);
    assert_eq!(delta.1["usage"]["cache_read_input_tokens"], 20);
    assert_eq!(parsed[0].1["message"]["id"], "msg_chatcmpl-9");
    assert_eq!(parsed[0].1["message"]["model"], "label-model");
    let (again, complete) = decode_stream(&text);
    assert!(complete);
    let s = summarize(&again);
    assert_eq!(s.text, "Hello");
    assert_eq!(s.tools.get(&0).map(|t| t.2.as_str()), Some("{\"a\":1}"));
    assert_eq!(s.tools.get(&1).map(|t| t.1.as_str()), Some("g"));
    assert_eq!(s.usage.prompt_tokens, 50);
    assert_eq!(s.usage.completion_tokens, 7);
}

#[test]
fn stream_encoder_closes_open_blocks_on_fail_and_finish() {
    // fail with a tool block open.
    let mut enc = StreamEncoder::new("m", false);
    let mut out = Vec::new();
    enc.on_event(
        &StreamEvent::ToolCallStart {
            index: 0,
            id: "t".into(),
            name: "f".into(),
            signature: None,
        },
        &mut out,
    );
    enc.on_event(
        &StreamEvent::ToolCallArguments {
            index: 0,
            fragment: "{\"partial".into(),
        },
        &mut out,
    );
    assert!(!enc.is_done());
    enc.fail("upstream reset", &mut out);
    assert!(enc.is_done());
    let text = String::from_utf8(out.clone()).expect("utf-8");
    insta::assert_snapshot!("stream_encoder_fail_with_open_block", text);
    assert_well_formed(&text);
    let parsed = sse_events(&text);
    assert_eq!(parsed.last().map(|e| e.0.as_str()), Some("error"));
    assert_eq!(
        parsed.last().map(|e| e.1["error"]["message"].clone()),
        Some(json!("upstream reset"))
    );
    // Nothing more after the end.
    let len = out.len();
    enc.finish(&mut out);
    enc.on_event(&StreamEvent::Text("late".into()), &mut out);
    assert_eq!(out.len(), len);

    // finish with a thinking block open and no finish reason.
    let mut enc = StreamEncoder::new("m", false);
    let mut out = Vec::new();
    enc.on_event(
        &StreamEvent::Reasoning {
            text: "step".into(),
            signature: None,
        },
        &mut out,
    );
    enc.finish(&mut out);
    let text = String::from_utf8(out).expect("utf-8");
    assert_well_formed(&text);
    assert!(text.contains("\"stop_reason\":null"));

    // An empty stream still has a message.
    let text = encode_stream(&[], "m");
    assert_well_formed(&text);
    assert!(text.contains("msg_arouter"));

    // An Error event fails the stream.
    let mut enc = StreamEncoder::new("m", false);
    let mut out = Vec::new();
    enc.on_event(&StreamEvent::Text("partial".into()), &mut out);
    enc.on_event(
        &StreamEvent::Error {
            message: "boom".into(),
        },
        &mut out,
    );
    assert!(enc.is_done());
    assert_well_formed(&String::from_utf8(out).expect("utf-8"));
}

#[test]
fn stream_encoder_splits_thinking_at_signatures_and_drops_late_fragments() {
    let mut enc = StreamEncoder::new("m", false);
    let mut out = Vec::new();
    for ev in [
        StreamEvent::Reasoning {
            text: "a".into(),
            signature: None,
        },
        StreamEvent::Reasoning {
            text: String::new(),
            signature: Some("S1".into()),
        },
        StreamEvent::Reasoning {
            text: "b".into(),
            signature: Some("S2".into()),
        },
        StreamEvent::ToolCallStart {
            index: 0,
            id: "t0".into(),
            name: "f".into(),
            signature: None,
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "t1".into(),
            name: "g".into(),
            signature: None,
        },
        // Interleaved: tool 0's block is already stopped.
        StreamEvent::ToolCallArguments {
            index: 0,
            fragment: "{}".into(),
        },
        StreamEvent::ToolCallArguments {
            index: 7,
            fragment: "{}".into(),
        },
    ] {
        enc.on_event(&ev, &mut out);
    }
    enc.finish(&mut out);
    assert_eq!(enc.dropped_fragments(), 2);
    let text = String::from_utf8(out).expect("utf-8");
    assert_well_formed(&text);
    let starts = sse_events(&text)
        .into_iter()
        .filter(|(n, _)| n == "content_block_start")
        .count();
    assert_eq!(starts, 4, "two thinking blocks and two tool blocks");
    let (events, _) = decode_stream(&text);
    assert_eq!(summarize(&events).signatures, ["S1", "S2"]);
}

#[test]
fn integers_written_with_a_zero_fraction_are_integers() {
    // JSON Schema's `integer` is any number without a fraction, and some
    // clients serialize integers as `310.0`.
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 310.0, "top_k": 98.0,
        "thinking": {"type": "enabled", "budget_tokens": 2048.0},
        "messages": [{"role": "user", "content": "hi"}],
    });
    let req = decode_request(None, &body_bytes(&body)).expect("accepted");
    assert_eq!(req.max_tokens, Some(310));
    assert_eq!(req.top_k, Some(98));
    assert_eq!(req.reasoning.and_then(|r| r.budget_tokens), Some(2048));
    let fractional =
        json!({"model": "m", "max_tokens": 1.5, "messages": [{"role": "user", "content": "hi"}]});
    let err = decode_request(None, &body_bytes(&fractional)).expect_err("a fraction is no integer");
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
}
