//! libFuzzer entry point of the `capi` target (see `ikcp_fuzz_capi`).
#![no_main]

libfuzzer_sys::fuzz_target!(
    // Load our library before the first input, so libFuzzer sees its
    // coverage counters from the start.
    init: {
        let _ = ffi_tests::api::Api::ours();
    },
    |data: &[u8]| ikcp_fuzz_capi::run(data)
);
