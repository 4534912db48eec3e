#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    arouter_core::fuzz_entry::chat_rewrite(data);
});
