//! The 2.x C ABI as the harness sees it: `struct IKCPCB` and `struct
//! IKCPOPS` of upstream 2.x's `ikcp.h`, and the 2.x oracle (upstream 2.1.1's
//! `ikcp.c`, compiled by the tests into its own shared object so it coexists
//! with the 1.x reference that `kcp-io` links in).
//!
//! The mirrors are checked against upstream's header by compiling
//! `c/layout.c` with it (`tests/v2.rs`), so a field read here means what it
//! means to a C program built against 2.1.1.

use std::ffi::{c_char, c_int, c_void};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kcp_io::sys::{IKCPCB, IQUEUEHEAD};

use crate::api::{Api, Flavour};
use crate::paths;

/// The line every 2.x test prints when the 2.1.1 sources are not there.
pub const SKIP_LINE: &str =
    "2.x differential skipped: set IKCP_REF_2X to a checkout of upstream kcp tag 2.1.1";

/// Upstream 2.x's `struct IKCPCB`: 1.x's, plus `ackedlen` after `ackblock`
/// and `ccops`, `congest` between `stream` and `logmask`.
#[repr(C)]
pub struct IKCPCB2 {
    pub conv: u32,
    pub mtu: u32,
    pub mss: u32,
    pub state: u32,
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub rcv_nxt: u32,
    pub ts_recent: u32,
    pub ts_lastack: u32,
    pub ssthresh: u32,
    pub rx_rttval: i32,
    pub rx_srtt: i32,
    pub rx_rto: i32,
    pub rx_minrto: i32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    pub rmt_wnd: u32,
    pub cwnd: u32,
    pub probe: u32,
    pub current: u32,
    pub interval: u32,
    pub ts_flush: u32,
    pub xmit: u32,
    pub nrcv_buf: u32,
    pub nsnd_buf: u32,
    pub nrcv_que: u32,
    pub nsnd_que: u32,
    pub nodelay: u32,
    pub updated: u32,
    pub ts_probe: u32,
    pub probe_wait: u32,
    pub dead_link: u32,
    pub incr: u32,
    pub snd_queue: IQUEUEHEAD,
    pub rcv_queue: IQUEUEHEAD,
    pub snd_buf: IQUEUEHEAD,
    pub rcv_buf: IQUEUEHEAD,
    pub acklist: *mut u32,
    pub ackcount: u32,
    pub ackblock: u32,
    pub ackedlen: u32,
    pub user: *mut c_void,
    pub buffer: *mut c_char,
    pub fastresend: c_int,
    pub fastlimit: c_int,
    pub nocwnd: c_int,
    pub stream: c_int,
    pub ccops: *const IKCPOPS,
    pub congest: *mut c_void,
    pub logmask: c_int,
    pub output: Option<crate::api::OutputFn>,
    pub writelog: Option<crate::api::WritelogFn>,
}

/// The harness passes 2.x objects around as `*mut IKCPCB` (the entry points'
/// pointer type is only a label at the C ABI level); this is the view that
/// reads them with the 2.x layout.
pub fn cb2(kcp: *mut IKCPCB) -> *mut IKCPCB2 {
    kcp.cast()
}

/// `kcp` argument of the controller hooks.
pub type Cb2 = *mut IKCPCB2;

/// Upstream 2.x's `struct IKCPOPS`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IKCPOPS {
    pub name: *const c_char,
    pub init: Option<unsafe extern "C" fn(Cb2) -> c_int>,
    pub release: Option<unsafe extern "C" fn(Cb2)>,
    pub on_ack: Option<unsafe extern "C" fn(Cb2, u32, u32, u32)>,
    pub on_fast_retransmit: Option<unsafe extern "C" fn(Cb2, u32, u32, u32)>,
    pub on_timeout: Option<unsafe extern "C" fn(Cb2, u32)>,
    pub on_tick: Option<unsafe extern "C" fn(Cb2)>,
    pub on_app_limited: Option<unsafe extern "C" fn(Cb2, u32)>,
    pub on_rtt: Option<unsafe extern "C" fn(Cb2, i32)>,
    pub on_pkt_sent: Option<unsafe extern "C" fn(Cb2, u32, u32, u32, u32, u32)>,
    pub on_pkt_acked: Option<unsafe extern "C" fn(Cb2, u32, u32, u32, i32, u32)>,
    pub get_info: Option<unsafe extern "C" fn(Cb2, *mut c_void, u32) -> u32>,
    pub pacing_rate: Option<unsafe extern "C" fn(Cb2) -> u32>,
}

/// `int ikcp_setcc(ikcpcb *kcp, const struct IKCPOPS *ops)`
pub type SetccFn = unsafe extern "C" fn(kcp: *mut IKCPCB, ops: *const IKCPOPS) -> c_int;

/// The layout lines `c/layout.c` prints for 2.x, computed from the mirrors.
pub fn mirror_layout_lines() -> Vec<String> {
    use std::mem::{offset_of, size_of};
    macro_rules! fields {
        ($s:ident, $name:literal: $($f:ident),*) => {
            vec![$({
                let size = {
                    fn size_of_field<T>(_: impl Fn(&$s) -> &T) -> usize { size_of::<T>() }
                    size_of_field(|s: &$s| &s.$f)
                };
                format!("offsetof {}.{} {} size {}", $name, stringify!($f), offset_of!($s, $f), size)
            }),*]
        };
    }
    let mut v = vec![format!("sizeof struct IKCPCB {}", size_of::<IKCPCB2>())];
    v.extend(
        fields!(IKCPCB2, "IKCPCB": conv, mtu, mss, state, snd_una, snd_nxt, rcv_nxt,
        ts_recent, ts_lastack, ssthresh, rx_rttval, rx_srtt, rx_rto, rx_minrto, snd_wnd, rcv_wnd,
        rmt_wnd, cwnd, probe, current, interval, ts_flush, xmit, nrcv_buf, nsnd_buf, nrcv_que,
        nsnd_que, nodelay, updated, ts_probe, probe_wait, dead_link, incr, snd_queue, rcv_queue,
        snd_buf, rcv_buf, acklist, ackcount, ackblock, ackedlen, user, buffer, fastresend,
        fastlimit, nocwnd, stream, ccops, congest, logmask, output, writelog),
    );
    v.push(format!("sizeof struct IKCPOPS {}", size_of::<IKCPOPS>()));
    v.extend(
        fields!(IKCPOPS, "IKCPOPS": name, init, release, on_ack, on_fast_retransmit,
        on_timeout, on_tick, on_app_limited, on_rtt, on_pkt_sent, on_pkt_acked, get_info,
        pacing_rate),
    );
    v
}

/// Where upstream 2.1.1's `ikcp.c` / `ikcp.h` are: `$IKCP_REF_2X`, else
/// `../shared/reference/kcp-2.1.1` next to the checkout.
pub fn reference2_dir() -> PathBuf {
    match std::env::var_os("IKCP_REF_2X") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => paths::repo_root().join("../shared/reference/kcp-2.1.1"),
    }
}

/// Whether 2.x tests must fail instead of skipping (`IKCP_REQUIRE_2X=1`, set by CI).
pub fn required() -> bool {
    std::env::var("IKCP_REQUIRE_2X").is_ok_and(|v| v.trim() == "1")
}

/// The 2.1.1 sources, or None after printing [`SKIP_LINE`] once per process
/// (past libtest's capture). Panics instead when [`required`].
pub fn reference2() -> Option<PathBuf> {
    let dir = reference2_dir();
    if dir.join("ikcp.c").is_file() && dir.join("ikcp.h").is_file() {
        return Some(dir);
    }
    if required() {
        panic!(
            "IKCP_REQUIRE_2X=1 but {} holds no ikcp.c/ikcp.h: {SKIP_LINE}",
            dir.display()
        );
    }
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| {
        let _ = writeln!(std::io::stderr(), "{SKIP_LINE}");
    });
    None
}

/// Compiles `dir/ikcp.c` into a shared object under the target directory.
/// `-Bsymbolic` binds its calls to its own functions, never to the 1.x
/// `ikcp_*` linked into the test executable.
pub fn build_oracle(dir: &Path) -> Result<PathBuf, String> {
    let out_dir = paths::profile_dir().join("ikcp-ref-2x");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let lib = out_dir.join("libikcp-ref-2x.so");
    // Built under a private name, then renamed: test processes may race.
    let tmp = out_dir.join(format!("libikcp-ref-2x.so.{}", std::process::id()));
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wl,-Bsymbolic", "-o"])
        .arg(&tmp)
        .arg(dir.join("ikcp.c"))
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc failed on {}:\n{}",
            dir.join("ikcp.c").display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    Ok(lib)
}

/// Upstream 2.1.1 as an [`Api`] (built and loaded once per process), or
/// None when its sources are missing (see [`reference2`]).
pub fn oracle() -> Option<Api> {
    let dir = reference2()?;
    static ORACLE: OnceLock<Result<Api, String>> = OnceLock::new();
    let api = ORACLE.get_or_init(|| {
        let lib = build_oracle(&dir)?;
        let mut api = Api::load_flavour(&lib, Flavour::V2)?;
        api.name = "reference 2.1.1";
        Ok(api)
    });
    match api {
        Ok(api) => Some(*api),
        Err(e) => panic!("2.x oracle: {e}"),
    }
}

/// Our library built with the `abi2` feature, as `make ABI=2` builds it
/// (`cargo build --release --no-default-features --features abi2` into
/// `target/capi2`, so `make` afterwards reuses it), or `$IKCP_OURS_LIB2`.
/// Built and loaded once per process; cargo rebuilds only what changed.
pub fn ours() -> Api {
    static OURS: OnceLock<Result<Api, String>> = OnceLock::new();
    let api = OURS.get_or_init(|| Api::load_flavour(&ours_path(), Flavour::V2));
    match api {
        Ok(api) => *api,
        Err(e) => panic!("our 2.x library: {e}"),
    }
}

/// The file [`ours`] loads, built first when it is ours (once per process).
pub fn ours_path() -> PathBuf {
    if let Some(p) = std::env::var_os("IKCP_OURS_LIB2").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build_ours) {
        Ok(p) => p.clone(),
        Err(e) => panic!("our 2.x library: {e}"),
    }
}

fn build_ours() -> Result<PathBuf, String> {
    let root = paths::repo_root();
    let target = root.join("target/capi2");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--no-default-features",
            "--features",
            "abi2",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --features abi2 failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(target.join("release/libkcp.so"))
}
