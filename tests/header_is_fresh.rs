//! The committed `include/ikcp.h` must be exactly what build.rs generates.
#![cfg(feature = "capi")]

#[test]
fn committed_header_matches_generated_header() {
    let generated = concat!(env!("OUT_DIR"), "/include/ikcp.h");
    let generated = std::fs::read_to_string(generated).expect("generated header");
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/include/ikcp.h");
    let committed = std::fs::read_to_string(committed).expect("include/ikcp.h");
    assert!(
        generated == committed,
        "include/ikcp.h is stale: run `IKCP_BLESS_HEADER=1 cargo build` and commit it"
    );
}
