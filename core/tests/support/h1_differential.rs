//! Differential harness: the same bytes go to the gateway's server codec
//! (`arouter_core::http1::ServerCodec`) and to async-h1's request parser
//! (`async_h1::server::decode`), and both must read the same requests:
//! method, target, headers and body, and end the same way.
//!
//! Shared by `core/tests/http1_differential.rs` (property tests, seed
//! corpus) and the cargo-fuzz target `fuzz/fuzz_targets/http1_differential.rs`,
//! which includes this file by path: async-h1 may only be a dev-dependency of
//! the core, so this cannot live in `core/src/fuzz_entry.rs`.
//!
//! Where the two differ on purpose, the difference is one of [`Difference`],
//! with why; anything else is a finding.

#![allow(dead_code)]

use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arouter_core::http1::testing::{run_server, Seen};
use arouter_core::http1::RequestHead;
use arouter_core::Limits;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// One request as read, in a form both parsers can be put in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Req {
    pub method: String,
    pub target: String,
    /// Lowercased names in name order; a repeated name's values in the order
    /// received.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// How reading the input ended, after the last complete request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Clean EOF between requests.
    Closed,
    /// EOF in the middle of a request.
    Truncated,
    /// The parser refused the bytes (ours with this status; async-h1 has no
    /// status of its own, its `accept` just closes).
    Rejected(Option<u16>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub requests: Vec<Req>,
    pub end: End,
}

/// Our limits, set to async-h1's where it has them (128 headers); its 8 KiB
/// head limit is above anything generated or fuzzed here.
pub fn limits() -> Limits {
    Limits {
        max_headers: 128,
        max_body_bytes: 1 << 20,
        ..Limits::default()
    }
}

fn sorted(mut headers: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers
}

/// The gateway's codec, fed the whole input then EOF.
pub fn ours(input: &[u8]) -> Outcome {
    let mut requests = Vec::new();
    let mut current: Option<Req> = None;
    for seen in run_server(&limits(), input, &[]) {
        match seen {
            Seen::Head(head) => current = Some(from_head(&head)),
            Seen::Body(data) => {
                if let Some(req) = &mut current {
                    req.body.extend_from_slice(&data);
                }
            }
            Seen::End => requests.extend(current.take()),
            Seen::Closed => {
                return Outcome {
                    requests,
                    end: End::Closed,
                }
            }
            Seen::Error(arouter_core::http1::HttpError::Incomplete) => {
                return Outcome {
                    requests,
                    end: End::Truncated,
                }
            }
            Seen::Error(err) => {
                return Outcome {
                    requests,
                    end: End::Rejected(Some(err.status())),
                }
            }
        }
    }
    unreachable!("run_server ends with Closed or an error")
}

fn from_head(head: &RequestHead) -> Req {
    let headers = head
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    Req {
        method: head.method.as_str().to_owned(),
        target: head.target.clone(),
        headers: sorted(headers),
        body: Vec::new(),
    }
}

/// In-memory socket for async-h1. Like the replay server's `Conn`, it hands
/// out one line per read, and exactly the body while a Content-Length body
/// is read, so that async-h1's per-request buffered reader never swallows
/// the start of a pipelined request.
#[derive(Clone)]
struct MemIo(Arc<Mutex<MemState>>);

struct MemState {
    input: Vec<u8>,
    pos: usize,
    body_left: usize,
}

impl MemIo {
    fn state(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AsyncRead for MemIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.state();
        let rest = &st.input[st.pos..];
        let end = if st.body_left > 0 {
            st.body_left.min(rest.len())
        } else {
            rest.iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1)
        };
        let n = end.min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        st.pos += n;
        st.body_left = st.body_left.saturating_sub(n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for MemIo {
    // `100 Continue` goes nowhere.
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// async-h1 reading the same input. `None`: it panicked (see
/// [`Difference::NonAsciiHeaderValue`]).
pub fn theirs(input: &[u8]) -> Option<Outcome> {
    theirs_with_starts(input).map(|(outcome, _)| outcome)
}

/// As [`theirs`], with the offset where each request (and the attempt
/// after the last) began.
fn theirs_with_starts(input: &[u8]) -> Option<(Outcome, Vec<usize>)> {
    let io = MemIo(Arc::new(Mutex::new(MemState {
        input: input.to_vec(),
        pos: 0,
        body_left: 0,
    })));
    let run = || run_in_memory(read_all(io.clone()));
    if input.is_ascii() {
        return Some(run());
    }
    // http-types unwraps a header value that is UTF-8 but not ASCII. Only
    // then is a panic expected and caught; any other panic is a finding.
    EXPECTING_PANIC.with(|e| e.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(run));
    EXPECTING_PANIC.with(|e| e.set(false));
    result.ok()
}

/// Drives a future over in-memory input, where nothing is ever waited
/// for: a `Pending` can only be async-h1's missing wake-up in its trailer
/// parser (see [`Difference::Trailers`]), and polling again goes on. (A
/// plain `block_on` would sleep forever there, as a real connection does.)
fn run_in_memory<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("async-h1 made no progress on in-memory input")
}

thread_local! {
    /// Set while [`theirs`] runs async-h1 on input it may panic on. The fuzz
    /// target's panic hook lets such a panic unwind instead of aborting.
    pub static EXPECTING_PANIC: Cell<bool> = const { Cell::new(false) };
}

async fn read_all(io: MemIo) -> (Outcome, Vec<usize>) {
    let mut starts = Vec::new();
    let outcome = read_requests(io, &mut starts).await;
    (outcome, starts)
}

async fn read_requests(io: MemIo, starts: &mut Vec<usize>) -> Outcome {
    let mut requests = Vec::new();
    loop {
        let start = io.state().pos;
        starts.push(start);
        let (mut req, _body_reader) = match async_h1::server::decode(io.clone()).await {
            Ok(Some(decoded)) => decoded,
            Ok(None) => {
                let st = io.state();
                let rest = &st.input[start..];
                // Only empty lines left: a clean close.
                let empty_lines = rest
                    .split_inclusive(|&b| b == b'\n')
                    .all(|l| l == b"\n" || l == b"\r\n");
                let end = if empty_lines {
                    End::Closed
                } else {
                    End::Truncated
                };
                return Outcome { requests, end };
            }
            Err(_) => {
                return Outcome {
                    requests,
                    end: End::Rejected(None),
                }
            }
        };
        let head_end = io.state().pos;
        let headers = wire_headers(&req, &io.state().input[start..head_end]);
        let declared = req.len();
        io.state().body_left = declared.unwrap_or(0);
        let mut body = Vec::new();
        let end = match req.take_body().read_to_end(&mut body).await {
            Ok(_) if declared.is_some_and(|n| body.len() < n) => Some(End::Truncated),
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Some(End::Truncated),
            Err(_) => Some(End::Rejected(None)),
        };
        if let Some(end) = end {
            return Outcome { requests, end };
        }
        let url = req.url();
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        requests.push(Req {
            method: req.method().to_string(),
            target,
            headers,
            body,
        });
    }
}

/// async-h1's headers, less the `content-type` that http-types adds to a
/// request with a body when the head has none.
fn wire_headers(req: &http_types::Request, head: &[u8]) -> Vec<(String, Vec<u8>)> {
    let sent_content_type = !header_values(&lines(head), "content-type").is_empty();
    let headers = req
        .iter()
        .filter(|(name, _)| sent_content_type || name.as_str() != "content-type")
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.as_str().to_owned(), v.as_str().as_bytes().to_vec()))
        })
        .collect();
    sorted(headers)
}

/// Every deliberate difference between the two parsers, in one place. The
/// gateway faces the internet, so where async-h1 is lenient about framing
/// (the root of request smuggling) we refuse with 400; where async-h1 is
/// stricter than RFC 9112 requires, we follow the RFC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difference {
    // ---- We refuse (400) what async-h1 accepts: framing must be unambiguous.
    /// Several Content-Length values that differ: async-h1 takes the last
    /// one, another hop may take the first (RFC 9112 §6.3 item 5: reject).
    ConflictingContentLength,
    /// A Content-Length that is not plain digits (`+5`, ` 5 5`): async-h1
    /// parses it with `u64::from_str`, which takes a sign; RFC 9110 §8.6
    /// allows only `1*DIGIT`.
    ContentLengthNotDigits,
    /// A Transfer-Encoding other than exactly `chunked` (`gzip`,
    /// `gzip, chunked`, `chunked, chunked`, two TE lines): async-h1 then reads
    /// no body at all, and the body bytes become the "next request": the
    /// classic smuggling pair. RFC 9112 §6.3: not chunked-final → 400;
    /// other codings we cannot decode.
    TransferEncodingNotChunked,
    /// Two Host fields: async-h1 uses the first; RFC 9112 §3.2 says 400.
    MultipleHost,
    /// An absolute-form target with userinfo (`http://u@h/`): deprecated
    /// and a phishing vector (RFC 9110 §4.2.4); async-h1 drops the userinfo.
    TargetUserinfo,
    /// A `#` in the target: a fragment is never sent (RFC 9112 §3.2);
    /// async-h1's URL parser silently drops it.
    TargetFragment,
    /// A target byte that is not visible ASCII (obs-text that httparse lets
    /// through): async-h1 percent-encodes it.
    TargetNotVisibleAscii,
    // ---- async-h1 refuses what RFC 9112 lets us (and the gateway) accept.
    /// A Content-Length list of one repeated value (`5, 5`), which RFC 9110
    /// §8.6 lets a recipient read as that value: async-h1 cannot parse it.
    ContentLengthList,
    /// HTTP/1.0: async-h1 speaks only 1.1.
    Http10,
    /// A method outside http-types' fixed list (an extension method),
    /// or not in upper case: method names are case-sensitive tokens (RFC
    /// 9110 §9.1); http-types uppercases known ones and refuses the rest.
    MethodSpelling,
    /// Asterisk-form (`OPTIONS *`), which RFC 9112 §3.2.4 defines.
    AsteriskTarget,
    /// Absolute- and authority-form targets: async-h1 takes only a
    /// lower-case `http://`/`https://` scheme (schemes are case-insensitive,
    /// RFC 3986 §3.1) and turns a CONNECT authority into a URL; we reduce
    /// absolute-form to origin-form and refuse authority-form (a gateway
    /// does not tunnel). Either side may be the one that refuses.
    TargetForm,
    /// Chunk extensions, or whitespace before them (RFC 9112 §7.1.1 defines
    /// extensions, and BWS before `;`): async-h1's chunk-size parser takes
    /// only hex digits then CR.
    ChunkExtension,
    /// A chunked body's trailer section: async-h1 parses it apart, with at
    /// most 16 fields, and when the section arrives in more than one read
    /// its decoder returns `Pending` without arranging a wake-up: on a real
    /// connection the request hangs for good (the replay server works
    /// around it; this harness polls again).
    Trailers,
    /// Lines ended by a bare LF (RFC 9112 §2.2: a recipient MAY accept it):
    /// async-h1 waits for CRLFCRLF and never sees the head end; if one comes
    /// later (in what we read as the body or the next request), it hands all
    /// of it to httparse, which stops at the bare-LF end of the head, and
    /// async-h1 silently drops the bytes in between.
    BareLf,
    /// Empty lines before a request line (RFC 9112 §2.2: SHOULD ignore at
    /// least one): async-h1 ends the head at the first CRLFCRLF it sees.
    LeadingEmptyLines,
    /// A header value with bytes above 0x7F (obs-text, RFC 9110 §5.5): we
    /// keep them as opaque bytes; async-h1 refuses invalid UTF-8, and
    /// http-types panics on valid UTF-8 that is not ASCII.
    NonAsciiHeaderValue,
    /// A Host value that is not a plain authority: async-h1 builds the URL
    /// `http://{host}{target}`, so it refuses the request when the `url`
    /// crate refuses that (a bad port, a space, an invalid IDNA label), and
    /// a `/` or `?` in Host, or an empty Host (`http:///a` is host `a`),
    /// changes the path and query it reports (Host injected into the target). We keep the target as sent; the gateway
    /// does not route on Host.
    HostNotUrlAuthority,
    // ---- Same request, spelled differently.
    /// async-h1 parses the target as a URL (the `url` crate): dot segments
    /// removed, some bytes percent-encoded, an empty query dropped, the
    /// authority of an absolute-form target lowercased. We keep the bytes as
    /// sent (normalization is the router's business, not the codec's).
    TargetNormalized,
}

impl Difference {
    /// Whether this is a case where we refuse (400) and async-h1 does
    /// something else; otherwise async-h1 cannot read what we accept.
    pub fn we_refuse(self) -> bool {
        use Difference::*;
        matches!(
            self,
            ConflictingContentLength
                | ContentLengthNotDigits
                | TransferEncodingNotChunked
                | MultipleHost
                | TargetUserinfo
                | TargetFragment
                | TargetNotVisibleAscii
        )
    }
}

/// Lines (CRLF or LF ended), lowercased, for the coarse checks below.
fn lines(input: &[u8]) -> Vec<Vec<u8>> {
    input
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_ascii_lowercase())
        .collect()
}

fn header_values<'a>(lines: &'a [Vec<u8>], name: &str) -> Vec<&'a [u8]> {
    lines
        .iter()
        .filter_map(|l| {
            let (n, v) = l.split_at_checked(name.len() + 1)?;
            (n.strip_suffix(b":")? == name.as_bytes()).then_some(v)
        })
        .collect()
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b" \t".contains(b))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b" \t".contains(b))
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// Methods http-types knows that the generators use.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The head at the start of `rest`: up to its empty line, or all of it.
fn first_head(rest: &[u8]) -> &[u8] {
    let crlf = rest
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = rest.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(rest.len()),
    };
    &rest[..end]
}

/// The listed differences that the request at the start of `rest` shows
/// signs of. Coarse on purpose (the fuzzer must not flag a listed
/// difference); the property tests check each one precisely.
pub fn suspects(rest: &[u8]) -> Vec<Difference> {
    use Difference::*;
    let head = first_head(rest);
    let ls = lines(head);
    let mut out = Vec::new();
    let cls = header_values(&ls, "content-length");
    if cls.len() > 1 || cls.iter().any(|v| v.contains(&b',')) {
        out.push(ConflictingContentLength);
    }
    if cls
        .iter()
        .any(|v| trim(v).is_empty() || !trim(v).iter().all(u8::is_ascii_digit))
    {
        out.push(ContentLengthNotDigits);
    }
    if cls.iter().any(|v| v.contains(&b',')) {
        out.push(ContentLengthList);
    }
    let tes = header_values(&ls, "transfer-encoding");
    if tes.len() > 1 || tes.iter().any(|v| trim(v) != b"chunked") {
        out.push(TransferEncodingNotChunked);
    }
    if !tes.is_empty() {
        out.push(ChunkExtension);
        out.push(Trailers);
    }
    let hosts = header_values(&ls, "host");
    if hosts.len() > 1 {
        out.push(MultipleHost);
    }
    let request_line = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.is_empty());
    if let Some(line) = request_line {
        let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let method = String::from_utf8_lossy(words[0]);
        if !KNOWN_METHODS.contains(&method.as_ref()) {
            out.push(MethodSpelling);
        }
        match words.get(1) {
            Some(&b"*") => out.push(AsteriskTarget),
            Some(t) if t.contains(&b'@') => out.push(TargetUserinfo),
            _ => {}
        }
        if let Some(t) = words.get(1) {
            if t.contains(&b'#') {
                out.push(TargetFragment);
            }
            if !t.iter().all(u8::is_ascii_graphic) {
                out.push(TargetNotVisibleAscii);
            }
            if !t.starts_with(b"/") {
                out.push(TargetForm);
            }
        }
        // async-h1 makes a URL of `http://` + Host + an origin-form target.
        let target = words.get(1).map(|t| String::from_utf8_lossy(t));
        let origin_form = target.as_deref().is_some_and(|t| t.starts_with('/'));
        if let (Some(host), true) = (hosts.first(), origin_form) {
            let url = format!(
                "http://{}{}",
                String::from_utf8_lossy(trim(host)),
                target.unwrap_or_default()
            );
            let authority =
                |b: &u8| b.is_ascii_alphanumeric() || b"-._~:[]!$&'()*+,;=%".contains(b);
            let host = trim(host);
            if host.is_empty()
                || !host.iter().all(authority)
                || http_types::Url::parse(&url).is_err()
            {
                out.push(HostNotUrlAuthority);
            }
        }
        if words.last() != Some(&&b"HTTP/1.1"[..]) {
            out.push(Http10);
        }
    }
    let bare_lf = head
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'));
    if bare_lf || head.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n') {
        out.push(BareLf);
    }
    if head.starts_with(b"\r\n") || head.starts_with(b"\n") {
        out.push(LeadingEmptyLines);
    }
    if !head.is_ascii() {
        out.push(NonAsciiHeaderValue);
    }
    out
}

/// The fuzz entry: arbitrary bytes to both parsers. They must agree up to
/// the first request where they part, and there the request must show a
/// listed difference of the right direction: where we refuse, we do it
/// with 400.
pub fn differential(input: &[u8]) {
    let ours = ours(input);
    if let End::Rejected(status) = ours.end {
        let status = status.unwrap_or(0);
        assert!(
            [400, 413, 431, 505].contains(&status),
            "refused with {status}"
        );
    }
    let Some((theirs, starts)) = theirs_with_starts(input) else {
        assert!(!input.is_ascii(), "async-h1 panicked on ASCII input");
        return;
    };
    if same(&ours, &theirs) {
        return;
    }
    // First request where they part.
    let k = ours
        .requests
        .iter()
        .zip(&theirs.requests)
        .take_while(|(a, b)| same_req(a, b))
        .count();
    // The cause may be in request k, or in how request k-1 was framed
    // (where its head ended, how long its body was).
    let rest = starts.get(k).map_or(&[][..], |&at| &input[at..]);
    let mut suspects = suspects(rest);
    if let Some(&before) = k.checked_sub(1).and_then(|i| starts.get(i)) {
        suspects.extend(self::suspects(&input[before..]));
    }
    let we_refused_here = ours.requests.len() == k && ours.end == End::Rejected(Some(400));
    let explained = suspects.iter().any(|d| !d.we_refuse() || we_refused_here);
    assert!(
        explained,
        "unexplained difference at request {k} {:?}:\nsuspects: {suspects:?}\nours:   {ours:?}\ntheirs: {theirs:?}",
        String::from_utf8_lossy(rest)
    );
}

fn same_req(a: &Req, b: &Req) -> bool {
    a == b
        || (Req {
            target: b.target.clone(),
            ..a.clone()
        } == *b
            && url_spelling(&a.target) == b.target)
}

/// Equal, up to the spelling of targets that the `url` crate normalizes
/// ([`Difference::TargetNormalized`]). Refused and truncated count as the
/// same end: for input that is both malformed and cut short, which one a
/// parser reports depends only on whether it checks lines as they come
/// (we do) or waits for the end of the head (async-h1 does).
pub fn same(ours: &Outcome, theirs: &Outcome) -> bool {
    let end = (ours.end == End::Closed) == (theirs.end == End::Closed);
    end && ours.requests.len() == theirs.requests.len()
        && ours
            .requests
            .iter()
            .zip(&theirs.requests)
            .all(|(a, b)| same_req(a, b))
}

/// How async-h1 spells a target after parsing it as a URL.
pub fn url_spelling(target: &str) -> String {
    let base = if target.starts_with('/') {
        format!("http://h{target}")
    } else {
        target.to_owned()
    };
    match http_types::Url::parse(&base) {
        Ok(url) => match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => target.to_owned(),
    }
}
