//! Tells the tests where the reference sources (shipped by `kcp-io`) live, so
//! C programs can be compiled against upstream's own `ikcp.h` / `ikcp.c`.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(&manifest_dir)
        .output()
        .expect("cargo metadata");
    let text = String::from_utf8_lossy(&out.stdout);
    // Find `"manifest_path":"<...>/kcp-io-0.0.5/Cargo.toml"` without a JSON dependency.
    let needle = "kcp-io-0.0.5";
    let pos = text
        .find(needle)
        .expect("kcp-io 0.0.5 not found in cargo metadata");
    let start = text[..pos].rfind('"').unwrap() + 1;
    let end = pos + needle.len();
    let dir = PathBuf::from(&text[start..end]);
    let kcp_dir = dir.join("kcp");
    assert!(kcp_dir.join("ikcp.c").exists(), "reference sources missing");
    println!("cargo:rustc-env=KCP_REFERENCE_DIR={}", kcp_dir.display());
    println!("cargo:rerun-if-changed=build.rs");
}
