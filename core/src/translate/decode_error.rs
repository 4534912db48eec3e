//! Why a provider's answer could not be read as a chat answer. Callers
//! fall back (relay the body, or answer that the provider failed), so the
//! reason serves logs and tests; it never reaches a client as is.

use std::fmt;

#[derive(Debug)]
pub enum DecodeError {
    /// The body is not JSON.
    Json(serde_json::Error),
    /// JSON, but not the shape of an answer: what is wrong with it.
    Shape(&'static str),
    /// The provider answered with its own error object: its message.
    Upstream(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(e) => write!(f, "the upstream answer is not valid JSON: {e}"),
            DecodeError::Shape(what) => write!(f, "the upstream answer {what}"),
            DecodeError::Upstream(message) => {
                write!(f, "the upstream answered an error: {message}")
            }
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> DecodeError {
        DecodeError::Json(e)
    }
}
