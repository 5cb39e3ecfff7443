//! The `capi` fuzz target as a property test: the committed corpus, then
//! seeded random inputs, each a lockstep scenario compared call by call. A
//! failing input is written out so
//! `FUZZ_REPLAY=<file> cargo test --release -p ikcp-fuzz-capi --test replay replay_one`
//! reproduces it.

use std::path::Path;

use ffi_tests::rng::Rng;

/// Random inputs and their longest length: every family several times,
/// a few seconds in a release build.
const RANDOM_INPUTS: u64 = 600;
const MAX_LEN: usize = 4_000;

fn run_reporting(what: &str, data: &[u8]) {
    if let Err(e) = std::panic::catch_unwind(|| ikcp_fuzz_capi::run(data)) {
        let out = std::env::temp_dir().join("ikcp-fuzz-capi-failure");
        let _ = std::fs::write(&out, data);
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "capi target failed on {what} ({} bytes, saved to {}): {msg}",
            data.len(),
            out.display()
        );
    }
}

#[test]
fn corpus_and_random_inputs_agree_with_the_reference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/capi");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus");
    for f in &files {
        run_reporting(&f.display().to_string(), &std::fs::read(f).unwrap());
    }
    let mut rng = Rng::new(0xC0FFEE);
    for seed in 0..RANDOM_INPUTS {
        let len = rng.range(0, MAX_LEN as i64) as usize;
        let mut data = rng.bytes(len);
        if let Some(first) = data.first_mut() {
            *first = seed as u8; // every family in turn
        }
        run_reporting(&format!("random input {seed}"), &data);
    }
}

#[test]
fn the_input_decides_the_scenario() {
    let mut rng = Rng::new(7);
    let long = rng.bytes(4_000);
    // The main phase lasts as long as the tape: a longer one makes more calls.
    let short_calls = ikcp_fuzz_capi::calls(&long[..20]);
    let long_calls = ikcp_fuzz_capi::calls(&long);
    assert!(
        long_calls > 2 * short_calls,
        "{long_calls} calls for 4000 bytes, {short_calls} for 20"
    );
    // The same input is the same scenario.
    assert_eq!(ikcp_fuzz_capi::calls(&long), long_calls);
}

/// Replays one file named by `FUZZ_REPLAY`; does nothing when unset.
#[test]
fn replay_one() {
    let Some(path) = std::env::var_os("FUZZ_REPLAY") else {
        return;
    };
    ikcp_fuzz_capi::run(&std::fs::read(path).unwrap());
}
