//! The OpenAI dialect <-> canonical bridge: every recorded chat transcript
//! through the decoders and encoders (snapshots plus semantic round trips),
//! the stream shape the OpenAI SDKs rely on, split invariance, and one test
//! per mapping, malformed input and truncated stream.

use std::collections::BTreeMap;

use arouter_core::sse::SseDecoder;
use arouter_core::translate::canonical::{
    ChatRequest, ChatResponse, Finish, Image, Message, Part, Reasoning, ResponseFormat, Role,
    StreamEvent, Tool, ToolChoice,
};
use arouter_core::translate::finish::FinishReason;
use arouter_core::translate::openai::canonical::{
    decode_error, decode_request, decode_response, encode_request, encode_response, StreamDecoder,
    StreamEncoder,
};
use arouter_core::usage::Usage;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

// ------------------------------------------------------------ transcripts

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../conformance/transcripts/openai"
);

/// Every chat transcript, by file stem, sorted.
fn chat_transcripts() -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .expect("transcripts directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    let all: Vec<(String, Value)> = names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(format!("{DIR}/{name}.json")).expect("read");
            let t: Value = serde_json::from_str(&text).expect("parse");
            (name, t)
        })
        .filter(|(_, t)| t["request"]["path"] == "/v1/chat/completions")
        .collect();
    assert!(all.len() >= 10, "chat transcripts found: {}", all.len());
    all
}

fn ok_chat_transcripts() -> Vec<(String, Value)> {
    chat_transcripts()
        .into_iter()
        .filter(|(_, t)| t["response"]["status"] == 200)
        .collect()
}

fn stream_transcripts() -> Vec<(String, Value)> {
    ok_chat_transcripts()
        .into_iter()
        .filter(|(_, t)| t["response"]["sse"].is_string())
        .collect()
}

fn request_bytes(t: &Value) -> Vec<u8> {
    serde_json::to_vec(&t["request"]["body"]).expect("request body")
}

// --------------------------------------------------------------- helpers

/// Feeds SSE bytes cut at `cuts` through `SseDecoder` + `StreamDecoder`;
/// returns the events and whether the decoder called the stream complete.
fn decode_stream(bytes: &[u8], cuts: &[usize]) -> (Vec<StreamEvent>, bool) {
    let mut sse = SseDecoder::new(1 << 20);
    let mut dec = StreamDecoder::new();
    let mut events = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    cuts.sort_unstable();
    let mut at = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        sse.feed(&bytes[at..cut], |ev| {
            dec.on_event(ev.event, ev.data, &mut events)
        })
        .expect("valid SSE");
        at = cut;
    }
    assert!(!sse.finish(), "no partial event left");
    let complete = dec.finish(&mut events);
    (events, complete)
}

fn decode_sse_text(text: &str) -> (Vec<StreamEvent>, bool) {
    decode_stream(text.as_bytes(), &[])
}

fn encode_stream(events: &[StreamEvent], model: &str, include_usage: bool) -> String {
    let mut enc = StreamEncoder::new(model, include_usage);
    let mut out = Vec::new();
    for e in events {
        enc.on_event(e, &mut out);
    }
    enc.finish(&mut out);
    assert!(enc.is_done());
    String::from_utf8(out).expect("utf-8")
}

fn data_lines(sse: &str) -> Vec<String> {
    let mut sse_dec = SseDecoder::new(1 << 20);
    let mut data = Vec::new();
    sse_dec
        .feed(sse.as_bytes(), |ev| data.push(ev.data.to_owned()))
        .expect("valid SSE");
    data
}

/// What the OpenAI SDKs assume of a stream; returns the JSON chunks.
fn check_sdk_invariants(sse: &str, include_usage: bool) -> Vec<Value> {
    let data = data_lines(sse);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{sse}");
    assert_eq!(data.iter().filter(|d| *d == "[DONE]").count(), 1);
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect();
    let mut ids: BTreeMap<u64, usize> = BTreeMap::new();
    let mut names: BTreeMap<u64, usize> = BTreeMap::new();
    let mut finishes = 0;
    let mut usages = 0;
    let mut header: Option<(Value, Value, Value)> = None;
    let mut first = true;
    for c in &chunks {
        if c.get("error").is_some() {
            assert!(c["error"]["message"].is_string());
            continue;
        }
        assert_eq!(c["object"], "chat.completion.chunk");
        let h = (c["id"].clone(), c["created"].clone(), c["model"].clone());
        assert!(h.0.as_str().is_some_and(|s| s.starts_with("chatcmpl-")));
        match &header {
            Some(seen) => assert_eq!(seen, &h, "every chunk has the same id/created/model"),
            None => header = Some(h),
        }
        if first {
            assert_eq!(c["choices"][0]["delta"]["role"], "assistant", "role first");
            first = false;
        }
        if c.get("usage").is_some_and(|u| !u.is_null()) {
            usages += 1;
            assert_eq!(c["choices"], json!([]));
            assert_eq!(finishes, 1, "usage after the finish chunk");
        }
        for choice in c["choices"].as_array().expect("choices") {
            assert_eq!(choice["index"], 0);
            if !choice["finish_reason"].is_null() {
                finishes += 1;
                assert!(choice.get("native_finish_reason").is_some());
            }
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let index = call["index"].as_u64().expect("tool index");
                if call.get("id").is_some() {
                    *ids.entry(index).or_default() += 1;
                }
                if call["function"].get("name").is_some() {
                    *names.entry(index).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(finishes, 1, "exactly one finish_reason:\n{sse}");
    assert!(usages <= 1, "at most one usage chunk");
    if !include_usage {
        assert_eq!(usages, 0);
    }
    assert_eq!(
        ids.keys().collect::<Vec<_>>(),
        names.keys().collect::<Vec<_>>()
    );
    assert!(ids.values().all(|&n| n == 1), "each tool id once: {ids:?}");
    assert!(
        names.values().all(|&n| n == 1),
        "each tool name once: {names:?}"
    );
    chunks
}

/// The fields a round trip must keep: text, tool calls (id, name,
/// arguments), finish, usage.
type Essentials = (
    String,
    Vec<(String, String, String)>,
    Option<Finish>,
    Option<Usage>,
);

fn essentials(r: &ChatResponse) -> Essentials {
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in &r.content {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::ToolCall {
                id,
                name,
                arguments,
                ..
            } => calls.push((id.clone(), name.clone(), arguments.clone())),
            _ => {}
        }
    }
    (text, calls, r.finish.clone(), r.usage)
}

/// A recorded request body reduced to what the bridge translates, in one
/// spelling: untranslated fields gone, empty assistant turns gone, a
/// `null`/empty content removed, `stream: false` removed, `developer`
/// spelled `system`.
fn translated_fields(body: &Value) -> Value {
    const KEPT: &[&str] = &[
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "response_format",
        "reasoning_effort",
        "stream",
        "stream_options",
        "user",
    ];
    let mut out = Map::new();
    for (k, v) in body.as_object().expect("object") {
        let k = if k == "max_tokens" {
            "max_completion_tokens"
        } else {
            k.as_str()
        };
        if KEPT.contains(&k) && !(k == "stream" && v == &json!(false)) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    if let Some(Value::Array(messages)) = out.get_mut("messages") {
        for m in messages.iter_mut() {
            let m = m.as_object_mut().expect("message");
            if m.get("content").is_some_and(|c| c.is_null() || c == "") {
                m.remove("content");
            }
            // The canonical form has one kind of instructions.
            if m.get("role").is_some_and(|r| r == "developer") {
                m.insert("role".into(), json!("system"));
            }
        }
        messages.retain(|m| m.as_object().is_some_and(|m| m.len() > 1));
    }
    Value::Object(out)
}

// ------------------------------------------------- transcripts: requests

#[test]
fn every_chat_request_decodes_and_re_encodes() {
    for (name, t) in chat_transcripts() {
        let canonical =
            decode_request(&request_bytes(&t)).unwrap_or_else(|e| panic!("{name}: {}", e.message));
        let encoded: Value = serde_json::from_slice(&encode_request(&canonical)).expect("json");
        insta::with_settings!({snapshot_suffix => name.as_str()}, {
            insta::assert_debug_snapshot!("request_canonical", canonical);
            insta::assert_json_snapshot!("request_encoded", encoded);
        });
        assert_eq!(
            translated_fields(&encoded),
            translated_fields(&t["request"]["body"]),
            "{name}: the re-encoded request says what the recorded one said"
        );
        // Decoding the encoded body gives the same canonical request, bar
        // the extras the encoder does not forward to another dialect.
        let again = decode_request(&serde_json::to_vec(&encoded).expect("bytes")).expect("again");
        let mut expected = canonical.clone();
        expected.extra.retain(|k, _| encoded.get(k).is_some());
        assert_eq!(again, expected, "{name}");
    }
}

// ------------------------------------------------ transcripts: responses

#[test]
fn every_chat_response_decodes_and_re_encodes() {
    for (name, t) in ok_chat_transcripts() {
        let (canonical, events) = match t["response"]["sse"].as_str() {
            Some(sse) => {
                let (events, complete) = decode_sse_text(sse);
                assert!(complete, "{name}");
                insta::with_settings!({snapshot_suffix => name.as_str()}, {
                    insta::assert_debug_snapshot!("stream_canonical", events);
                });
                (ChatResponse::from_events(&events), events)
            }
            None => {
                let body = serde_json::to_vec(&t["response"]["body"]).expect("body");
                let resp = decode_response(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
                insta::with_settings!({snapshot_suffix => name.as_str()}, {
                    insta::assert_debug_snapshot!("response_canonical", resp);
                });
                let events = resp.to_events();
                (resp, events)
            }
        };
        let label = format!("openai/{}", canonical.model);

        // Non-stream: equal to the recorded answer where it matters.
        let body: Value =
            serde_json::from_slice(&encode_response(&canonical, &label)).expect("json");
        if let Some(recorded) = t["response"].get("body") {
            let (want, got) = (&recorded["choices"][0], &body["choices"][0]);
            assert_eq!(
                got["message"]["content"], want["message"]["content"],
                "{name}"
            );
            assert_eq!(
                got["message"]["tool_calls"], want["message"]["tool_calls"],
                "{name}"
            );
            assert_eq!(got["finish_reason"], want["finish_reason"], "{name}");
            for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
                assert_eq!(body["usage"][k], recorded["usage"][k], "{name} {k}");
            }
            assert_eq!(body["id"], recorded["id"]);
            assert_eq!(body["created"], recorded["created"]);
        }
        assert_eq!(
            decode_response(&serde_json::to_vec(&body).expect("bytes"))
                .map(|r| essentials(&r))
                .ok(),
            Some(essentials(&canonical)),
            "{name}"
        );

        // Stream: the SDK shape, and it decodes back to the same answer.
        let sse = encode_stream(&events, &label, true);
        check_sdk_invariants(&sse, true);
        let (again, complete) = decode_sse_text(&sse);
        assert!(complete);
        assert_eq!(
            essentials(&ChatResponse::from_events(&again)),
            essentials(&canonical),
            "{name}"
        );
        insta::with_settings!({snapshot_suffix => name.as_str()}, {
            insta::assert_json_snapshot!("response_encoded", body);
            insta::assert_snapshot!("stream_encoded", sse);
        });
    }
}

#[test]
fn every_error_transcript_yields_its_message() {
    let dir = std::fs::read_dir(DIR).expect("dir");
    let mut seen = 0;
    for e in dir.flatten() {
        let text = std::fs::read_to_string(e.path()).expect("read");
        let t: Value = serde_json::from_str(&text).expect("json");
        if t["response"]["status"] == 200 {
            continue;
        }
        let body = serde_json::to_vec(&t["response"]["body"]).expect("body");
        assert_eq!(
            decode_error(&body).as_deref(),
            t["response"]["body"]["error"]["message"].as_str()
        );
        assert!(decode_response(&body).is_err());
        seen += 1;
    }
    assert!(seen >= 4);
}

#[test]
fn recorded_tool_call_arguments_are_valid_json() {
    for (name, t) in stream_transcripts() {
        let (events, _) = decode_sse_text(t["response"]["sse"].as_str().expect("sse"));
        for p in ChatResponse::from_events(&events).content {
            if let Part::ToolCall { arguments, .. } = p {
                assert!(
                    serde_json::from_str::<Value>(&arguments).is_ok(),
                    "{name}: {arguments}"
                );
            }
        }
    }
}

#[test]
fn every_byte_split_of_a_recorded_stream_gives_the_same_events() {
    for (name, t) in stream_transcripts() {
        let bytes = t["response"]["sse"].as_str().expect("sse").as_bytes();
        let whole = decode_stream(bytes, &[]);
        for cut in 1..bytes.len() {
            assert_eq!(decode_stream(bytes, &[cut]), whole, "{name} cut at {cut}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn arbitrary_splits_give_the_same_events(
        which in 0usize..16,
        cuts in proptest::collection::vec(0usize..50_000, 0..24),
    ) {
        let all = stream_transcripts();
        let (_, t) = &all[which % all.len()];
        let bytes = t["response"]["sse"].as_str().expect("sse").as_bytes();
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        let (events, complete) = decode_stream(bytes, &cuts);
        prop_assert!(complete);
        prop_assert_eq!(&events, &decode_stream(bytes, &[]).0);
        for p in ChatResponse::from_events(&events).content {
            if let Part::ToolCall { arguments, .. } = p {
                prop_assert!(serde_json::from_str::<Value>(&arguments).is_ok());
            }
        }
    }

    /// Whatever canonical events arrive, in whatever order, the client
    /// stream keeps the SDK shape.
    #[test]
    fn any_event_sequence_encodes_to_a_well_formed_stream(
        ops in proptest::collection::vec(0u8..9, 0..40),
        include_usage in any::<bool>(),
        fail in any::<bool>(),
    ) {
        let mut enc = StreamEncoder::new("p/m", include_usage);
        let mut out = Vec::new();
        for op in ops {
            let e = match op {
                0 => StreamEvent::Start { id: "x".into(), model: "m".into() },
                1 => StreamEvent::Text("t\"\n".into()),
                2 => StreamEvent::Reasoning { text: "r".into(), signature: None },
                3 | 4 => StreamEvent::ToolCallStart { index: u32::from(op - 3), id: format!("c{op}"), name: "f".into(), signature: None },
                5 => StreamEvent::ToolCallArguments { index: 0, fragment: "{}".into() },
                6 => StreamEvent::Usage(Usage { prompt_tokens: 3, completion_tokens: 2, ..Usage::default() }),
                7 => StreamEvent::Finish(Finish { reason: FinishReason::Length, native: "length".into() }),
                _ => StreamEvent::Text(String::new()),
            };
            enc.on_event(&e, &mut out);
        }
        if fail { enc.fail("cut", &mut out) } else { enc.finish(&mut out) }
        let sse = String::from_utf8(out).expect("utf-8");
        check_sdk_invariants(&sse, include_usage);
    }
}

// ------------------------------------------------------ request mappings

fn decode(body: Value) -> ChatRequest {
    decode_request(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{}", e.message))
}

fn decode_err(body: Value) -> String {
    let e = decode_request(body.to_string().as_bytes()).expect_err("must be rejected");
    assert_eq!(e.status(), 400);
    e.message.into_owned()
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: vec![Part::Text(text.into())],
    }
}

#[test]
fn system_and_developer_messages_become_system() {
    let req = decode(json!({"model": "m", "messages": [
        {"role": "system", "content": "one"},
        {"role": "developer", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": ""},
    ]}));
    assert_eq!(req.system, ["one", "two\nthree"]);
    assert_eq!(req.messages, [user("hi")]);
    assert_eq!(req.model, "m");
}

#[test]
fn user_images_by_url_and_by_data() {
    let req = decode(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
    ]}]}));
    assert_eq!(req.model, "");
    assert_eq!(
        req.messages[0].content,
        [
            Part::Text("look".into()),
            Part::Image(Image::Url("https://x.test/a.png".into())),
            Part::Image(Image::Base64 {
                media_type: "image/jpeg".into(),
                data: "/9j/4AAQ".into()
            }),
        ]
    );
}

#[test]
fn assistant_reasoning_text_and_tool_calls_and_tool_results() {
    let req = decode(json!({"model": "m", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "reasoning": "think", "content": "let me look",
         "reasoning_details": [{"type": "reasoning.text", "text": "think", "signature": "sig", "index": 0}],
         "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{\"x\":1}"}},
            {"id": "c2", "type": "function", "function": {"name": "b", "arguments": {"y": 2}}},
         ]},
        {"role": "tool", "tool_call_id": "c1", "content": "r1"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "r"}, {"type": "text", "text": "2"}]},
        {"role": "tool", "tool_call_id": "unknown", "content": "r3"},
        {"role": "assistant", "content": "Prefill"},
    ]}));
    assert_eq!(req.messages.len(), 4);
    assert_eq!(
        req.messages[1].content,
        [
            Part::Reasoning {
                text: "think".into(),
                signature: Some("sig".into()),
                redacted: None
            },
            Part::Text("let me look".into()),
            Part::ToolCall {
                id: "c1".into(),
                name: "a".into(),
                arguments: "{\"x\":1}".into(),
                signature: None
            },
            Part::ToolCall {
                id: "c2".into(),
                name: "b".into(),
                arguments: "{\"y\":2}".into(),
                signature: None
            },
        ]
    );
    let result = |id: &str, name: Option<&str>, content: &str| Part::ToolResult {
        id: id.into(),
        name: name.map(Into::into),
        content: content.into(),
        is_error: false,
    };
    assert_eq!(
        req.messages[2],
        Message {
            role: Role::Tool,
            content: vec![
                result("c1", Some("a"), "r1"),
                result("c2", Some("b"), "r2"),
                result("unknown", None, "r3"),
            ]
        }
    );
    assert_eq!(
        req.messages[3],
        Message {
            role: Role::Assistant,
            content: vec![Part::Text("Prefill".into())]
        }
    );
}

#[test]
fn reasoning_content_and_empty_assistant_turns() {
    let req = decode(json!({"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": null, "reasoning_content": "deep"},
    ]}));
    assert_eq!(req.messages.len(), 2);
    assert_eq!(
        req.messages[1].content,
        [Part::Reasoning {
            text: "deep".into(),
            signature: None,
            redacted: None
        }]
    );
}

#[test]
fn legacy_functions_and_function_messages() {
    let req = decode(json!({"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "done"},
    ], "functions": [{"name": "f", "parameters": {"type": "object"}}], "function_call": {"name": "f"}}));
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tool_choice, Some(ToolChoice::Named("f".into())));
    let Part::ToolCall { id, .. } = &req.messages[1].content[0] else {
        panic!("tool call expected")
    };
    assert_eq!(
        req.messages[2].content,
        [Part::ToolResult {
            id: id.clone(),
            name: Some("f".into()),
            content: "done".into(),
            is_error: false
        }]
    );
}

#[test]
fn tools_and_tool_choice() {
    let base = |choice: Value| {
        decode(
            json!({"messages": [{"role": "user", "content": "q"}], "tool_choice": choice,
            "parallel_tool_calls": false,
            "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                "parameters": {"type": "object"}, "strict": true}},
                {"type": "function", "function": {"name": "g"}}]}),
        )
    };
    let req = base(json!("auto"));
    assert_eq!(
        req.tools,
        [
            Tool {
                name: "f".into(),
                description: Some("d".into()),
                parameters: json!({"type": "object"}),
                strict: Some(true)
            },
            Tool {
                name: "g".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {}}),
                strict: None
            },
        ]
    );
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(base(json!("none")).tool_choice, Some(ToolChoice::None));
    assert_eq!(
        base(json!("required")).tool_choice,
        Some(ToolChoice::Required)
    );
    assert_eq!(
        base(json!({"type": "function", "function": {"name": "g"}})).tool_choice,
        Some(ToolChoice::Named("g".into()))
    );
}

#[test]
fn sampling_limits_format_reasoning_and_extras() {
    let req = decode(json!({
        "model": "m", "messages": [{"role": "user", "content": "q"}],
        "max_tokens": 10, "max_completion_tokens": 20, "temperature": 0.5, "top_p": 0.9,
        "top_k": 40, "stop": "END", "reasoning_effort": "low", "stream": true,
        "stream_options": {"include_usage": true}, "user": "u1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": true}},
        "seed": 1, "n": 2, "logprobs": true, "metadata": {"a": "b"},
        "models": ["x"], "route": "fallback", "provider": {}, "transforms": [], "plugins": [], "usage": {"include": true},
    }));
    assert_eq!(req.max_tokens, Some(20));
    assert_eq!(req.temperature, Some(0.5));
    assert_eq!(req.top_p, Some(0.9));
    assert_eq!(req.top_k, Some(40));
    assert_eq!(req.stop, ["END"]);
    assert_eq!(
        req.reasoning,
        Some(Reasoning {
            effort: Some("low".into()),
            budget_tokens: None
        })
    );
    assert!(req.stream && req.include_usage);
    assert_eq!(req.user.as_deref(), Some("u1"));
    assert_eq!(
        req.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "r".into(),
            schema: json!({"type": "object"}),
            strict: Some(true)
        })
    );
    let extra: Vec<&str> = req.extra.keys().map(String::as_str).collect();
    assert_eq!(extra, ["seed", "n", "logprobs", "metadata"]);

    let only_max = decode(
        json!({"messages": [{"role": "user", "content": "q"}], "max_tokens": 10,
        "stop": ["a", "b"], "response_format": {"type": "json_object"},
        "reasoning": {"effort": "high", "max_tokens": 2000}, "reasoning_effort": "low"}),
    );
    assert_eq!(only_max.max_tokens, Some(10));
    assert_eq!(only_max.stop, ["a", "b"]);
    assert_eq!(only_max.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(
        only_max.reasoning,
        Some(Reasoning {
            effort: Some("high".into()),
            budget_tokens: Some(2000)
        })
    );
    let enabled = decode(json!({"messages": [{"role": "user", "content": "q"}],
        "reasoning": {"enabled": true}, "response_format": {"type": "text"}}));
    assert_eq!(
        enabled.reasoning.and_then(|r| r.effort).as_deref(),
        Some("medium")
    );
    assert_eq!(enabled.response_format, Some(ResponseFormat::Text));
    let plain = decode(
        json!({"messages": [{"role": "user", "content": "q"}], "stream_options": {"include_usage": true}}),
    );
    assert!(!plain.include_usage, "usage in the stream only for streams");
    assert_eq!(plain.reasoning, None);
}

#[test]
fn malformed_requests_are_400s_not_panics() {
    let user_msg = json!([{"role": "user", "content": "q"}]);
    for (body, needle) in [
        (json!({"model": "m"}), "`messages` is required"),
        (json!({"messages": []}), "must not be empty"),
        (
            json!({"messages": [{"role": "robot", "content": "x"}]}),
            "role must be one of",
        ),
        (
            json!({"messages": [{"role": "user"}]}),
            "content is required",
        ),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            "must be a string or an array",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
            "`input_audio` is not supported",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xx"}}]}]}),
            "data:<media type>;base64",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            "tool_call_id must be a string",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]}),
            "function must be an object",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": "x"}]}),
            "tool_calls must be an array",
        ),
        (
            json!({"messages": [{"role": "system", "content": [{"type": "image_url"}]}]}),
            "must be a text part",
        ),
        (
            json!({"messages": user_msg, "temperature": "hot"}),
            "`temperature` must be a number",
        ),
        (
            json!({"messages": user_msg, "max_tokens": -1}),
            "`max_tokens` must be a non-negative integer",
        ),
        (
            json!({"messages": user_msg, "max_completion_tokens": 1.5}),
            "non-negative integer",
        ),
        (json!({"messages": user_msg, "stop": [1]}), "`stop` must be"),
        (
            json!({"messages": user_msg, "response_format": {"type": "yaml"}}),
            "response_format.type",
        ),
        (
            json!({"messages": user_msg, "response_format": {"type": "json_schema"}}),
            "json_schema` must be an object",
        ),
        (
            json!({"messages": user_msg, "tools": [{"type": "custom", "custom": {}}]}),
            "`custom` is not supported",
        ),
        (
            json!({"messages": user_msg, "tools": [{"type": "function"}]}),
            "function must be an object",
        ),
        (
            json!({"messages": user_msg, "tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]}),
            "parameters must be an object",
        ),
        (
            json!({"messages": user_msg, "tool_choice": "always"}),
            "`tool_choice` must be",
        ),
        (
            json!({"messages": user_msg, "tool_choice": {"type": "function"}}),
            "must name a function",
        ),
        (
            json!({"messages": user_msg, "reasoning": "high"}),
            "`reasoning` must be an object",
        ),
        (
            json!({"messages": user_msg, "user": 5}),
            "`user` must be a string",
        ),
        (
            json!({"messages": user_msg, "parallel_tool_calls": "yes"}),
            "must be a boolean",
        ),
    ] {
        let message = decode_err(body.clone());
        assert!(message.contains(needle), "{body}: {message}");
    }
    for raw in [
        &b""[..],
        b"   ",
        b"[]",
        b"{",
        b"\xff\xfe",
        b"{\"messages\": 1}",
    ] {
        let e = decode_request(raw).expect_err("rejected");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn encode_request_maps_every_field() {
    let req = ChatRequest {
        model: "gpt-x".into(),
        system: vec!["a".into(), "b".into()],
        messages: vec![
            Message {
                role: Role::User,
                content: vec![
                    Part::Text("see".into()),
                    Part::Image(Image::Base64 {
                        media_type: "image/png".into(),
                        data: "AAA".into(),
                    }),
                    Part::Image(Image::Url("https://x/y.png".into())),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    Part::Reasoning {
                        text: "hmm".into(),
                        signature: Some("s".into()),
                        redacted: None,
                    },
                    Part::Text("ok".into()),
                    Part::ToolCall {
                        id: "t1".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                        signature: Some("gem".into()),
                    },
                ],
            },
            Message {
                role: Role::Tool,
                content: vec![Part::ToolResult {
                    id: "t1".into(),
                    name: Some("f".into()),
                    content: "boom".into(),
                    is_error: true,
                }],
            },
            Message {
                role: Role::User,
                content: vec![
                    Part::ToolResult {
                        id: "t2".into(),
                        name: None,
                        content: "r2".into(),
                        is_error: false,
                    },
                    Part::Text("and?".into()),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![Part::Reasoning {
                    text: "only".into(),
                    signature: None,
                    redacted: None,
                }],
            },
        ],
        tools: vec![Tool {
            name: "f".into(),
            description: None,
            parameters: json!({"type": "object"}),
            strict: None,
        }],
        tool_choice: Some(ToolChoice::Named("f".into())),
        parallel_tool_calls: Some(true),
        max_tokens: Some(100),
        temperature: Some(0.2),
        top_p: Some(1.0),
        top_k: Some(5),
        stop: vec!["1".into(), "2".into(), "3".into(), "4".into(), "5".into()],
        response_format: Some(ResponseFormat::JsonSchema {
            name: "n".into(),
            schema: json!({"type": "object"}),
            strict: None,
        }),
        reasoning: Some(Reasoning {
            effort: None,
            budget_tokens: Some(10_000),
        }),
        stream: true,
        include_usage: false,
        user: Some("u".into()),
        extra: serde_json::from_value(json!({
            "seed": 3, "metadata": {"user_id": "x"}, "service_tier": "standard_only",
            "anthropic_beta": ["x"], "n": 2,
        }))
        .expect("map"),
    };
    let got: Value = serde_json::from_slice(&encode_request(&req)).expect("json");
    assert_eq!(
        got,
        json!({
            "model": "gpt-x",
            "messages": [
                {"role": "system", "content": "a\n\nb"},
                {"role": "user", "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ]},
                {"role": "assistant", "content": "ok", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "boom"},
                {"role": "tool", "tool_call_id": "t2", "content": "r2"},
                {"role": "user", "content": "and?"},
                {"role": "assistant", "content": ""},
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": true,
            "max_completion_tokens": 100,
            "temperature": 0.2,
            "top_p": 1.0,
            "stop": ["1", "2", "3", "4"],
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
            "reasoning_effort": "medium",
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "u",
            "seed": 3,
        })
    );
    let budget = |b: u32| {
        let r = ChatRequest {
            reasoning: Some(Reasoning {
                effort: None,
                budget_tokens: Some(b),
            }),
            ..ChatRequest::default()
        };
        let v: Value = serde_json::from_slice(&encode_request(&r)).expect("json");
        v.get("reasoning_effort").cloned()
    };
    assert_eq!(budget(0), None);
    assert_eq!(budget(1024), Some(json!("low")));
    assert_eq!(budget(32_000), Some(json!("high")));
    let plain: Value =
        serde_json::from_slice(&encode_request(&ChatRequest::default())).expect("json");
    assert_eq!(plain, json!({"model": "", "messages": []}));
}

// ----------------------------------------------------- response mappings

#[test]
fn decode_response_reads_reasoning_refusal_and_quirks() {
    let body = json!({"id": "x", "model": "m", "created": 5, "choices": [
        {"index": 0, "message": {"role": "assistant", "reasoning_content": "why", "reasoning": "why",
            "content": "hi", "refusal": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
         "finish_reason": "stop"},
        {"index": 1, "message": {"content": "second choice is ignored"}, "finish_reason": "stop"},
    ], "usage": {"prompt_tokens": 10, "completion_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 6, "cache_write_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 3}}});
    let r = decode_response(body.to_string().as_bytes()).expect("decoded");
    assert_eq!(
        r,
        ChatResponse {
            id: "x".into(),
            model: "m".into(),
            created: Some(5),
            content: vec![
                Part::Reasoning {
                    text: "why".into(),
                    signature: None,
                    redacted: None
                },
                Part::Text("hi".into()),
                Part::ToolCall {
                    id: "c".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                    signature: None
                },
            ],
            // A server that says `stop` after calling tools.
            finish: Some(Finish {
                reason: FinishReason::ToolCalls,
                native: "stop".into()
            }),
            usage: Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 4,
                cached_tokens: 6,
                cache_write_tokens: 2,
                reasoning_tokens: 3
            }),
        }
    );
    let refusal = json!({"choices": [{"message": {"content": null, "refusal": "I can't"}, "finish_reason": "content_filter", "native_finish_reason": "SAFETY"}]});
    let r = decode_response(refusal.to_string().as_bytes()).expect("decoded");
    assert_eq!(r.content, [Part::Text("I can't".into())]);
    assert_eq!(
        r.finish,
        Some(Finish {
            reason: FinishReason::ContentFilter,
            native: "SAFETY".into()
        })
    );
    let legacy =
        json!({"choices": [{"message": {"function_call": {"name": "f", "arguments": "{}"}}}]});
    let r = decode_response(legacy.to_string().as_bytes()).expect("decoded");
    assert!(matches!(&r.content[..], [Part::ToolCall { name, .. }] if name == "f"));
    assert_eq!(r.finish.map(|f| f.reason), Some(FinishReason::ToolCalls));
}

#[test]
fn malformed_upstream_bodies_are_errors() {
    for (body, needle) in [
        (&b"not json"[..], "not valid JSON"),
        (b"[1]", "not a JSON object"),
        (b"{}", "no choices"),
        (b"{\"choices\": []}", "no choices"),
        (b"{\"choices\": [1]}", "no choices"),
        (b"{\"error\": {\"message\": \"overloaded\"}}", "overloaded"),
    ] {
        let e = decode_response(body).expect_err("error").to_string();
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn decode_error_shapes() {
    assert_eq!(
        decode_error(br#"{"error":{"message":"m","type":"t"}}"#).as_deref(),
        Some("m")
    );
    assert_eq!(
        decode_error(br#"{"error":"plain"}"#).as_deref(),
        Some("plain")
    );
    assert_eq!(
        decode_error(br#"{"message":"top"}"#).as_deref(),
        Some("top")
    );
    assert_eq!(decode_error(br#"{"error":{"code":1}}"#), None);
    assert_eq!(decode_error(b"<html>"), None);
    assert_eq!(decode_error(b"[]"), None);
}

#[test]
fn encode_response_shape() {
    let resp = ChatResponse {
        id: "msg_01".into(),
        model: "claude".into(),
        created: None,
        content: vec![
            Part::Reasoning {
                text: "a".into(),
                signature: Some("sig".into()),
                redacted: None,
            },
            Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some("opaque".into()),
            },
            Part::Text("x".into()),
            Part::Text("y".into()),
            Part::ToolCall {
                id: "toolu_1".into(),
                name: "f".into(),
                arguments: "{\"a\":1}".into(),
                signature: None,
            },
        ],
        finish: Some(Finish {
            reason: FinishReason::ToolCalls,
            native: "tool_use".into(),
        }),
        usage: Some(Usage {
            prompt_tokens: 100,
            completion_tokens: 7,
            cached_tokens: 50,
            cache_write_tokens: 10,
            reasoning_tokens: 3,
        }),
    };
    let got: Value =
        serde_json::from_slice(&encode_response(&resp, "anthropic/claude")).expect("json");
    assert_eq!(
        got,
        json!({
            "id": "chatcmpl-msg_01",
            "object": "chat.completion",
            "created": 0,
            "model": "anthropic/claude",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "xy",
                    "refusal": null,
                    "reasoning": "a",
                    "reasoning_details": [
                        {"type": "reasoning.text", "text": "a", "signature": "sig", "index": 0},
                        {"type": "reasoning.encrypted", "data": "opaque", "index": 1},
                    ],
                    "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}],
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
                "native_finish_reason": "tool_use",
            }],
            "usage": {
                "prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
                "prompt_tokens_details": {"cached_tokens": 50, "cache_write_tokens": 10},
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
        })
    );
    let empty: Value =
        serde_json::from_slice(&encode_response(&ChatResponse::default(), "m")).expect("json");
    assert_eq!(empty["id"], "chatcmpl-arouter");
    assert_eq!(empty["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(empty["choices"][0]["finish_reason"], "stop");
    assert_eq!(empty["choices"][0]["native_finish_reason"], Value::Null);
    assert!(empty.get("usage").is_none());
}

// --------------------------------------------------------- stream decode

fn chunk(choices: Value) -> String {
    json!({"id": "chatcmpl-q", "object": "chat.completion.chunk", "created": 1, "model": "llama", "choices": choices}).to_string()
}

fn feed(datas: &[&str]) -> (Vec<StreamEvent>, bool) {
    let mut d = StreamDecoder::new();
    let mut out = Vec::new();
    for data in datas {
        d.on_event(None, data, &mut out);
    }
    let complete = d.finish(&mut out);
    (out, complete)
}

fn start() -> StreamEvent {
    StreamEvent::Start {
        id: "chatcmpl-q".into(),
        model: "llama".into(),
    }
}

#[test]
fn repeated_tool_ids_and_names_start_one_call() {
    let call = |args: &str| {
        chunk(json!([{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c0", "type": "function", "function": {"name": "f", "arguments": args}}]}}]))
    };
    let (events, complete) = feed(&[
        &call(""),
        &call("{\"a\""),
        &call(":1}"),
        &chunk(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
        "[DONE]",
    ]);
    assert!(complete);
    assert_eq!(
        events,
        [
            start(),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c0".into(),
                name: "f".into(),
                signature: None
            },
            StreamEvent::ToolCallArguments {
                index: 0,
                fragment: "{\"a\"".into()
            },
            StreamEvent::ToolCallArguments {
                index: 0,
                fragment: ":1}".into()
            },
            StreamEvent::Finish(Finish {
                reason: FinishReason::ToolCalls,
                native: "tool_calls".into()
            }),
        ]
    );
}

#[test]
fn parallel_calls_without_index_or_sharing_one_index() {
    let (events, _) = feed(&[
        &chunk(json!([{"delta": {"tool_calls": [
            {"id": "a", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "function": {"name": "g", "arguments": "{}"}}]}}])),
        &chunk(json!([{"delta": {"tool_calls": [
            {"index": 0, "id": "c", "function": {"name": "h", "arguments": "{}"}}]}}])),
    ]);
    let starts: Vec<(u32, String)> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallStart { index, id, .. } => Some((*index, id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(starts, [(0, "a".into()), (1, "b".into()), (2, "c".into())]);
}

#[test]
fn arguments_before_the_name_wait_for_it_and_missing_ids_are_made() {
    let (events, _) = feed(&[
        &chunk(
            json!([{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":"}}]}}]),
        ),
        &chunk(
            json!([{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "1}"}}]}}]),
        ),
    ]);
    assert_eq!(
        &events[1..],
        [
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_0".into(),
                name: "f".into(),
                signature: None
            },
            StreamEvent::ToolCallArguments {
                index: 0,
                fragment: "{\"x\":".into()
            },
            StreamEvent::ToolCallArguments {
                index: 0,
                fragment: "1}".into()
            },
        ]
    );
}

#[test]
fn text_reasoning_usage_and_one_finish() {
    let usage = json!({"prompt_tokens": 5, "completion_tokens": 2});
    let mut with_usage: Value = serde_json::from_str(&chunk(json!([]))).expect("json");
    with_usage["usage"] = usage.clone();
    let with_usage = with_usage.to_string();
    let (events, complete) = feed(&[
        &chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}}])),
        &chunk(json!([{"index": 0, "delta": {"reasoning_content": "r1", "reasoning": "r1"}}])),
        &chunk(
            json!([{"index": 0, "delta": {"reasoning": "r2", "reasoning_details": [{"type": "reasoning.text", "signature": "s"}]}}]),
        ),
        &chunk(
            json!([{"index": 0, "delta": {"content": "hi"}}, {"index": 1, "delta": {"content": "other choice"}}]),
        ),
        &chunk(json!([{"index": 0, "delta": {"refusal": "no"}}])),
        &chunk(json!([{"index": 0, "delta": {}, "finish_reason": "length"}])),
        &chunk(
            json!([{"index": 0, "delta": {"content": "after the stop"}, "finish_reason": "stop"}]),
        ),
        &with_usage,
        &with_usage,
    ]);
    assert!(complete, "a finish reason without [DONE] is complete");
    let u = Usage {
        prompt_tokens: 5,
        completion_tokens: 2,
        ..Usage::default()
    };
    assert_eq!(
        events,
        [
            start(),
            StreamEvent::Reasoning {
                text: "r1".into(),
                signature: None
            },
            StreamEvent::Reasoning {
                text: "r2".into(),
                signature: Some("s".into())
            },
            StreamEvent::Text("hi".into()),
            StreamEvent::Text("no".into()),
            StreamEvent::Finish(Finish {
                reason: FinishReason::Length,
                native: "length".into()
            }),
            StreamEvent::Usage(u),
        ]
    );
}

#[test]
fn done_without_a_finish_reason_gets_one() {
    let (events, complete) = feed(&[
        &chunk(
            json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}}]),
        ),
        "[DONE]",
        &chunk(json!([{"index": 0, "delta": {"content": "after done"}}])),
    ]);
    assert!(complete);
    assert_eq!(events.len(), 4);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Finish(Finish {
            reason: FinishReason::ToolCalls,
            native: "tool_calls".into()
        }))
    );
}

#[test]
fn truncated_and_failing_upstream_streams() {
    let (events, complete) = feed(&[&chunk(json!([{"index": 0, "delta": {"content": "par"}}]))]);
    assert!(!complete, "no [DONE] and no finish reason");
    assert_eq!(events, [start(), StreamEvent::Text("par".into())]);

    let (events, complete) = feed(&[
        &chunk(json!([{"index": 0, "delta": {"content": "a"}}])),
        r#"{"error": {"message": "overloaded", "code": 529}}"#,
        &chunk(json!([{"index": 0, "delta": {"content": "ignored"}}])),
    ]);
    assert!(!complete);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Error {
            message: "overloaded".into()
        })
    );
    assert_eq!(events.len(), 3);

    let (events, complete) = feed(&["{not json"]);
    assert!(!complete);
    assert!(matches!(&events[..], [StreamEvent::Error { .. }]));

    let mut d = StreamDecoder::new();
    let mut out = Vec::new();
    d.on_event(Some("error"), "rate limited", &mut out);
    assert_eq!(
        out,
        [StreamEvent::Error {
            message: "rate limited".into()
        }]
    );
    let (events, complete) = feed(&["", "  ", "[DONE]"]);
    assert!(complete);
    assert_eq!(events.len(), 1, "only the synthesized finish: {events:?}");
}

// --------------------------------------------------------- stream encode

fn encode(
    events: &[StreamEvent],
    include_usage: bool,
    end: impl FnOnce(&mut StreamEncoder, &mut Vec<u8>),
) -> String {
    let mut enc = StreamEncoder::new("anthropic/claude", include_usage).with_created(42);
    let mut out = Vec::new();
    for e in events {
        enc.on_event(e, &mut out);
    }
    end(&mut enc, &mut out);
    assert!(enc.is_done());
    // Nothing after [DONE].
    let len = out.len();
    enc.on_event(&StreamEvent::Text("late".into()), &mut out);
    enc.finish(&mut out);
    enc.fail("late", &mut out);
    assert_eq!(out.len(), len);
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn stream_encoder_writes_the_openai_chunk_stream() {
    let sse = encode(
        &[
            StreamEvent::Start {
                id: "msg_1".into(),
                model: "claude-x".into(),
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 10,
                cached_tokens: 4,
                ..Usage::default()
            }),
            StreamEvent::Reasoning {
                text: "hm".into(),
                signature: None,
            },
            StreamEvent::Reasoning {
                text: String::new(),
                signature: Some("sig".into()),
            },
            StreamEvent::Text("a \"quote\"\n".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "toolu_1".into(),
                name: "f".into(),
                signature: None,
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "toolu_1".into(),
                name: "f".into(),
                signature: None,
            },
            StreamEvent::ToolCallArguments {
                index: 0,
                fragment: "{\"a\":".into(),
            },
            StreamEvent::ToolCallArguments {
                index: 0,
                fragment: "1}".into(),
            },
            StreamEvent::Usage(Usage {
                completion_tokens: 9,
                ..Usage::default()
            }),
            StreamEvent::Finish(Finish {
                reason: FinishReason::ToolCalls,
                native: "tool_use".into(),
            }),
            StreamEvent::Text("after the stop".into()),
            StreamEvent::Finish(Finish {
                reason: FinishReason::Stop,
                native: "end_turn".into(),
            }),
        ],
        true,
        |e, out| e.finish(out),
    );
    insta::assert_snapshot!("stream_encoder_full", sse);
    let chunks = check_sdk_invariants(&sse, true);
    let usage = &chunks[chunks.len() - 1]["usage"];
    assert_eq!(
        usage,
        &json!({"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19,
            "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    assert_eq!(chunks[0]["created"], 42);
    assert_eq!(chunks[0]["id"], "chatcmpl-msg_1");
    let (again, complete) = decode_sse_text(&sse);
    assert!(complete);
    let r = ChatResponse::from_events(&again);
    assert_eq!(
        r.content,
        [
            Part::Reasoning {
                text: "hm".into(),
                signature: Some("sig".into()),
                redacted: None
            },
            Part::Text("a \"quote\"\n".into()),
            Part::ToolCall {
                id: "toolu_1".into(),
                name: "f".into(),
                arguments: "{\"a\":1}".into(),
                signature: None
            },
        ]
    );
    assert_eq!(
        r.finish,
        Some(Finish {
            reason: FinishReason::ToolCalls,
            native: "tool_use".into()
        })
    );
}

#[test]
fn finish_without_a_finish_event_is_synthesized() {
    let tool = StreamEvent::ToolCallStart {
        index: 0,
        id: "c".into(),
        name: "f".into(),
        signature: None,
    };
    let sse = encode(&[tool], false, |e, out| e.finish(out));
    let chunks = check_sdk_invariants(&sse, false);
    let last = &chunks[chunks.len() - 1]["choices"][0];
    assert_eq!(last["finish_reason"], "tool_calls");
    assert_eq!(last["native_finish_reason"], Value::Null);

    let sse = encode(&[StreamEvent::Text("x".into())], true, |e, out| {
        e.finish(out)
    });
    let chunks = check_sdk_invariants(&sse, true);
    assert_eq!(
        chunks[0]["id"], "chatcmpl-arouter",
        "no Start: a made-up id"
    );
    assert_eq!(
        chunks[chunks.len() - 1]["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "no usage known, none sent"
    );
}

#[test]
fn fail_closes_an_open_stream() {
    let events = [
        start(),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "c".into(),
            name: "f".into(),
            signature: None,
        },
        StreamEvent::ToolCallArguments {
            index: 0,
            fragment: "{\"a\"".into(),
        },
        StreamEvent::Usage(Usage {
            prompt_tokens: 3,
            ..Usage::default()
        }),
    ];
    let sse = encode(&events, true, |e, out| e.fail("upstream \"cut\"", out));
    insta::assert_snapshot!("stream_encoder_fail_open_tool_call", sse);
    let chunks = check_sdk_invariants(&sse, true);
    assert!(chunks.iter().any(|c| c["error"]
        == json!({"message": "upstream \"cut\"", "type": "upstream_error", "code": 502})));
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "error"));

    // After the finish chunk, a failure adds the error but no second finish.
    let mut after = events.to_vec();
    after.push(StreamEvent::Finish(Finish {
        reason: FinishReason::Stop,
        native: "stop".into(),
    }));
    let sse = encode(&after, false, |e, out| e.fail("late", out));
    let chunks = check_sdk_invariants(&sse, false);
    assert!(chunks.iter().any(|c| c.get("error").is_some()));

    // An error event from the decoder fails the stream the same way.
    let sse = encode(
        &[
            start(),
            StreamEvent::Text("a".into()),
            StreamEvent::Error {
                message: "boom".into(),
            },
        ],
        false,
        |_, _| {},
    );
    let chunks = check_sdk_invariants(&sse, false);
    assert_eq!(chunks[2]["error"]["message"], "boom");

    // Failing before anything was sent still yields a well-formed stream.
    let sse = encode(&[], false, |e, out| e.fail("nothing", out));
    check_sdk_invariants(&sse, false);
}

/// A tool call that got no argument fragments (Anthropic `tool_use` with
/// empty input, streamed without `input_json_delta`) reaches the client as
/// `"{}"`, in a stream and in a whole answer: `JSON.parse("")` throws.
#[test]
fn a_tool_call_without_arguments_gets_an_empty_object() {
    let call = |index: u32, id: &str| StreamEvent::ToolCallStart {
        index,
        id: id.into(),
        name: "pelican_name_generator".into(),
        signature: None,
    };
    let events = [
        start(),
        call(0, "toolu_1"),
        StreamEvent::ToolCallArguments {
            index: 0,
            fragment: String::new(),
        },
        call(1, "toolu_2"),
        StreamEvent::ToolCallArguments {
            index: 1,
            fragment: r#"{"n":2}"#.into(),
        },
    ];
    let sse = encode(&events, false, StreamEncoder::finish);
    let mut joined: BTreeMap<u64, String> = BTreeMap::new();
    let mut order = Vec::new();
    for chunk in check_sdk_invariants(&sse, false) {
        for tc in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let fragment = tc["function"]["arguments"].as_str().unwrap_or_default();
            order.push((tc["index"].as_u64().expect("index"), tc.get("id").is_some()));
            joined
                .entry(tc["index"].as_u64().expect("index"))
                .or_default()
                .push_str(fragment);
        }
    }
    assert_eq!(
        joined.into_values().collect::<Vec<_>>(),
        vec!["{}".to_string(), r#"{"n":2}"#.to_string()]
    );
    // SDKs parse a call's arguments when the next call starts: the `{}`
    // goes out before it.
    assert_eq!(order, [(0, true), (0, false), (1, true), (1, false)]);

    let whole = ChatResponse::from_events(&events);
    let body: Value =
        serde_json::from_slice(&encode_response(&whole, "anthropic/claude")).expect("json");
    let arguments: Vec<&str> = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .expect("tool calls")
        .iter()
        .map(|c| c["function"]["arguments"].as_str().expect("string"))
        .collect();
    assert_eq!(arguments, ["{}", r#"{"n":2}"#]);
}

/// On `/api/v1/` a failure rides on a chunk (OpenRouter's SDK validates
/// every event as one): on the finish chunk when it has not gone out, on a
/// chunk without choices when it has.
#[test]
fn stream_encoder_tells_a_failure_openrouters_way() {
    for finished_first in [false, true] {
        let mut enc = StreamEncoder::new("anthropic/claude", false)
            .with_created(42)
            .with_error_in_chunk();
        let mut out = Vec::new();
        enc.on_event(
            &StreamEvent::Start {
                id: "msg_1".into(),
                model: "claude-x".into(),
            },
            &mut out,
        );
        enc.on_event(&StreamEvent::Text("Hi".into()), &mut out);
        if finished_first {
            enc.on_event(
                &StreamEvent::Finish(Finish {
                    reason: FinishReason::Stop,
                    native: "end_turn".into(),
                }),
                &mut out,
            );
        }
        enc.fail("upstream reset", &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let chunks: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).expect("JSON"))
            .collect();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk"),
            "{text}"
        );
        let last = chunks.last().expect("chunks");
        assert_eq!(
            last["error"],
            json!({"code": 502, "message": "upstream reset"})
        );
        let finishes: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"].get(0).map(|ch| &ch["finish_reason"]))
            .filter(|f| !f.is_null())
            .collect();
        let want = if finished_first { "stop" } else { "error" };
        assert_eq!(finishes, [want], "{text}");
    }
}
