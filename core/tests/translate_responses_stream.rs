//! The Responses dialect's event stream: every recorded provider stream as
//! a Responses client sees it (snapshots), checked as the `openai` SDKs
//! accumulate it (sequence numbers, brackets, the final `response` equal to
//! the non-stream answer), the same bytes whatever the upstream's split,
//! and a well-formed stream for any sequence of canonical events.

use std::collections::BTreeSet;
use std::path::PathBuf;

use arouter_core::gateway::ProviderKind;
use arouter_core::sse::SseDecoder;
use arouter_core::translate::canonical::{ChatResponse, Finish, StreamEvent};
use arouter_core::translate::dispatch::StreamDecoder;
use arouter_core::translate::finish::FinishReason;
use arouter_core::translate::responses::{encode_response, StreamEncoder};
use arouter_core::usage::Usage;
use proptest::prelude::*;
use serde_json::{Map, Value};

const LABEL: &str = "p/model";

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/transcripts"
    ))
}

/// A recorded provider stream: SSE text, or Gemini's JSON array.
enum Recorded {
    Sse(String),
    JsonArray(Vec<Value>),
}

/// Every recorded 200 chat stream of the three provider kinds.
fn streams() -> Vec<(String, ProviderKind, Recorded)> {
    let mut out = Vec::new();
    for (provider, kind) in [
        ("openai", ProviderKind::OpenAi),
        ("anthropic", ProviderKind::Anthropic),
        ("gemini", ProviderKind::Gemini),
    ] {
        let mut paths: Vec<_> = std::fs::read_dir(dir().join(provider))
            .expect("transcripts dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        paths.sort();
        for path in paths {
            let t: Value =
                serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
            let req_path = t["request"]["path"].as_str().unwrap_or_default();
            let chat = req_path.contains("/chat/completions")
                || req_path.split('?').next() == Some("/v1/messages")
                || req_path.contains(":streamGenerateContent");
            if !chat || t["response"]["status"] != 200 {
                continue;
            }
            let name = format!(
                "{provider}__{}",
                path.file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
            );
            if let Some(sse) = t["response"]["sse"].as_str() {
                out.push((name, kind, Recorded::Sse(sse.to_owned())));
            } else if let Some(raw) = t["response"]["body_raw"].as_str() {
                let items: Vec<Value> = serde_json::from_str(raw).expect("array");
                out.push((name, kind, Recorded::JsonArray(items)));
            }
        }
    }
    assert!(out.len() >= 20, "only {} streams", out.len());
    out
}

/// The canonical events of a recorded stream, its SSE fed in pieces cut at
/// `cuts` (taken modulo its length).
fn canonical(kind: ProviderKind, recorded: &Recorded, cuts: &[usize]) -> Vec<StreamEvent> {
    let mut decoder = StreamDecoder::new(kind);
    let mut events = Vec::new();
    match recorded {
        Recorded::Sse(sse) => {
            let bytes = sse.as_bytes();
            let mut sse_dec = SseDecoder::new(1 << 20);
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            points.push(bytes.len());
            let mut last = 0;
            for p in points {
                if p < last {
                    continue;
                }
                sse_dec
                    .feed(&bytes[last..p], |e| {
                        decoder.on_event(e.event, e.data, &mut events)
                    })
                    .expect("valid SSE");
                last = p;
            }
        }
        Recorded::JsonArray(items) => {
            for item in items {
                decoder.on_event(None, &item.to_string(), &mut events);
            }
        }
    }
    decoder.finish(&mut events);
    events
}

fn encode(events: &[StreamEvent]) -> String {
    let mut enc = StreamEncoder::new(LABEL);
    let mut out = Vec::new();
    for e in events {
        enc.on_event(e, &mut out);
    }
    enc.finish(&mut out);
    assert!(enc.is_done());
    String::from_utf8(out).expect("utf-8")
}

/// `(event name, data)` of each event of an encoded stream.
fn parse(stream: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut dec = SseDecoder::new(1 << 20);
    dec.feed(stream.as_bytes(), |e| {
        let data: Value = serde_json::from_str(e.data).expect("event data is JSON");
        out.push((e.event.unwrap_or_default().to_owned(), data));
    })
    .expect("valid SSE");
    assert!(!dec.finish(), "the stream ends on an event boundary");
    out
}

/// What the `openai` SDKs rely on: the event name is the data's `type`;
/// sequence numbers count from 0; the stream opens with `response.created`
/// and `response.in_progress` and ends with one terminal event; each item
/// is added once and done once, in output order; the deltas join into what
/// the `.done` events and the final response say.
fn check_stream(events: &[(String, Value)]) -> Value {
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.get(1), Some(&"response.in_progress"));
    let last = names.last().copied().unwrap_or_default();
    let mut added = Vec::new();
    let mut done = Vec::new();
    let mut text = String::new();
    let mut args: Vec<(u64, String)> = Vec::new();
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i as u64, "{name}");
        match name.as_str() {
            "response.output_item.added" => added.push(data["output_index"].as_u64()),
            "response.output_item.done" => done.push(data["output_index"].as_u64()),
            "response.output_text.delta" => {
                text.push_str(data["delta"].as_str().unwrap_or_default())
            }
            "response.function_call_arguments.delta" => {
                let at = data["output_index"].as_u64().unwrap_or_default();
                match args.iter_mut().find(|(i, _)| *i == at) {
                    Some((_, have)) => have.push_str(data["delta"].as_str().unwrap_or_default()),
                    None => args.push((at, data["delta"].as_str().unwrap_or_default().to_owned())),
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" | "error" => {
                assert_eq!(i, events.len() - 1, "{name} is the last event");
            }
            _ => {}
        }
    }
    let unique: BTreeSet<_> = added.iter().collect();
    assert_eq!(unique.len(), added.len(), "each item added once");
    if last == "error" {
        // A failure leaves the open item unfinished, as OpenAI's does.
        return Value::Null;
    }
    let mut sorted_added = added.clone();
    sorted_added.sort();
    let mut sorted_done = done.clone();
    sorted_done.sort();
    assert_eq!(sorted_added, sorted_done, "each added item is done");
    assert_eq!(sorted_added, added, "items are added in output order");
    let response = events
        .last()
        .map(|(_, d)| d["response"].clone())
        .unwrap_or_default();
    let output = response["output"].as_array().cloned().unwrap_or_default();
    assert_eq!(output.len(), added.len());
    let final_text: String = output
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(final_text, text);
    for (at, joined) in args {
        let item = &output[at as usize];
        assert_eq!(item["type"], "function_call");
        assert_eq!(item["arguments"].as_str(), Some(joined.as_str()));
    }
    response
}

#[test]
fn every_recorded_stream_as_response_events() {
    for (name, kind, recorded) in streams() {
        let events = canonical(kind, &recorded, &[]);
        let stream = encode(&events);
        let response = check_stream(&parse(&stream));
        // The stream's final response is the answer the same events give
        // without streaming.
        let whole = ChatResponse::from_events(&events);
        let want: Value =
            serde_json::from_slice(&encode_response(&whole, LABEL, &Map::new(), None))
                .expect("json");
        for key in ["id", "status", "incomplete_details", "output", "usage"] {
            assert_eq!(response[key], want[key], "{name}: {key}");
        }
        insta::with_settings!({snapshot_suffix => name.clone()}, {
            insta::assert_snapshot!("client_stream", stream);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// However the upstream's bytes are cut, the client gets the same bytes.
    #[test]
    fn any_split_gives_the_same_stream(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        for (name, kind, recorded) in streams() {
            if let Recorded::Sse(_) = recorded {
                let whole = encode(&canonical(kind, &recorded, &[]));
                let split = encode(&canonical(kind, &recorded, &cuts));
                prop_assert_eq!(split, whole, "{}", name);
            }
        }
    }

    /// Any sequence of canonical events, ended or failed, gives a stream
    /// the SDKs accumulate.
    #[test]
    fn encoder_output_is_always_well_formed(
        ops in proptest::collection::vec(0u8..10, 0..40),
        end in 0u8..3,
    ) {
        let mut enc = StreamEncoder::new(LABEL);
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
                8 => StreamEvent::Text(String::new()),
                _ => StreamEvent::Finish(Finish { reason: FinishReason::Length, native: "length".into() }),
            };
            enc.on_event(&ev, &mut out);
        }
        match end {
            0 => enc.finish(&mut out),
            1 => enc.fail("upstream went away", &mut out),
            _ => {
                enc.finish(&mut out);
                enc.fail("after the end", &mut out);
            }
        }
        prop_assert!(enc.is_done());
        let stream = String::from_utf8(out).expect("utf-8");
        check_stream(&parse(&stream));
    }
}
