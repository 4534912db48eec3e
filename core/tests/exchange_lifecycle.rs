//! A connection's life at its edges: how long a silent or slow client is
//! held (header, idle and body deadlines), how calls in flight end when the
//! shutdown grace runs out, and how a provider's work is billed when its
//! answer is cut off.

mod support;

use arouter_core::exchange::Input;
use arouter_core::Tick;
use serde_json::{json, Value};
use support::*;

const ACCEPTED: Tick = Tick::from_millis(1_000);

fn limits_scenario(header_ms: u64, idle_ms: u64, body_ms: u64) -> Scenario {
    let mut s = Scenario::builder()
        .limits(|l| {
            l.header_timeout_ms = header_ms;
            l.idle_timeout_ms = idle_ms;
            l.body_timeout_ms = body_ms;
        })
        .build();
    s.drain();
    s
}

// ------------------------------------------------------ silent connections

#[test]
fn a_silent_new_connection_is_closed_at_the_header_timeout() {
    // nginx's client_header_timeout: a client that connects and says
    // nothing is held no longer than one that sends half a head.
    let mut s = limits_scenario(1_000, 60_000, 60_000);
    assert_eq!(s.deadline, Some(ACCEPTED.after(1_000)));
    s.fire_deadline();
    assert!(s.closed, "silent connection still open");
    assert!(s.down.is_empty(), "nobody is waiting for a 408");
}

#[test]
fn the_header_timeout_of_the_first_request_runs_from_accept() {
    let mut s = limits_scenario(1_000, 60_000, 60_000);
    s.advance(900);
    s.send(b"GET /healthz HTTP/1.1\r\n");
    assert_eq!(
        s.deadline,
        Some(ACCEPTED.after(1_000)),
        "first bytes late in the window do not restart it"
    );
    s.fire_deadline();
    assert_eq!(s.response().status, 408);
    assert!(s.closed);
}

#[test]
fn between_keep_alive_requests_the_idle_timeout_governs() {
    // After an answer the client may think for `idle_timeout_ms` (nginx's
    // keepalive_timeout); its next head then has `header_timeout_ms` from
    // its first byte.
    let mut s = limits_scenario(1_000, 5_000, 60_000);
    s.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(s.response().status, 200);
    assert_eq!(s.deadline, Some(s.now.after(5_000)));
    s.advance(4_000);
    s.input(Input::Timeout(s.now));
    assert!(!s.closed, "closed before the idle timeout");
    s.send(b"GET /hea");
    assert_eq!(s.deadline, Some(s.now.after(1_000)));
    s.send(b"lthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(s.responses().len(), 2);
    s.fire_deadline();
    assert!(s.closed, "idle keep-alive connection closed at its timeout");
}

// ------------------------------------------------------------ body deadline

fn trickle_body(s: &mut Scenario, path: &str, extra_headers: &str) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {CLIENT_KEY}\r\n{extra_headers}\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    s.send(head.as_bytes());
    // One byte a second: each byte is progress, well inside the idle timeout.
    for _ in 0..100 {
        if s.closed {
            return;
        }
        s.advance(1_000);
        s.input(Input::Timeout(s.now));
        if !s.closed {
            s.send(b" ");
        }
    }
}

#[test]
fn a_body_trickled_one_byte_a_second_is_cut_at_the_body_deadline() {
    let mut s = limits_scenario(10_000, 60_000, 5_000);
    let head_at = s.now;
    trickle_body(&mut s, "/v1/chat/completions", "");
    assert!(s.closed, "slow body held the connection");
    assert!(s.now <= head_at.after(5_000), "cut at {:?}", s.now);
    let r = s.response();
    assert_eq!(r.status, 408);
    assert!(r.json()["error"]["message"].is_string(), "OpenAI shape");
    assert!(!r.keep_alive());
    assert!(s.uploads.is_empty(), "nothing went upstream");
}

#[test]
fn the_body_deadline_answers_in_the_routes_dialect() {
    let mut s = limits_scenario(10_000, 60_000, 3_000);
    trickle_body(&mut s, "/v1/messages", "anthropic-version: 2023-06-01\r\n");
    let r = s.response();
    assert_eq!(r.status, 408);
    let v = r.json();
    assert_eq!(v["type"], "error", "Anthropic shape: {v}");
    assert!(v["error"]["type"].is_string());
}

#[test]
fn a_body_arriving_in_time_is_served() {
    let mut s = limits_scenario(10_000, 60_000, 5_000);
    s.chat(&chat_body("openai/m", false));
    assert_eq!(s.uploads.len(), 1, "request went upstream");
    s.upstream(&json_response(200, &completion("m", "ok"), &[]));
    assert_eq!(s.response().status, 200);
}

// ------------------------------------------------------ shutdown grace over

fn events(datas: &[String]) -> String {
    datas.iter().map(|d| format!("data: {d}\n\n")).collect()
}

fn delta(content: &str) -> String {
    json!({
        "id": "chatcmpl-q", "object": "chat.completion.chunk", "created": 7, "model": "llama",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}],
    })
    .to_string()
}

#[test]
fn a_stream_running_when_the_grace_ends_gets_an_error_tail_and_is_billed() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/llama", true));
    s.upstream(&sse_head());
    s.upstream(&chunk(events(&[delta("one"), delta(" two")]).as_bytes()));
    s.input(Input::Drain(s.now));
    assert!(!s.closed, "a stream is let finish during the grace");
    s.input(Input::GraceExpired(s.now));
    let r = s.response();
    assert_eq!(r.status, 200);
    assert!(r.complete, "chunked terminator written");
    let data = r.sse_data();
    let n = data.len();
    assert!(data[n - 3].starts_with("{\"error\""), "{data:?}");
    let fin: Value = serde_json::from_str(&data[n - 2]).unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "error");
    assert_eq!(data[n - 1], "[DONE]");
    assert_eq!(s.releases(), vec![false], "the upstream is let go");
    assert!(s.closed);
    let record = s.usage_event();
    assert!(!record.complete);
    assert!(record.estimated);
    let usage = record.usage.expect("billed");
    assert_eq!(usage.completion_tokens, 2);
    assert!(usage.prompt_tokens > 0);
}

#[test]
fn an_anthropic_stream_running_when_the_grace_ends_gets_its_error_event() {
    let mut s = Scenario::builder().anthropic_first().build();
    let body = json!({"model": "anthropic/claude-x", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    s.send(&post("/v1/messages", &body));
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null,
        "usage": {"input_tokens": 25, "output_tokens": 1}}});
    let block = json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}});
    let text = json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": "Hel"}});
    let sse = format!(
        "event: message_start\ndata: {start}\n\nevent: content_block_start\ndata: {block}\n\n\
         event: content_block_delta\ndata: {text}\n\n"
    );
    s.upstream(&sse_head());
    s.upstream(&chunk(sse.as_bytes()));
    s.input(Input::GraceExpired(s.now));
    let r = s.response();
    assert!(r.complete, "chunked terminator written");
    let body = r.text();
    assert!(
        body.trim_end().ends_with('}') && body.contains("event: error"),
        "{body}"
    );
    assert!(s.closed);
    // Anthropic reports its input tokens as the stream starts and its
    // output only at the end: the provider's prompt is kept, the output is
    // the gateway's count of what it relayed, and the row says so.
    let record = s.usage_event();
    assert!(!record.complete);
    assert!(record.estimated, "partial provider figures are an estimate");
    let usage = record.usage.expect("billed");
    assert_eq!(usage.prompt_tokens, 25, "the provider's own prompt count");
    assert_eq!(usage.completion_tokens, 1);
}

#[test]
fn usage_reported_with_the_finish_is_final_even_if_the_stream_is_cut_after() {
    let mut s = Scenario::builder().anthropic_first().build();
    let body = json!({"model": "anthropic/claude-x", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    s.send(&post("/v1/messages", &body));
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null,
        "usage": {"input_tokens": 25, "output_tokens": 1}}});
    let block = json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}});
    let text = json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": "Hello"}});
    let stop = json!({"type": "content_block_stop", "index": 0});
    let delta = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 7}});
    let sse = format!(
        "event: message_start\ndata: {start}\n\nevent: content_block_start\ndata: {block}\n\n\
         event: content_block_delta\ndata: {text}\n\nevent: content_block_stop\ndata: {stop}\n\n\
         event: message_delta\ndata: {delta}\n\n"
    );
    s.upstream(&sse_head());
    s.upstream(&chunk(sse.as_bytes()));
    s.input(Input::GraceExpired(s.now));
    let record = s.usage_event();
    assert!(!record.complete);
    assert!(
        !record.estimated,
        "the provider's final figures: {record:?}"
    );
    let usage = record.usage.expect("billed");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (25, 7));
}

#[test]
fn a_call_awaiting_its_answer_when_the_grace_ends_gets_a_503() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/m", false));
    s.input(Input::GraceExpired(s.now));
    let r = s.response();
    assert_eq!(r.status, 503);
    assert!(r.json()["error"]["message"].is_string());
    assert!(!r.keep_alive());
    assert_eq!(s.releases(), vec![false]);
    assert!(s.closed);
    let record = s.usage_event();
    assert!(record.estimated && !record.complete);
    assert!(record.usage.expect("billed").prompt_tokens > 0);
}

#[test]
fn a_request_still_arriving_when_the_grace_ends_gets_a_503() {
    let mut s = Scenario::new();
    s.send(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
             Content-Length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    );
    s.input(Input::GraceExpired(s.now));
    assert_eq!(s.response().status, 503);
    assert!(s.closed);
    assert!(s.usage_events().is_empty());
}

#[test]
fn an_idle_connection_when_the_grace_ends_is_closed() {
    let mut s = Scenario::new();
    s.drain();
    s.input(Input::GraceExpired(s.now));
    assert!(s.closed);
    assert!(s.down.is_empty());
}

// ------------------------------------------------ cut non-stream answers

#[test]
fn a_cut_off_answer_is_a_502_and_billed_as_an_estimate() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/m", false));
    let resp = json_response(200, &completion("m", "partial"), &[]);
    s.upstream(&resp[..resp.len() - 5]);
    s.upstream_eof();
    assert_eq!(s.response().status, 502);
    let record = s.usage_event();
    assert_eq!(
        (record.provider.as_str(), record.model.as_str()),
        ("openai", "m")
    );
    assert!(!record.complete);
    assert!(record.estimated, "flagged as the gateway's estimate");
    assert!(record.usage.expect("billed").prompt_tokens > 0);
}

#[test]
fn a_stalled_answer_is_billed_as_an_estimate_too() {
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/m", false));
    let resp = json_response(200, &completion("m", "partial"), &[]);
    s.upstream(&resp[..resp.len() - 5]);
    s.fire_deadline();
    assert_eq!(s.response().status, 504);
    let record = s.usage_event();
    assert!(record.estimated && !record.complete);
}

#[test]
fn a_cut_off_answer_then_a_fallback_bills_both_providers() {
    let mut s = Scenario::builder().backup().build();
    s.chat(&json!({
        "models": ["openai/a", "backup/b"],
        "messages": [{"role": "user", "content": "hi"}],
    }));
    let resp = json_response(200, &completion("a", "partial"), &[]);
    s.upstream(&resp[..resp.len() - 5]);
    s.upstream_eof();
    s.upstream(&json_response(200, &completion("b", "from backup"), &[]));
    assert_eq!(s.response().status, 200);
    let records = s.usage_events();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].provider, "openai");
    assert!(records[0].estimated && !records[0].complete);
    assert!(records[0].usage.expect("estimated").prompt_tokens > 0);
    assert_eq!(records[1].provider, "backup");
    assert!(records[1].complete && !records[1].estimated);
}

#[test]
fn a_cut_off_error_answer_bills_nothing() {
    // A provider's error body cut short: no work was done.
    let mut s = Scenario::new();
    s.chat(&chat_body("openai/m", false));
    let resp = json_response(400, &json!({"error": {"message": "bad"}}), &[]);
    s.upstream(&resp[..resp.len() - 5]);
    s.upstream_eof();
    assert_eq!(s.response().status, 502);
    assert!(s.usage_events().is_empty());
}

// ------------------------------------------------------------ request ids

/// The answers the core writes before (or without) a parsed request carry a
/// request id too: the ones a client cannot otherwise tie to a log line.
#[test]
fn answers_to_broken_or_late_requests_carry_a_request_id() {
    let small = || {
        let mut s = Scenario::builder()
            .limits(|l| {
                l.header_timeout_ms = 1_000;
                l.max_head_bytes = 1_024;
                l.max_body_bytes = 1_024;
            })
            .build();
        s.drain();
        s
    };
    let mut cases: Vec<(u16, Scenario)> = Vec::new();
    // 408: half a head, then silence.
    let mut s = small();
    s.send(b"GET /healthz HTTP/1.1\r\n");
    s.fire_deadline();
    cases.push((408, s));
    // 431: a head over the limit.
    let mut s = small();
    s.send(
        format!(
            "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(2_000)
        )
        .as_bytes(),
    );
    cases.push((431, s));
    // 413: a body announced over the limit.
    let mut s = small();
    s.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-client-0123456789\r\n\
          Content-Length: 5000\r\n\r\n",
    );
    cases.push((413, s));
    // 400: not HTTP at all.
    let mut s = small();
    s.send(b"\x01\x02 nonsense\r\n\r\n");
    cases.push((400, s));
    for (status, s) in &cases {
        let r = s.response();
        assert_eq!(r.status, *status, "{}", r.text());
        let id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{status} without a request id"));
        assert!(id.starts_with("req-") && id.len() > 4, "{status}: {id}");
    }
}

#[test]
fn a_counted_request_cut_at_the_body_deadline_keeps_its_rate_limit_headers() {
    // Admitted (and so counted against the key) before its body stalled:
    // the 408 says where the key stands, in OpenRouter's shape on its path.
    let mut s = limits_scenario(10_000, 60_000, 3_000);
    trickle_body(&mut s, "/api/v1/chat/completions", "");
    let r = s.response();
    assert_eq!(r.status, 408);
    assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
    let v = r.json();
    assert_eq!(v["error"]["code"], 408, "OpenRouter shape: {v}");
    assert!(v["error"]["message"].is_string());
}
