//! Snapshots of the error bodies the gateway writes itself, per dialect:
//! the shapes SDKs parse, so any change must be deliberate.

use arouter_core::api::{ApiError, Dialect, ErrorKind};
use arouter_core::http1::HttpError;

const KINDS: [ErrorKind; 16] = [
    ErrorKind::InvalidRequest,
    ErrorKind::Unauthenticated,
    ErrorKind::PaymentRequired,
    ErrorKind::PermissionDenied,
    ErrorKind::NotFound,
    ErrorKind::MethodNotAllowed,
    ErrorKind::RequestTimeout,
    ErrorKind::PayloadTooLarge,
    ErrorKind::RateLimited,
    ErrorKind::HeadersTooLarge,
    ErrorKind::Internal,
    ErrorKind::NotImplemented,
    ErrorKind::BadGateway,
    ErrorKind::Unavailable,
    ErrorKind::GatewayTimeout,
    ErrorKind::VersionNotSupported,
];

fn render(dialect: Dialect) -> String {
    let mut out = String::new();
    for kind in KINDS {
        let err = ApiError::new(dialect, kind, "a \"quoted\" message\nwith a newline");
        let body = String::from_utf8(err.body()).expect("utf-8");
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        out.push_str(&format!("{} {:?}: {parsed}\n", err.status(), kind));
    }
    out
}

#[test]
fn openai_error_bodies() {
    insta::assert_snapshot!(render(Dialect::OpenAi));
}

#[test]
fn anthropic_error_bodies() {
    insta::assert_snapshot!(render(Dialect::Anthropic));
}

#[test]
fn google_error_bodies() {
    insta::assert_snapshot!(render(Dialect::Google));
}

#[test]
fn credential_and_route_errors() {
    let mut out = String::new();
    for dialect in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Google] {
        for err in [
            ApiError::missing_credential(dialect),
            ApiError::invalid_credential(dialect),
            ApiError::not_found(dialect),
            ApiError::method_not_allowed(dialect, "POST"),
            ApiError::from_http(dialect, HttpError::HeadTooLarge),
            ApiError::from_http(dialect, HttpError::BodyTooLarge),
            ApiError::from_http(
                dialect,
                HttpError::Malformed("both Content-Length and Transfer-Encoding"),
            ),
        ] {
            out.push_str(&format!(
                "{:?} {}: {}\n",
                dialect,
                err.status(),
                String::from_utf8_lossy(&err.body())
            ));
        }
    }
    insta::assert_snapshot!(out);
}

#[test]
fn http_error_status_matches_error_kind() {
    for err in [
        HttpError::HeadTooLarge,
        HttpError::TooManyHeaders,
        HttpError::BodyTooLarge,
        HttpError::UnsupportedVersion,
        HttpError::Malformed("x"),
        HttpError::Incomplete,
    ] {
        assert_eq!(
            ApiError::from_http(Dialect::OpenAi, err).status(),
            err.status()
        );
    }
}

mod provider_errors_on_same_dialect_routes {
    use arouter_core::api::upstream_error::normalize;
    use arouter_core::api::Dialect;
    use serde_json::{json, Value};

    fn normalized(dialect: Dialect, status: u16, body: &Value) -> Option<Value> {
        let bytes = serde_json::to_vec(body).expect("json");
        normalize(dialect, status, &bytes).map(|b| serde_json::from_slice(&b).expect("valid JSON"))
    }

    #[test]
    fn well_formed_bodies_are_relayed_as_sent() {
        let cases = [
            (
                Dialect::OpenAi,
                json!({"error": {"message": "m", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}),
            ),
            (
                Dialect::Anthropic,
                json!({"type": "error", "error": {"type": "not_found_error", "message": "model: x"}, "request_id": "req_1"}),
            ),
            (
                Dialect::Google,
                json!({"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND", "details": [{"@type": "t"}]}}),
            ),
        ];
        for (dialect, body) in cases {
            assert_eq!(normalized(dialect, 404, &body), None, "{dialect:?} {body}");
        }
    }

    #[test]
    fn a_google_error_without_code_gets_one_and_keeps_message_and_status() {
        let body = json!({"error": {"message": "quota gone", "status": "RESOURCE_EXHAUSTED"}});
        assert_eq!(
            normalized(Dialect::Google, 429, &body),
            Some(
                json!({"error": {"code": 429, "message": "quota gone", "status": "RESOURCE_EXHAUSTED"}})
            )
        );
        // An unknown status name is replaced by the one the HTTP status means.
        let body = json!({"error": {"code": 404, "message": "nope", "status": "MISSING"}});
        assert_eq!(
            normalized(Dialect::Google, 404, &body),
            Some(json!({"error": {"code": 404, "message": "nope", "status": "NOT_FOUND"}}))
        );
    }

    #[test]
    fn an_openai_shaped_error_on_the_anthropic_route_becomes_anthropic() {
        let body = json!({"error": {"message": "no match", "type": "replay_no_match"}});
        assert_eq!(
            normalized(Dialect::Anthropic, 404, &body),
            Some(
                json!({"type": "error", "error": {"type": "not_found_error", "message": "no match"}})
            )
        );
        let body = json!({"type": "error", "error": {"type": "overloaded_error"}});
        assert_eq!(
            normalized(Dialect::Anthropic, 529, &body),
            Some(
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "overloaded_error"}})
            )
        );
    }

    #[test]
    fn flat_and_foreign_openai_errors_get_the_openai_shape() {
        let body = json!({"error": "context too long"});
        assert_eq!(
            normalized(Dialect::OpenAi, 400, &body),
            Some(
                json!({"error": {"message": "context too long", "type": "invalid_request_error", "code": null, "param": null}})
            )
        );
        let body = json!({"message": "busy"});
        assert_eq!(
            normalized(Dialect::OpenAi, 503, &body),
            Some(
                json!({"error": {"message": "busy", "type": "api_error", "code": null, "param": null}})
            )
        );
    }

    #[test]
    fn a_body_that_is_not_json_keeps_only_the_status() {
        let out = normalize(Dialect::Google, 502, b"<html>Bad Gateway</html>").expect("normalized");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(
            v,
            json!({"error": {"code": 502, "message": "the provider answered 502", "status": "INTERNAL"}})
        );
    }
}
