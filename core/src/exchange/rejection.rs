//! Why admission refused a request, as an error in the route's dialect.

use super::Rejection;
use crate::api::{ApiError, Dialect, ErrorKind};

pub(super) fn rejection_error(dialect: Dialect, reason: Rejection) -> ApiError {
    match reason {
        Rejection::InvalidKey => ApiError::invalid_credential(dialect),
        Rejection::ExpiredKey => ApiError::new(
            dialect,
            ErrorKind::Unauthenticated,
            "this API key has expired",
        )
        .with_code("expired_api_key"),
        Rejection::ManagementOnly => ApiError::new(
            dialect,
            ErrorKind::PermissionDenied,
            "a management key may not call models; use an inference key",
        )
        .with_code("management_key"),
        Rejection::Forbidden => ApiError::new(
            dialect,
            ErrorKind::PermissionDenied,
            "this key may not use the management API",
        )
        .with_code("forbidden"),
        Rejection::RateLimited => ApiError::new(
            dialect,
            ErrorKind::RateLimited,
            "rate limit exceeded for this key",
        )
        .with_code("rate_limited"),
        Rejection::InsufficientCredits => ApiError::new(
            dialect,
            ErrorKind::PaymentRequired,
            "insufficient credits for this key",
        )
        .with_code("insufficient_credits"),
        Rejection::LimiterUnavailable => ApiError::new(
            dialect,
            ErrorKind::Unavailable,
            "the shared rate limiter is unreachable; retry shortly",
        )
        .with_code("rate_limiter_unavailable"),
        Rejection::StoreUnavailable => ApiError::new(
            dialect,
            ErrorKind::Unavailable,
            "the gateway's store is unreachable; retry shortly",
        )
        .with_code("store_unavailable"),
    }
}
