//! libFuzzer entry point of the `routing` target (see `ikcp_fuzz::routing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ikcp_fuzz::routing::run(data));
