//! Credit reservations through `Exchange`: a metered call asks the host to
//! set its maximum cost aside (`Output::Reserve`) before each attempt's
//! connect; a refusal is a 402 in the route's dialect with nothing sent
//! upstream; an unmetered call reserves nothing; a fallback reserves again
//! for its next attempt; the usage records go out before the access
//! record that ends the request.

mod support;

use arouter_core::billing::{MicroUsd, DEFAULT_OUTPUT_CAP};
use arouter_core::exchange::{Event, Refusal, ReserveRequest};
use arouter_core::translate::openai::canonical::decode_request;
use serde_json::{json, Value};
use support::*;

fn priced() -> Scenario {
    let mut s = Scenario::builder()
        .backup()
        .price("openai", "m", TEST_PRICE)
        .price("backup", "b", TEST_PRICE)
        .build();
    s.admit = AdmitScript::AllowMetered;
    s
}

fn body(max_tokens: Option<u64>) -> Value {
    let mut body = json!({
        "model": "openai/m",
        "messages": [{"role": "user", "content": "Say hello to the gateway, please."}],
    });
    if let Some(max) = max_tokens {
        body["max_tokens"] = json!(max);
    }
    body
}

/// The prompt as the gateway counts it for model `m`.
fn prompt_tokens(body: &Value) -> u64 {
    let mut body = body.clone();
    body["model"] = json!("m");
    let req = decode_request(&serde_json::to_vec(&body).unwrap()).expect("a chat request");
    arouter_core::tokens::count_chat_input("m", &req)
}

#[test]
fn a_metered_call_reserves_its_maximum_cost_before_it_connects() {
    let mut s = priced();
    let body = body(Some(50));
    s.chat(&body);
    let reserved = s.reserves();
    // The prompt at $1/Mtok (1 micro-USD a token), 50 out at 2.
    let max = prompt_tokens(&body) + 50 * 2;
    assert_eq!(
        reserved,
        vec![ReserveRequest {
            key_id: Some(1),
            max: MicroUsd(max)
        }]
    );
    let reserve_at = s.position(|r| matches!(r, Rec::Reserve(_))).unwrap();
    let connect_at = s.position(|r| matches!(r, Rec::Connect { .. })).unwrap();
    assert!(reserve_at < connect_at);
    s.upstream(&json_response(200, &completion("m", "hello"), &[]));
    assert_eq!(s.response().status, 200);
    let record = s.usage_event();
    assert!(record.cost.unwrap() <= MicroUsd(max));
    // The usage goes out before the access record that ends the request.
    let usage_at = s
        .position(|r| matches!(r, Rec::Event(Event::Usage(_))))
        .unwrap();
    let access_at = s
        .position(|r| matches!(r, Rec::Event(Event::Access(_))))
        .unwrap();
    assert!(usage_at < access_at);
}

#[test]
fn without_max_tokens_the_models_output_cap_is_reserved() {
    let mut s = priced();
    let body = body(None);
    s.chat(&body);
    assert_eq!(
        s.reserves()[0].max,
        MicroUsd(prompt_tokens(&body) + DEFAULT_OUTPUT_CAP * 2)
    );
}

#[test]
fn an_unmetered_call_reserves_nothing() {
    let mut s = priced();
    s.admit = AdmitScript::Allow;
    s.chat(&body(Some(5)));
    assert!(s.reserves().is_empty());
    assert_eq!(s.connects(), vec![(0, false)]);
}

#[test]
fn a_refusal_is_a_402_in_each_dialect_before_any_connect() {
    let openai = {
        let mut s = priced();
        s.reserve_answers.push_back(Err(Refusal::KeyLimit));
        s.chat(&body(Some(5)));
        s
    };
    let anthropic = {
        let mut s = Scenario::builder()
            .anthropic_first()
            .price("anthropic", "claude-x", TEST_PRICE)
            .build();
        s.admit = AdmitScript::AllowMetered;
        s.reserve_answers.push_back(Err(Refusal::Balance));
        s.send(&post(
            "/v1/messages",
            &json!({"model": "claude-x", "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}]}),
        ));
        s
    };
    let google = {
        let mut s = priced();
        s.reserve_answers.push_back(Err(Refusal::KeyLimit));
        s.send(&post(
            "/v1beta/models/openai/m:generateContent",
            &json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generationConfig": {"maxOutputTokens": 5}}),
        ));
        s
    };
    for (name, s) in [
        ("openai", &openai),
        ("anthropic", &anthropic),
        ("google", &google),
    ] {
        assert_eq!(s.reserves().len(), 1, "{name}");
        assert!(s.connects().is_empty(), "{name}: nothing goes upstream");
        assert!(s.uploads.is_empty(), "{name}");
        assert!(s.usage_events().is_empty(), "{name}: nothing is billed");
        let r = s.response();
        assert_eq!(r.status, 402, "{name}");
        assert_eq!(s.access_statuses(), vec![402], "{name}");
    }
    let body = openai.response().json();
    assert_eq!(body["error"]["code"], "insufficient_credits");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("credit limit"));
    let body = anthropic.response().json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "billing_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("balance"));
    let body = google.response().json();
    assert_eq!(body["error"]["code"], 402);
    assert_eq!(body["error"]["status"], "FAILED_PRECONDITION");
}

#[test]
fn a_fallback_reserves_again_for_its_next_attempt() {
    let mut s = priced();
    s.chat(&json!({
        "models": ["openai/m", "backup/b"],
        "max_tokens": 7,
        "messages": [{"role": "user", "content": "hi"}],
    }));
    s.upstream(&json_response(
        500,
        &json!({"error": {"message": "busy"}}),
        &[],
    ));
    s.upstream(&json_response(200, &completion("b", "from backup"), &[]));
    assert_eq!(s.response().status, 200);
    // Reserve, connect, release (the failed attempt), reserve, connect.
    let steps: Vec<&'static str> = s
        .log
        .iter()
        .filter_map(|r| match r {
            Rec::Reserve(_) => Some("reserve"),
            Rec::Connect { .. } => Some("connect"),
            Rec::Release { .. } => Some("release"),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps,
        ["reserve", "connect", "release", "reserve", "connect", "release"]
    );
}

#[test]
fn a_refusal_on_a_later_attempt_answers_402_and_sends_nothing_more() {
    let mut s = priced();
    s.reserve_answers.push_back(Ok(()));
    s.reserve_answers.push_back(Err(Refusal::KeyLimit));
    s.chat(&json!({
        "models": ["openai/m", "backup/b"],
        "max_tokens": 7,
        "messages": [{"role": "user", "content": "hi"}],
    }));
    s.upstream(&json_response(
        503,
        &json!({"error": {"message": "busy"}}),
        &[],
    ));
    assert_eq!(s.connects(), vec![(0, false)]);
    assert_eq!(s.uploads.len(), 1);
    assert_eq!(s.response().status, 402);
}
