//! A proxied request body longer than `proxy_buffer_bytes` streams to the
//! provider as the client sends it: the call starts from the head and the
//! first bytes, the rest goes on as it arrives (read on the side for the
//! model and output cap), and only the body's very end waits until the
//! key's allowlist and credit have decided. A refused call is cut off with
//! its request incomplete, so the provider never answers it.

mod support;

use std::sync::Arc;

use arouter_core::billing::MicroUsd;
use arouter_core::exchange::{Refusal, ReserveRequest};
use arouter_core::manage::ModelAllowlist;
use arouter_core::Tick;
use serde_json::json;
use support::*;

const WINDOW: usize = 1024;

fn scenario() -> Scenario {
    Scenario::builder()
        .price("openai", "m", TEST_PRICE)
        .limits(|l| l.proxy_buffer_bytes = WINDOW)
        .build()
}

/// A chat body of about 10 KB whose `model` and `max_tokens` come after
/// the long messages, as the OpenAI SDK writes them.
fn long_body(model: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "messages": [{"role": "user", "content": "x".repeat(10_000)}],
        "model": model,
        "max_tokens": 40,
    }))
    .unwrap()
}

fn head(extra: &str, length: Option<usize>) -> Vec<u8> {
    let framing = match length {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_string(),
    };
    format!(
        "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gateway.test\r\n\
         Authorization: Bearer {CLIENT_KEY}\r\nContent-Type: application/json\r\n{extra}{framing}\r\n"
    )
    .into_bytes()
}

/// The upstream bytes after the request head.
fn sent_body(s: &Scenario) -> Vec<u8> {
    let raw = &s.uploads[0];
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a request head")
        + 4;
    raw[at..].to_vec()
}

fn answer() -> Vec<u8> {
    let body = serde_json::to_vec(&completion("m", "hello")).unwrap();
    http_response(200, "application/json", &[], &body)
}

#[test]
fn a_long_body_goes_upstream_before_the_client_has_sent_it_all() {
    let mut s = scenario();
    let body = long_body("m");
    s.send(&head("", Some(body.len())));
    s.send(&body[..4000]);
    assert_eq!(
        s.connects(),
        vec![(0, true)],
        "a fresh connection: a streamed body cannot be sent twice"
    );
    assert!(
        sent_body(&s).len() >= WINDOW,
        "the first bytes went on before the rest came"
    );
    assert!(s.responses().is_empty());
    s.send(&body[4000..]);
    let up = s.upstream_request(0);
    assert_eq!(up.header("content-length"), Some(&*body.len().to_string()));
    assert_eq!(sent_body(&s), body, "the body goes as sent, all of it");
    s.upstream(&answer());
    assert_eq!(s.response().status, 200);
    let usage = s.usage_event();
    assert_eq!(usage.model, "m", "the model read on the side is billed");
    assert!(!s.closed, "the connection is kept");
}

#[test]
fn a_short_body_is_still_held_and_planned_whole() {
    let mut s = scenario();
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    s.send(&head("", Some(body.len())));
    s.send(body);
    assert_eq!(
        s.connects(),
        vec![(0, false)],
        "a pooled connection may serve it"
    );
    assert_eq!(sent_body(&s), body);
}

#[test]
fn a_metered_key_reserves_at_the_bodys_end_and_its_last_byte_waits_for_it() {
    let mut s = scenario();
    s.admit = AdmitScript::AllowMetered;
    s.reserve_answers.push_back(Err(Refusal::Balance));
    let body = long_body("m");
    s.send(&head("", Some(body.len())));
    s.send(&body[..5000]);
    s.send(&body[5000..]);
    let reserved = s.reserves();
    // The body's bytes bound its prompt (1 micro-USD each), 40 out at 2.
    let max = body.len() as u64 + 40 * 2;
    assert_eq!(
        reserved,
        vec![ReserveRequest {
            key_id: Some(1),
            max: MicroUsd(max)
        }]
    );
    assert_eq!(s.response().status, 402);
    let sent = sent_body(&s);
    assert!(
        sent.len() < body.len() && body.starts_with(&sent),
        "the provider never got a complete request"
    );
    assert_eq!(s.releases(), vec![false], "its connection is dropped");
    assert!(s.usage_events().is_empty(), "nothing to bill");
}

#[test]
fn a_model_the_key_may_not_use_is_refused_at_the_bodys_end() {
    let mut s = scenario();
    s.admit = AdmitScript::AllowModels(Arc::new(
        ModelAllowlist::new(vec!["openai/other".into()]).unwrap(),
    ));
    let body = long_body("m");
    s.send(&head("", Some(body.len())));
    s.send(&body[..5000]);
    s.send(&body[5000..]);
    let resp = s.response();
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["error"]["code"], "model_not_allowed");
    assert!(sent_body(&s).len() < body.len());
    assert_eq!(s.releases(), vec![false]);

    // The same body with an allowed model goes through.
    let mut s = scenario();
    s.admit = AdmitScript::AllowModels(Arc::new(
        ModelAllowlist::new(vec!["openai/m".into()]).unwrap(),
    ));
    s.send(&head("", Some(body.len())));
    s.send(&body);
    assert_eq!(sent_body(&s), body);
}

#[test]
fn a_chunked_body_is_rechunked_and_ends_when_admitted() {
    let mut s = scenario();
    let body = long_body("m");
    s.send(&head("", None));
    for piece in body.chunks(3000) {
        s.send(format!("{:x}\r\n", piece.len()).as_bytes());
        s.send(piece);
        s.send(b"\r\n");
    }
    assert!(!sent_body(&s).ends_with(b"0\r\n\r\n"), "not ended yet");
    s.send(b"0\r\n\r\n");
    let up = s.upstream_request(0);
    assert_eq!(up.header("transfer-encoding"), Some("chunked"));
    assert_eq!(serde_json::to_vec(&up.body).unwrap(), body);
    s.upstream(&answer());
    assert_eq!(s.response().status, 200);
}

#[test]
fn a_client_gone_mid_body_drops_the_upstream_and_bills_nothing() {
    let mut s = scenario();
    let body = long_body("m");
    s.send(&head("", Some(body.len())));
    s.send(&body[..5000]);
    s.client_eof();
    assert_eq!(s.releases(), vec![false]);
    assert!(s.usage_events().is_empty());
}

#[test]
fn a_client_that_stops_sending_gets_a_408_and_the_upstream_is_dropped() {
    let mut s = scenario();
    let body = long_body("m");
    s.send(&head("", Some(body.len())));
    s.send(&body[..5000]);
    let deadline = s.fire_deadline();
    assert_eq!(
        deadline,
        Tick::from_millis(1_000).after(s.gateway.limits().idle_timeout_ms)
    );
    assert_eq!(s.response().status, 408);
    assert_eq!(s.releases(), vec![false]);
    assert!(
        s.closed,
        "the rest of the body is unread: the connection closes"
    );
}

#[test]
fn an_early_answer_from_the_provider_is_relayed_and_the_connection_closes() {
    let mut s = scenario();
    let body = long_body("m");
    s.send(&head("", Some(body.len())));
    s.send(&body[..5000]);
    let refusal = serde_json::to_vec(&json!({"error": {"message": "too large"}})).unwrap();
    s.upstream(&http_response(413, "application/json", &[], &refusal));
    let resp = s.response();
    assert_eq!(resp.status, 413);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(s.closed);
}

#[test]
fn a_request_pipelined_after_a_streamed_body_is_served_next() {
    let mut s = scenario();
    let body = long_body("m");
    let mut both = head("", Some(body.len()));
    both.extend_from_slice(&body);
    let short = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    both.extend_from_slice(&head("", Some(short.len())));
    both.extend_from_slice(short);
    s.send(&both);
    s.upstream(&answer());
    s.upstream(&answer());
    let responses = s.responses();
    assert_eq!(responses.len(), 2);
    assert_eq!(s.upstream_request(1).body["messages"][0]["content"], "hi");
}

#[test]
fn a_stale_pooled_connection_gets_the_whole_body_again() {
    // Regression: the proxy once resent a request with an empty body on
    // the fresh connection that replaced a stale pooled one.
    let mut s = scenario();
    s.connects
        .push_back(ConnectAnswer::Connected { reused: true });
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    s.send(&head("", Some(body.len())));
    s.send(body);
    s.upstream_eof();
    assert_eq!(s.connects(), vec![(0, false), (0, true)]);
    assert!(s.upstream_request(1).raw.ends_with(body));
    assert_eq!(s.upstream_request(1).body, s.upstream_request(0).body);
}
