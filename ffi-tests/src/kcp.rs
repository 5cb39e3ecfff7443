//! One KCP object of either implementation, plus the recorder its callbacks
//! write into.
//!
//! The recorder is found through the `user` pointer the object hands to its
//! callbacks. `user` is also a public field of `IKCPCB`, so every observation
//! checks it still points at the recorder.

use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};

use kcp_io::sys::IKCPCB;

use crate::api::{Api, Flavour, OutputFn, WritelogFn};
use crate::v2::{cb2, IKCPCB2};

/// What the output callback does besides recording the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reentry {
    /// Only record.
    None,
    /// Feed the datagram straight back into the same object's `ikcp_input`.
    SelfInput,
    /// Feed it into another object's `ikcp_input` from inside the callback.
    PeerInput(*mut IKCPCB),
}

/// Everything the callbacks saw, in order.
#[repr(C)]
pub struct Recorder {
    /// The object's C congestion controller state (see [`crate::cc`]),
    /// NULL until one is installed. First, where the C hooks look for it.
    pub cc: *mut c_void,
    /// Frees `cc`, after the object is released.
    pub cc_free: Option<unsafe extern "C" fn(*mut c_void)>,
    api: Api,
    /// The object this recorder belongs to, to check the callbacks' `kcp` argument.
    kcp: *mut IKCPCB,
    pub datagrams: Vec<Vec<u8>>,
    pub logs: Vec<Vec<u8>>,
    /// Return values of the `ikcp_input` calls made from inside `output`.
    pub nested: Vec<c_int>,
    /// Callbacks whose `kcp` argument was not the object they belong to.
    pub wrong_kcp: u32,
    pub reentry: Reentry,
    /// What `output` returns (upstream ignores it; ours must too).
    pub output_ret: c_int,
}

/// The output callback every test object uses.
///
/// # Safety
/// `user` must be the `Recorder` the object was created with.
pub unsafe extern "C" fn record_output(
    buf: *const c_char,
    len: c_int,
    kcp: *mut IKCPCB,
    user: *mut c_void,
) -> c_int {
    let rec = user as *mut Recorder;
    if rec.is_null() {
        return -1;
    }
    let data = if len > 0 && !buf.is_null() {
        std::slice::from_raw_parts(buf as *const u8, len as usize).to_vec()
    } else {
        Vec::new()
    };
    // Only short-lived borrows of the recorder: the nested input below may
    // call writelog, which records into it too.
    if kcp != (*rec).kcp {
        (*rec).wrong_kcp += 1;
    }
    (*rec).datagrams.push(data);
    let target = match (*rec).reentry {
        Reentry::None => None,
        Reentry::SelfInput => Some(kcp),
        Reentry::PeerInput(peer) => Some(peer),
    };
    if let Some(target) = target {
        // The buffer handed to us is passed on as is, like C loopback code does.
        let r = ((*rec).api.input)(target, buf, len as c_long);
        (*rec).nested.push(r);
    }
    (*rec).output_ret
}

/// The writelog callback every test object uses when logging is on.
///
/// # Safety
/// `user` must be the `Recorder` the object was created with.
pub unsafe extern "C" fn record_log(log: *const c_char, kcp: *mut IKCPCB, user: *mut c_void) {
    let rec = user as *mut Recorder;
    if rec.is_null() {
        return;
    }
    if kcp != (*rec).kcp {
        (*rec).wrong_kcp += 1;
    }
    let line = if log.is_null() {
        b"<NULL>".to_vec()
    } else {
        CStr::from_ptr(log).to_bytes().to_vec()
    };
    (*rec).logs.push(line);
}

macro_rules! public_fields {
    ($($f:ident),* $(,)?) => {
        /// The scalar public fields of `IKCPCB` compared after every call
        /// (`ackedlen` exists in 2.x only and reads 0 for 1.x objects).
        pub const FIELD_NAMES: &[&str] = &[$(stringify!($f)),*, "ackedlen"];
        pub const FIELD_COUNT: usize = FIELD_NAMES.len();
        /// A snapshot of [`FIELD_NAMES`], in that order, widened to i64.
        pub type Fields = [i64; FIELD_COUNT];
        fn read_fields(cb: &IKCPCB) -> Fields {
            [$(cb.$f as i64),*, 0]
        }
        fn read_fields_v2(cb: &IKCPCB2) -> Fields {
            [$(cb.$f as i64),*, cb.ackedlen as i64]
        }
    };
}

public_fields!(
    conv, mtu, mss, state, snd_una, snd_nxt, rcv_nxt, ts_recent, ts_lastack, ssthresh, rx_rttval,
    rx_srtt, rx_rto, rx_minrto, snd_wnd, rcv_wnd, rmt_wnd, cwnd, probe, current, interval,
    ts_flush, xmit, nrcv_buf, nsnd_buf, nrcv_que, nsnd_que, nodelay, updated, ts_probe, probe_wait,
    dead_link, incr, ackcount, ackblock, fastresend, fastlimit, nocwnd, stream, logmask,
);

/// Public fields that C programs write directly between calls. `ALL` are the
/// settings-like ones; `STATE` the protocol state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Conv,
    Stream,
    RxMinrto,
    Fastresend,
    Interval,
    DeadLink,
    Logmask,
    Fastlimit,
    Nocwnd,
    SndWnd,
    RcvWnd,
    // Fields upstream keeps as protocol state; some programs poke them too
    // (e.g. resetting `state` after a dead link).
    State,
    Nodelay,
    Ssthresh,
    Cwnd,
    Incr,
    RmtWnd,
    RxRto,
    RxSrtt,
    RxRttval,
    Probe,
    ProbeWait,
    TsProbe,
    TsFlush,
    Current,
    Updated,
    Xmit,
    TsRecent,
    TsLastack,
}

/// One assignment per [`Field`]; the two layouts share the field names.
macro_rules! write_field {
    ($field:expr, $cb:ident, $v:ident) => {
        match $field {
            Field::Conv => $cb.conv = $v as u32,
            Field::Stream => $cb.stream = $v as c_int,
            Field::RxMinrto => $cb.rx_minrto = $v as i32,
            Field::Fastresend => $cb.fastresend = $v as c_int,
            Field::Interval => $cb.interval = $v as u32,
            Field::DeadLink => $cb.dead_link = $v as u32,
            Field::Logmask => $cb.logmask = $v as c_int,
            Field::Fastlimit => $cb.fastlimit = $v as c_int,
            Field::Nocwnd => $cb.nocwnd = $v as c_int,
            Field::SndWnd => $cb.snd_wnd = $v as u32,
            Field::RcvWnd => $cb.rcv_wnd = $v as u32,
            Field::State => $cb.state = $v as u32,
            Field::Nodelay => $cb.nodelay = $v as u32,
            Field::Ssthresh => $cb.ssthresh = $v as u32,
            Field::Cwnd => $cb.cwnd = $v as u32,
            Field::Incr => $cb.incr = $v as u32,
            Field::RmtWnd => $cb.rmt_wnd = $v as u32,
            Field::RxRto => $cb.rx_rto = $v as i32,
            Field::RxSrtt => $cb.rx_srtt = $v as i32,
            Field::RxRttval => $cb.rx_rttval = $v as i32,
            Field::Probe => $cb.probe = $v as u32,
            Field::ProbeWait => $cb.probe_wait = $v as u32,
            Field::TsProbe => $cb.ts_probe = $v as u32,
            Field::TsFlush => $cb.ts_flush = $v as u32,
            Field::Current => $cb.current = $v as u32,
            Field::Updated => $cb.updated = $v as u32,
            Field::Xmit => $cb.xmit = $v as u32,
            Field::TsRecent => $cb.ts_recent = $v as u32,
            Field::TsLastack => $cb.ts_lastack = $v as u32,
        }
    };
}

impl Field {
    pub const ALL: [Field; 11] = [
        Field::Conv,
        Field::Stream,
        Field::RxMinrto,
        Field::Fastresend,
        Field::Interval,
        Field::DeadLink,
        Field::Logmask,
        Field::Fastlimit,
        Field::Nocwnd,
        Field::SndWnd,
        Field::RcvWnd,
    ];

    /// Protocol-state fields, written only by the scenarios that poke them.
    pub const STATE: [Field; 18] = [
        Field::State,
        Field::Nodelay,
        Field::Ssthresh,
        Field::Cwnd,
        Field::Incr,
        Field::RmtWnd,
        Field::RxRto,
        Field::RxSrtt,
        Field::RxRttval,
        Field::Probe,
        Field::ProbeWait,
        Field::TsProbe,
        Field::TsFlush,
        Field::Current,
        Field::Updated,
        Field::Xmit,
        Field::TsRecent,
        Field::TsLastack,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Conv => "conv",
            Field::Stream => "stream",
            Field::RxMinrto => "rx_minrto",
            Field::Fastresend => "fastresend",
            Field::Interval => "interval",
            Field::DeadLink => "dead_link",
            Field::Logmask => "logmask",
            Field::Fastlimit => "fastlimit",
            Field::Nocwnd => "nocwnd",
            Field::SndWnd => "snd_wnd",
            Field::RcvWnd => "rcv_wnd",
            Field::State => "state",
            Field::Nodelay => "nodelay",
            Field::Ssthresh => "ssthresh",
            Field::Cwnd => "cwnd",
            Field::Incr => "incr",
            Field::RmtWnd => "rmt_wnd",
            Field::RxRto => "rx_rto",
            Field::RxSrtt => "rx_srtt",
            Field::RxRttval => "rx_rttval",
            Field::Probe => "probe",
            Field::ProbeWait => "probe_wait",
            Field::TsProbe => "ts_probe",
            Field::TsFlush => "ts_flush",
            Field::Current => "current",
            Field::Updated => "updated",
            Field::Xmit => "xmit",
            Field::TsRecent => "ts_recent",
            Field::TsLastack => "ts_lastack",
        }
    }

    /// Stores `v` truncated to the field's C type, as a C assignment would.
    fn write(self, cb: &mut IKCPCB, v: i64) {
        write_field!(self, cb, v)
    }

    /// [`Field::write`] for a 2.x object.
    fn write_v2(self, cb: &mut IKCPCB2, v: i64) {
        write_field!(self, cb, v)
    }
}

/// A KCP object of one implementation with a recorder behind its callbacks.
/// Released (object, then recorder) on drop.
pub struct Kcp {
    pub api: Api,
    ptr: *mut IKCPCB,
    rec: *mut Recorder,
}

impl Kcp {
    /// `ikcp_create(conv, recorder)` + `ikcp_setoutput(record_output)`.
    pub fn new(api: Api, conv: u32) -> Kcp {
        let rec = Box::into_raw(Box::new(Recorder {
            cc: std::ptr::null_mut(),
            cc_free: None,
            api,
            kcp: std::ptr::null_mut(),
            datagrams: Vec::new(),
            logs: Vec::new(),
            nested: Vec::new(),
            wrong_kcp: 0,
            reentry: Reentry::None,
            output_ret: 0,
        }));
        // SAFETY: plain create; the recorder outlives the object (see Drop).
        let ptr = unsafe { (api.create)(conv, rec.cast()) };
        assert!(!ptr.is_null(), "{}: ikcp_create returned NULL", api.name);
        // SAFETY: `rec` is ours alone; `ptr` is a live object.
        unsafe {
            (*rec).kcp = ptr;
            (api.setoutput)(ptr, Some(record_output as OutputFn));
        }
        Kcp { api, ptr, rec }
    }

    pub fn raw(&self) -> *mut IKCPCB {
        self.ptr
    }

    /// Reads the struct of a 1.x object. Only between calls, never from a callback.
    pub fn with_cb<R>(&self, f: impl FnOnce(&IKCPCB) -> R) -> R {
        assert_eq!(
            self.api.flavour,
            Flavour::V1,
            "with_cb reads the 1.x layout"
        );
        // SAFETY: the object is live and no call into it is in progress.
        f(unsafe { &*self.ptr })
    }

    /// Reads the struct of a 2.x object. Only between calls, never from a callback.
    pub fn with_cb2<R>(&self, f: impl FnOnce(&IKCPCB2) -> R) -> R {
        assert_eq!(
            self.api.flavour,
            Flavour::V2,
            "with_cb2 reads the 2.x layout"
        );
        // SAFETY: as in `with_cb`; the library's objects have the 2.x layout.
        f(unsafe { &*cb2(self.ptr) })
    }

    pub fn fields(&self) -> Fields {
        match self.api.flavour {
            Flavour::V1 => self.with_cb(read_fields),
            Flavour::V2 => self.with_cb2(read_fields_v2),
        }
    }

    pub fn set_field(&self, field: Field, v: i64) {
        // SAFETY: as in `with_cb`; a C program writes these fields the same way.
        unsafe {
            match self.api.flavour {
                Flavour::V1 => field.write(&mut *self.ptr, v),
                Flavour::V2 => field.write_v2(&mut *cb2(self.ptr), v),
            }
        }
    }

    /// Turns the writelog callback on (recording) or off (NULL).
    pub fn set_writelog(&self, on: bool) {
        let cb: Option<WritelogFn> = if on { Some(record_log) } else { None };
        // SAFETY: as in `set_field`.
        unsafe {
            match self.api.flavour {
                Flavour::V1 => (*self.ptr).writelog = cb,
                Flavour::V2 => (*cb2(self.ptr)).writelog = cb,
            }
        }
    }

    /// `user`, `output` and `writelog` as the object holds them now.
    fn callback_fields(&self) -> (*mut c_void, Option<usize>, Option<usize>) {
        match self.api.flavour {
            Flavour::V1 => self.with_cb(|cb| {
                let f = |o: Option<OutputFn>| o.map(|f| f as usize);
                (cb.user, f(cb.output), cb.writelog.map(|f| f as usize))
            }),
            Flavour::V2 => self.with_cb2(|cb| {
                let f = |o: Option<OutputFn>| o.map(|f| f as usize);
                (cb.user, f(cb.output), cb.writelog.map(|f| f as usize))
            }),
        }
    }

    /// Runs `f` with the recorder. Only between calls, never from a callback.
    pub fn with_recorder<R>(&self, f: impl FnOnce(&mut Recorder) -> R) -> R {
        // SAFETY: the recorder is only touched by callbacks during calls into
        // the object, and no call is in progress.
        f(unsafe { &mut *self.rec })
    }

    pub fn set_reentry(&self, r: Reentry) {
        self.with_recorder(|rec| rec.reentry = r)
    }

    pub fn take_datagrams(&self) -> Vec<Vec<u8>> {
        self.with_recorder(|rec| std::mem::take(&mut rec.datagrams))
    }

    pub fn take_logs(&self) -> Vec<Vec<u8>> {
        self.with_recorder(|rec| std::mem::take(&mut rec.logs))
    }

    /// Problems with the callback plumbing itself, as text (empty when fine):
    /// a wrong `kcp` argument, or `user`/`output`/`writelog` fields that no
    /// longer hold what the test stored there.
    pub fn plumbing_errors(&self, writelog_on: bool) -> Vec<String> {
        let mut errs = Vec::new();
        let wrong = self.with_recorder(|r| std::mem::take(&mut r.wrong_kcp));
        if wrong > 0 {
            errs.push(format!(
                "{wrong} callback(s) got a kcp argument that is not the object"
            ));
        }
        let (user, output, writelog) = self.callback_fields();
        if user != self.rec.cast() {
            errs.push(format!("user field is {user:p}, expected {:p}", self.rec));
        }
        if output != Some(record_output as OutputFn as usize) {
            errs.push("output field no longer holds the callback set by ikcp_setoutput".into());
        }
        let want = writelog_on.then_some(record_log as WritelogFn as usize);
        if writelog != want {
            errs.push(format!(
                "writelog field changed (expected set: {writelog_on})"
            ));
        }
        errs
    }

    pub fn send(&self, data: &[u8]) -> i32 {
        self.send_raw(data.as_ptr(), data.len() as c_int)
    }

    /// `ikcp_send` with any pointer/length pair (NULL, negative lengths...).
    pub fn send_raw(&self, ptr: *const u8, len: c_int) -> i32 {
        // SAFETY: callers pass a pointer valid for `len` bytes, or NULL/len<=0.
        unsafe { (self.api.send)(self.ptr, ptr.cast(), len) }
    }

    /// `ikcp_recv` into a fresh buffer of `cap` bytes (or NULL), passing `len`.
    /// Returns the result and the whole buffer, so stray writes show up.
    pub fn recv(&self, len: c_int, cap: usize, null: bool) -> (i32, Vec<u8>) {
        let mut buf = vec![0xA5u8; cap];
        let p = if null {
            std::ptr::null_mut()
        } else {
            buf.as_mut_ptr()
        };
        // SAFETY: callers make `cap` at least |len| when `null` is false.
        let r = unsafe { (self.api.recv)(self.ptr, p.cast(), len) };
        (r, buf)
    }

    /// `ikcp_recv` of one whole message; None when nothing is ready.
    pub fn recv_message(&self) -> Option<Vec<u8>> {
        let n = self.peeksize();
        if n < 0 {
            return None;
        }
        let (r, mut buf) = self.recv(n, n as usize, false);
        assert_eq!(
            r, n,
            "{}: ikcp_recv returned {r} after ikcp_peeksize {n}",
            self.api.name
        );
        buf.truncate(r as usize);
        Some(buf)
    }

    pub fn input(&self, data: &[u8]) -> i32 {
        self.input_sized(data.as_ptr(), data.len() as c_long)
    }

    /// `ikcp_input` with an explicit size (may differ from the buffer's).
    pub fn input_sized(&self, ptr: *const u8, size: c_long) -> i32 {
        // SAFETY: callers keep `size` within the buffer wherever upstream reads it.
        unsafe { (self.api.input)(self.ptr, ptr.cast(), size) }
    }

    pub fn update(&self, now: u32) {
        // SAFETY: live object.
        unsafe { (self.api.update)(self.ptr, now) }
    }

    pub fn check(&self, now: u32) -> u32 {
        // SAFETY: live object.
        unsafe { (self.api.check)(self.ptr, now) }
    }

    pub fn flush(&self) {
        // SAFETY: live object.
        unsafe { (self.api.flush)(self.ptr) }
    }

    pub fn peeksize(&self) -> i32 {
        // SAFETY: live object.
        unsafe { (self.api.peeksize)(self.ptr) }
    }

    pub fn waitsnd(&self) -> i32 {
        // SAFETY: live object.
        unsafe { (self.api.waitsnd)(self.ptr) }
    }

    pub fn setmtu(&self, mtu: c_int) -> i32 {
        // SAFETY: live object.
        unsafe { (self.api.setmtu)(self.ptr, mtu) }
    }

    pub fn interval(&self, interval: c_int) -> i32 {
        // SAFETY: live object.
        unsafe { (self.api.interval)(self.ptr, interval) }
    }

    pub fn wndsize(&self, snd: c_int, rcv: c_int) -> i32 {
        // SAFETY: live object.
        unsafe { (self.api.wndsize)(self.ptr, snd, rcv) }
    }

    pub fn nodelay(&self, nodelay: c_int, interval: c_int, resend: c_int, nc: c_int) -> i32 {
        // SAFETY: live object.
        unsafe { (self.api.nodelay)(self.ptr, nodelay, interval, resend, nc) }
    }

    /// `ikcp_log(kcp, mask, text)` with a text that holds no conversion, so
    /// it needs no variadic arguments (formats have their own test).
    pub fn log(&self, mask: c_int, text: &str) {
        assert!(
            !text.contains('%'),
            "log text must not contain a conversion"
        );
        let text = CString::new(text).expect("log text without NUL");
        // SAFETY: live object; the format consumes no arguments.
        unsafe { (self.api.log)(self.ptr, mask, text.as_ptr()) }
    }

    pub fn getconv(&self, data: &[u8]) -> u32 {
        assert!(data.len() >= 4, "ikcp_getconv reads 4 bytes");
        // SAFETY: at least 4 readable bytes.
        unsafe { (self.api.getconv)(data.as_ptr().cast()) }
    }
}

impl Drop for Kcp {
    fn drop(&mut self) {
        // SAFETY: release once, then free the recorder its callbacks used.
        unsafe {
            (self.api.release)(self.ptr);
            let rec = Box::from_raw(self.rec);
            if let (Some(free), false) = (rec.cc_free, rec.cc.is_null()) {
                free(rec.cc);
            }
        }
    }
}
