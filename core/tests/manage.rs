//! Management requests as data: the core parses a keys-API call into a
//! typed `Output::Manage`, waits for `Input::Managed`, and writes the
//! answer; and a key's model allowlist turns a call outside it into a 403
//! in the route's dialect, before any upstream is asked for.

mod support;

use std::sync::Arc;

use arouter_core::api::Scope;
use arouter_core::exchange::{Caller, Input, UsageError};
use arouter_core::manage::{
    KeyUsage, KeyView, ManageAnswer, ManageError, ManageRequest, ModelAllowlist,
};
use serde_json::json;
use support::*;

fn get(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\r\n"
    )
    .into_bytes()
}

fn view() -> KeyView {
    KeyView {
        hash: "0f".repeat(32),
        name: "ci".into(),
        label: "sk-ar-v1-abc...xyz".into(),
        disabled: false,
        management: false,
        limit_micros: None,
        limit_reset: None,
        include_byok_in_limit: false,
        expires_at: None,
        created_at: 1_764_559_497,
        updated_at: None,
        last_used_at: None,
        usage: KeyUsage::default(),
        rate_limit: None,
        allowed_models: None,
    }
}

#[test]
fn create_is_handed_to_the_host_and_its_answer_written() {
    let mut s = Scenario::new();
    s.send(&post(
        "/api/v1/keys",
        &json!({"name": "ci", "limit": 2.5, "allowed_models": ["openai/*"]}),
    ));
    assert_eq!(s.admits[0].scope, Scope::Management);
    assert_eq!(s.manages.len(), 1);
    let ManageRequest::CreateKey(spec) = &s.manages[0] else {
        panic!("{:?}", s.manages);
    };
    assert_eq!(spec.name, "ci");
    assert_eq!(spec.limit_micros, Some(2_500_000));
    assert!(
        s.down.is_empty(),
        "nothing is written before the host answers"
    );
    s.input(Input::Managed(
        s.now,
        Ok(ManageAnswer::Created {
            key: view(),
            secret: "sk-ar-v1-secret".into(),
        }),
    ));
    let r = s.response();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["key"], json!("sk-ar-v1-secret"));
    assert_eq!(r.json()["data"]["hash"], json!("0f".repeat(32)));
    // Admission's headers (rate limit) go on the answer too.
    assert_eq!(r.header("X-RateLimit-Limit"), Some("10"));
    assert!(r.keep_alive());
}

#[test]
fn current_key_names_the_caller_and_any_key_may_ask() {
    let mut s = Scenario::new();
    s.send(&get("/api/v1/key"));
    assert_eq!(s.admits[0].scope, Scope::Key);
    assert_eq!(
        s.manages,
        vec![ManageRequest::CurrentKey {
            caller: Caller::Key(1)
        }]
    );
    s.input(Input::Managed(
        s.now,
        Ok(ManageAnswer::Current {
            key: view(),
            is_master: false,
            default_rate_limit: None,
        }),
    ));
    let body = s.response().json();
    assert_eq!(body["data"]["is_management_key"], json!(false));
    assert_eq!(body["data"]["rate_limit"]["requests"], json!(-1));
}

#[test]
fn host_errors_and_bad_requests() {
    let mut s = Scenario::new();
    s.send(&get(&format!("/api/v1/keys/{}", "ab".repeat(32))));
    s.input(Input::Managed(s.now, Err(ManageError::NotFound)));
    assert_eq!(s.response().status, 404);

    let mut s = Scenario::new();
    s.send(&post("/api/v1/keys", &json!({"name": ""})));
    assert!(
        s.manages.is_empty(),
        "an invalid body never reaches the host"
    );
    let r = s.response();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("name"));

    let mut s = Scenario::new();
    assert_eq!(
        s.ex.handle_input(Input::Managed(s.now, Ok(ManageAnswer::Deleted))),
        Err(UsageError::UnexpectedManaged)
    );
}

#[test]
fn pipelined_request_waits_for_the_management_answer() {
    let mut s = Scenario::new();
    let mut bytes = get("/api/v1/keys?offset=0");
    bytes.extend_from_slice(&get("/api/v1/key"));
    s.send(&bytes);
    assert_eq!(s.manages.len(), 1);
    s.input(Input::Managed(s.now, Ok(ManageAnswer::Keys(vec![view()]))));
    assert_eq!(s.manages.len(), 2);
    s.input(Input::Managed(s.now, Ok(ManageAnswer::Deleted)));
    let statuses: Vec<u16> = s.responses().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200]);
    assert_eq!(s.responses()[1].json(), json!({"deleted": true}));
}

fn only(patterns: &[&str]) -> AdmitScript {
    AdmitScript::AllowModels(Arc::new(
        ModelAllowlist::new(patterns.iter().map(|p| p.to_string()).collect()).unwrap(),
    ))
}

#[test]
fn a_model_outside_the_allowlist_is_a_403_before_any_upstream() {
    let mut s = Scenario::new();
    s.admit = only(&["anthropic/*"]);
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    let r = s.response();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], json!("model_not_allowed"));
    assert!(s.connects().is_empty());

    let mut s = Scenario::new();
    s.admit = only(&["openai/gpt-4o-*"]);
    s.chat(&chat_body("openai/gpt-4o-mini", false));
    assert_eq!(s.connects(), vec![(0, false)]);
}

#[test]
fn the_403_speaks_the_route_dialect() {
    let mut s = Scenario::new();
    s.admit = only(&["nothing/*"]);
    s.send(&post(
        "/v1/messages",
        &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}]}),
    ));
    let r = s.response();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["type"], json!("error"));
    assert_eq!(r.json()["error"]["type"], json!("permission_error"));

    let mut s = Scenario::new();
    s.admit = only(&["nothing/*"]);
    s.send(&post(
        "/v1beta/models/openai%2Fgpt-4o-mini:generateContent",
        &json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
    ));
    let r = s.response();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["status"], json!("PERMISSION_DENIED"));
    assert!(s.connects().is_empty());
}
