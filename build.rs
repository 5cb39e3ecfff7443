//! Build script: generates the C header with cbindgen, compiles the variadic
//! `ikcp_log` (stable Rust cannot define C-variadic functions), and sets the
//! shared library's soname and exported symbols.
//!
//! The header is generated into OUT_DIR on every build; the committed copy
//! in `include/ikcp.h` is refreshed with `IKCP_BLESS_HEADER=1 cargo build`,
//! and a test fails when the two differ.

use std::env;
use std::fs;
use std::path::PathBuf;

/// Major version in the soname: bumped only on an ABI break.
const SONAME: &str = "libkcp.so.1";

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IKCP_BLESS_HEADER");

    if env::var_os("CARGO_FEATURE_CAPI").is_none() {
        return;
    }

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let include_dir = out_dir.join("include");
    fs::create_dir_all(&include_dir).unwrap();
    let header = include_dir.join("ikcp.h");

    let mut generated = Vec::new();
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen failed")
        .write(&mut generated);
    // cbindgen closes its C++ guards with `//` comments, which C89 rejects.
    let text = String::from_utf8(generated)
        .unwrap()
        .lines()
        .map(|line| {
            let closing = line.starts_with('}') || line.starts_with("#endif");
            match line.split_once("//") {
                Some((code, note)) if closing => {
                    format!("{} /* {} */\n", code.trim_end(), note.trim())
                }
                _ => format!("{line}\n"),
            }
        })
        .collect::<String>();
    fs::write(&header, text).unwrap();

    if env::var_os("IKCP_BLESS_HEADER").is_some() {
        fs::copy(&header, crate_dir.join("include/ikcp.h")).unwrap();
    }

    cc::Build::new()
        .file("src/ffi/log.c")
        .include(&include_dir)
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-std=c99")
        .link_lib_modifier("+whole-archive")
        .compile("ikcp_log");
    println!("cargo:rerun-if-changed=src/ffi/log.c");

    // rustc's own version script for a cdylib exports only Rust items; list
    // the C-defined ikcp_log as well.
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" || target_os.ends_with("bsd") {
        let script = out_dir.join("ikcp_log.map");
        fs::write(&script, "{\n  global:\n    ikcp_log;\n};\n").unwrap();
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            script.display()
        );
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    }
}
