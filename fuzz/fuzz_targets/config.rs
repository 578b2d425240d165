//! Any text through the config parser, held to the checks of `fuzz/checks.rs`.
#![no_main]

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_config(data);
});
