//! The C congestion controller of the 2.x lockstep (`c/cc_controller.c`),
//! compiled by the tests against our 2.x header into its own shared object
//! and installed with `ikcp_setcc` on both implementations alike.
//!
//! Each endpoint gets one controller state (found by the hooks through the
//! first member of the object's `user` record, the [`Recorder`]), which
//! logs every hook with its arguments and the public fields it sees; a
//! [`CcConfig`] says which hooks the table has and how they steer.
//!
//! [`Recorder`]: crate::kcp::Recorder

use std::ffi::{c_char, c_int, c_void};
use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use kcp_io::sys::IKCPCB;
use libloading::Library;

use crate::api::Api;
use crate::paths;
use crate::v2::{Cb2, IKCPOPS};

/// `struct cc_api` of `cc_controller.c`: the implementation's entry points
/// the hooks re-enter through.
#[repr(C)]
pub struct CcApi {
    pub send: unsafe extern "C" fn(*mut IKCPCB, *const c_char, c_int) -> c_int,
    pub waitsnd: unsafe extern "C" fn(*const IKCPCB) -> c_int,
    pub peeksize: unsafe extern "C" fn(*const IKCPCB) -> c_int,
    pub setcc: crate::v2::SetccFn,
    pub check: unsafe extern "C" fn(*const IKCPCB, u32) -> u32,
}

/// Steering bits (`CC_STEER_*` in the C file).
pub mod steer {
    pub const ACK: u32 = 1;
    pub const FAST: u32 = 2;
    pub const TIMEOUT: u32 = 4;
    pub const TICK: u32 = 8;
    pub const RTT: u32 = 16;
    pub const INCR: u32 = 32;
    pub const ZERO: u32 = 64;
}

/// Re-entry bits (`CC_REENTER_*`).
pub mod reenter {
    pub const SEND: u32 = 1;
    pub const QUERY: u32 = 2;
    pub const RESTORE: u32 = 4;
}

/// Pacing modes (`CC_PACE_*`).
pub mod pace {
    pub const NONE: u32 = 0;
    pub const FIXED: u32 = 1;
    pub const BURST: u32 = 2;
    pub const ZERO: u32 = 3;
}

/// The 12 hooks of a table, in `IKCPOPS` order (bit i of [`CcConfig::hooks`]).
pub const HOOK_NAMES: [&str; 12] = [
    "init",
    "release",
    "on_ack",
    "on_fast_retransmit",
    "on_timeout",
    "on_tick",
    "on_app_limited",
    "on_rtt",
    "on_pkt_sent",
    "on_pkt_acked",
    "get_info",
    "pacing_rate",
];

/// Every hook present.
pub const ALL_HOOKS: u16 = (1 << 12) - 1;

/// One controller installation: which hooks its table has and what they do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CcConfig {
    /// Bit i set: hook [`HOOK_NAMES`]\[i\] is in the table (else NULL).
    pub hooks: u16,
    /// What `init` returns (negative: installation fails).
    pub init_result: i32,
    pub steer: u32,
    pub reenter: u32,
    pub pacing: u32,
    pub budget: u32,
}

impl fmt::Display for CcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hooks = if self.hooks == ALL_HOOKS {
            "all".to_string()
        } else {
            HOOK_NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| self.hooks & (1 << i) != 0)
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
                .join("+")
        };
        write!(
            f,
            "hooks={hooks} init->{} steer={:#x} reenter={:#x} pacing={}/{}",
            self.init_result, self.steer, self.reenter, self.pacing, self.budget
        )
    }
}

/// The loaded controller object.
pub struct CcLib {
    state_new: unsafe extern "C" fn(*const CcApi) -> *mut c_void,
    pub state_free: unsafe extern "C" fn(*mut c_void),
    configure: unsafe extern "C" fn(*mut c_void, c_int, u32, u32, u32, u32),
    log_data: unsafe extern "C" fn(*const c_void) -> *const c_char,
    log_len: unsafe extern "C" fn(*const c_void) -> usize,
    log_clear: unsafe extern "C" fn(*mut c_void),
    /// Every hook of the C file.
    full: IKCPOPS,
}

// SAFETY: the table holds function pointers into a library never unloaded
// and a NULL name; nothing in it is thread-bound.
unsafe impl Send for CcLib {}
// SAFETY: as above; it is never written after loading.
unsafe impl Sync for CcLib {}

impl CcLib {
    /// Compiled (once per process) and loaded, or the reason why not.
    pub fn get() -> &'static CcLib {
        static LIB: OnceLock<Result<CcLib, String>> = OnceLock::new();
        match LIB.get_or_init(load) {
            Ok(lib) => lib,
            Err(e) => panic!("cc_controller.c: {e}"),
        }
    }

    /// A fresh controller state whose hooks re-enter through `api`.
    pub fn new_state(&self, api: &'static CcApi) -> *mut c_void {
        // SAFETY: plain allocation in the C file; `api` lives forever.
        let st = unsafe { (self.state_new)(api) };
        assert!(!st.is_null(), "cc_state_new returned NULL");
        st
    }

    /// The table for `cfg` (hooks outside `cfg.hooks` NULL), after applying
    /// its steering to `state`.
    ///
    /// # Safety
    /// `state` comes from [`CcLib::new_state`] and was not freed.
    pub unsafe fn table(&self, state: *mut c_void, cfg: &CcConfig) -> Box<IKCPOPS> {
        // SAFETY: per contract.
        unsafe {
            (self.configure)(
                state,
                cfg.init_result,
                cfg.steer,
                cfg.reenter,
                cfg.pacing,
                cfg.budget,
            )
        };
        let mut t = self.full;
        let on = |i: u32| cfg.hooks & (1 << i) != 0;
        macro_rules! keep {
            ($($i:literal $f:ident),*) => {$(if !on($i) { t.$f = None; })*};
        }
        keep!(0 init, 1 release, 2 on_ack, 3 on_fast_retransmit, 4 on_timeout, 5 on_tick,
            6 on_app_limited, 7 on_rtt, 8 on_pkt_sent, 9 on_pkt_acked, 10 get_info,
            11 pacing_rate);
        Box::new(t)
    }

    /// Takes the lines the hooks logged since the last call.
    ///
    /// # Safety
    /// `state` comes from [`CcLib::new_state`] and was not freed.
    pub unsafe fn take_log(&self, state: *mut c_void) -> Vec<u8> {
        // SAFETY: per contract; the log is `len` bytes.
        unsafe {
            let len = (self.log_len)(state);
            let data = (self.log_data)(state);
            let v = if len == 0 || data.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(data.cast::<u8>(), len).to_vec()
            };
            (self.log_clear)(state);
            v
        }
    }
}

/// The [`CcApi`] of `api` (one per implementation, kept for the process).
pub fn cc_api(api: &Api) -> &'static CcApi {
    static APIS: Mutex<Vec<(usize, &'static CcApi)>> = Mutex::new(Vec::new());
    let mut apis = APIS.lock().unwrap_or_else(|e| e.into_inner());
    let key = api.create as usize;
    if let Some((_, a)) = apis.iter().find(|(k, _)| *k == key) {
        return a;
    }
    let setcc = api.setcc.expect("a 2.x library has ikcp_setcc");
    let a: &'static CcApi = Box::leak(Box::new(CcApi {
        send: api.send,
        waitsnd: api.waitsnd,
        peeksize: api.peeksize,
        setcc,
        check: api.check,
    }));
    apis.push((key, a));
    a
}

fn load() -> Result<CcLib, String> {
    let out_dir = paths::profile_dir().join("ikcp-cc-controller");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let lib_path = out_dir.join("libcc-controller.so");
    let tmp: PathBuf = out_dir.join(format!("libcc-controller.so.{}", std::process::id()));
    let src = paths::repo_root().join("ffi-tests/c/cc_controller.c");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg(format!(
            "-I{}",
            paths::our_include_dir().join("v2").display()
        ))
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &lib_path).map_err(|e| format!("{}: {e}", lib_path.display()))?;
    // SAFETY: the object has no initialisers.
    let lib = unsafe { Library::new(&lib_path) }
        .map_err(|e| format!("cannot dlopen {}: {e}", lib_path.display()))?;
    let lib: &'static Library = Box::leak(Box::new(lib));
    fn sym<T: Copy>(lib: &'static Library, name: &str) -> Result<T, String> {
        let cname = format!("{name}\0");
        // SAFETY: each name is looked up with the C file's signature for it.
        unsafe { lib.get::<T>(cname.as_bytes()) }
            .map(|s| *s)
            .map_err(|e| format!("no {name}: {e}"))
    }
    let full = IKCPOPS {
        name: std::ptr::null(),
        init: Some(sym::<unsafe extern "C" fn(Cb2) -> c_int>(lib, "cc_init")?),
        release: Some(sym(lib, "cc_release")?),
        on_ack: Some(sym(lib, "cc_on_ack")?),
        on_fast_retransmit: Some(sym(lib, "cc_on_fast_retransmit")?),
        on_timeout: Some(sym(lib, "cc_on_timeout")?),
        on_tick: Some(sym(lib, "cc_on_tick")?),
        on_app_limited: Some(sym(lib, "cc_on_app_limited")?),
        on_rtt: Some(sym(lib, "cc_on_rtt")?),
        on_pkt_sent: Some(sym(lib, "cc_on_pkt_sent")?),
        on_pkt_acked: Some(sym(lib, "cc_on_pkt_acked")?),
        get_info: Some(sym(lib, "cc_get_info")?),
        pacing_rate: Some(sym(lib, "cc_pacing_rate")?),
    };
    Ok(CcLib {
        state_new: sym(lib, "cc_state_new")?,
        state_free: sym(lib, "cc_state_free")?,
        configure: sym(lib, "cc_configure")?,
        log_data: sym(lib, "cc_log_data")?,
        log_len: sym(lib, "cc_log_len")?,
        log_clear: sym(lib, "cc_log_clear")?,
        full,
    })
}
