//! libFuzzer entry point of the `codec` target (see `ikcp_fuzz::codec`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ikcp_fuzz::codec::run(data));
