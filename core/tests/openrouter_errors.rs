//! Errors on `/api/v1/*` in OpenRouter's shape, whatever produced them:
//! `{"error": {"code": <HTTP status>, "message", "metadata"}}`, which the
//! `openrouter` SDK's typed errors require (an integer `code`).

use arouter_core::api::{openrouter, ApiError, Dialect, ErrorKind, Response};
use serde_json::{json, Value};

fn reshaped(response: Response) -> Value {
    let out = openrouter::reshape_error(response);
    serde_json::from_slice(&out.body).expect("JSON")
}

#[test]
fn a_gateway_error_keeps_its_message_and_moves_type_and_code_to_metadata() {
    let err = ApiError::invalid_credential(Dialect::OpenAi);
    assert_eq!(
        reshaped(Response::from(&err)),
        json!({"error": {
            "code": 401,
            "message": "invalid API key",
            "metadata": {"type": "authentication_error", "code": "invalid_api_key"},
        }})
    );
    let plain = ApiError::new(Dialect::OpenAi, ErrorKind::RateLimited, "slow down");
    assert_eq!(
        reshaped(Response::from(&plain)),
        json!({"error": {"code": 429, "message": "slow down", "metadata": {"type": "rate_limit_error"}}})
    );
}

#[test]
fn a_provider_error_relayed_as_sent_gets_the_shape_too() {
    let body = br#"{"error":{"message":"bad tools","type":"invalid_request_error","param":"tools","code":"bad_tools"}}"#;
    let out = reshaped(Response::json(400, body.to_vec()));
    assert_eq!(out["error"]["code"], 400);
    assert_eq!(out["error"]["message"], "bad tools");
    assert_eq!(out["error"]["metadata"]["code"], "bad_tools");
    assert_eq!(out["error"]["metadata"]["param"], "tools");
    // An integer code from a provider is the status's business, not kept twice.
    let numeric = reshaped(Response::json(
        503,
        br#"{"error":{"message":"busy","code":503}}"#.to_vec(),
    ));
    assert_eq!(
        numeric,
        json!({"error": {"code": 503, "message": "busy", "metadata": null}})
    );
}

#[test]
fn success_and_headers_are_left_alone() {
    let ok = Response::json(200, br#"{"data":[]}"#.to_vec()).header("X-RateLimit-Limit", "3");
    assert_eq!(openrouter::reshape_error(ok.clone()), ok);
    let err = Response::from(&ApiError::method_not_allowed(Dialect::OpenAi, "GET"));
    let out = openrouter::reshape_error(err);
    assert!(out.headers.iter().any(|(k, v)| *k == "Allow" && v == "GET"));
    assert_eq!(out.status, 405);
}

#[test]
fn a_body_that_is_not_an_error_object_gets_a_message_from_the_status() {
    let out = reshaped(Response::json(502, b"<html>bad gateway</html>".to_vec()));
    assert_eq!(out["error"]["code"], 502);
    assert!(out["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[test]
fn only_api_v1_paths_speak_openrouter() {
    assert!(openrouter::is_openrouter_path("/api/v1/chat/completions"));
    assert!(openrouter::is_openrouter_path("/api/v1/keys/abc"));
    assert!(openrouter::is_openrouter_path("/api/v1/nope"));
    assert!(!openrouter::is_openrouter_path("/v1/chat/completions"));
    assert!(!openrouter::is_openrouter_path("/api/v10/x"));
    assert!(!openrouter::is_openrouter_path("/apiv1/x"));
}
