//! The fuzz targets as property tests: the committed corpus, then seeded
//! random inputs, through each target. A failing input is written out so
//! `FUZZ_REPLAY=<file> cargo test -p ikcp-fuzz --test replay replay_one`
//! reproduces it.

use std::path::{Path, PathBuf};

use ikcp_fuzz::{run, seeds::random_input, TARGETS};

/// Random inputs per target and their longest length: enough to reach
/// deep states, bounded to a few seconds in a release build.
const RANDOM_INPUTS: u64 = 20_000;
const MAX_LEN: usize = 6_000;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn run_reporting(target: &str, what: &str, data: &[u8]) {
    let r = std::panic::catch_unwind(|| run(target, data));
    if let Err(e) = r {
        let out = std::env::temp_dir().join(format!("ikcp-fuzz-{target}-failure"));
        let _ = std::fs::write(&out, data);
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "fuzz target {target} failed on {what} ({} bytes, saved to {}): {msg}",
            data.len(),
            out.display()
        );
    }
}

fn replay_target(target: &str) {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus for {target}");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        run_reporting(target, &f.display().to_string(), &data);
    }
    for seed in 0..RANDOM_INPUTS {
        let len = (seed as usize * 7_919) % MAX_LEN;
        let data = random_input(seed ^ (target.len() as u64 * 0x1000_0001), len);
        run_reporting(target, &format!("random input seed {seed}"), &data);
    }
}

#[test]
fn engine_corpus_and_random_inputs() {
    replay_target("engine");
}

#[test]
fn codec_corpus_and_random_inputs() {
    replay_target("codec");
}

#[test]
fn routing_corpus_and_random_inputs() {
    replay_target("routing");
}

#[test]
fn routing_inputs_reach_every_outcome() {
    let mut total = ikcp_fuzz::routing::Reached::default();
    for seed in 0..2_000u64 {
        let data = random_input(seed.wrapping_mul(31), 200 + (seed as usize * 13) % 3_000);
        total.add(&ikcp_fuzz::routing::run_reached(&data));
    }
    let r = total;
    for (what, n) in [
        ("routed", r.routed),
        ("opened", r.opened),
        ("rate limited", r.rate_limited),
        ("evicted", r.evicted),
        ("refused, no room", r.no_room),
        ("expired", r.expired),
        ("established", r.established),
        ("conversation assigned", r.conv_assigned),
    ] {
        assert!(n > 0, "no random input reached {what}: {r:?}");
    }
}

#[test]
fn every_target_has_a_test_here() {
    assert_eq!(TARGETS, ["engine", "codec", "routing"]);
}

/// Replays one file named by `FUZZ_REPLAY` through `FUZZ_TARGET` (default
/// engine); does nothing when unset.
#[test]
fn replay_one() {
    let Some(path) = std::env::var_os("FUZZ_REPLAY") else {
        return;
    };
    let target = std::env::var("FUZZ_TARGET").unwrap_or_else(|_| "engine".into());
    let data = std::fs::read(&path).unwrap();
    run(&target, &data);
}
