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
