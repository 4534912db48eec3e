//! The Gemini dialect against every recorded Gemini exchange: requests
//! decode and re-encode to the same request, responses (whole bodies, SSE
//! streams and JSON-array streams) decode to canonical and encode back.

use std::path::PathBuf;

use arouter_core::api::ErrorKind;
use arouter_core::sse::SseDecoder;
use arouter_core::translate::canonical::{ChatResponse, Finish, Part, StreamEvent};
use arouter_core::translate::gemini::{
    decode_error, decode_request, decode_response, encode_request, encode_response,
    upstream_target, StreamDecoder, StreamEncoder,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn transcripts_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/transcripts/gemini"
    ))
}

/// Every Gemini transcript, by file stem, sorted.
fn transcripts() -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(transcripts_dir())
        .expect("transcripts directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 15, "expected the Gemini transcripts");
    names
        .into_iter()
        .map(|name| {
            let path = transcripts_dir().join(format!("{name}.json"));
            let text = std::fs::read_to_string(&path).expect("read transcript");
            let t: Value = serde_json::from_str(&text).expect("parse transcript");
            (name, t)
        })
        .collect()
}

fn is_chat(t: &Value) -> bool {
    let path = t["request"]["path"].as_str().unwrap_or_default();
    path.contains(":generateContent") || path.contains(":streamGenerateContent")
}

/// The model named in `/v1beta/models/{model}:method`.
fn path_model(t: &Value) -> String {
    let path = t["request"]["path"].as_str().unwrap_or_default();
    let rest = path.strip_prefix("/v1beta/models/").expect("model path");
    rest.split(':').next().unwrap_or_default().to_string()
}

fn request_bytes(t: &Value) -> Vec<u8> {
    serde_json::to_vec(&t["request"]["body"]).expect("request body")
}

// ---------------------------------------------------------------- streams

/// SSE text -> canonical events, fed in the given pieces.
fn decode_sse_pieces(pieces: &[&[u8]]) -> (Vec<StreamEvent>, bool) {
    let mut sse = SseDecoder::new(1 << 20);
    let mut dec = StreamDecoder::new();
    let mut events = Vec::new();
    for piece in pieces {
        sse.feed(piece, |ev| dec.on_event(ev.event, ev.data, &mut events))
            .expect("valid SSE");
    }
    assert!(!sse.finish(), "SSE ended mid-event");
    let complete = dec.finish(&mut events);
    (events, complete)
}

fn decode_sse(sse: &[u8]) -> (Vec<StreamEvent>, bool) {
    decode_sse_pieces(&[sse])
}

/// A JSON-array stream (`streamGenerateContent` without `alt=sse`): each
/// element goes through the decoder as if it had been an SSE `data:` event.
fn decode_json_array(raw: &str) -> (Vec<StreamEvent>, bool) {
    let elements: Vec<Value> = serde_json::from_str(raw).expect("JSON-array stream");
    let mut dec = StreamDecoder::new();
    let mut events = Vec::new();
    for el in &elements {
        dec.on_event(None, &el.to_string(), &mut events);
    }
    let complete = dec.finish(&mut events);
    (events, complete)
}

/// The same elements as SSE, for the split-anywhere property.
fn json_array_as_sse(raw: &str) -> String {
    let elements: Vec<Value> = serde_json::from_str(raw).expect("JSON-array stream");
    elements
        .iter()
        .map(|el| format!("data: {el}\r\n\r\n"))
        .collect()
}

/// The recorded stream of a transcript as SSE bytes, if it is a stream.
fn recorded_sse(t: &Value) -> Option<String> {
    let resp = &t["response"];
    if let Some(sse) = resp["sse"].as_str() {
        return Some(sse.to_string());
    }
    resp["body_raw"].as_str().map(json_array_as_sse)
}

/// A whole response replayed as the events a decoder would have produced,
/// each tool call's arguments split in two to show the encoder waits for
/// the whole call.
fn events_of(resp: &ChatResponse) -> Vec<StreamEvent> {
    resp.to_events()
        .into_iter()
        .flat_map(|event| match event {
            StreamEvent::ToolCallArguments { index, fragment } => {
                let mid = (fragment.len() / 2..=fragment.len())
                    .find(|i| fragment.is_char_boundary(*i))
                    .unwrap_or(fragment.len());
                let (a, b) = fragment.split_at(mid);
                vec![
                    StreamEvent::ToolCallArguments {
                        index,
                        fragment: a.to_string(),
                    },
                    StreamEvent::ToolCallArguments {
                        index,
                        fragment: b.to_string(),
                    },
                ]
            }
            other => vec![other],
        })
        .collect()
}

fn encode_stream(mut enc: StreamEncoder, events: &[StreamEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    for ev in events {
        enc.on_event(ev, &mut out);
    }
    enc.finish(&mut out);
    assert!(enc.is_done());
    out
}

/// What must survive a trip through our own encoder and decoder.
#[derive(Debug, PartialEq)]
struct Summary {
    text: String,
    reasoning: String,
    signatures: Vec<String>,
    tool_calls: Vec<(String, String, Value, Option<String>)>,
    finish: Option<Finish>,
    usage: Option<arouter_core::usage::Usage>,
}

fn summary(resp: &ChatResponse) -> Summary {
    let mut s = Summary {
        text: String::new(),
        reasoning: String::new(),
        signatures: Vec::new(),
        tool_calls: Vec::new(),
        finish: resp.finish.clone(),
        usage: resp.usage,
    };
    for part in &resp.content {
        match part {
            Part::Text(t) => s.text.push_str(t),
            Part::Reasoning {
                text, signature, ..
            } => {
                s.reasoning.push_str(text);
                s.signatures.extend(signature.clone());
            }
            Part::ToolCall {
                id,
                name,
                arguments,
                signature,
            } => s.tool_calls.push((
                id.clone(),
                name.clone(),
                serde_json::from_str(arguments).expect("tool arguments are JSON"),
                signature.clone(),
            )),
            Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }
    s
}

// ------------------------------------------------- request comparison

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames the keys of one object level to camelCase.
fn camel_keys(v: &Value) -> Map<String, Value> {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (camel(k), v.clone())).collect())
        .unwrap_or_default()
}

/// OpenAPI-subset schema types to JSON Schema's, written independently of
/// the crate's converter so the comparison is not circular.
fn lower_types(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("type", Value::String(s)) => (k.clone(), Value::String(s.to_lowercase())),
                    _ => (k.clone(), lower_types(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_types).collect()),
        other => other.clone(),
    }
}

/// The translated meaning of a request body: spelling (camel/snake),
/// schema dialect and fields Gemini ignores (`systemInstruction.role`,
/// empty `generationConfig`, null descriptions) normalized away.
fn semantic(body: &Value) -> Value {
    let mut out = Map::new();
    for (key, value) in camel_keys(body) {
        let v = match key.as_str() {
            "contents" => Value::Array(
                value
                    .as_array()
                    .expect("contents")
                    .iter()
                    .map(|c| {
                        let c = camel_keys(c);
                        let parts: Vec<Value> = c["parts"]
                            .as_array()
                            .expect("parts")
                            .iter()
                            .map(|p| {
                                let p: Map<String, Value> = camel_keys(p)
                                    .into_iter()
                                    .map(|(k, v)| match k.as_str() {
                                        "inlineData" | "fileData" => {
                                            (k, Value::Object(camel_keys(&v)))
                                        }
                                        _ => (k, v),
                                    })
                                    .collect();
                                Value::Object(p)
                            })
                            .collect();
                        serde_json::json!({
                            "role": c.get("role").cloned().unwrap_or("user".into()),
                            "parts": parts,
                        })
                    })
                    .collect(),
            ),
            "systemInstruction" => {
                let texts: Vec<Value> = value["parts"]
                    .as_array()
                    .expect("system parts")
                    .iter()
                    .map(|p| p["text"].clone())
                    .collect();
                Value::Array(texts)
            }
            "tools" => Value::Array(
                value
                    .as_array()
                    .expect("tools")
                    .iter()
                    .map(|t| {
                        let t = camel_keys(t);
                        let Some(decls) = t.get("functionDeclarations") else {
                            return Value::Object(t);
                        };
                        let decls: Vec<Value> = decls
                            .as_array()
                            .expect("declarations")
                            .iter()
                            .map(|d| {
                                let d = camel_keys(d);
                                let schema =
                                    match (d.get("parametersJsonSchema"), d.get("parameters")) {
                                        (Some(js), _) => js.clone(),
                                        (None, Some(oa)) => lower_types(oa),
                                        (None, None) => Value::Null,
                                    };
                                let mut m = Map::new();
                                m.insert("name".into(), d["name"].clone());
                                if let Some(desc) = d.get("description").filter(|v| !v.is_null()) {
                                    m.insert("description".into(), desc.clone());
                                }
                                m.insert("schema".into(), schema);
                                Value::Object(m)
                            })
                            .collect();
                        serde_json::json!({ "functionDeclarations": decls })
                    })
                    .collect(),
            ),
            "generationConfig" => {
                let mut gc = camel_keys(&value);
                if let Some(s) = gc.remove("responseSchema") {
                    gc.insert("responseJsonSchema".into(), lower_types(&s));
                }
                if let Some(tc) = gc.get("thinkingConfig").cloned() {
                    gc.insert("thinkingConfig".into(), Value::Object(camel_keys(&tc)));
                }
                if gc.is_empty() {
                    continue;
                }
                Value::Object(gc)
            }
            _ => value,
        };
        out.insert(key, v);
    }
    Value::Object(out)
}

// ------------------------------------------------------------- tests

#[test]
fn every_transcript_request_decodes_and_re_encodes() {
    for (name, t) in transcripts() {
        let body = request_bytes(&t);
        if !is_chat(&t) {
            // Embeddings are not a chat request: a clean Google 400.
            let err = decode_request(Some(&path_model(&t)), &body).expect_err(&name);
            assert_eq!(err.kind, ErrorKind::InvalidRequest, "{name}");
            continue;
        }
        let model = path_model(&t);
        let req =
            decode_request(Some(&model), &body).unwrap_or_else(|e| panic!("{name}: {}", e.message));
        assert_eq!(req.model, model);
        let encoded: Value =
            serde_json::from_slice(&encode_request(&req)).expect("encoded request is JSON");
        insta::with_settings!({snapshot_suffix => name.clone()}, {
            insta::assert_debug_snapshot!("request_canonical", req);
            insta::assert_json_snapshot!("request_encoded", encoded);
        });
        assert_eq!(
            semantic(&encoded),
            semantic(&t["request"]["body"]),
            "{name}: re-encoded request differs"
        );
        // The same request decoded again from our own encoding is unchanged.
        let again = decode_request(Some(&model), &serde_json::to_vec(&encoded).expect("bytes"))
            .expect("re-decode");
        assert_eq!(again, req, "{name}: decode(encode(req)) != req");

        let path = t["request"]["path"].as_str().unwrap_or_default();
        let stream = path.contains(":streamGenerateContent");
        let target = upstream_target(&model, stream);
        if path.ends_with("?alt=sse") || !stream {
            assert_eq!(target, path, "{name}");
        } else {
            // JSON-array streams are recorded; upstream we always ask for SSE.
            assert_eq!(target, format!("{path}?alt=sse"), "{name}");
        }
    }
}

#[test]
fn every_transcript_response_decodes_and_re_encodes() {
    for (name, t) in transcripts() {
        let resp = &t["response"];
        let status = resp["status"].as_u64().unwrap_or(0);
        if status != 200 {
            let body = serde_json::to_vec(&resp["body"]).expect("error body");
            assert_eq!(
                decode_error(&body).as_deref(),
                resp["body"]["error"]["message"].as_str(),
                "{name}"
            );
            assert!(decode_response(&body).is_err(), "{name}");
            continue;
        }
        if !is_chat(&t) {
            let body = serde_json::to_vec(&resp["body"]).expect("body");
            assert!(decode_response(&body).is_err(), "{name}: not a chat answer");
            continue;
        }
        // Streams re-encode their own events (usage mid-stream and all);
        // whole bodies replay as the events a decoder would give.
        let (canonical, events) = if let Some(body) = resp.get("body").filter(|b| b.is_object()) {
            let decoded = decode_response(&serde_json::to_vec(body).expect("body"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            insta::with_settings!({snapshot_suffix => name.clone()}, {
                insta::assert_debug_snapshot!("response_canonical", decoded);
            });
            let events = events_of(&decoded);
            (decoded, events)
        } else {
            let (events, complete) = match (resp["sse"].as_str(), resp["body_raw"].as_str()) {
                (Some(sse), _) => decode_sse(sse.as_bytes()),
                (None, Some(raw)) => decode_json_array(raw),
                _ => panic!("{name}: no response"),
            };
            assert!(complete, "{name}: stream incomplete");
            insta::with_settings!({snapshot_suffix => name.clone()}, {
                insta::assert_debug_snapshot!("stream_events", events);
            });
            (ChatResponse::from_events(&events), events)
        };

        // Whole body, as a Gemini client would get it.
        let body = encode_response(&canonical, &canonical.model);
        let body_json: Value = serde_json::from_slice(&body).expect("encoded response");
        let back = decode_response(&body).expect("our response decodes");
        assert_eq!(
            summary(&back),
            summary(&canonical),
            "{name}: body round trip"
        );
        assert_eq!(back.id, canonical.id);

        // SSE stream, as a Gemini client would get it.
        let sse = encode_stream(StreamEncoder::new(&canonical.model, false), &events);
        let (redecoded, complete) = decode_sse(&sse);
        assert!(complete, "{name}: our SSE stream is complete");
        assert_eq!(
            summary(&ChatResponse::from_events(&redecoded)),
            summary(&canonical),
            "{name}: SSE round trip"
        );

        // JSON-array stream, as a client without alt=sse would get it.
        let array = encode_stream(StreamEncoder::new_json_array(&canonical.model), &events);
        let array_text = String::from_utf8(array).expect("UTF-8");
        let (redecoded, complete) = decode_json_array(&array_text);
        assert!(complete, "{name}: our JSON-array stream is complete");
        assert_eq!(
            summary(&ChatResponse::from_events(&redecoded)),
            summary(&canonical),
            "{name}: array round trip"
        );

        insta::with_settings!({snapshot_suffix => name.clone()}, {
            insta::assert_json_snapshot!("response_encoded", body_json);
            insta::assert_snapshot!("stream_encoded_sse", String::from_utf8_lossy(&sse));
        });
        if resp.get("body_raw").is_some() {
            insta::with_settings!({snapshot_suffix => name.clone()}, {
                insta::assert_snapshot!("stream_encoded_json_array", array_text);
            });
        }
    }
}

/// Our JSON-array framing is Gemini's, byte for byte: `[` + elements
/// joined by `\n,\r\n` + `\n]`, two-space pretty-printed.
#[test]
fn json_array_framing_matches_the_recording() {
    for (name, t) in transcripts() {
        let Some(raw) = t["response"]["body_raw"].as_str() else {
            continue;
        };
        assert!(raw.starts_with("[{\n  \""), "{name}");
        assert!(raw.ends_with("}\n]"), "{name}");
        let (events, _) = decode_json_array(raw);
        let ours = encode_stream(StreamEncoder::new_json_array("m"), &events);
        let ours = String::from_utf8(ours).expect("UTF-8");
        assert!(ours.starts_with("[{\n  \""), "{name}: {ours}");
        assert!(ours.ends_with("}\n]"), "{name}");
        let separators = |s: &str| s.matches("\n,\r\n").count();
        assert_eq!(
            separators(&ours) + 1,
            serde_json::from_str::<Vec<Value>>(&ours)
                .expect("array")
                .len(),
            "{name}"
        );
        // Every element names the model, as llm-gemini reads it from the last.
        let elements: Vec<Value> = serde_json::from_str(&ours).expect("array");
        assert!(elements.iter().all(|e| e["modelVersion"] == "m"), "{name}");
        assert!(elements
            .last()
            .is_some_and(|e| e.get("usageMetadata").is_some()));
    }
}

#[test]
fn truncated_upstream_stream_ends_cleanly() {
    let t = transcripts()
        .into_iter()
        .find(|(n, _)| n == "stream_thinking")
        .expect("stream_thinking")
        .1;
    let sse = t["response"]["sse"].as_str().expect("sse");
    // Cut after the fifth complete event: no finishReason yet.
    let cut = sse
        .match_indices("\r\n\r\n")
        .nth(4)
        .map(|(i, _)| i + 4)
        .expect("events");
    let (events, complete) = decode_sse(&sse.as_bytes()[..cut]);
    assert!(!complete);
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Finish(_))));

    for json_array in [false, true] {
        let mut enc = if json_array {
            StreamEncoder::new_json_array("m")
        } else {
            StreamEncoder::new("m", true)
        };
        let mut out = Vec::new();
        for ev in &events {
            enc.on_event(ev, &mut out);
        }
        enc.fail(
            "the provider's stream ended before it was complete",
            &mut out,
        );
        assert!(enc.is_done());
        let text = String::from_utf8(out).expect("UTF-8");
        let last = if json_array {
            let all: Vec<Value> = serde_json::from_str(&text).expect("closed array");
            all.last().cloned().expect("elements")
        } else {
            let data = text.trim_end().rsplit("data: ").next().expect("event");
            serde_json::from_str(data).expect("error event")
        };
        assert_eq!(last["error"]["status"], "INTERNAL");
        assert_eq!(last["error"]["code"], 500);
    }
}

/// Every recorded stream, split anywhere.
fn streams() -> Vec<(String, String, Vec<StreamEvent>)> {
    transcripts()
        .into_iter()
        .filter_map(|(name, t)| {
            let sse = recorded_sse(&t)?;
            let (events, complete) = decode_sse(sse.as_bytes());
            assert!(complete, "{name}");
            Some((name, sse, events))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn split_streams_decode_the_same(cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        for (name, sse, whole) in streams() {
            let bytes = sse.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            points.dedup();
            let mut pieces = Vec::new();
            let mut start = 0;
            for p in points {
                pieces.push(&bytes[start..p]);
                start = p;
            }
            pieces.push(&bytes[start..]);
            let (events, complete) = decode_sse_pieces(&pieces);
            prop_assert!(complete, "{}", name);
            prop_assert_eq!(&events, &whole, "{}", name);
            // Tool-call fragments of each call concatenate to JSON.
            let mut args: Vec<String> = Vec::new();
            for ev in &events {
                match ev {
                    StreamEvent::ToolCallStart { index, .. } => {
                        prop_assert_eq!(*index as usize, args.len());
                        args.push(String::new());
                    }
                    StreamEvent::ToolCallArguments { index, fragment } => {
                        args[*index as usize].push_str(fragment);
                    }
                    _ => {}
                }
            }
            for a in args {
                prop_assert!(serde_json::from_str::<Value>(&a).is_ok(), "{}: {}", name, a);
            }
        }
    }

    #[test]
    fn arbitrary_chunks_never_panic(data in ".{0,200}") {
        let mut dec = StreamDecoder::new();
        let mut out = Vec::new();
        dec.on_event(None, &data, &mut out);
        dec.finish(&mut out);
        let _ = decode_response(data.as_bytes());
        let _ = decode_request(Some("m"), data.as_bytes());
        let _ = decode_error(data.as_bytes());
    }
}

#[test]
fn thinking_budget_written_with_a_zero_fraction_is_an_integer() {
    let body = serde_json::json!({
        "contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 167.0}, "maxOutputTokens": 310.0},
    });
    let req =
        decode_request(Some("gemini-2.5-flash"), body.to_string().as_bytes()).expect("accepted");
    assert_eq!(req.reasoning.and_then(|r| r.budget_tokens), Some(167));
    assert_eq!(req.max_tokens, Some(310));
}
