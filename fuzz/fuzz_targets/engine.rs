//! libFuzzer entry point of the `engine` target (see `ikcp_fuzz::engine`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ikcp_fuzz::engine::run(data));
