//! Shared by the conformance tool's tests (`tests/abi.rs`, `tests/peer.rs`):
//! running the built `kcp-conformance` as a user runs it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The `kcp-conformance` binary of this build.
pub fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kcp-conformance"))
}

/// A fresh directory of this test process for `name`'s files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kcp-conformance-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd` to the end; its stdout and stderr go to the test's output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run kcp-conformance");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A JSON report the tool wrote.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
