//! Replays every seed in `fuzz/corpus/<target>/` through the same entry
//! points the cargo-fuzz targets use, so the corpora run on stable in CI.

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for item in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = item.expect("dir entry").path();
        if path.is_file() {
            let data = std::fs::read(&path).expect("read seed");
            entry(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no seeds in {}", dir.display());
}

#[test]
fn http1_server_corpus() {
    replay("http1_server", arouter_core::fuzz_entry::http1_server);
}

#[test]
fn http1_client_corpus() {
    replay("http1_client", arouter_core::fuzz_entry::http1_client);
}

#[test]
fn sse_decoder_corpus() {
    replay("sse_decoder", arouter_core::fuzz_entry::sse_decoder);
}

#[test]
fn proxy_body_scan_corpus() {
    replay("proxy_body_scan", arouter_core::fuzz_entry::proxy_body_scan);
}

#[test]
fn translate_request_corpus() {
    replay(
        "translate_request",
        arouter_core::fuzz_entry::translate_request,
    );
}

#[test]
fn translate_response_corpus() {
    replay(
        "translate_response",
        arouter_core::fuzz_entry::translate_response,
    );
}

#[test]
fn chat_rewrite_corpus() {
    replay("chat_rewrite", arouter_core::fuzz_entry::chat_rewrite);
}

/// The chat_rewrite seeds are the recorded answers (compact and
/// pretty-printed) and the benchmark's: the one pass takes every one.
#[test]
fn recorded_answers_take_the_one_pass() {
    replay("chat_rewrite", |data| {
        let text = String::from_utf8_lossy(data);
        assert!(
            arouter_core::fuzz_entry::chat_rewrite_took_one_pass(data),
            "left the one pass: {text}"
        );
    });
}
