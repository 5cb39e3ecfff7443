//! Our `include/ikcp.h` against upstream's `ikcp.h`, through real compilers:
//! identical struct layout, and warning-free under every C and C++ standard.

use std::path::{Path, PathBuf};
use std::process::Command;

use ffi_tests::paths;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ikcp-header-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn c_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c").join(name)
}

fn have(compiler: &str) -> bool {
    Command::new(compiler)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a compiler; panics with the command line and its diagnostics on failure.
fn compile(compiler: &str, args: &[&str]) {
    let out = Command::new(compiler)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}; run scripts/install-test-deps.sh"));
    assert!(
        out.status.success(),
        "{compiler} {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn layout_with(include: &Path, tag: &str) -> String {
    let dir = scratch(tag);
    let exe = dir.join("layout");
    let include = format!("-I{}", include.display());
    let src = c_source("layout.c");
    compile(
        "gcc",
        &[
            "-std=c99",
            &include,
            src.to_str().unwrap(),
            "-o",
            exe.to_str().unwrap(),
        ],
    );
    let out = Command::new(&exe).output().expect("run layout");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn struct_layout_and_log_masks_match_upstream() {
    let upstream = layout_with(&paths::reference_dir(), "upstream");
    let ours = layout_with(&paths::our_include_dir(), "ours");
    for (a, b) in upstream.lines().zip(ours.lines()) {
        assert_eq!(a, b, "layout differs (upstream vs ours)");
    }
    assert_eq!(upstream.lines().count(), ours.lines().count());
    let fields = ours
        .lines()
        .filter(|l| l.starts_with("offsetof IKCPCB."))
        .count();
    println!(
        "layout: {} lines identical, {fields} IKCPCB fields",
        ours.lines().count()
    );
    assert_eq!(fields, 49);
}

/// Compiles `c/uses_everything.c` against the header in `include` with
/// gcc, clang, g++ and clang++ under every C and C++ standard, warnings as
/// errors; `defines` select the parts for that header. Returns the count.
fn warning_free_everywhere(include: &Path, tag: &str, defines: &[&str]) -> usize {
    let include = format!("-I{}", include.display());
    let src = c_source("uses_everything.c");
    let dir = scratch(tag);
    let cpp_src = dir.join("uses_everything.cpp");
    std::fs::copy(&src, &cpp_src).unwrap();
    let strict = ["-Wall", "-Wextra", "-pedantic", "-Werror", "-c"];
    let mut runs = 0;
    for (compiler, source, standards) in [
        ("gcc", &src, &["c89", "c99", "c11"][..]),
        ("clang", &src, &["c89", "c99", "c11"][..]),
        (
            "g++",
            &cpp_src,
            &["c++98", "c++03", "c++11", "c++14", "c++17", "c++20"][..],
        ),
        (
            "clang++",
            &cpp_src,
            &["c++98", "c++03", "c++11", "c++14", "c++17", "c++20"][..],
        ),
    ] {
        assert!(
            have(compiler),
            "{compiler} is missing: run scripts/install-test-deps.sh"
        );
        for std in standards {
            let obj = dir.join(format!("{compiler}-{std}.o"));
            let mut args = vec![format!("-std={std}"), include.clone()];
            args.extend(strict.iter().map(|s| s.to_string()));
            args.extend(defines.iter().map(|d| format!("-D{d}")));
            args.extend([
                source.display().to_string(),
                "-o".into(),
                obj.display().to_string(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            compile(compiler, &args);
            runs += 1;
        }
    }
    runs
}

#[test]
fn header_is_warning_free_in_every_language_standard() {
    let runs = warning_free_everywhere(&paths::our_include_dir(), "hygiene", &[]);
    println!("header hygiene: {runs} compiler/standard combinations warning-free");
}

#[test]
fn v2_header_is_warning_free_in_every_language_standard() {
    let include = paths::our_include_dir().join("v2");
    let runs = warning_free_everywhere(&include, "hygiene-v2", &["IKCP_USES_V2"]);
    println!("2.x header hygiene: {runs} compiler/standard combinations warning-free");
}

#[test]
fn v2_header_guard_and_setcc_are_upstream_2x() {
    let header = std::fs::read_to_string(paths::our_include_dir().join("v2/ikcp.h")).unwrap();
    assert!(header.contains("#ifndef _IKCP_H_\n#define _IKCP_H_\n"));
    assert!(header.contains("int ikcp_setcc(ikcpcb *kcp, const struct IKCPOPS *ops);"));
    assert!(header.contains("void ikcp_log(ikcpcb *kcp, int mask, const char *fmt, ...);"));
    // ikcpcb is declared before the struct whose hooks take it.
    let typedef = header.find("typedef struct IKCPCB ikcpcb;").unwrap();
    assert!(typedef < header.find("struct IKCPOPS {").unwrap());
    let v1 = std::fs::read_to_string(paths::our_include_dir().join("ikcp.h")).unwrap();
    for absent in [
        "ikcp_setcc",
        "IKCPOPS",
        "ackedlen",
        "*congest;",
        "_IKCP_H_\n",
    ] {
        assert!(!v1.contains(absent), "1.x header mentions {absent}");
    }
}

#[test]
fn header_declares_interval_and_variadic_log() {
    let header = std::fs::read_to_string(paths::our_include_dir().join("ikcp.h")).unwrap();
    assert!(header.contains("int ikcp_interval(ikcpcb *kcp, int interval);"));
    assert!(header.contains("void ikcp_log(ikcpcb *kcp, int mask, const char *fmt, ...);"));
}
