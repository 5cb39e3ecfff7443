//! Build script: generates the C header with cbindgen, compiles the variadic
//! `ikcp_log` (stable Rust cannot define C-variadic functions), and sets the
//! shared library's soname and exported symbols.
//!
//! Both flavours' headers are generated into OUT_DIR on every build: 1.x's
//! (`include/ikcp.h`) and, from the same sources with the few overrides of
//! [`v2_config`], 2.x's (`include/v2/ikcp.h`). The committed copies are
//! refreshed with `IKCP_BLESS_HEADER=1 cargo build`, and a test fails when
//! they differ from the generated ones. The `abi2` feature builds the
//! library of the 2.x flavour (its `IKCPCB` layout, `ikcp_setcc`, soname
//! `libkcp.so.2`).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Major version in the soname: bumped only on an ABI break (2.x's
/// `IKCPCB` layout is one).
const SONAME_V1: &str = "libkcp.so.1";
const SONAME_V2: &str = "libkcp.so.2";

/// What cbindgen.toml maps `feature = "abi2"` to; the 1.x header drops
/// these blocks (so it stays exactly upstream 1.x's), the 2.x header is
/// generated without the mapping and has their contents unconditionally.
const V2_ONLY: &str = "#if defined(IKCP_ABI2_ONLY)";

/// cbindgen.toml adjusted for upstream 2.x's header: its include guard,
/// and `ikcpcb` declared before the structs whose hooks take it.
fn v2_config(mut config: cbindgen::Config) -> cbindgen::Config {
    config.include_guard = Some("_IKCP_H_".into());
    config.header = config
        .header
        .map(|h| h.replace("upstream ikcp.h 1.x", "upstream ikcp.h 2.x"));
    let forward = "\n/* Declared before the structs that use it, as upstream 2.x does. */\nstruct IKCPCB;\ntypedef struct IKCPCB ikcpcb;\n";
    config.after_includes = Some(config.after_includes.unwrap_or_default() + forward);
    config.export.exclude.push("ikcpcb".into());
    // Reached only through the excluded typedef, so named explicitly.
    config.export.include.push("IKCPCB".into());
    config.defines.clear();
    config
}

/// Runs cbindgen on src/ffi with `config`.
fn generate(crate_dir: &Path, config: cbindgen::Config) -> String {
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen failed")
        .write(&mut generated);
    // cbindgen closes its C++ guards with `//` comments, which C89 rejects.
    String::from_utf8(generated)
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
        .collect()
}

/// Removes the `#if defined(IKCP_ABI2_ONLY)` ... `#endif` blocks, with
/// what cbindgen leaves behind them: the `;` it puts after a conditional
/// field's `#endif`, and the blank line that separated a conditional item.
fn drop_v2_only(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    let mut just_dropped = false;
    for line in text.lines() {
        if line.trim() == V2_ONLY {
            skipping = true;
        } else if skipping {
            if line.trim().starts_with("#endif") {
                skipping = false;
                just_dropped = true;
            }
        } else {
            let leftover = line.trim() == ";" || (line.is_empty() && out.ends_with("\n\n"));
            if !(just_dropped && leftover) {
                out.push_str(line);
                out.push('\n');
            }
            just_dropped = false;
        }
    }
    out
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IKCP_BLESS_HEADER");

    if env::var_os("CARGO_FEATURE_CAPI").is_none() {
        return;
    }

    let v2 = env::var_os("CARGO_FEATURE_ABI2").is_some();
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let headers = [
        (
            "include",
            drop_v2_only(&generate(&crate_dir, config.clone())),
        ),
        ("include/v2", generate(&crate_dir, v2_config(config))),
    ];
    for (dir, text) in &headers {
        fs::create_dir_all(out_dir.join(dir)).unwrap();
        fs::write(out_dir.join(dir).join("ikcp.h"), text).unwrap();
        if env::var_os("IKCP_BLESS_HEADER").is_some() {
            fs::create_dir_all(crate_dir.join(dir)).unwrap();
            fs::write(crate_dir.join(dir).join("ikcp.h"), text).unwrap();
        }
    }
    // log.c reads fields of the flavour being built.
    let include_dir = out_dir.join(if v2 { "include/v2" } else { "include" });

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
        let soname = if v2 { SONAME_V2 } else { SONAME_V1 };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
}
