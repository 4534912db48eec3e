//! A proxied request body that streams to the provider as the client
//! sends it, rather than being held whole first.
//!
//! The gateway holds a body up to `Limits::proxy_buffer_bytes` to plan the
//! call from it whole. A longer one is planned from its head and first
//! bytes; the rest goes upstream as it arrives, read on the side by a
//! [`FieldScanner`] for the model, stream flag and output cap. Billing
//! and a key's allowlist still decide before the provider can act: the
//! body's very end (its last byte, or a chunked body's last chunk) is held
//! back until the call is admitted, so a refused call is cut off with its
//! request incomplete and nothing for the provider to answer.

use std::sync::Arc;

use super::facts::BodyFacts;
use super::scan::FieldScanner;
use crate::http1::encode::{self, StreamFraming};
use crate::manage::ModelAllowlist;

/// How the body is delimited, on both sides (the client's framing is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UploadFraming {
    Length(u64),
    Chunked,
}

#[derive(Debug)]
pub(crate) struct Upload {
    framing: UploadFraming,
    /// Body bytes taken from the client so far.
    seen: u64,
    /// Written upstream once the call is admitted: the body's last byte,
    /// or a chunked body's last chunk.
    held: Vec<u8>,
    scanner: Option<FieldScanner>,
    /// The key's allowlist, applied once the model is known.
    pub models: Option<Arc<ModelAllowlist>>,
    /// The client's body has ended.
    ended: bool,
    /// The held end went upstream.
    released: bool,
}

impl Upload {
    pub(crate) fn new(framing: UploadFraming) -> Upload {
        Upload {
            framing,
            seen: 0,
            held: Vec::new(),
            scanner: Some(FieldScanner::default()),
            models: None,
            ended: false,
            released: false,
        }
    }

    pub(crate) fn framing(&self) -> UploadFraming {
        self.framing
    }

    /// Body bytes taken from the client so far (all of them once ended).
    pub(crate) fn bytes(&self) -> u64 {
        self.seen
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// A piece of the client's body: read on the side, and written to
    /// `up` in the body's framing, all but its very end.
    pub(crate) fn forward(&mut self, up: &mut Vec<u8>, bytes: &[u8]) {
        if bytes.is_empty() || self.ended {
            return;
        }
        if let Some(scanner) = self.scanner.as_mut() {
            scanner.feed(bytes);
        }
        self.seen = self.seen.saturating_add(bytes.len() as u64);
        match self.framing {
            UploadFraming::Length(total) if self.seen >= total => {
                let (most, last) = bytes.split_at(bytes.len() - 1);
                up.extend_from_slice(most);
                self.held.extend_from_slice(last);
            }
            UploadFraming::Length(_) => up.extend_from_slice(bytes),
            UploadFraming::Chunked => {
                encode::write_stream_bytes(up, StreamFraming::Chunked, bytes);
            }
        }
    }

    /// The client's body ended: what it said.
    pub(crate) fn end(&mut self) -> BodyFacts {
        self.ended = true;
        if self.framing == UploadFraming::Chunked {
            encode::write_stream_end(&mut self.held, StreamFraming::Chunked);
        }
        self.scanner
            .take()
            .map(FieldScanner::finish)
            .unwrap_or_default()
    }

    /// The call is admitted: the body's end goes, and the provider can answer.
    pub(crate) fn release(&mut self, up: &mut Vec<u8>) {
        if self.ended && !self.released {
            up.append(&mut self.held);
            self.released = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Upload, UploadFraming};

    #[test]
    fn a_length_body_goes_all_but_its_last_byte_until_released() {
        let mut upload = Upload::new(UploadFraming::Length(11));
        let mut up = Vec::new();
        upload.forward(&mut up, b"{\"model\":");
        upload.forward(&mut up, b"1}");
        assert_eq!(up, b"{\"model\":1");
        let facts = upload.end();
        assert_eq!(facts.model, None);
        upload.release(&mut up);
        assert_eq!(up, b"{\"model\":1}");
        assert_eq!(upload.bytes(), 11);
    }

    #[test]
    fn a_chunked_body_is_rechunked_and_its_last_chunk_held() {
        let mut upload = Upload::new(UploadFraming::Chunked);
        let mut up = Vec::new();
        upload.forward(&mut up, b"{\"model\":\"m\"}");
        assert_eq!(up, b"d\r\n{\"model\":\"m\"}\r\n");
        assert_eq!(upload.end().model.as_deref(), Some("m"));
        assert!(!up.ends_with(b"0\r\n\r\n"));
        upload.release(&mut up);
        assert!(up.ends_with(b"0\r\n\r\n"));
    }
}
