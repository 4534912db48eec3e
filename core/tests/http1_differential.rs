//! The gateway's request codec against async-h1's request parser, on the
//! same bytes (harness: `support/h1_differential.rs`).
//!
//! - Valid requests (methods, targets, header sets with odd casing and
//!   whitespace, Content-Length and chunked bodies, pipelined pairs): both
//!   must read exactly the generated requests.
//! - Near-valid ones, one quirk each: where the two differ on purpose the
//!   quirk names its [`Difference`] and the outcome of each side is
//!   asserted; the other quirks must be refused by both.
//! - The cargo-fuzz target's seed corpus (`fuzz/corpus/http1_differential`)
//!   runs through the fuzz entry.

mod support {
    pub mod h1_differential;
}

use proptest::prelude::*;
use support::h1_differential::{self as diff, Difference, End, Req};

#[derive(Clone, Debug)]
enum BodyModel {
    None,
    Length(Vec<u8>),
    Chunked { pieces: Vec<Vec<u8>>, upper: bool },
}

#[derive(Clone, Debug)]
struct Model {
    method: String,
    target: String,
    host: String,
    /// Name as sent (any casing), value as sent (with OWS around it).
    headers: Vec<(String, String)>,
    body: BodyModel,
}

/// One near-valid change to the last request of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quirk {
    /// A listed difference.
    Differs(Difference),
    /// Content-Length and Transfer-Encoding together: both refuse.
    ClAndTe,
    /// A header continued on the next line (obs-fold): both refuse.
    ObsFold,
    /// A chunk size that is not hex: both refuse.
    BadChunkSize,
    /// A space inside a header name: both refuse.
    SpaceInHeaderName,
}

/// The quirks that make the two parsers differ, with how they are produced
/// below. Each is a [`Difference`] with its reason.
const DIFFERING: [Difference; 16] = [
    Difference::ConflictingContentLength,
    Difference::ContentLengthNotDigits,
    Difference::TransferEncodingNotChunked,
    Difference::MultipleHost,
    Difference::TargetUserinfo,
    Difference::Http10,
    Difference::MethodSpelling,
    Difference::AsteriskTarget,
    Difference::ChunkExtension,
    Difference::BareLf,
    Difference::NonAsciiHeaderValue,
    Difference::HostNotUrlAuthority,
    Difference::TargetFragment,
    Difference::TargetNotVisibleAscii,
    Difference::TargetForm,
    Difference::ContentLengthList,
];

fn token_char() -> impl Strategy<Value = char> {
    prop::sample::select(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
            .chars()
            .collect::<Vec<_>>(),
    )
}

fn header_name() -> impl Strategy<Value = String> {
    let common = prop::sample::select(vec![
        "Authorization",
        "content-type",
        "ACCEPT",
        "User-Agent",
        "x-api-key",
        "Anthropic-Version",
        "x-goog-api-key",
        "Accept-Encoding",
        "X-Request-Id",
    ])
    .prop_map(str::to_owned);
    let random = ("[a-zA-Z]", prop::collection::vec(token_char(), 0..10))
        .prop_map(|(first, rest)| format!("{first}{}", rest.into_iter().collect::<String>()));
    prop_oneof![common, random].prop_filter("framing headers are generated apart", |n| {
        let n = n.to_ascii_lowercase();
        !["host", "content-length", "transfer-encoding", "expect"].contains(&n.as_str())
    })
}

/// A visible-ASCII value with inner spaces, and optional OWS around it.
fn header_value() -> impl Strategy<Value = String> {
    ("[ \t]{0,2}", "[!-~]([!-~ \t]{0,20}[!-~])?", "[ \t]{0,2}")
        .prop_map(|(a, v, b)| format!("{a}{v}{b}"))
}

fn target() -> impl Strategy<Value = String> {
    let segment = "[a-zA-Z0-9_~-][a-zA-Z0-9._~:-]{0,8}";
    (
        prop::collection::vec(segment, 0..4),
        prop::option::of("[a-z0-9=&]{0,12}"),
    )
        .prop_map(|(segments, query)| {
            let mut t = format!("/{}", segments.join("/"));
            if let Some(q) = query {
                t.push('?');
                t.push_str(&q);
            }
            t
        })
}

fn body() -> impl Strategy<Value = BodyModel> {
    let bytes = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        Just(BodyModel::None),
        bytes.prop_map(BodyModel::Length),
        (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 1..24), 0..4),
            any::<bool>()
        )
            .prop_map(|(pieces, upper)| BodyModel::Chunked { pieces, upper }),
    ]
}

fn model() -> impl Strategy<Value = Model> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        target(),
        // Names a URL can carry: async-h1 builds one from Host.
        "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,6})?(:[0-9]{1,4})?",
        prop::collection::vec((header_name(), header_value()), 0..6),
        body(),
    )
        .prop_map(|(method, target, host, headers, body)| Model {
            method: method.to_owned(),
            target,
            host,
            headers,
            body,
        })
}

/// The request as both parsers must read it.
fn expected(m: &Model) -> Req {
    let mut headers = vec![("host".to_owned(), m.host.clone().into_bytes())];
    for (k, v) in &m.headers {
        headers.push((k.to_ascii_lowercase(), v.trim().as_bytes().to_vec()));
    }
    let body = match &m.body {
        BodyModel::None => Vec::new(),
        BodyModel::Length(b) => {
            headers.push(("content-length".into(), b.len().to_string().into_bytes()));
            b.clone()
        }
        BodyModel::Chunked { pieces, .. } => {
            headers.push(("transfer-encoding".into(), b"chunked".to_vec()));
            pieces.concat()
        }
    };
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    Req {
        method: m.method.clone(),
        target: m.target.clone(),
        headers,
        body,
    }
}

/// The bytes of a request, with `quirk` applied.
fn render(m: &Model, quirk: Option<Quirk>) -> Vec<u8> {
    use Difference as D;
    let q = |want: Quirk| quirk == Some(want);
    let d = |want: Difference| quirk == Some(Quirk::Differs(want));
    let method = if d(D::MethodSpelling) {
        m.method.to_ascii_lowercase()
    } else {
        m.method.clone()
    };
    let (method, target) = if d(D::AsteriskTarget) {
        ("OPTIONS".to_owned(), "*".to_owned())
    } else if d(D::TargetUserinfo) {
        (method, format!("http://user@{}{}", m.host, m.target))
    } else if d(D::TargetFragment) {
        (method, format!("{}#frag", m.target))
    } else if d(D::TargetNotVisibleAscii) {
        (method, format!("{}caf\u{e9}", m.target))
    } else if d(D::TargetForm) {
        // Schemes are case-insensitive; async-h1 takes only `http://`.
        (method, format!("HTTP://{}{}", m.host, m.target))
    } else {
        (method, m.target.clone())
    };
    let version = if d(D::Http10) { "HTTP/1.0" } else { "HTTP/1.1" };
    let host = if d(D::HostNotUrlAuthority) {
        "bad host"
    } else {
        &m.host
    };
    let mut head = format!("{method} {target} {version}\r\nHost: {host}\r\n");
    if d(D::MultipleHost) {
        head.push_str("Host: other.example\r\n");
    }
    for (k, v) in &m.headers {
        head.push_str(&format!("{k}:{v}\r\n"));
    }
    if q(Quirk::ObsFold) {
        head.push_str("X-Folded: a\r\n  b\r\n");
    }
    if q(Quirk::SpaceInHeaderName) {
        head.push_str("X Bad: v\r\n");
    }
    if d(D::NonAsciiHeaderValue) {
        head.push_str("X-Name: caf\u{e9}\r\n");
    }
    let mut body = Vec::new();
    match &m.body {
        BodyModel::None => {}
        BodyModel::Length(b) => {
            let len = b.len();
            if d(D::ConflictingContentLength) {
                head.push_str(&format!("Content-Length: {}\r\n", len + 1));
            }
            if d(D::ContentLengthNotDigits) {
                head.push_str(&format!("Content-Length: +{len}\r\n"));
            } else if d(D::ContentLengthList) {
                head.push_str(&format!("Content-Length: {len}, {len}\r\n"));
            } else {
                head.push_str(&format!("Content-Length: {len}\r\n"));
            }
            if q(Quirk::ClAndTe) {
                head.push_str("Transfer-Encoding: chunked\r\n");
            }
            body.extend_from_slice(b);
        }
        BodyModel::Chunked { pieces, upper } => {
            if d(D::TransferEncodingNotChunked) {
                head.push_str("Transfer-Encoding: gzip, chunked\r\n");
            } else {
                head.push_str("Transfer-Encoding: chunked\r\n");
            }
            if q(Quirk::ClAndTe) {
                head.push_str("Content-Length: 3\r\n");
            }
            for (i, p) in pieces.iter().enumerate() {
                let size = if *upper {
                    format!("{:X}", p.len())
                } else {
                    format!("{:x}", p.len())
                };
                let size = if q(Quirk::BadChunkSize) && i == 0 {
                    format!("{size}g")
                } else {
                    size
                };
                let ext = if d(D::ChunkExtension) && i == 0 {
                    ";x=y"
                } else {
                    ""
                };
                body.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                body.extend_from_slice(p);
                body.extend_from_slice(b"\r\n");
            }
            if q(Quirk::BadChunkSize) && pieces.is_empty() {
                body.extend_from_slice(b"zz\r\n");
            }
            let ext = if d(D::ChunkExtension) && pieces.is_empty() {
                ";x=y"
            } else {
                ""
            };
            body.extend_from_slice(format!("0{ext}\r\n\r\n").as_bytes());
        }
    }
    head.push_str("\r\n");
    if d(D::BareLf) {
        head = head.replace("\r\n", "\n");
    }
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Whether `quirk` changes anything in a request with this body.
fn applies(quirk: Quirk, m: &Model) -> bool {
    use Difference as D;
    let length = matches!(m.body, BodyModel::Length(_));
    let chunked = matches!(m.body, BodyModel::Chunked { .. });
    match quirk {
        Quirk::Differs(
            D::ConflictingContentLength | D::ContentLengthNotDigits | D::ContentLengthList,
        ) => length,
        Quirk::Differs(D::TransferEncodingNotChunked | D::ChunkExtension) => chunked,
        Quirk::ClAndTe => length || chunked,
        Quirk::BadChunkSize => chunked,
        // Lower case only differs from the real method for letters.
        Quirk::Differs(D::MethodSpelling) => true,
        // HTTP/1.0 has no chunked framing.
        Quirk::Differs(D::Http10) => !chunked,
        _ => true,
    }
}

fn quirk() -> impl Strategy<Value = Quirk> {
    prop_oneof![
        prop::sample::select(DIFFERING.to_vec()).prop_map(Quirk::Differs),
        Just(Quirk::ClAndTe),
        Just(Quirk::ObsFold),
        Just(Quirk::BadChunkSize),
        Just(Quirk::SpaceInHeaderName),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        // Quirks that need a body skip bodiless requests.
        max_global_rejects: 1 << 16,
        ..ProptestConfig::default()
    })]

    /// Valid requests, alone or pipelined: both read exactly what was
    /// generated, then a clean close.
    #[test]
    fn valid_requests_read_the_same(models in prop::collection::vec(model(), 1..3)) {
        let input: Vec<u8> = models.iter().flat_map(|m| render(m, None)).collect();
        let want: Vec<Req> = models.iter().map(expected).collect();
        let ours = diff::ours(&input);
        prop_assert_eq!(&ours.requests, &want);
        prop_assert_eq!(ours.end, End::Closed);
        let theirs = diff::theirs(&input).expect("async-h1 panicked on ASCII input");
        prop_assert_eq!(&theirs.requests, &want);
        prop_assert_eq!(theirs.end, End::Closed);
    }

    /// A valid request, then one with a quirk: the first is read the same;
    /// the second as the quirk's entry says.
    #[test]
    fn near_valid_requests_differ_only_as_listed(
        first in model(),
        second in model(),
        quirk in quirk(),
    ) {
        prop_assume!(applies(quirk, &second));
        let mut input = render(&first, None);
        input.extend(render(&second, Some(quirk)));
        let want = [expected(&first), expected(&second)];
        let ours = diff::ours(&input);
        prop_assert_eq!(&ours.requests[..1], &want[..1]);
        let theirs = diff::theirs(&input);
        if let Some(theirs) = &theirs {
            prop_assert_eq!(&theirs.requests[..1], &want[..1]);
        }
        check_quirk(quirk, &second, &want[1], &ours, theirs.as_ref())?;
    }
}

/// What each side must do with the quirked (second) request.
fn check_quirk(
    quirk: Quirk,
    m: &Model,
    want: &Req,
    ours: &diff::Outcome,
    theirs: Option<&diff::Outcome>,
) -> Result<(), TestCaseError> {
    use Difference as D;
    let refused = |o: &diff::Outcome| o.requests.len() == 1 && matches!(o.end, End::Rejected(_));
    match quirk {
        Quirk::Differs(d) if d.we_refuse() => {
            // We refuse with 400; async-h1 reads a request there.
            prop_assert_eq!(ours.requests.len(), 1);
            prop_assert_eq!(ours.end, End::Rejected(Some(400)));
            let theirs = theirs.expect("async-h1 panicked");
            prop_assert!(
                theirs.requests.len() >= 2,
                "async-h1 refused too: {:?}",
                theirs
            );
            if d == D::TransferEncodingNotChunked {
                // It reads no body: the chunks are left to be misread as
                // the next request.
                prop_assert!(theirs.requests[1].body.is_empty());
            }
        }
        Quirk::Differs(D::NonAsciiHeaderValue) => {
            // We keep the value as opaque bytes; http-types panics.
            prop_assert_eq!(ours.requests.len(), 2);
            let value = ours.requests[1]
                .headers
                .iter()
                .find(|(k, _)| k == "x-name")
                .map(|(_, v)| v.clone());
            prop_assert_eq!(value, Some("caf\u{e9}".as_bytes().to_vec()));
            prop_assert!(
                theirs.is_none(),
                "http-types no longer panics: {:?}",
                theirs
            );
        }
        Quirk::Differs(D::MethodSpelling) => {
            // Methods are case-sensitive: we keep `get`, async-h1 reads `GET`.
            prop_assert_eq!(&ours.requests[1].method, &m.method.to_ascii_lowercase());
            let theirs = theirs.expect("async-h1 panicked");
            prop_assert_eq!(&theirs.requests[1].method, &m.method);
        }
        Quirk::Differs(d) => {
            // We read the request; async-h1 cannot.
            prop_assert_eq!(ours.requests.len(), 2, "we refused {:?}", ours.end);
            let ours_req = &ours.requests[1];
            match d {
                D::AsteriskTarget => {
                    prop_assert_eq!(&ours_req.method, "OPTIONS");
                    prop_assert_eq!(&ours_req.target, "*");
                    prop_assert_eq!(&ours_req.body, &want.body);
                }
                D::ContentLengthList => {
                    let mut want = want.clone();
                    for (name, value) in &mut want.headers {
                        if name == "content-length" {
                            let len = String::from_utf8_lossy(value).into_owned();
                            *value = format!("{len}, {len}").into_bytes();
                        }
                    }
                    prop_assert_eq!(ours_req, &want);
                }
                D::HostNotUrlAuthority => {
                    let mut want = want.clone();
                    for (name, value) in &mut want.headers {
                        if name == "host" {
                            *value = b"bad host".to_vec();
                        }
                    }
                    prop_assert_eq!(ours_req, &want);
                }
                // HTTP/1.0, bare LF, chunk extensions: the same request.
                _ => prop_assert_eq!(ours_req, want),
            }
            let theirs = theirs.expect("async-h1 panicked");
            prop_assert_eq!(theirs.requests.len(), 1, "async-h1 read it: {:?}", theirs);
            prop_assert!(theirs.end != End::Closed);
        }
        Quirk::ClAndTe | Quirk::ObsFold | Quirk::BadChunkSize | Quirk::SpaceInHeaderName => {
            prop_assert!(refused(ours), "we read it: {:?}", ours);
            prop_assert_eq!(ours.end, End::Rejected(Some(400)));
            let theirs = theirs.expect("async-h1 panicked");
            prop_assert!(refused(theirs), "async-h1 read it: {:?}", theirs);
        }
    }
    Ok(())
}

/// Seeds of the cargo-fuzz target, through its entry point.
#[test]
fn fuzz_corpus_http1_differential() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/http1_differential");
    let mut count = 0;
    for item in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = item.expect("dir entry").path();
        if path.is_file() {
            diff::differential(&std::fs::read(&path).expect("read seed"));
            count += 1;
        }
    }
    assert!(count > 0, "no seeds in {}", dir.display());
}
