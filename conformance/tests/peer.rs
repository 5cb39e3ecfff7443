//! `kcp-conformance peer` over real UDP on 127.0.0.1, as a user runs it:
//! against the C echo server of c-examples/ compiled with upstream's
//! unmodified ikcp.c (every row must hold: it is the reference), against
//! our `KcpListener` echo (no row may fail; what differs is named), and the
//! recorded session read back by `decode`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use ffi_tests::paths;
use serde_json::Value;

mod common;
use common::{read_json, run, scratch, tool};

/// A server process, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and reads its first line for "127.0.0.1:PORT".
fn start(mut cmd: Command) -> (Server, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the echo server");
    let out = child.stdout.take().unwrap();
    let server = Server(child);
    let mut out = BufReader::new(out);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // Keep reading: a server writing to a closed pipe would die of it.
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            eprintln!("server: {l}");
        }
    });
    let addr = line
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (server, addr)
}

/// Upstream's ikcp.c with the C example echo server, no line changed.
fn reference_echo(dir: &Path) -> PathBuf {
    echo_with(&paths::reference_dir(), dir)
}

/// The C example echo server built with the ikcp.c in `src`.
fn echo_with(src: &Path, dir: &Path) -> PathBuf {
    let exe = dir.join("udp_echo_server");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(cc)
        .args(["-O2", "-I"])
        .arg(src)
        .arg("-o")
        .arg(&exe)
        .arg(paths::repo_root().join("c-examples/udp_echo_server.c"))
        .arg(src.join("ikcp.c"))
        .status()
        .expect("run cc");
    assert!(st.success());
    exe
}

/// The same one-line change as in tests/abi.rs: fast retransmit waits for
/// one acknowledgement more than upstream's.
const BREAK_FROM: &str = "else if (segment->fastack >= resent) {";
const BREAK_TO: &str = "else if (segment->fastack > resent) {";

#[test]
fn a_one_line_change_to_fast_retransmit_is_reported() {
    let dir = scratch("broken");
    let src = paths::reference_dir();
    let code = std::fs::read_to_string(src.join("ikcp.c")).unwrap();
    assert_eq!(code.matches(BREAK_FROM).count(), 1, "the line moved");
    std::fs::write(dir.join("ikcp.c"), code.replace(BREAK_FROM, BREAK_TO)).unwrap();
    std::fs::copy(src.join("ikcp.h"), dir.join("ikcp.h")).unwrap();
    let mut cmd = Command::new(echo_with(&dir, &dir));
    cmd.args(["0", "30"]);
    let (_server, addr) = start(cmd);
    let (out, report) = peer(&addr, &["--only", "fast-resend", "--quiet"], &dir);
    let rows = rows(&report);
    let fast = rows.iter().find(|r| r.0 == "fast retransmit").unwrap();
    assert_eq!(fast.1, "differs", "{fast:?}");
    assert!(fast.2.contains("by its RTO"), "{}", fast.2);
    // Everything else still works: a difference, not a failure.
    assert!(rows.iter().all(|r| r.1 != "failed"), "{rows:?}");
    assert_eq!(out.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// examples/echo_server.rs of the root crate (our KcpListener), built by
/// `cargo test --workspace`; built here when this package is tested alone.
fn our_echo() -> PathBuf {
    let profile = paths::profile_dir();
    let exe = profile.join("examples").join("echo_server");
    if !exe.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "ikcp", "--example", "echo_server"]);
        if profile.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().expect("run cargo").success());
    }
    exe
}

fn rows(report: &Value) -> Vec<(String, String, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn peer(addr: &str, extra: &[&str], dir: &Path) -> (Output, Value) {
    let json = dir.join("report.json");
    let out = run(tool()
        .args(["peer", "--connect", addr, "--conv", "0x11223344"])
        .args(extra)
        .args(["--timeout", "60", "--json"])
        .arg(&json));
    let report = read_json(&json);
    (out, report)
}

#[test]
fn the_reference_echo_holds_every_row_and_its_session_decodes() {
    let dir = scratch("reference");
    let mut cmd = Command::new(reference_echo(&dir));
    cmd.args(["0", "30"]);
    let (_server, addr) = start(cmd);
    let capture = dir.join("session.pcap");
    let capture_arg = capture.to_str().unwrap();
    // The example server reads into a 64 KiB buffer.
    let (out, report) = peer(
        &addr,
        &["--max-message", "65536", "--record", capture_arg],
        &dir,
    );
    let rows = rows(&report);
    assert!(rows.len() >= 20, "{rows:?}");
    for (check, status, detail) in &rows {
        assert_eq!(status, "held", "{check}: {detail}");
    }
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CONFORMANT") && text.contains("zero-window probe"));
    assert_eq!(report["conformant"], true);
    // The checks saw real traffic: retransmissions under loss, a probe.
    let find = |name: &str| rows.iter().find(|r| r.0 == name).unwrap().2.clone();
    assert!(!find("retransmissions within the RTO bounds").starts_with("0 "));
    assert!(find("zero-window probe").contains("WASK"));

    // The recorded session reads back, both directions, every kind of segment.
    let out = run(tool()
        .arg("decode")
        .arg(&capture)
        .args(["--conv", "0x11223344"]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["cmd=PUSH", "cmd=ACK ", "cmd=WASK", "cmd=WINS"] {
        assert!(text.contains(cmd), "{cmd} missing");
    }
    let out = run(tool().arg("decode").arg(&capture).args(["--json", "-"]));
    let decoded: Value = serde_json::from_slice(&out.stdout).unwrap();
    let datagrams = decoded.as_array().unwrap();
    let (ins, outs) = (
        report["link"]["datagrams_in"].as_u64().unwrap(),
        report["link"]["datagrams_out"].as_u64().unwrap(),
    );
    assert_eq!(datagrams.len() as u64, ins + outs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn our_listener_echo_fails_no_row_and_names_what_differs() {
    let dir = scratch("ours");
    let mut cmd = Command::new(our_echo());
    cmd.args(["--secs", "60"]);
    let (_server, addr) = start(cmd);
    let (out, report) = peer(&addr, &[], &dir);
    let rows = rows(&report);
    for (check, status, detail) in &rows {
        assert_ne!(status, "failed", "{check}: {detail}");
        // Where we differ from ikcp.c, on purpose: a listener serves many
        // conversations per address, and its keep-alive probes an idle
        // link (a closed window too) after 5 s.
        if status == "differs" {
            assert!(
                [
                    "conv mismatch ignored",
                    "new conv from our address",
                    "zero-window probe"
                ]
                .contains(&check.as_str()),
                "{check}: {detail}"
            );
        }
    }
    let held = |name: &str| rows.iter().any(|r| r.0 == name && r.1 == "held");
    for name in [
        "echo: sizes 1 B..174752 B",
        "0-byte message",
        "fragmentation as ikcp.c",
        "RTO back-off",
        "fast retransmit",
        "every data segment acknowledged",
        "una never goes back",
        "retransmissions within the RTO bounds",
        "no new data into a zero window",
    ] {
        assert!(held(name), "{name}: {rows:?}");
    }
    assert_eq!(out.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn our_listener_echo_in_stream_mode() {
    let dir = scratch("stream");
    let mut cmd = Command::new(our_echo());
    cmd.args(["--stream", "--secs", "60"]);
    let (_server, addr) = start(cmd);
    let (out, report) = peer(
        &addr,
        &["--stream", "--only", "sizes,bulk,lossy,mtu,rto"],
        &dir,
    );
    let rows = rows(&report);
    for (check, status, detail) in &rows {
        assert_eq!(status, "held", "{check}: {detail}");
    }
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report["settings"]["stream"], true);
    assert!(rows.iter().any(|r| r.0.starts_with("echo: lossy")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nobody_there_is_a_failed_basic_echo_within_the_time_limit() {
    // A bound port with no KCP behind it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let dir = scratch("silent");
    let started = std::time::Instant::now();
    let (out, report) = peer(&addr, &["--quiet"], &dir);
    assert!(started.elapsed().as_secs() < 20);
    assert_eq!(out.status.code(), Some(1));
    let rows = rows(&report);
    assert_eq!(rows[0].0, "echo: basic");
    assert_eq!(rows[0].1, "failed");
    assert!(rows[0].2.contains("plain KCP echo"), "{}", rows[0].2);
    assert!(rows[1..].iter().all(|r| r.1 == "skipped"), "{rows:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_explains_the_peer() {
    let out = run(tool().args(["peer", "--help"]));
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--connect",
        "--listen",
        "--stream",
        "zero-window",
        "DIFFERS",
        "ikcp.c 1.x",
    ] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
}

#[test]
fn listen_mode_serves_a_remote_that_connects_first() {
    let dir = scratch("listen");
    let json = dir.join("report.json");
    let mut child = tool()
        .args(["peer", "--listen", "127.0.0.1:0", "--only", "sizes,lossy"])
        .args(["--timeout", "30", "--json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kcp-conformance");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(';').strip_prefix("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    std::thread::spawn(move || {
        for l in err.lines().map_while(Result::ok) {
            eprintln!("peer: {l}");
        }
    });
    // Our KcpStream as the remote: it opens the conversation, then echoes.
    let mut client = Command::new(our_echo());
    client.args(["--connect", &format!("127.0.0.1:{addr}"), "--conv", "77"]);
    client.args(["--secs", "30"]);
    let (_client, _) = start(client);
    let out = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    let report: Value = read_json(&json);
    let rows = rows(&report);
    for (check, status, detail) in &rows {
        assert_eq!(status, "held", "{check}: {detail}");
    }
    assert_eq!(report["conv"], 77, "the conv is the remote's");
    assert!(rows.iter().any(|r| r.0.starts_with("echo: lossy")));
    assert_eq!(out.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
