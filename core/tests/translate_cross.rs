//! Cross-dialect snapshots: every recorded Anthropic and Gemini exchange as
//! an OpenAI client sees it, and every recorded OpenAI exchange as an
//! Anthropic or Gemini client sees it. For each: the upstream request the
//! gateway writes from the client's form of the conversation, and the
//! client's response (non-stream body, or stream text) built from the
//! recorded answer.

use std::path::PathBuf;

use arouter_core::api::Dialect;
use arouter_core::gateway::ProviderKind;
use arouter_core::sse::SseDecoder;
use arouter_core::translate::canonical::{ChatRequest, ResponseFormat, StreamEvent};
use arouter_core::translate::dispatch::{self, StreamDecoder, StreamEncoder};
use arouter_core::translate::{anthropic, gemini, openai};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/transcripts"
    ))
}

/// Chat transcripts of a provider with a 200 answer.
fn chat_transcripts(provider: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir().join(provider))
        .expect("transcripts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for path in paths {
        let t: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let request_path = t["request"]["path"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let chat = request_path.contains("/chat/completions")
            || request_path.starts_with("/v1/messages") && !request_path.contains("count_tokens")
            || request_path.contains("generateContent");
        if chat && t["response"]["status"] == 200 {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            out.push((name, t));
        }
    }
    assert!(!out.is_empty(), "no {provider} transcripts");
    out
}

fn kind_of(provider: &str) -> ProviderKind {
    match provider {
        "anthropic" => ProviderKind::Anthropic,
        "gemini" => ProviderKind::Gemini,
        _ => ProviderKind::OpenAi,
    }
}

/// The recorded request in canonical form (decoded in its own dialect).
fn recorded_request(provider: &str, t: &Value) -> ChatRequest {
    let body = serde_json::to_vec(&t["request"]["body"]).expect("body");
    let path = t["request"]["path"].as_str().unwrap_or_default();
    let req = match provider {
        "anthropic" => anthropic::decode_request(None, &body),
        "gemini" => {
            let model = path
                .split("/models/")
                .nth(1)
                .and_then(|rest| rest.split(':').next())
                .unwrap_or_default();
            gemini::decode_request(Some(model), &body)
        }
        _ => openai::canonical::decode_request(&body),
    };
    let mut req = req.unwrap_or_else(|e| panic!("recorded request does not decode: {e:?}"));
    // What the client dialect cannot say is not part of its request.
    req.extra.clear();
    req
}

/// The client's form of the conversation in `client` dialect, decoded back
/// as the gateway would, then encoded for the upstream `provider`.
fn upstream_from(client: Dialect, provider: &str, req: &ChatRequest) -> Value {
    let kind = kind_of(provider);
    let client_form = dispatch::encode_request(
        match client {
            Dialect::OpenAi => ProviderKind::OpenAi,
            Dialect::Anthropic => ProviderKind::Anthropic,
            Dialect::Google => ProviderKind::Gemini,
            Dialect::Responses => panic!("Responses clients: see translate_responses.rs"),
        },
        req,
    );
    let mut back = match client {
        Dialect::OpenAi => openai::canonical::decode_request(&client_form),
        Dialect::Anthropic => anthropic::decode_request(None, &client_form),
        Dialect::Google => gemini::decode_request(Some(&req.model), &client_form),
        Dialect::Responses => panic!("Responses clients: see translate_responses.rs"),
    }
    .unwrap_or_else(|e| panic!("the client form does not decode: {e:?}"));
    back.model = req.model.clone();
    back.stream = req.stream;
    serde_json::from_slice(&dispatch::encode_request(kind, &back)).expect("upstream json")
}

/// The client's view of the recorded answer.
fn client_view(client: Dialect, provider: &str, t: &Value) -> String {
    let kind = kind_of(provider);
    let label = format!("{provider}/model");
    if let Some(sse) = t["response"]["sse"].as_str() {
        let mut decoder = StreamDecoder::new(kind);
        let mut encoder = StreamEncoder::new(client, &label, true, false);
        let mut events: Vec<StreamEvent> = Vec::new();
        let mut out = Vec::new();
        let mut sse_decoder = SseDecoder::new(1 << 20);
        sse_decoder
            .feed(sse.as_bytes(), |e| {
                decoder.on_event(e.event, e.data, &mut events)
            })
            .expect("recorded SSE decodes");
        decoder.finish(&mut events);
        for e in &events {
            encoder.on_event(e, &mut out);
        }
        encoder.finish(&mut out);
        return String::from_utf8(out).expect("utf-8");
    }
    let body = match &t["response"]["body_raw"] {
        Value::String(raw) => {
            // Gemini's JSON-array stream, read whole as a response series.
            let items: Vec<Value> = serde_json::from_str(raw).expect("array");
            let mut decoder = StreamDecoder::new(kind);
            let mut encoder = StreamEncoder::new(client, &label, true, false);
            let mut events = Vec::new();
            let mut out = Vec::new();
            for item in items {
                decoder.on_event(None, &item.to_string(), &mut events);
            }
            decoder.finish(&mut events);
            for e in &events {
                encoder.on_event(e, &mut out);
            }
            encoder.finish(&mut out);
            return String::from_utf8(out).expect("utf-8");
        }
        _ => serde_json::to_vec(&t["response"]["body"]).expect("body"),
    };
    let resp = dispatch::decode_response(kind, &body).expect("recorded response decodes");
    let encoded = dispatch::encode_response(client, &resp, &label, None);
    let v: Value = serde_json::from_slice(&encoded).expect("client json");
    serde_json::to_string_pretty(&v).expect("pretty")
}

/// The conversation of an upstream body, as the replay matches it.
fn conversation(provider: &str, body: &Value) -> Value {
    match provider {
        "gemini" => body["contents"].clone(),
        _ => body["messages"].clone(),
    }
}

/// Drops `thoughtSignature` members (when `strip` says so) and reads tool
/// arguments as JSON values: `{"a": 1}` and `{"a":1}` are the same call.
fn normalized(v: &Value, strip_signatures: bool) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| normalized(i, strip_signatures))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !(strip_signatures && k.as_str() == "thoughtSignature"))
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("arguments", Value::String(text)) => {
                            serde_json::from_str(text).unwrap_or_else(|_| v.clone())
                        }
                        _ => normalized(v, strip_signatures),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What the client's dialect cannot carry in a request of its own, and so
/// legitimately differs after the round trip:
/// - OpenAI and Anthropic clients hold a Gemini `thoughtSignature` inside
///   the tool call id the gateway gave them (the SDK tests in tests/py
///   cover that path), not in a request this test writes from scratch;
/// - an OpenAI client cannot flag a tool result as failed, so a Gemini
///   `{"error": …}` answer comes back as `{"output": …}`;
/// - an Anthropic client has no JSON-object mode: the gateway asks for it
///   in the system prompt, which an Anthropic client then sends as its own.
fn comparable(provider: &str, client: Dialect, req: &ChatRequest, conv: Value) -> Value {
    let mut conv = normalized(&conv, provider == "gemini" && client != Dialect::Google);
    if client == Dialect::OpenAi {
        failed_as_output(&mut conv);
    }
    if client == Dialect::Anthropic && req.response_format == Some(ResponseFormat::JsonObject) {
        if let Value::Array(mut items) = conv {
            if let Some(Value::String(system)) =
                items.first_mut().and_then(|m| m.get_mut("content"))
            {
                if let Some(stripped) =
                    system.strip_suffix(&format!("\n\n{}", anthropic::JSON_OBJECT_INSTRUCTION))
                {
                    *system = stripped.to_string();
                }
            }
            return Value::Array(items);
        }
    }
    conv
}

fn failed_as_output(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(failed_as_output),
        Value::Object(map) => {
            if let Some(Value::Object(response)) = map.get_mut("response") {
                if response.len() == 1 {
                    if let Some(err) = response.remove("error") {
                        response.insert("output".into(), err);
                    }
                }
            }
            map.values_mut().for_each(failed_as_output);
        }
        _ => {}
    }
}

fn check_provider(provider: &str, clients: &[Dialect]) {
    for (name, t) in chat_transcripts(provider) {
        let req = recorded_request(provider, &t);
        for &client in clients {
            let upstream = upstream_from(client, provider, &req);
            let recorded =
                serde_json::from_slice::<Value>(&dispatch::encode_request(kind_of(provider), &req))
                    .expect("json");
            // The conversation survives the trip through the client's dialect.
            assert_eq!(
                comparable(provider, client, &req, conversation(provider, &upstream)),
                comparable(provider, client, &req, conversation(provider, &recorded)),
                "{provider}/{name} via {client:?}"
            );
            let suffix = format!("{provider}__{name}__via_{client:?}");
            insta::with_settings!({snapshot_suffix => suffix.clone()}, {
                insta::assert_json_snapshot!("upstream_request", upstream);
                insta::assert_snapshot!("client_response", client_view(client, provider, &t));
            });
        }
    }
}

#[test]
fn anthropic_transcripts_through_openai_and_gemini_clients() {
    check_provider("anthropic", &[Dialect::OpenAi, Dialect::Google]);
}

#[test]
fn gemini_transcripts_through_openai_and_anthropic_clients() {
    check_provider("gemini", &[Dialect::OpenAi, Dialect::Anthropic]);
}

#[test]
fn openai_transcripts_through_anthropic_and_gemini_clients() {
    check_provider("openai", &[Dialect::Anthropic, Dialect::Google]);
}

/// The arguments of every tool call an OpenAI client receives, joined as
/// its SDK joins them: non-stream `function.arguments`, or the stream's
/// argument fragments per tool-call index.
fn openai_client_tool_arguments(view: &str) -> Vec<String> {
    if !view.starts_with("data:") {
        let body: Value = serde_json::from_str(view).expect("client json");
        return body["choices"][0]["message"]["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| {
                        c["function"]["arguments"]
                            .as_str()
                            .expect("string")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    let mut args: Vec<(u64, String)> = Vec::new();
    for line in view.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let index = call["index"].as_u64().expect("index");
                let fragment = call["function"]["arguments"].as_str().unwrap_or_default();
                match args.iter_mut().find(|(i, _)| *i == index) {
                    Some((_, have)) => have.push_str(fragment),
                    None => args.push((index, fragment.to_owned())),
                }
            }
        }
    }
    args.into_iter().map(|(_, a)| a).collect()
}

/// A tool call with no arguments (an Anthropic `tool_use` streamed with no
/// `input_json_delta`, a Gemini `functionCall` without `args`) must reach an
/// OpenAI client as `"{}"`: `JSON.parse("")` throws in every SDK that
/// parses arguments.
#[test]
fn every_translated_tool_call_has_json_arguments() {
    let mut checked = 0;
    for provider in ["anthropic", "gemini"] {
        for (name, t) in chat_transcripts(provider) {
            for arguments in
                openai_client_tool_arguments(&client_view(Dialect::OpenAi, provider, &t))
            {
                assert!(
                    serde_json::from_str::<Value>(&arguments).is_ok_and(|v| v.is_object()),
                    "{provider}/{name}: tool call arguments {arguments:?} are not a JSON object"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "only {checked} tool calls checked");
}
