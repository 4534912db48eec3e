//! Drivers that run the codecs over a byte string fed in pieces of chosen
//! sizes, check the invariants every input must keep, and return what was
//! seen in a form that does not depend on how the input was split. The
//! fuzz targets and the property tests share them.

use super::{
    BodyKind, ClientCodec, ClientEvent, HttpError, RequestHead, ResponseHead, ServerCodec,
    ServerEvent,
};
use crate::Limits;

/// One observation; consecutive body pieces are merged, since where the
/// input was split decides how a body is sliced into events.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen<H> {
    Head(H),
    Body(Vec<u8>),
    End,
    Closed,
    Error(HttpError),
}

/// Statuses a framing error may map to.
const ERROR_STATUSES: [u16; 4] = [400, 413, 431, 505];

fn push_body<H>(seen: &mut Vec<Seen<H>>, data: &[u8]) {
    assert!(!data.is_empty(), "empty Body event");
    if let Some(Seen::Body(body)) = seen.last_mut() {
        body.extend_from_slice(data);
    } else {
        seen.push(Seen::Body(data.to_vec()));
    }
}

/// The size of the next piece: `sizes` is cycled; empty means "all".
fn piece_len(sizes: &[usize], index: usize, left: usize) -> usize {
    match sizes.get(index.checked_rem(sizes.len()).unwrap_or(0)) {
        Some(&size) => size.clamp(1, left.max(1)),
        None => left,
    }
}

/// Tracks one message's body against its declared framing.
struct BodyCheck {
    kind: Option<BodyKind>,
    total: u64,
}

impl BodyCheck {
    fn head(&mut self, kind: BodyKind) {
        assert!(self.kind.is_none(), "Head inside a message");
        self.kind = Some(kind);
        self.total = 0;
    }

    fn body(&mut self, len: usize, max: u64) {
        let kind = self
            .kind
            .unwrap_or_else(|| panic!("Body outside a message"));
        assert!(kind != BodyKind::Empty, "Body for a bodiless message");
        self.total += len as u64;
        assert!(self.total <= max, "body beyond its bound");
        if let BodyKind::Length(n) = kind {
            assert!(self.total <= n, "body beyond Content-Length");
        }
    }

    fn end(&mut self) {
        let kind = self
            .kind
            .take()
            .unwrap_or_else(|| panic!("End outside a message"));
        if let BodyKind::Length(n) = kind {
            assert_eq!(self.total, n, "body shorter than Content-Length");
        }
    }
}

fn check_error<T: PartialEq + std::fmt::Debug>(
    err: HttpError,
    again: Result<Option<T>, HttpError>,
) {
    assert!(
        ERROR_STATUSES.contains(&err.status()),
        "unexpected status {}",
        err.status()
    );
    assert_eq!(again, Err(err), "error is not sticky");
}

/// Feeds `input` to a server codec in pieces of `sizes` (cycled; empty:
/// as much as it takes), calling `start_next` after each `End`.
pub fn run_server(limits: &Limits, input: &[u8], sizes: &[usize]) -> Vec<Seen<RequestHead>> {
    let max_body = limits.max_body_bytes as u64;
    let mut codec = ServerCodec::new(limits);
    let mut seen = Vec::new();
    let mut check = BodyCheck {
        kind: None,
        total: 0,
    };
    let mut pos = 0;
    for index in 0.. {
        let rest = input.get(pos..).unwrap_or_default();
        let piece = rest
            .get(..piece_len(sizes, index, rest.len()))
            .unwrap_or(rest);
        let accepted = codec.feed(piece);
        assert!(accepted <= piece.len());
        assert!(
            codec.buffered() <= codec.buffer_bound(),
            "buffer beyond its bound"
        );
        pos += accepted;
        let at_eof = pos >= input.len();
        if at_eof {
            codec.feed_eof();
        }
        let mut progressed = false;
        loop {
            match codec.poll_event() {
                Ok(Some(ServerEvent::Head(head))) => {
                    if let BodyKind::Length(n) = head.body {
                        assert!(
                            n <= max_body,
                            "Content-Length beyond the limit was accepted"
                        );
                    }
                    check.head(head.body);
                    seen.push(Seen::Head(*head));
                }
                Ok(Some(ServerEvent::Body(data))) => {
                    check.body(data.len(), max_body);
                    push_body(&mut seen, &data);
                }
                Ok(Some(ServerEvent::End)) => {
                    check.end();
                    seen.push(Seen::End);
                    assert!(codec.is_finished());
                    assert_eq!(
                        codec.poll_event(),
                        Ok(None),
                        "event after End before start_next"
                    );
                    codec.start_next();
                }
                Ok(Some(ServerEvent::Closed)) => {
                    assert!(check.kind.is_none(), "Closed inside a message");
                    seen.push(Seen::Closed);
                    assert_eq!(codec.poll_event(), Ok(None));
                    return seen;
                }
                Ok(None) => break,
                Err(err) => {
                    check_error(err, codec.poll_event());
                    seen.push(Seen::Error(err));
                    return seen;
                }
            }
            progressed = true;
        }
        assert!(!at_eof, "codec waits for bytes after EOF");
        assert!(
            accepted > 0 || progressed,
            "codec stalled with a full buffer"
        );
    }
    seen
}

/// Feeds `input` to a client codec as `run_server` does; after each `End`
/// of a keep-alive response the codec is reset for the next one.
pub fn run_client(
    limits: &Limits,
    input: &[u8],
    sizes: &[usize],
    head_request: bool,
) -> Vec<Seen<ResponseHead>> {
    let mut codec = ClientCodec::new(limits, head_request);
    let mut seen = Vec::new();
    let mut check = BodyCheck {
        kind: None,
        total: 0,
    };
    let mut keep_alive = false;
    let mut pos = 0;
    for index in 0.. {
        let rest = input.get(pos..).unwrap_or_default();
        let piece = rest
            .get(..piece_len(sizes, index, rest.len()))
            .unwrap_or(rest);
        let accepted = codec.feed(piece);
        assert!(accepted <= piece.len());
        assert!(
            codec.buffered() <= codec.buffer_bound(),
            "buffer beyond its bound"
        );
        pos += accepted;
        let at_eof = pos >= input.len();
        if at_eof {
            codec.feed_eof();
        }
        let mut progressed = false;
        loop {
            match codec.poll_event() {
                Ok(Some(ClientEvent::Head(head))) => {
                    assert!(codec.has_started());
                    if head_request {
                        assert_eq!(head.body, BodyKind::Empty);
                    }
                    keep_alive = head.keep_alive;
                    check.head(head.body);
                    seen.push(Seen::Head(*head));
                }
                Ok(Some(ClientEvent::Body(data))) => {
                    check.body(data.len(), u64::MAX);
                    push_body(&mut seen, &data);
                }
                Ok(Some(ClientEvent::End)) => {
                    check.end();
                    seen.push(Seen::End);
                    assert!(codec.is_finished());
                    assert_eq!(codec.poll_event(), Ok(None), "event after End before reset");
                    assert!(keep_alive || !codec.is_reusable());
                    if !keep_alive || (pos >= input.len() && codec.buffered() == 0) {
                        return seen;
                    }
                    // Parse on as if the next request had been sent, so the
                    // outcome does not depend on what was buffered at End.
                    codec.reset(head_request);
                }
                Ok(None) => break,
                Err(err) => {
                    check_error(err, codec.poll_event());
                    seen.push(Seen::Error(err));
                    return seen;
                }
            }
            progressed = true;
        }
        assert!(!at_eof, "codec waits for bytes after EOF");
        assert!(
            accepted > 0 || progressed,
            "codec stalled with a full buffer"
        );
    }
    seen
}

/// Small limits, so fuzz inputs reach every bound.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_head_bytes: 256,
        max_headers: 8,
        max_body_bytes: 1024,
        max_upstream_head_bytes: 256,
        ..Limits::default()
    }
}

/// The first byte picks the piece size (0: whole); the rest is the input.
/// Whole and split feeding must see the same thing.
pub fn fuzz_server(data: &[u8]) {
    let Some((&size, input)) = data.split_first() else {
        return;
    };
    let limits = fuzz_limits();
    let whole = run_server(&limits, input, &[]);
    if size > 0 {
        let split = run_server(&limits, input, &[usize::from(size), 1]);
        assert_eq!(whole, split, "feeding in pieces changed the outcome");
    }
}

/// As `fuzz_server`; the low bit of the first byte marks a HEAD request.
pub fn fuzz_client(data: &[u8]) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let limits = fuzz_limits();
    let head_request = control & 1 == 1;
    let size = usize::from(control >> 1);
    let whole = run_client(&limits, input, &[], head_request);
    if size > 0 {
        let split = run_client(&limits, input, &[size, 1], head_request);
        assert_eq!(whole, split, "feeding in pieces changed the outcome");
    }
}
