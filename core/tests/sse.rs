//! SSE decoder and encoder: one test per event-stream rule, real provider
//! streams, and properties (split invariance, round trip, bounds).

use arouter_core::sse::{
    write_comment, write_data_line, write_event, SseDecoder, SseError, SseEvent,
};
use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Ev {
    event: Option<String>,
    data: String,
    id: Option<String>,
    retry: Option<u64>,
}

impl Ev {
    fn from(e: SseEvent<'_>) -> Ev {
        Ev {
            event: e.event.map(str::to_owned),
            data: e.data.to_owned(),
            id: e.id.map(str::to_owned),
            retry: e.retry,
        }
    }
}

fn ev(event: Option<&str>, data: &str) -> Ev {
    Ev {
        event: event.map(str::to_owned),
        data: data.to_owned(),
        id: None,
        retry: None,
    }
}

/// Everything observable about decoding a sequence of feeds.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    result: Result<(), SseError>,
    pending: bool,
}

fn decode_parts(max: usize, parts: &[&[u8]]) -> Outcome {
    let mut dec = SseDecoder::new(max);
    let mut events = Vec::new();
    let mut result = Ok(());
    for part in parts {
        result = dec.feed(part, |e| events.push(Ev::from(e)));
        if result.is_err() {
            break;
        }
    }
    let pending = dec.finish();
    Outcome {
        events,
        result,
        pending,
    }
}

fn decode(input: &[u8]) -> Outcome {
    decode_parts(1 << 16, &[input])
}

fn events(input: &str) -> Vec<Ev> {
    let out = decode(input.as_bytes());
    assert_eq!(out.result, Ok(()), "input {input:?}");
    out.events
}

fn datas(input: &str) -> Vec<String> {
    events(input).into_iter().map(|e| e.data).collect()
}

// ---- line endings -------------------------------------------------------

#[test]
fn lf_crlf_and_cr_each_end_lines() {
    assert_eq!(datas("data: a\n\n"), ["a"]);
    assert_eq!(datas("data: a\r\n\r\n"), ["a"]);
    assert_eq!(datas("data: a\r\r"), ["a"]);
}

#[test]
fn mixed_line_endings_in_one_stream() {
    let input = "data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r\nevent: e\ndata: f\n\r";
    assert_eq!(
        events(input),
        [ev(None, "a\nb\nc"), ev(None, "d"), ev(Some("e"), "f")]
    );
}

#[test]
fn cr_lf_split_across_feeds_is_one_line_end() {
    // Were the LF a second line end, "a" would dispatch alone.
    let out = decode_parts(64, &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(out.events, [ev(None, "a\nb")]);
    assert!(!out.pending);
}

#[test]
fn cr_at_end_of_feed_then_other_byte() {
    let out = decode_parts(64, &[b"data: a\r", b"\r"]);
    assert_eq!(out.events, [ev(None, "a")]);
    let out = decode_parts(64, &[b"data: a\r", b"data: b\r\r"]);
    assert_eq!(out.events, [ev(None, "a\nb")]);
}

#[test]
fn empty_feeds_do_not_disturb_pending_cr() {
    let out = decode_parts(64, &[b"data: a\r", b"", b"\n", b"", b"\n"]);
    assert_eq!(out.events, [ev(None, "a")]);
}

// ---- byte order mark ----------------------------------------------------

#[test]
fn leading_bom_is_skipped() {
    assert_eq!(datas("\u{FEFF}data: a\n\n"), ["a"]);
}

#[test]
fn bom_split_across_feeds_is_skipped() {
    let bom = "\u{FEFF}".as_bytes();
    for parts in [
        vec![&bom[..1], &bom[1..], b"data: a\n\n"],
        vec![&bom[..2], &bom[2..], b"data: a\n\n"],
        vec![&bom[..1], &bom[1..2], &bom[2..], b"data: a\n\n"],
        vec![bom, b"data: a\n\n"],
    ] {
        let out = decode_parts(64, &parts);
        assert_eq!(out.events, [ev(None, "a")], "{parts:?}");
    }
}

#[test]
fn bom_only_at_stream_start() {
    // The second BOM is part of the field name, which is then unknown.
    assert_eq!(datas("\u{FEFF}\u{FEFF}data: a\n\ndata: b\n\n"), ["b"]);
    assert_eq!(datas("data: a\n\n\u{FEFF}data: b\n\n"), ["a"]);
}

#[test]
fn partial_bom_prefix_is_content() {
    // U+FEC0 shares the BOM's first two bytes: split after them, those
    // bytes must come back as the start of the first line.
    let text = "\u{FEC0}data: x\n\ndata: y\n\n".as_bytes();
    let whole = decode(text);
    assert_eq!(whole.events, [ev(None, "y")]);
    assert_eq!(
        decode_parts(1 << 16, &[&text[..1], &text[1..2], &text[2..]]),
        whole
    );
    // A lone BOM byte followed by ASCII is invalid UTF-8 however it is fed.
    assert_eq!(
        decode(b"\xEFdata: x\n\n").result,
        Err(SseError::InvalidUtf8)
    );
    assert_eq!(
        decode_parts(64, &[b"\xEF", b"data: x\n\n"]).result,
        Err(SseError::InvalidUtf8)
    );
}

#[test]
fn truncated_bom_is_pending_at_eof() {
    let out = decode_parts(64, &[b"\xEF\xBB"]);
    assert!(out.pending);
    assert!(out.events.is_empty());
}

// ---- fields -------------------------------------------------------------

#[test]
fn comments_are_ignored() {
    assert_eq!(
        datas(": hello\ndata: a\n:\n: data: b\n\n:keep-alive\n\n"),
        ["a"]
    );
}

#[test]
fn one_space_after_colon_is_removed() {
    assert_eq!(datas("data:a\n\n"), ["a"]);
    assert_eq!(datas("data: a\n\n"), ["a"]);
    assert_eq!(datas("data:  a\n\n"), [" a"]);
    assert_eq!(datas("data:\ta\n\n"), ["\ta"]);
    assert_eq!(datas("data: a: b\n\n"), ["a: b"]);
}

#[test]
fn empty_data_values_dispatch() {
    assert_eq!(datas("data\n\n"), [""]);
    assert_eq!(datas("data:\n\n"), [""]);
    assert_eq!(datas("data: \n\n"), [""]);
    assert_eq!(datas("data\ndata\n\n"), ["\n"]);
    assert_eq!(datas("data: a\ndata:\n\n"), ["a\n"]);
}

#[test]
fn multiple_data_lines_are_joined() {
    assert_eq!(datas("data: a\ndata: b\ndata: c\n\n"), ["a\nb\nc"]);
    assert_eq!(datas("data: {\"x\":\ndata: 1}\n\n"), ["{\"x\":\n1}"]);
}

#[test]
fn event_type_applies_to_one_event() {
    assert_eq!(
        events("event: a\ndata: 1\n\ndata: 2\n\n"),
        [ev(Some("a"), "1"), ev(None, "2")]
    );
    // The last `event:` line wins; an empty one means the default type.
    assert_eq!(
        events("event: a\nevent: b\ndata: 1\n\nevent:\ndata: 2\n\n"),
        [ev(Some("b"), "1"), ev(None, "2")]
    );
}

#[test]
fn no_data_means_no_event_but_type_resets() {
    assert_eq!(events("event: ping\n\ndata: x\n\n"), [ev(None, "x")]);
    assert!(events("event: a\nid: 1\nretry: 5\n\n\n\n").is_empty());
}

#[test]
fn id_persists_and_nul_is_ignored() {
    let got = events(
        "id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\nid: 3\ndata: e\n\n",
    );
    let ids: Vec<Option<&str>> = got.iter().map(|e| e.id.as_deref()).collect();
    assert_eq!(ids, [Some("1"), Some("1"), Some("1"), None, Some("3")]);
}

#[test]
fn id_without_data_still_sets_last_event_id() {
    let mut dec = SseDecoder::new(64);
    assert_eq!(dec.feed(b"id: 7\n\n", |_| panic!("no event")), Ok(()));
    assert_eq!(dec.last_event_id(), Some("7"));
    let mut got = Vec::new();
    assert_eq!(dec.feed(b"data: x\n\n", |e| got.push(Ev::from(e))), Ok(()));
    assert_eq!(got[0].id.as_deref(), Some("7"));
}

#[test]
fn retry_only_ascii_digits() {
    let retry = |s: &str| events(&format!("retry{s}\ndata: x\n\n"))[0].retry;
    assert_eq!(retry(": 1500"), Some(1500));
    assert_eq!(retry(":0"), Some(0));
    assert_eq!(retry(": 15a"), None);
    assert_eq!(retry(":  15"), None);
    assert_eq!(retry(": -1"), None);
    assert_eq!(retry(": +1"), None);
    assert_eq!(retry(": 1.5"), None);
    assert_eq!(retry(":"), None);
    assert_eq!(retry(""), None);
    assert_eq!(retry(": ١٢"), None);
    assert_eq!(retry(": 99999999999999999999999"), None);
}

#[test]
fn retry_is_per_event_and_remembered() {
    let mut dec = SseDecoder::new(64);
    let mut got = Vec::new();
    let r = dec.feed(b"retry: 10\ndata: a\n\ndata: b\n\nretry: x\n\n", |e| {
        got.push(Ev::from(e))
    });
    assert_eq!(r, Ok(()));
    assert_eq!(got[0].retry, Some(10));
    assert_eq!(got[1].retry, None);
    assert_eq!(dec.reconnect_ms(), Some(10));
}

#[test]
fn unknown_fields_are_ignored() {
    assert_eq!(
        events("foo: bar\nData: x\nevent : y\ndata: a\n\n"),
        [ev(None, "a")]
    );
    assert!(events("foo: bar\n\n").is_empty());
}

// ---- end of stream ------------------------------------------------------

#[test]
fn incomplete_event_is_discarded_at_eof() {
    for input in [
        "data: a\n",
        "data: a",
        "data: a\r",
        "event: x\n",
        "id: 1\n",
        "da",
    ] {
        let out = decode(input.as_bytes());
        assert!(out.events.is_empty(), "{input:?}");
        assert!(out.pending, "{input:?}");
    }
}

#[test]
fn complete_stream_has_nothing_pending() {
    for input in [
        "",
        "data: a\n\n",
        "data: a\n\n: ping\n",
        "data: a\r\n\r\n",
        "\n\n",
    ] {
        assert!(!decode(input.as_bytes()).pending, "{input:?}");
    }
}

#[test]
fn finish_starts_a_new_stream_keeping_last_id() {
    let mut dec = SseDecoder::new(64);
    assert_eq!(dec.feed(b"id: 9\ndata: lost", |_| panic!()), Ok(()));
    assert!(dec.finish());
    let mut got = Vec::new();
    let r = dec.feed("\u{FEFF}data: b\n\n".as_bytes(), |e| got.push(Ev::from(e)));
    assert_eq!(r, Ok(()));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, "b");
    assert_eq!(got[0].id.as_deref(), Some("9"));
    assert!(!dec.finish());
}

// ---- bounds and errors ----------------------------------------------------

#[test]
fn line_at_the_bound_is_accepted() {
    let line = format!("data:{}", "x".repeat(11));
    assert_eq!(line.len(), 16);
    let out = decode_parts(16, &[format!("{line}\n\n").as_bytes()]);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.events.len(), 1);
}

#[test]
fn line_over_the_bound_is_rejected() {
    let input = format!("data:{}\n\n", "x".repeat(12));
    assert_eq!(
        decode_parts(16, &[input.as_bytes()]).result,
        Err(SseError::LineTooLong)
    );
    // Also when the line never ends and arrives in pieces.
    let out = decode_parts(16, &[b"data: xxxxx", b"xxxxxx", b"x"]);
    assert_eq!(out.result, Err(SseError::LineTooLong));
    // Comments count as lines too.
    assert_eq!(
        decode_parts(4, &[b": long comment\n"]).result,
        Err(SseError::LineTooLong)
    );
}

#[test]
fn accumulated_data_over_the_bound_is_rejected() {
    // Each line fits; the joined data (8 + 1 + 8 = 17) does not.
    let input = "data:12345678\ndata:12345678\n\n";
    assert_eq!(
        decode_parts(16, &[input.as_bytes()]).result,
        Err(SseError::LineTooLong)
    );
    let ok = "data:1234567\ndata:12345678\n\n";
    assert_eq!(
        decode_parts(16, &[ok.as_bytes()]).events,
        [ev(None, "1234567\n12345678")]
    );
}

#[test]
fn invalid_utf8_is_rejected_per_line() {
    assert_eq!(decode(b"data: \xff\n\n").result, Err(SseError::InvalidUtf8));
    assert_eq!(decode(b": \xc3\n").result, Err(SseError::InvalidUtf8));
    // A character split across feeds is fine.
    let s = "data: é€😀\n\n".as_bytes();
    for i in 0..s.len() {
        let out = decode_parts(64, &[&s[..i], &s[i..]]);
        assert_eq!(out.events, [ev(None, "é€😀")], "split at {i}");
    }
}

#[test]
fn events_before_an_error_are_delivered_and_decoder_stays_failed() {
    let mut dec = SseDecoder::new(64);
    let mut got = Vec::new();
    let r = dec.feed(b"data: a\n\ndata: \xff\n\ndata: c\n\n", |e| {
        got.push(Ev::from(e))
    });
    assert_eq!(r, Err(SseError::InvalidUtf8));
    assert_eq!(got, [ev(None, "a")]);
    assert_eq!(
        dec.feed(b"data: d\n\n", |_| panic!()),
        Err(SseError::InvalidUtf8)
    );
    assert!(dec.finish());
    assert_eq!(dec.feed(b"", |_| panic!()), Err(SseError::InvalidUtf8));
}

// ---- encoder --------------------------------------------------------------

#[test]
fn write_event_format() {
    let mut out = Vec::new();
    write_event(&mut out, Some("message_start"), "{\"a\":1}");
    write_event(&mut out, None, "a\nb\r\nc\rd");
    write_event(&mut out, Some(""), "");
    write_event(&mut out, Some("x\ny"), "tail\n");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "event: message_start\ndata: {\"a\":1}\n\n\
         data: a\ndata: b\ndata: c\ndata: d\n\n\
         data: \n\n\
         event: x y\ndata: tail\ndata: \n\n"
    );
}

#[test]
fn write_comment_format() {
    let mut out = Vec::new();
    write_comment(&mut out, "keep-alive");
    write_comment(&mut out, "");
    write_comment(&mut out, "a\r\nb\rc\nd");
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        ": keep-alive\n\n:\n\n: a  b c d\n\n"
    );
    let decoded = decode(&out);
    assert!(decoded.events.is_empty());
    assert!(!decoded.pending);
}

#[test]
fn write_data_line_fast_path_and_fallback() {
    let mut out = Vec::new();
    write_data_line(&mut out, br#"{"choices":[]}"#);
    write_data_line(&mut out, b"[DONE]");
    assert_eq!(out, b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n");
    // Raw newlines cannot smuggle in fields or events.
    let mut out = Vec::new();
    write_data_line(&mut out, b"x\n\nevent: evil\r\ndata: y");
    assert_eq!(decode(&out).events, [ev(None, "x\n\nevent: evil\ndata: y")]);
}

// ---- recorded provider streams ------------------------------------------

fn transcript_sse(rel: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/transcripts/").to_owned() + rel;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["response"]["sse"]
        .as_str()
        .expect("response.sse")
        .to_owned()
}

#[test]
fn openai_chat_chunk_stream() {
    let sse = transcript_sse("openai/chat_tool_call_stream_include_usage.json");
    let out = decode(sse.as_bytes());
    assert_eq!(out.result, Ok(()));
    assert!(!out.pending);
    assert_eq!(out.events.len(), sse.matches("data: ").count());
    let (last, chunks) = out.events.split_last().unwrap();
    assert_eq!(last.data, "[DONE]");
    assert!(chunks.len() > 2);
    for e in chunks {
        assert_eq!(e.event, None);
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
    }
    let last_chunk: serde_json::Value =
        serde_json::from_str(&chunks[chunks.len() - 1].data).unwrap();
    assert!(last_chunk["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // Pass-through re-encoding is byte-identical for this stream.
    let mut out = Vec::new();
    for e in &out_events(&sse) {
        write_data_line(&mut out, e.data.as_bytes());
    }
    assert_eq!(String::from_utf8(out).unwrap(), sse);
}

fn out_events(sse: &str) -> Vec<Ev> {
    decode(sse.as_bytes()).events
}

#[test]
fn anthropic_message_stream() {
    let sse = transcript_sse("anthropic/stream_text_basic.json");
    let got = out_events(&sse);
    assert!(got.len() >= 5);
    assert_eq!(got[0].event.as_deref(), Some("message_start"));
    assert_eq!(got[got.len() - 1].event.as_deref(), Some("message_stop"));
    for e in &got {
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(Some(v["type"].as_str().unwrap()), e.event.as_deref());
    }
    // Same events with CRLF line ends, fed in small pieces.
    let crlf = sse.replace('\n', "\r\n");
    let parts: Vec<&[u8]> = crlf.as_bytes().chunks(7).collect();
    assert_eq!(decode_parts(1 << 16, &parts).events, got);
}

// ---- allocation ---------------------------------------------------------------

/// Counts this thread's heap allocations, to check the hot path allocates
/// nothing per event once its buffers are warm.
struct CountingAlloc;

thread_local! {
    static ALLOCS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; the counter
// is a const-initialized thread-local, which never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn steady_state_decoding_does_not_allocate() {
    let stream = "event: content_block_delta\nid: 41\ndata: {\"type\":\"content_block_delta\",\"text\":\"hi\"}\n\n\
                  data: {\"a\":\ndata: 1}\n\n: ping\n\n";
    // Feeds cut mid-line so the carry buffer and owned copies are used too.
    let parts: Vec<&[u8]> = stream.as_bytes().chunks(13).collect();
    let mut dec = SseDecoder::new(4096);
    let mut seen = 0usize;
    let mut run = |dec: &mut SseDecoder| {
        for part in &parts {
            dec.feed(part, |e| seen += e.data.len()).unwrap();
        }
        dec.feed(stream.as_bytes(), |e| seen += e.data.len())
            .unwrap();
    };
    for _ in 0..3 {
        run(&mut dec);
    }
    let before = ALLOCS.with(std::cell::Cell::get);
    for _ in 0..100 {
        run(&mut dec);
    }
    assert_eq!(ALLOCS.with(std::cell::Cell::get), before);
    assert!(seen > 0);
    // The counter does see allocations.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
    assert!(ALLOCS.with(std::cell::Cell::get) > before);
}

// ---- properties -------------------------------------------------------------

/// A direct transcription of the WHATWG algorithm over a whole string, as an
/// oracle for the incremental decoder.
fn reference(input: &str) -> (Vec<Ev>, bool) {
    let input = input.strip_prefix('\u{FEFF}').unwrap_or(input);
    let mut lines = Vec::new();
    let mut rest = input;
    let mut tail = "";
    while !rest.is_empty() {
        match rest.find(['\r', '\n']) {
            Some(i) => {
                lines.push(&rest[..i]);
                rest = if rest[i..].starts_with("\r\n") {
                    &rest[i + 2..]
                } else {
                    &rest[i + 1..]
                };
            }
            None => {
                tail = rest;
                rest = "";
            }
        }
    }
    let (mut events, mut data, mut event, mut id, mut retry) = (
        Vec::new(),
        String::new(),
        String::new(),
        String::new(),
        None,
    );
    let mut dirty = false;
    for line in lines {
        if line.is_empty() {
            if !data.is_empty() {
                data.pop();
                events.push(Ev {
                    event: (!event.is_empty()).then(|| event.clone()),
                    data: data.clone(),
                    id: (!id.is_empty()).then(|| id.clone()),
                    retry,
                });
            }
            data.clear();
            event.clear();
            retry = None;
            dirty = false;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        dirty = true;
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "event" => event = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                retry = value.parse().ok();
            }
            _ => {}
        }
    }
    (events, dirty || !tail.is_empty())
}

fn stream_text() -> impl Strategy<Value = String> {
    let value = "[a-z0-9 :\u{e9}\u{FEFF}\0]{0,6}";
    let line = prop_oneof![
        3 => value.prop_map(|v| format!("data: {v}")),
        1 => value.prop_map(|v| format!("data:{v}")),
        1 => Just("data".to_owned()),
        1 => "[a-z_]{0,4}".prop_map(|v| format!("event: {v}")),
        1 => value.prop_map(|v| format!("id: {v}")),
        1 => "[0-9a ]{0,3}".prop_map(|v| format!("retry: {v}")),
        1 => value.prop_map(|v| format!(":{v}")),
        1 => "[a-zA-Z]{0,5}".prop_map(|v| format!("{v}: x")),
        3 => Just(String::new()),
    ];
    let eol = prop_oneof![Just("\n"), Just("\r"), Just("\r\n")];
    (
        any::<bool>(),
        proptest::collection::vec((line, eol), 0..24),
        "[a-z:]{0,4}",
    )
        .prop_map(|(bom, lines, tail)| {
            let mut s = if bom {
                "\u{FEFF}".to_owned()
            } else {
                String::new()
            };
            for (l, e) in lines {
                s.push_str(&l);
                s.push_str(e);
            }
            s.push_str(&tail);
            s
        })
}

fn split_at_points<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parts = Vec::new();
    let mut start = 0;
    for c in cuts {
        parts.push(&bytes[start..c]);
        start = c;
    }
    parts.push(&bytes[start..]);
    parts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_reference_and_split_invariant(
        text in stream_text(),
        points in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let bytes = text.as_bytes();
        let whole = decode(bytes);
        prop_assert_eq!(whole.result, Ok(()));
        let (want, pending) = reference(&text);
        prop_assert_eq!(&whole.events, &want);
        prop_assert_eq!(whole.pending, pending);

        let split = decode_parts(1 << 16, &split_at_points(bytes, &points));
        prop_assert_eq!(&split, &whole);
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(&decode_parts(1 << 16, &single), &whole);
    }

    #[test]
    fn encode_decode_round_trip(
        items in proptest::collection::vec(
            (proptest::option::of("[^\r\n]{0,8}"), any::<String>()),
            0..8,
        ),
    ) {
        let mut out = Vec::new();
        for (event, data) in &items {
            write_event(&mut out, event.as_deref(), data);
        }
        let got = decode(&out);
        prop_assert_eq!(got.result, Ok(()));
        prop_assert!(!got.pending);
        let want: Vec<Ev> = items
            .iter()
            .map(|(event, data)| Ev {
                event: event.clone().filter(|e| !e.is_empty()),
                data: data.replace("\r\n", "\n").replace('\r', "\n"),
                id: None,
                retry: None,
            })
            .collect();
        prop_assert_eq!(got.events, want);
    }

    #[test]
    fn data_line_round_trip(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let text = String::from_utf8_lossy(&data).into_owned();
        let mut out = Vec::new();
        write_data_line(&mut out, text.as_bytes());
        let got = decode(&out);
        prop_assert_eq!(got.events.len(), 1);
        prop_assert_eq!(&got.events[0].data, &text.replace("\r\n", "\n").replace('\r', "\n"));
    }

    #[test]
    fn arbitrary_bytes_respect_the_bound(
        bytes in proptest::collection::vec(
            prop_oneof![4 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'\r'), 1 => Just(b':')],
            0..512,
        ),
        max in 0usize..48,
        points in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let whole = decode_parts(max, &[&bytes]);
        for e in &whole.events {
            prop_assert!(e.data.len() <= max);
        }
        // Any raw line longer than the bound makes decoding fail (possibly
        // earlier, on invalid UTF-8).
        let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&bytes);
        let longest = body
            .split(|&b| b == b'\n' || b == b'\r')
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        prop_assert_eq!(whole.result.is_ok() && longest > max, false);
        let split = decode_parts(max, &split_at_points(&bytes, &points));
        prop_assert_eq!(split, whole);
    }
}
