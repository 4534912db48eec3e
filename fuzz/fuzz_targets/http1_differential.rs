#![no_main]
//! Arbitrary bytes to the gateway's request codec and to async-h1's request
//! parser: they must agree, or differ only as listed in the harness (shared
//! with `core/tests/http1_differential.rs`, whose seed-corpus test runs this
//! target's corpus on stable).
use libfuzzer_sys::fuzz_target;

#[path = "../../core/tests/support/h1_differential.rs"]
mod h1_differential;

fuzz_target!(|data: &[u8]| {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // libfuzzer-sys's hook aborts on any panic; let the one panic the
        // harness expects (http-types on a non-ASCII header value) unwind
        // to its catch_unwind.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !h1_differential::EXPECTING_PANIC.with(|e| e.get()) {
                abort(info);
            }
        }));
    });
    h1_differential::differential(data);
});
