//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the stable
//! test that replays their seed corpora (`core/tests/fuzz_corpus.rs`).
//! Each one feeds arbitrary bytes through a parser, checks the invariants
//! that must hold for any input, and must never panic or grow unbounded.

/// HTTP/1.1 request parsing: the first byte picks a feed size; whole and
/// piecewise feeding must agree, with event order, body framing, limits
/// and the buffer bound checked along the way.
pub fn http1_server(data: &[u8]) {
    crate::http1::testing::fuzz_server(data);
}

/// HTTP/1.1 response parsing, as `http1_server`; the first byte's low bit
/// also marks the request as HEAD.
pub fn http1_client(data: &[u8]) {
    crate::http1::testing::fuzz_client(data);
}

/// SSE decoding: the input decoded whole and split in two at a position
/// derived from the data must give the same events and the same verdict, and
/// no line beyond the (small) bound may ever be accepted.
pub fn sse_decoder(data: &[u8]) {
    use crate::sse::SseDecoder;

    const MAX_LINE: usize = 256;

    // Owned copies so runs can be compared; fuzz inputs are small.
    type Owned = (Option<String>, String, Option<String>, Option<u64>);
    fn run(parts: &[&[u8]]) -> (Vec<Owned>, Result<(), crate::sse::SseError>, bool) {
        let mut dec = SseDecoder::new(MAX_LINE);
        let mut events = Vec::new();
        let mut result = Ok(());
        for part in parts {
            result = dec.feed(part, |e| {
                assert!(e.data.len() <= MAX_LINE, "event data beyond the bound");
                events.push((
                    e.event.map(str::to_owned),
                    e.data.to_owned(),
                    e.id.map(str::to_owned),
                    e.retry,
                ));
            });
            if result.is_err() {
                break;
            }
        }
        let pending = dec.finish();
        (events, result, pending)
    }

    let whole = run(&[data]);
    if whole.1.is_ok() {
        // Accepted input: no line past the bound (a leading BOM is not part
        // of the first line).
        let body = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
        let longest = body
            .split(|&b| b == b'\n' || b == b'\r')
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        assert!(longest <= MAX_LINE, "accepted a {longest}-byte line");
    }
    // First and last bytes pick the split, so the fuzzer can steer it
    // without it being tied to the first line's content alone.
    let seed = match (data.first(), data.last()) {
        (Some(&a), Some(&b)) => usize::from(a) * 251 + usize::from(b),
        _ => 0,
    };
    let split_at = seed % (data.len() + 1);
    let (head, tail) = data.split_at(split_at);
    let split = run(&[head, tail]);
    assert_eq!(whole, split, "split at {split_at} changed the result");

    // One byte at a time exercises every carry path (CR/LF, BOM, UTF-8).
    if data.len() <= 4096 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(whole, run(&bytes), "byte-at-a-time changed the result");
    }
}

/// Client request decoding in each dialect, and re-encoding whatever it
/// accepts for every provider kind: arbitrary bytes must give a typed error
/// or a request, never a panic.
pub fn translate_request(data: &[u8]) {
    use crate::gateway::ProviderKind;
    use crate::translate::{anthropic, dispatch, gemini, openai};

    let decoded = [
        openai::canonical::decode_request(data),
        anthropic::decode_request(None, data),
        gemini::decode_request(Some("fuzz-model"), data),
    ];
    for req in decoded.into_iter().flatten() {
        for kind in [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
        ] {
            let body = dispatch::encode_request(kind, &req);
            assert!(
                serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
                "an encoded request must be JSON"
            );
        }
    }
}

/// Provider answers decoded in each dialect (whole bodies, and the input
/// as SSE events through each stream decoder), re-encoded for every client
/// dialect: no panic, and every stream encoder ends its stream.
pub fn translate_response(data: &[u8]) {
    use crate::api::Dialect;
    use crate::gateway::ProviderKind;
    use crate::sse::SseDecoder;
    use crate::translate::canonical::StreamEvent;
    use crate::translate::dispatch::{self, StreamDecoder, StreamEncoder};

    const KINDS: [ProviderKind; 3] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
    ];
    const DIALECTS: [Dialect; 3] = [Dialect::OpenAi, Dialect::Anthropic, Dialect::Google];
    for kind in KINDS {
        if let Ok(resp) = dispatch::decode_response(kind, data) {
            for dialect in DIALECTS {
                let _ = dispatch::encode_response(dialect, &resp, "fuzz/model", None);
            }
        }
        let _ = dispatch::decode_error(kind, data);
        let mut decoder = StreamDecoder::new(kind);
        let mut events: Vec<StreamEvent> = Vec::new();
        let mut sse = SseDecoder::new(64 * 1024);
        let _ = sse.feed(data, |e| decoder.on_event(e.event, e.data, &mut events));
        decoder.finish(&mut events);
        for dialect in DIALECTS {
            for json_array in [false, true] {
                let mut encoder = StreamEncoder::new(dialect, "fuzz/model", true, json_array);
                let mut out = Vec::new();
                for event in &events {
                    encoder.on_event(event, &mut out);
                }
                encoder.finish(&mut out);
                assert!(encoder.is_done(), "a finished stream is done");
            }
        }
    }
}

/// The proxy's on-the-side body reader: the input fed whole and split in
/// two at a position derived from the data must give the same facts, and
/// for a body that is a JSON object, the facts a parse gives.
pub fn proxy_body_scan(data: &[u8]) {
    crate::exchange::proxy_scan_fuzz(data);
}

/// The one-pass chat answer rewrite against the `Value` tree it replaces:
/// whenever the one pass does not give up, it writes the tree's bytes and
/// reads the same usage and id (and the tree reads the body too).
pub fn chat_rewrite(data: &[u8]) {
    chat_rewrite_took_one_pass(data);
}

/// `chat_rewrite`, saying whether the one pass took the answer (the seed
/// corpus test checks that the recorded answers all do).
pub fn chat_rewrite_took_one_pass(data: &[u8]) -> bool {
    use crate::billing::Price;
    use crate::translate::openai::chat_rewrite::rewrite_chat;
    use crate::translate::openai::response::normalize_chat_tree;

    let price = Price {
        input: 150_000,
        output: 600_000,
        cached_input: 75_000,
        cache_write: 150_000,
        reasoning: 600_000,
    };
    // The first byte picks the names, so that ones needing escapes are
    // tried too.
    let (provider, requested) = match data.first().map(|b| b % 3) {
        Some(1) => ("open\"ai", "m\u{1}\u{e9}"),
        Some(2) => ("", ""),
        _ => ("openai", "gpt-4o"),
    };
    let Ok(one_pass) = rewrite_chat(data, provider, requested, &price) else {
        return false;
    };
    let tree = normalize_chat_tree(data, provider, requested, &price)
        .expect("the tree reads what the one pass read");
    assert_eq!(
        one_pass.bytes, tree.bytes,
        "the bytes differ from the tree's"
    );
    assert_eq!(one_pass.usage, tree.usage);
    assert_eq!(one_pass.id, tree.id);
    true
}
