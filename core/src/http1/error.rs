//! Framing and limit errors. Each maps to the status the server answers with
//! before it closes the connection.

/// A fault in the bytes a peer sent. After any of these the connection is
/// not reusable: the server answers `status()` and closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Request line plus headers exceed `Limits::max_head_bytes`.
    HeadTooLarge,
    /// More header fields than `Limits::max_headers`.
    TooManyHeaders,
    /// Body exceeds the configured maximum (413).
    BodyTooLarge,
    /// HTTP version other than 1.0 / 1.1.
    UnsupportedVersion,
    /// Malformed or ambiguous framing; the reason is a fixed, safe string
    /// (never echoes peer bytes).
    Malformed(&'static str),
    /// The peer closed in the middle of a message.
    Incomplete,
}

impl HttpError {
    /// The HTTP status the server answers this fault with.
    pub fn status(self) -> u16 {
        match self {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedVersion => 505,
            HttpError::Malformed(_) | HttpError::Incomplete => 400,
        }
    }

    /// A short human message for the error body.
    pub fn message(self) -> &'static str {
        match self {
            HttpError::HeadTooLarge => "request header section too large",
            HttpError::TooManyHeaders => "too many request header fields",
            HttpError::BodyTooLarge => "request body too large",
            HttpError::UnsupportedVersion => "HTTP version not supported",
            HttpError::Malformed(reason) => reason,
            HttpError::Incomplete => "incomplete message",
        }
    }
}
