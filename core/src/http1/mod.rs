//! HTTP/1.1 codecs: `server` parses requests from clients and `encode`
//! writes responses to them; `client` parses responses from upstreams and
//! writes requests to them. Both sit on httparse and enforce `Limits`.

mod body;
mod chunked;
pub mod client;
pub mod encode;
mod error;
mod head;
pub mod server;
#[doc(hidden)]
pub mod testing;

pub use client::{ClientCodec, ClientEvent, ResponseHead};
pub use error::HttpError;
pub use server::{RequestHead, ServerCodec, ServerEvent, BUFFER_SLACK};

/// How the body of a message is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Body runs until the peer closes (responses only).
    UntilClose,
}
