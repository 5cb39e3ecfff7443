//! Where things are: our built library, our header, the reference sources.

use std::path::{Path, PathBuf};

/// Root of this repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Directory with upstream's unmodified `ikcp.c` and `ikcp.h` (from `kcp-io`).
pub fn reference_dir() -> PathBuf {
    PathBuf::from(env!("KCP_REFERENCE_DIR"))
}

/// Our generated, committed header directory (`include/`).
pub fn our_include_dir() -> PathBuf {
    repo_root().join("include")
}

/// `target/<profile>` of the running test binary (which lives in `target/<profile>/deps`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().unwrap();
    deps.parent().unwrap().to_path_buf()
}

fn built_artifact(name: &str) -> PathBuf {
    let profile = profile_dir();
    for candidate in [profile.join("deps").join(name), profile.join(name)] {
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "{name} not found under {}; build the workspace first (`cargo test --workspace` builds it)",
        profile.display()
    );
}

/// Our shared library, `libkcp.so`.
pub fn our_shared_lib() -> PathBuf {
    built_artifact("libkcp.so")
}

/// Our static library, `libkcp.a`.
pub fn our_static_lib() -> PathBuf {
    built_artifact("libkcp.a")
}
