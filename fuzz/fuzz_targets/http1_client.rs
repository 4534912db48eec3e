#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    arouter_core::fuzz_entry::http1_client(data);
});
