//! The Responses dialect (`/v1/responses`) <-> canonical: every recorded
//! Responses request decoded and written for each provider kind, every
//! recorded provider answer as a Responses client sees it (snapshots), and
//! one test per mapping and refusal.

use std::path::PathBuf;

use arouter_core::api::Dialect;
use arouter_core::gateway::ProviderKind;
use arouter_core::translate::canonical::{
    ChatResponse, Finish, Image, Part, ResponseFormat, Role, ToolChoice,
};
use arouter_core::translate::dispatch;
use arouter_core::translate::finish::FinishReason;
use arouter_core::translate::responses::{decode_request, encode_response};
use arouter_core::usage::Usage;
use serde_json::{json, Map, Value};

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/transcripts"
    ))
}

fn transcripts(provider: &str) -> Vec<(String, Value)> {
    let mut paths: Vec<_> = std::fs::read_dir(dir().join(provider))
        .expect("transcripts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let t: Value =
                serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
            (name, t)
        })
        .collect()
}

const KINDS: [(ProviderKind, &str); 3] = [
    (ProviderKind::OpenAi, "openai"),
    (ProviderKind::Anthropic, "anthropic"),
    (ProviderKind::Gemini, "gemini"),
];

/// Each recorded Responses request, as the gateway writes it for each
/// provider kind; a request the gateway refuses snapshots its error.
#[test]
fn every_recorded_request_for_every_provider_kind() {
    let all = transcripts("openai_responses");
    assert!(all.len() >= 10);
    for (name, t) in all {
        let body = serde_json::to_vec(&t["request"]["body"]).expect("body");
        match decode_request(&body) {
            Ok(req) => {
                for (kind, label) in KINDS {
                    let upstream: Value =
                        serde_json::from_slice(&dispatch::encode_request(kind, &req.canonical))
                            .expect("upstream json");
                    insta::with_settings!({snapshot_suffix => format!("{name}__{label}")}, {
                        insta::assert_json_snapshot!("upstream_request", upstream);
                    });
                }
            }
            Err(err) => {
                let body: Value = serde_json::from_slice(&err.body()).expect("error json");
                assert_eq!(err.status(), 400, "{name}");
                insta::with_settings!({snapshot_suffix => name.clone()}, {
                    insta::assert_json_snapshot!("refused_request", body);
                });
            }
        }
    }
}

fn label(provider: &str) -> String {
    format!("{provider}/model")
}

/// Each recorded non-stream chat answer of every provider, as a Responses
/// client's `response` object.
#[test]
fn every_recorded_answer_as_a_response_object() {
    let mut seen = 0;
    for (provider, kind) in [
        ("openai", ProviderKind::OpenAi),
        ("anthropic", ProviderKind::Anthropic),
        ("gemini", ProviderKind::Gemini),
    ] {
        for (name, t) in transcripts(provider) {
            let path = t["request"]["path"].as_str().unwrap_or_default();
            let chat = path.contains("/chat/completions")
                || path.split('?').next() == Some("/v1/messages")
                || path.ends_with(":generateContent");
            if !chat || t["response"]["status"] != 200 || !t["response"]["body"].is_object() {
                continue;
            }
            let body = serde_json::to_vec(&t["response"]["body"]).expect("body");
            let resp = dispatch::decode_response(kind, &body).expect("recorded answer decodes");
            let out: Value = serde_json::from_slice(&encode_response(
                &resp,
                &label(provider),
                &Map::new(),
                None,
            ))
            .expect("json");
            check_shape(&out, &resp);
            insta::with_settings!({snapshot_suffix => format!("{provider}__{name}")}, {
                insta::assert_json_snapshot!("client_response", out);
            });
            seen += 1;
        }
    }
    assert!(seen >= 18, "only {seen} answers");
}

/// What the `openai` SDKs read: `output_text` is the join of the message
/// items' text; each call is a `function_call` with JSON arguments.
fn check_shape(out: &Value, resp: &ChatResponse) {
    assert_eq!(out["object"], "response");
    assert!(out["id"].as_str().is_some_and(|id| id.starts_with("resp_")));
    let text: String = out["output"]
        .as_array()
        .expect("output")
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .collect();
    let want: String = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, want);
    for item in out["output"].as_array().expect("output") {
        if item["type"] == "function_call" {
            let args = item["arguments"].as_str().expect("arguments");
            assert!(serde_json::from_str::<Value>(args).is_ok(), "{args}");
        }
    }
    if let Some(u) = resp.usage {
        assert_eq!(out["usage"]["input_tokens"], u.prompt_tokens);
        assert_eq!(out["usage"]["output_tokens"], u.completion_tokens);
        assert_eq!(out["usage"]["total_tokens"], u.total());
    }
}

fn decode(body: Value) -> arouter_core::translate::responses::ResponsesRequest {
    decode_request(body.to_string().as_bytes()).expect("decodes")
}

fn refused(body: Value) -> (u16, Value) {
    let err = decode_request(body.to_string().as_bytes()).expect_err("refused");
    assert_eq!(err.dialect, Dialect::Responses);
    (
        err.status(),
        serde_json::from_slice(&err.body()).expect("json"),
    )
}

#[test]
fn a_string_input_is_one_user_message() {
    let req = decode(json!({"model": "m", "input": "hi", "instructions": "be brief"}));
    assert_eq!(req.canonical.system, ["be brief"]);
    assert_eq!(req.canonical.messages.len(), 1);
    assert_eq!(req.canonical.messages[0].role, Role::User);
    assert_eq!(req.canonical.messages[0].content, [Part::Text("hi".into())]);
    assert!(!req.canonical.stream);
}

#[test]
fn items_map_to_turns() {
    let req = decode(json!({
        "model": "m",
        "input": [
            {"role": "developer", "content": "sys"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
                {"type": "input_image", "image_url": "https://x/y.png"},
            ]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
        ],
    }));
    let c = &req.canonical;
    assert_eq!(c.system, ["sys"]);
    let roles: Vec<Role> = c.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool]);
    assert_eq!(
        c.messages[0].content[1],
        Part::Image(Image::Base64 {
            media_type: "image/png".into(),
            data: "AAAA".into()
        })
    );
    assert_eq!(
        c.messages[0].content[2],
        Part::Image(Image::Url("https://x/y.png".into()))
    );
    assert_eq!(c.messages[1].content.len(), 3);
    assert_eq!(
        c.messages[2].content[1],
        Part::ToolResult {
            id: "c2".into(),
            name: Some("g".into()),
            content: "two".into(),
            is_error: false
        }
    );
}

#[test]
fn settings_map_to_canonical_fields() {
    let req = decode(json!({
        "model": "m", "input": "hi",
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "function", "name": "f"},
        "parallel_tool_calls": false,
        "text": {"format": {"type": "json_schema", "name": "S", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
        "reasoning": {"effort": "low", "summary": "auto"},
        "max_output_tokens": 77, "temperature": 0.5, "top_p": 0.9,
        "metadata": {"k": "v"}, "user": "u1", "store": false,
        "models": ["a/b"], "route": "fallback",
    }));
    let c = &req.canonical;
    assert_eq!(c.tools[0].strict, Some(true));
    assert_eq!(c.tools[0].description.as_deref(), Some("d"));
    assert_eq!(c.tool_choice, Some(ToolChoice::Named("f".into())));
    assert_eq!(c.parallel_tool_calls, Some(false));
    assert!(matches!(
        &c.response_format,
        Some(ResponseFormat::JsonSchema { name, strict: Some(true), .. }) if name == "S"
    ));
    assert_eq!(
        c.reasoning.as_ref().and_then(|r| r.effort.as_deref()),
        Some("low")
    );
    assert_eq!(
        (c.max_tokens, c.temperature, c.top_p),
        (Some(77), Some(0.5), Some(0.9))
    );
    assert_eq!(c.user.as_deref(), Some("u1"));
    assert_eq!(req.models, ["a/b"]);
    // Nothing of the Responses dialect leaks to another provider's body.
    assert!(c.extra.is_empty());
    let json_object =
        decode(json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}}));
    assert_eq!(
        json_object.canonical.response_format,
        Some(ResponseFormat::JsonObject)
    );
}

#[test]
fn refusals_are_400_in_openai_shape() {
    for (body, needle) in [
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
            "web_search",
        ),
        (
            json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (json!({"model": "m"}), "`input` is required"),
        (json!({"model": "m", "input": 3}), "`input` must be"),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}),
            "item_reference",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "input_file",
        ),
        (
            json!({"model": "m", "input": "x", "temperature": "hot"}),
            "temperature",
        ),
        (
            json!({"model": "m", "input": "x", "frobnicate": 1}),
            "frobnicate",
        ),
    ] {
        let (status, v) = refused(body);
        assert_eq!(status, 400);
        let message = v["error"]["message"].as_str().expect("message");
        assert!(message.contains(needle), "{message}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
}

#[test]
fn status_and_usage_of_an_answer() {
    let resp = |reason: FinishReason| ChatResponse {
        id: "abc".into(),
        model: "m".into(),
        created: Some(7),
        content: vec![Part::Text("hi".into())],
        finish: Some(Finish {
            reason,
            native: String::new(),
        }),
        usage: Some(Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            cached_tokens: 4,
            cache_write_tokens: 0,
            reasoning_tokens: 2,
        }),
    };
    let encode = |r: &ChatResponse, req: Map<String, Value>| -> Value {
        serde_json::from_slice(&encode_response(r, "p/m", &req, None)).expect("json")
    };
    let done = encode(&resp(FinishReason::Stop), Map::new());
    assert_eq!(done["status"], "completed");
    assert_eq!(done["incomplete_details"], Value::Null);
    assert_eq!(done["id"], "resp_abc");
    assert_eq!(done["created_at"], 7);
    assert_eq!(
        done["usage"],
        json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
               "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 15})
    );
    let cut = encode(&resp(FinishReason::Length), Map::new());
    assert_eq!(cut["status"], "incomplete");
    assert_eq!(cut["incomplete_details"]["reason"], "max_output_tokens");
    let filtered = encode(&resp(FinishReason::ContentFilter), Map::new());
    assert_eq!(filtered["incomplete_details"]["reason"], "content_filter");
    let echoed = encode(
        &resp(FinishReason::Stop),
        json!({"instructions": "i", "metadata": {"k": "v"}, "temperature": 0.2, "max_output_tokens": 9})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    assert_eq!(echoed["instructions"], "i");
    assert_eq!(echoed["metadata"], json!({"k": "v"}));
    assert_eq!(echoed["temperature"], 0.2);
    assert_eq!(echoed["max_output_tokens"], 9);
}

/// Anthropic's signed thinking leaves as a reasoning item and, handed back
/// in the next request's input, reaches Anthropic signed again.
#[test]
fn signed_reasoning_comes_back_to_its_provider() {
    let resp = ChatResponse {
        id: "msg_1".into(),
        content: vec![
            Part::Reasoning {
                text: "think".into(),
                signature: Some("SIG".into()),
                redacted: None,
            },
            Part::ToolCall {
                id: "toolu_1".into(),
                name: "f".into(),
                arguments: "{}".into(),
                signature: None,
            },
        ],
        ..ChatResponse::default()
    };
    let out: Value =
        serde_json::from_slice(&encode_response(&resp, "a/m", &Map::new(), None)).expect("json");
    let mut input = vec![json!({"role": "user", "content": "q"})];
    input.extend(out["output"].as_array().cloned().unwrap_or_default());
    input.push(json!({"type": "function_call_output", "call_id": "toolu_1", "output": "r"}));
    let req = decode(json!({"model": "m", "input": input}));
    let upstream: Value = serde_json::from_slice(&dispatch::encode_request(
        ProviderKind::Anthropic,
        &req.canonical,
    ))
    .expect("json");
    assert_eq!(
        upstream["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "think", "signature": "SIG"})
    );
    assert_eq!(upstream["messages"][1]["content"][1]["type"], "tool_use");
    assert_eq!(upstream["messages"][2]["content"][0]["type"], "tool_result");
}

/// A native provider's recorded answers, whole and streamed, read on the
/// side of the relay: the id, the usage billed and how the answer ended.
#[test]
fn recorded_responses_answers_are_read_for_billing() {
    use arouter_core::sse::SseDecoder;
    use arouter_core::translate::canonical::StreamEvent;
    use arouter_core::translate::responses::upstream;

    let mut seen = 0;
    for (name, t) in transcripts("openai_responses") {
        if t["response"]["status"] != 200 {
            continue;
        }
        if let Some(sse) = t["response"]["sse"].as_str() {
            let mut decoder = upstream::StreamDecoder::new();
            let mut events = Vec::new();
            let mut last = Value::Null;
            SseDecoder::new(1 << 20)
                .feed(sse.as_bytes(), |e| {
                    last = serde_json::from_str(e.data).unwrap_or_default();
                    decoder.on_event(e.event, e.data, &mut events);
                })
                .expect("valid SSE");
            assert!(decoder.finish(&mut events), "{name}: complete");
            let want = upstream::usage_of(&last["response"]["usage"]).expect("usage");
            assert!(
                events.contains(&StreamEvent::Usage(want)),
                "{name}: {events:?}"
            );
            assert!(
                matches!(events.first(), Some(StreamEvent::Start { id, .. }) if id.starts_with("resp_"))
            );
            assert!(matches!(events.last(), Some(StreamEvent::Finish(_))));
        } else {
            let body = serde_json::to_vec(&t["response"]["body"]).expect("body");
            let resp = upstream::decode_response(&body).expect("decodes");
            assert_eq!(
                resp.id,
                t["response"]["body"]["id"].as_str().unwrap_or_default()
            );
            assert_eq!(
                resp.usage,
                upstream::usage_of(&t["response"]["body"]["usage"]),
                "{name}"
            );
            let called = t["response"]["body"]["output"]
                .as_array()
                .is_some_and(|o| o.iter().any(|i| i["type"] == "function_call"));
            let reason = resp.finish.map(|f| f.reason);
            assert_eq!(
                reason,
                Some(if called {
                    FinishReason::ToolCalls
                } else {
                    FinishReason::Stop
                }),
                "{name}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 12, "only {seen}");
}
