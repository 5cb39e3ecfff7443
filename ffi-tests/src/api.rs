//! The 18 C entry points as a table of function pointers, so one test body can
//! drive the reference `ikcp.c` (linked statically through `kcp-io`) and our
//! `libkcp.so` (loaded with `dlopen`) in the same process.
//!
//! Both sides use `kcp_io::sys::IKCPCB` as the struct definition; the C layout
//! tests check that our header describes the same layout.

use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kcp_io::sys::IKCPCB;
use libloading::Library;

use crate::paths;

/// `int (*output)(const char *buf, int len, ikcpcb *kcp, void *user)`
pub type OutputFn = unsafe extern "C" fn(
    buf: *const c_char,
    len: c_int,
    kcp: *mut IKCPCB,
    user: *mut c_void,
) -> c_int;
/// `void (*writelog)(const char *log, struct IKCPCB *kcp, void *user)`
pub type WritelogFn = unsafe extern "C" fn(log: *const c_char, kcp: *mut IKCPCB, user: *mut c_void);
/// `void *(*new_malloc)(size_t)`
pub type MallocFn = unsafe extern "C" fn(size: usize) -> *mut c_void;
/// `void (*new_free)(void *)`
pub type FreeFn = unsafe extern "C" fn(ptr: *mut c_void);

/// Which upstream release's C ABI a library has: the `IKCPCB` layout its
/// objects use, and whether it has `ikcp_setcc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Upstream 1.x (`kcp_io::sys::IKCPCB`).
    V1,
    /// Upstream 2.x ([`crate::v2::IKCPCB2`], `ikcp_setcc`).
    V2,
}

/// One implementation of the KCP C ABI, with upstream's exact signatures.
/// Objects are `*mut IKCPCB` whatever the flavour: at the ABI level the
/// pointer's type is only a label, and [`crate::kcp::Kcp`] reads fields with
/// the layout of `flavour`.
#[derive(Clone, Copy)]
pub struct Api {
    /// `"ours"` or `"reference"`, for messages.
    pub name: &'static str,
    pub flavour: Flavour,
    /// `ikcp_setcc`, for [`Flavour::V2`] libraries.
    pub setcc: Option<crate::v2::SetccFn>,
    pub create: unsafe extern "C" fn(conv: u32, user: *mut c_void) -> *mut IKCPCB,
    pub release: unsafe extern "C" fn(kcp: *mut IKCPCB),
    pub setoutput: unsafe extern "C" fn(kcp: *mut IKCPCB, output: Option<OutputFn>),
    pub recv: unsafe extern "C" fn(kcp: *mut IKCPCB, buffer: *mut c_char, len: c_int) -> c_int,
    pub send: unsafe extern "C" fn(kcp: *mut IKCPCB, buffer: *const c_char, len: c_int) -> c_int,
    pub update: unsafe extern "C" fn(kcp: *mut IKCPCB, current: u32),
    pub check: unsafe extern "C" fn(kcp: *const IKCPCB, current: u32) -> u32,
    pub input: unsafe extern "C" fn(kcp: *mut IKCPCB, data: *const c_char, size: c_long) -> c_int,
    pub flush: unsafe extern "C" fn(kcp: *mut IKCPCB),
    pub peeksize: unsafe extern "C" fn(kcp: *const IKCPCB) -> c_int,
    pub setmtu: unsafe extern "C" fn(kcp: *mut IKCPCB, mtu: c_int) -> c_int,
    pub interval: unsafe extern "C" fn(kcp: *mut IKCPCB, interval: c_int) -> c_int,
    pub wndsize: unsafe extern "C" fn(kcp: *mut IKCPCB, sndwnd: c_int, rcvwnd: c_int) -> c_int,
    pub waitsnd: unsafe extern "C" fn(kcp: *const IKCPCB) -> c_int,
    pub nodelay: unsafe extern "C" fn(
        kcp: *mut IKCPCB,
        nodelay: c_int,
        interval: c_int,
        resend: c_int,
        nc: c_int,
    ) -> c_int,
    pub log: unsafe extern "C" fn(kcp: *mut IKCPCB, mask: c_int, fmt: *const c_char, ...),
    pub allocator: unsafe extern "C" fn(new_malloc: Option<MallocFn>, new_free: Option<FreeFn>),
    pub getconv: unsafe extern "C" fn(ptr: *const c_void) -> u32,
}

// Upstream defines these two in ikcp.c but kcp-io does not bind them; the
// symbols are in kcp-io's static library all the same.
extern "C" {
    fn ikcp_interval(kcp: *mut IKCPCB, interval: c_int) -> c_int;
    fn ikcp_log(kcp: *mut IKCPCB, mask: c_int, fmt: *const c_char, ...);
}

impl Api {
    /// Upstream's unmodified `ikcp.c`, compiled by `kcp-io`.
    pub fn reference() -> Api {
        use kcp_io::sys;
        // SAFETY (both transmutes): kcp-io declares these callback parameters as
        // non-nullable fn pointers; `Option<fn>` has the same ABI and lets us
        // pass NULL exactly as a C caller can.
        let setoutput = unsafe {
            std::mem::transmute::<
                unsafe extern "C" fn(*mut IKCPCB, OutputFn),
                unsafe extern "C" fn(*mut IKCPCB, Option<OutputFn>),
            >(sys::ikcp_setoutput)
        };
        let allocator = unsafe {
            std::mem::transmute::<
                unsafe extern "C" fn(MallocFn, FreeFn),
                unsafe extern "C" fn(Option<MallocFn>, Option<FreeFn>),
            >(sys::ikcp_allocator)
        };
        Api {
            name: "reference",
            flavour: Flavour::V1,
            setcc: None,
            create: sys::ikcp_create,
            release: sys::ikcp_release,
            setoutput,
            recv: sys::ikcp_recv,
            send: sys::ikcp_send,
            update: sys::ikcp_update,
            check: sys::ikcp_check,
            input: sys::ikcp_input,
            flush: sys::ikcp_flush,
            peeksize: sys::ikcp_peeksize,
            setmtu: sys::ikcp_setmtu,
            interval: ikcp_interval,
            wndsize: sys::ikcp_wndsize,
            waitsnd: sys::ikcp_waitsnd,
            nodelay: sys::ikcp_nodelay,
            log: ikcp_log,
            allocator,
            getconv: sys::ikcp_getconv,
        }
    }

    /// Our library, loaded once per process with `dlopen` and never unloaded
    /// (the table's pointers must stay valid for the whole test run).
    ///
    /// Panics with the reason when the library is missing or lacks a symbol.
    pub fn ours() -> Api {
        static OURS: OnceLock<Result<Api, String>> = OnceLock::new();
        match OURS.get_or_init(|| load(&ours_path(), Flavour::V1)) {
            Ok(api) => *api,
            Err(e) => panic!("{e}"),
        }
    }

    /// Any library exporting the ikcp C ABI (e.g. for `kcp-conformance abi
    /// --lib`), loaded with `dlopen` and never unloaded.
    pub fn load(path: &Path) -> Result<Api, String> {
        load(path, Flavour::V1)
    }

    /// [`Api::load`] for a library of either flavour (a 2.x one must export
    /// `ikcp_setcc`).
    pub fn load_flavour(path: &Path, flavour: Flavour) -> Result<Api, String> {
        load(path, flavour)
    }

    /// Both implementations, reference first.
    pub fn both() -> [Api; 2] {
        [Api::reference(), Api::ours()]
    }
}

/// The file `Api::ours()` loads: `libkcp.so` from the cargo target directory,
/// or `$IKCP_OURS_LIB` when set (to run the same tests against another build
/// of the C ABI, e.g. a second copy of upstream while debugging the harness).
pub fn ours_path() -> PathBuf {
    match std::env::var_os("IKCP_OURS_LIB") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => paths::our_shared_lib(),
    }
}

fn load(path: &Path, flavour: Flavour) -> Result<Api, String> {
    // SAFETY: loading runs the library's initialisers; ours has none beyond
    // what the Rust runtime and libc need.
    let lib = unsafe { Library::new(path) }
        .map_err(|e| format!("cannot dlopen {}: {e}", path.display()))?;
    let lib: &'static Library = Box::leak(Box::new(lib));
    fn sym<T: Copy>(lib: &'static Library, path: &Path, name: &str) -> Result<T, String> {
        let cname = format!("{name}\0");
        // SAFETY: every name below is looked up with upstream's signature for it.
        unsafe { lib.get::<T>(cname.as_bytes()) }
            .map(|s| *s)
            .map_err(|e| format!("{} does not export {name}: {e}", path.display()))
    }
    let setcc = match flavour {
        Flavour::V1 => None,
        Flavour::V2 => Some(sym(lib, path, "ikcp_setcc")?),
    };
    Ok(Api {
        name: "ours",
        flavour,
        setcc,
        create: sym(lib, path, "ikcp_create")?,
        release: sym(lib, path, "ikcp_release")?,
        setoutput: sym(lib, path, "ikcp_setoutput")?,
        recv: sym(lib, path, "ikcp_recv")?,
        send: sym(lib, path, "ikcp_send")?,
        update: sym(lib, path, "ikcp_update")?,
        check: sym(lib, path, "ikcp_check")?,
        input: sym(lib, path, "ikcp_input")?,
        flush: sym(lib, path, "ikcp_flush")?,
        peeksize: sym(lib, path, "ikcp_peeksize")?,
        setmtu: sym(lib, path, "ikcp_setmtu")?,
        interval: sym(lib, path, "ikcp_interval")?,
        wndsize: sym(lib, path, "ikcp_wndsize")?,
        waitsnd: sym(lib, path, "ikcp_waitsnd")?,
        nodelay: sym(lib, path, "ikcp_nodelay")?,
        log: sym(lib, path, "ikcp_log")?,
        allocator: sym(lib, path, "ikcp_allocator")?,
        getconv: sym(lib, path, "ikcp_getconv")?,
    })
}

/// The file the dynamic linker says contains `addr` (`dladdr`), e.g. the test
/// executable for the reference and `libkcp.so` for ours.
pub fn file_containing(addr: usize) -> Option<PathBuf> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the loader's tables and fills `info`.
    if unsafe { libc::dladdr(addr as *const c_void, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: on success dli_fname is a NUL-terminated path owned by the loader.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    Some(PathBuf::from(name.to_string_lossy().into_owned()))
}

/// Whether the library at `path` exports `name` (looked up in that library only).
pub fn library_exports(path: &Path, name: &str) -> bool {
    // SAFETY: the library is already loaded by `Api::ours`; this only takes a
    // second reference and drops it again.
    let Ok(lib) = (unsafe { Library::new(path) }) else {
        return false;
    };
    let cname = format!("{name}\0");
    // SAFETY: the symbol is only tested for presence, never called.
    let found = unsafe { lib.get::<*const c_void>(cname.as_bytes()) }.is_ok();
    found
}
