//! `kcp-conformance abi` and `decode`, run as a user runs them: against our
//! own libkcp.so (must conform), and against a copy of the reference ikcp.c
//! with a one-line change (must be caught, with a replayable trace).

use std::path::{Path, PathBuf};
use std::process::Command;

use ffi_tests::paths;
use serde_json::Value;

mod common;
use common::{read_json, run, scratch, tool};

#[test]
fn our_library_conforms_and_its_session_decodes() {
    let dir = scratch("ours");
    let (report, capture) = (dir.join("report.json"), dir.join("session.pcap"));
    let out = run(tool()
        .args(["abi", "--quiet", "--scenarios", "300", "--lib"])
        .arg(paths::our_shared_lib())
        .arg("--header")
        .arg(paths::our_include_dir())
        .arg("--json")
        .arg(&report)
        .arg("--record")
        .arg(&capture));
    assert_eq!(out.status.code(), Some(0), "abi must pass on our library");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CONFORMANT"), "{text}");
    let r = read_json(&report);
    assert_eq!(r["conformant"], true);
    let families = r["families"].as_array().unwrap();
    assert_eq!(
        families.len(),
        8,
        "six generated and two reentrancy families"
    );
    for f in families {
        assert_eq!(f["divergences"], 0, "{f}");
        assert!(f["calls"].as_u64().unwrap() > 0, "{f}");
        assert!(f["datagrams"].as_u64().unwrap() > 0, "{f}");
    }
    assert_eq!(r["layout"]["differences"].as_array().unwrap().len(), 0);
    assert!(r["layout"]["lines"].as_u64().unwrap() > 60);

    // The recorded session reads back as KCP.
    let out = run(tool().arg("decode").arg(&capture));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cmd=PUSH") && text.contains("cmd=ACK"),
        "{text}"
    );
    let out = run(tool().arg("decode").arg(&capture).args(["--json", "-"]));
    let decoded: Value = serde_json::from_slice(&out.stdout).unwrap();
    let datagrams = decoded.as_array().unwrap();
    assert!(datagrams.len() > 50, "{} datagrams", datagrams.len());
    // Both implementations' copies of each trace are in it, byte for byte
    // the same headers (candidate on 127.0.0.1, reference on 127.0.0.2).
    let headers = |ip: &str| -> Vec<&Value> {
        datagrams
            .iter()
            .filter(|d| d["src"].as_str().unwrap().starts_with(ip))
            .map(|d| &d["segments"])
            .collect()
    };
    assert_eq!(headers("127.0.0.1:"), headers("127.0.0.2:"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Upstream's fast retransmit fires once a segment was skipped `resend`
/// times; the broken copy waits for one more.
const BREAK_FROM: &str = "else if (segment->fastack >= resent) {";
const BREAK_TO: &str = "else if (segment->fastack > resent) {";

fn broken_reference(dir: &Path) -> PathBuf {
    let src = paths::reference_dir();
    let code = std::fs::read_to_string(src.join("ikcp.c")).unwrap();
    assert_eq!(
        code.matches(BREAK_FROM).count(),
        1,
        "the line to break moved"
    );
    std::fs::write(dir.join("ikcp.c"), code.replace(BREAK_FROM, BREAK_TO)).unwrap();
    std::fs::copy(src.join("ikcp.h"), dir.join("ikcp.h")).unwrap();
    let lib = dir.join("libbroken.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(cc)
        .args(["-O1", "-fPIC", "-shared", "-o"])
        .arg(&lib)
        .arg(dir.join("ikcp.c"))
        .status()
        .expect("run cc");
    assert!(st.success());
    lib
}

#[test]
fn a_one_line_change_to_the_reference_is_caught_with_its_trace() {
    let dir = scratch("broken");
    let lib = broken_reference(&dir);
    let report = dir.join("report.json");
    let out = run(tool()
        .args([
            "abi",
            "--quiet",
            "--scenarios",
            "300",
            "--shrink-secs",
            "5",
            "--lib",
        ])
        .arg(&lib)
        .arg("--json")
        .arg(&report));
    assert_eq!(out.status.code(), Some(1), "the broken copy must fail");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DIVERGES"), "{text}");
    assert!(text.contains("minimal trace:"), "{text}");
    let r = read_json(&report);
    assert_eq!(r["conformant"], false);
    let lossy = r["families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["family"] == "lossy")
        .unwrap();
    assert!(lossy["divergences"].as_u64().unwrap() > 0, "{lossy}");
    let first = &lossy["first_divergence"];
    let trace = first["minimal_trace"].as_array().unwrap();
    // A retransmission decision needs traffic first: several calls, some of
    // them datagrams fed to ikcp_input, shown with their bytes.
    assert!(trace.len() >= 3, "{first}");
    assert!(trace.iter().any(|c| c["datagram"].is_string()), "{first}");
    assert!(first["minimal_difference"].is_string());
    let seed = first["seed"].as_u64().unwrap();

    // The printed replay command reproduces it.
    let out = run(tool()
        .args(["abi", "--lib"])
        .arg(&lib)
        .args(["--replay", &seed.to_string()]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("seed {seed}")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flavour_2_our_abi2_library_conforms_with_controllers() {
    if ffi_tests::v2::reference2().is_none() {
        return;
    }
    let dir = scratch("ours2");
    let report = dir.join("report2.json");
    let out = run(tool()
        .args([
            "abi",
            "--quiet",
            "--flavour",
            "2",
            "--scenarios",
            "300",
            "--lib",
        ])
        .arg(ffi_tests::v2::ours_path())
        .arg("--json")
        .arg(&report));
    assert_eq!(
        out.status.code(),
        Some(0),
        "abi --flavour 2 must pass on our 2.x library"
    );
    let r = read_json(&report);
    assert_eq!(r["conformant"], true);
    assert_eq!(r["flavour"], 2);
    assert!(r["reference"].as_str().unwrap().contains("2.x"), "{r}");
    let families = r["families"].as_array().unwrap();
    for f in families {
        assert_eq!(f["divergences"], 0, "{f}");
        assert!(f["datagrams"].as_u64().unwrap() > 0, "{f}");
    }
    let controller_lines: u64 = families
        .iter()
        .map(|f| f["controller_lines"].as_u64().unwrap())
        .sum();
    assert!(
        controller_lines > 1000,
        "controllers barely ran: {controller_lines}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flavour_2_needs_a_2x_library() {
    if ffi_tests::v2::reference2().is_none() {
        return;
    }
    let out = run(tool()
        .args(["abi", "--flavour", "2", "--lib"])
        .arg(paths::our_shared_lib()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ikcp_setcc"));
}

#[test]
fn flavour_2_says_where_upstream_2x_is_missing() {
    let out = run(tool()
        .args([
            "abi",
            "--flavour",
            "2",
            "--upstream2",
            "/nonexistent",
            "--lib",
        ])
        .arg(paths::our_shared_lib()));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2.x") && err.contains("--upstream2"), "{err}");
}

#[test]
fn help_explains_every_mode() {
    let out = run(tool().arg("--help"));
    let text = String::from_utf8_lossy(&out.stdout);
    for mode in ["abi", "decode"] {
        assert!(text.contains(mode), "{text}");
    }
}
