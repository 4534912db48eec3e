//! Errors the gateway itself answers with, rendered in the caller's dialect:
//! OpenAI `{"error":{"message","type","code"}}`, Anthropic
//! `{"type":"error","error":{"type","message"}}`, Google
//! `{"error":{"code","message","status"}}`.

use std::borrow::Cow;

use serde_json::json;

use super::Dialect;
use crate::http1::HttpError;

/// The class of a gateway error; the HTTP status follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Unauthenticated,
    PaymentRequired,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    RateLimited,
    HeadersTooLarge,
    Internal,
    NotImplemented,
    BadGateway,
    Unavailable,
    GatewayTimeout,
    VersionNotSupported,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PaymentRequired => 402,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimited => 429,
            ErrorKind::HeadersTooLarge => 431,
            ErrorKind::Internal => 500,
            ErrorKind::NotImplemented => 501,
            ErrorKind::BadGateway => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::GatewayTimeout => 504,
            ErrorKind::VersionNotSupported => 505,
        }
    }

    /// The kind for a provider's error status when it is re-rendered in
    /// another dialect. A provider's 401/403 means the gateway's own
    /// credentials for it were refused: the client's request was fine, so
    /// that is a bad gateway, not the client's authentication error.
    pub fn from_upstream_status(status: u16) -> ErrorKind {
        match status {
            400 | 422 => ErrorKind::InvalidRequest,
            402 => ErrorKind::PaymentRequired,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::RequestTimeout,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::RateLimited,
            500 => ErrorKind::Internal,
            503 | 529 => ErrorKind::Unavailable,
            504 => ErrorKind::GatewayTimeout,
            _ if status < 500 && status != 401 && status != 403 => ErrorKind::InvalidRequest,
            _ => ErrorKind::BadGateway,
        }
    }

    /// OpenAI's `error.type`.
    pub(crate) fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::Unauthenticated => "authentication_error",
            ErrorKind::PaymentRequired => "insufficient_quota",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::RequestTimeout | ErrorKind::GatewayTimeout => "timeout_error",
            ErrorKind::Internal
            | ErrorKind::NotImplemented
            | ErrorKind::BadGateway
            | ErrorKind::Unavailable => "api_error",
            ErrorKind::InvalidRequest
            | ErrorKind::MethodNotAllowed
            | ErrorKind::PayloadTooLarge
            | ErrorKind::HeadersTooLarge
            | ErrorKind::VersionNotSupported => "invalid_request_error",
        }
    }

    /// Anthropic's `error.type`.
    pub(crate) fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::Unauthenticated => "authentication_error",
            ErrorKind::PaymentRequired => "billing_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::PayloadTooLarge | ErrorKind::HeadersTooLarge => "request_too_large",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::RequestTimeout | ErrorKind::GatewayTimeout => "timeout_error",
            ErrorKind::Unavailable => "overloaded_error",
            ErrorKind::Internal | ErrorKind::NotImplemented | ErrorKind::BadGateway => "api_error",
            ErrorKind::InvalidRequest
            | ErrorKind::MethodNotAllowed
            | ErrorKind::VersionNotSupported => "invalid_request_error",
        }
    }

    /// Google's `error.status` (a google.rpc.Code name).
    pub(crate) fn google_status(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest
            | ErrorKind::PayloadTooLarge
            | ErrorKind::HeadersTooLarge
            | ErrorKind::VersionNotSupported => "INVALID_ARGUMENT",
            ErrorKind::Unauthenticated => "UNAUTHENTICATED",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::MethodNotAllowed | ErrorKind::PaymentRequired => "FAILED_PRECONDITION",
            ErrorKind::RateLimited => "RESOURCE_EXHAUSTED",
            ErrorKind::Internal | ErrorKind::BadGateway => "INTERNAL",
            ErrorKind::NotImplemented => "UNIMPLEMENTED",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::RequestTimeout | ErrorKind::GatewayTimeout => "DEADLINE_EXCEEDED",
        }
    }
}

/// An error the gateway answers itself, before or instead of an upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub dialect: Dialect,
    pub kind: ErrorKind,
    pub message: Cow<'static, str>,
    /// OpenAI's machine-readable `error.code` (e.g. `invalid_api_key`).
    pub code: Option<&'static str>,
    /// The methods a route accepts, for the `Allow` header of a 405.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(dialect: Dialect, kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            dialect,
            kind,
            message: message.into(),
            code: None,
            allow: None,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The same error rendered for another dialect.
    pub fn in_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    pub fn not_found(dialect: Dialect) -> Self {
        ApiError::new(dialect, ErrorKind::NotFound, "no such route").with_code("not_found")
    }

    pub fn method_not_allowed(dialect: Dialect, allow: &'static str) -> Self {
        let mut err = ApiError::new(
            dialect,
            ErrorKind::MethodNotAllowed,
            "method not allowed on this route",
        )
        .with_code("method_not_allowed");
        err.allow = Some(allow);
        err
    }

    pub fn invalid_request(dialect: Dialect, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(dialect, ErrorKind::InvalidRequest, message)
    }

    pub fn missing_credential(dialect: Dialect) -> Self {
        ApiError::new(
            dialect,
            ErrorKind::Unauthenticated,
            "missing API key: send `Authorization: Bearer <key>`, `X-Api-Key`, `x-goog-api-key` or `?key=`",
        )
        .with_code("missing_api_key")
    }

    pub fn invalid_credential(dialect: Dialect) -> Self {
        ApiError::new(dialect, ErrorKind::Unauthenticated, "invalid API key")
            .with_code("invalid_api_key")
    }

    /// A framing or limit fault from the HTTP codec.
    pub fn from_http(dialect: Dialect, err: HttpError) -> Self {
        let kind = match err {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => ErrorKind::HeadersTooLarge,
            HttpError::BodyTooLarge => ErrorKind::PayloadTooLarge,
            HttpError::UnsupportedVersion => ErrorKind::VersionNotSupported,
            HttpError::Malformed(_) | HttpError::Incomplete => ErrorKind::InvalidRequest,
        };
        debug_assert_eq!(kind.status(), err.status());
        ApiError::new(dialect, kind, err.message())
    }

    /// The JSON error body in this error's dialect.
    pub fn body(&self) -> Vec<u8> {
        let value = match self.dialect {
            // The Responses API reports errors exactly as chat does.
            Dialect::OpenAi | Dialect::Responses => json!({
                "error": {
                    "message": self.message,
                    "type": self.kind.openai_type(),
                    "code": self.code,
                    "param": null,
                }
            }),
            Dialect::Anthropic => json!({
                "type": "error",
                "error": {
                    "type": self.kind.anthropic_type(),
                    "message": self.message,
                }
            }),
            Dialect::Google => json!({
                "error": {
                    "code": self.status(),
                    "message": self.message,
                    "status": self.kind.google_status(),
                }
            }),
        };
        // Serializing a `Value` built from strings and integers cannot fail.
        serde_json::to_vec(&value).unwrap_or_default()
    }
}
