//! `abi --header`: the struct layout a header declares, compared with
//! upstream's `ikcp.h`, by compiling the same C program (ffi-tests'
//! `layout.c`, which prints every size and field offset) against each.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

const LAYOUT_C: &str = include_str!("../../ffi-tests/c/layout.c");

/// The result of the layout check.
#[derive(Debug, Serialize)]
pub struct LayoutReport {
    pub header: String,
    /// Lines (sizes and offsets) compared.
    pub lines: usize,
    /// `(reference line, candidate line)` for each difference.
    pub differences: Vec<(String, String)>,
}

fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Compiles and runs layout.c with `include` first on the include path.
fn layout_with(include: &Path, scratch: &Path, tag: &str) -> Result<String, String> {
    let src = scratch.join("layout.c");
    std::fs::write(&src, LAYOUT_C).map_err(|e| format!("{}: {e}", src.display()))?;
    let exe = scratch.join(format!("layout-{tag}"));
    let out = Command::new(compiler())
        .arg("-std=c99")
        .arg(format!("-I{}", include.display()))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .map_err(|e| format!("cannot run the C compiler {}: {e}", compiler()))?;
    if !out.status.success() {
        return Err(format!(
            "layout.c does not compile against {}:\n{}",
            include.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let run = Command::new(&exe)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    Ok(String::from_utf8_lossy(&run.stdout).into_owned())
}

/// Compares the layout `header` (a file `ikcp.h` or its directory) declares
/// with the reference header's.
pub fn check(header: &Path) -> Result<LayoutReport, String> {
    let dir: PathBuf = if header.is_dir() {
        header.to_path_buf()
    } else {
        header
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    if !dir.join("ikcp.h").exists() {
        return Err(format!("no ikcp.h in {}", dir.display()));
    }
    let scratch =
        std::env::temp_dir().join(format!("kcp-conformance-layout-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let reference = layout_with(&ffi_tests::paths::reference_dir(), &scratch, "reference");
    let candidate = layout_with(&dir, &scratch, "candidate");
    let _ = std::fs::remove_dir_all(&scratch);
    let (reference, candidate) = (reference?, candidate?);
    let (r, c): (Vec<&str>, Vec<&str>) = (reference.lines().collect(), candidate.lines().collect());
    let mut differences = Vec::new();
    for i in 0..r.len().max(c.len()) {
        let (a, b) = (
            r.get(i).copied().unwrap_or("<none>"),
            c.get(i).copied().unwrap_or("<none>"),
        );
        if a != b {
            differences.push((a.to_string(), b.to_string()));
        }
    }
    Ok(LayoutReport {
        header: dir.join("ikcp.h").display().to_string(),
        lines: r.len(),
        differences,
    })
}
