//! Fuzz targets for the KCP engine, the segment codec and the listener's
//! routing table and admission policy (the C ABI differential target is
//! the `ikcp-fuzz-capi` crate).
//!
//! Each target is a function of arbitrary bytes that panics when it finds a
//! bug (a panic inside the code under test, or a broken invariant). The same
//! functions run three ways:
//! - under libFuzzer, with coverage feedback (`scripts/fuzz.sh TARGET SECONDS`);
//! - as `cargo test` property tests: the committed corpus under
//!   `fuzz/corpus/<target>/` and a fixed number of seeded random inputs;
//! - by hand, to replay a finding: `cargo test -p ikcp-fuzz --test replay -- --nocapture`
//!   with `FUZZ_REPLAY=path/to/crash-file`.
#![forbid(unsafe_code)]

pub mod codec;
pub mod engine;
pub mod input;
pub mod routing;
pub mod seeds;

/// Names of the targets in this crate, as used by `scripts/fuzz.sh` and the
/// corpus directories.
pub const TARGETS: &[&str] = &["engine", "codec", "routing"];

/// Runs target `name` on `data`. Panics on a finding; unknown names panic too.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "engine" => engine::run(data),
        "codec" => codec::run(data),
        "routing" => routing::run(data),
        other => panic!("no fuzz target named {other:?}"),
    }
}
