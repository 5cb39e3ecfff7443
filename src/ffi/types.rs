//! `#[repr(C)]` mirrors of upstream's public structs, with identical layout.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

/// Upstream's 32-bit unsigned integer.
pub type IUINT32 = u32;
/// Upstream's 32-bit signed integer.
pub type IINT32 = i32;

/// Intrusive list head. The four queue heads in [`IKCPCB`] are kept as valid
/// empty lists: the queues themselves live inside the engine.
#[repr(C)]
#[derive(Debug)]
pub struct IQUEUEHEAD {
    pub next: *mut IQUEUEHEAD,
    pub prev: *mut IQUEUEHEAD,
}

/// Upstream's segment struct. Declared for source compatibility; this
/// library never hands one out.
#[repr(C)]
pub struct IKCPSEG {
    pub node: IQUEUEHEAD,
    pub conv: IUINT32,
    pub cmd: IUINT32,
    pub frg: IUINT32,
    pub wnd: IUINT32,
    pub ts: IUINT32,
    pub sn: IUINT32,
    pub una: IUINT32,
    pub len: IUINT32,
    pub resendts: IUINT32,
    pub rto: IUINT32,
    pub fastack: IUINT32,
    pub xmit: IUINT32,
    pub data: [c_char; 1],
}

/// The KCP control block, laid out exactly as upstream's.
///
/// Fields are live: they are the library's own state, so values the program
/// writes take effect at once and values it reads are current after every
/// call and inside callbacks. `nrcv_buf`, `nsnd_buf`, `nrcv_que`,
/// `nsnd_que` and `ackcount` are counts the library keeps elsewhere and
/// stores here before each callback and when each call returns: writes to
/// them are overwritten. `snd_queue`, `rcv_queue`, `snd_buf` and `rcv_buf`
/// are always empty lists, and `acklist` and `buffer` are always NULL: the
/// data lives in the engine's own structures.
#[repr(C)]
pub struct IKCPCB {
    pub conv: IUINT32,
    pub mtu: IUINT32,
    pub mss: IUINT32,
    pub state: IUINT32,
    pub snd_una: IUINT32,
    pub snd_nxt: IUINT32,
    pub rcv_nxt: IUINT32,
    pub ts_recent: IUINT32,
    pub ts_lastack: IUINT32,
    pub ssthresh: IUINT32,
    pub rx_rttval: IINT32,
    pub rx_srtt: IINT32,
    pub rx_rto: IINT32,
    pub rx_minrto: IINT32,
    pub snd_wnd: IUINT32,
    pub rcv_wnd: IUINT32,
    pub rmt_wnd: IUINT32,
    pub cwnd: IUINT32,
    pub probe: IUINT32,
    pub current: IUINT32,
    pub interval: IUINT32,
    pub ts_flush: IUINT32,
    pub xmit: IUINT32,
    pub nrcv_buf: IUINT32,
    pub nsnd_buf: IUINT32,
    pub nrcv_que: IUINT32,
    pub nsnd_que: IUINT32,
    pub nodelay: IUINT32,
    pub updated: IUINT32,
    pub ts_probe: IUINT32,
    pub probe_wait: IUINT32,
    pub dead_link: IUINT32,
    pub incr: IUINT32,
    pub snd_queue: IQUEUEHEAD,
    pub rcv_queue: IQUEUEHEAD,
    pub snd_buf: IQUEUEHEAD,
    pub rcv_buf: IQUEUEHEAD,
    pub acklist: *mut IUINT32,
    pub ackcount: IUINT32,
    pub ackblock: IUINT32,
    /// Payload bytes acknowledged by the `ikcp_input` call in progress (2.x).
    #[cfg(feature = "abi2")]
    pub ackedlen: IUINT32,
    pub user: *mut c_void,
    pub buffer: *mut c_char,
    pub fastresend: c_int,
    pub fastlimit: c_int,
    pub nocwnd: c_int,
    pub stream: c_int,
    /// The congestion controller installed with `ikcp_setcc`, NULL for the
    /// built-in algorithm (2.x).
    #[cfg(feature = "abi2")]
    pub ccops: *const IKCPOPS,
    /// The controller's own state, for it to set (NULL after `ikcp_setcc`
    /// until its `init` sets it) (2.x).
    #[cfg(feature = "abi2")]
    pub congest: *mut c_void,
    pub logmask: c_int,
    /// Sends one datagram of `len` bytes; the return value is ignored.
    pub output: Option<
        unsafe extern "C" fn(
            buf: *const c_char,
            len: c_int,
            kcp: *mut IKCPCB,
            user: *mut c_void,
        ) -> c_int,
    >,
    /// Receives one NUL-terminated log line.
    pub writelog:
        Option<unsafe extern "C" fn(log: *const c_char, kcp: *mut IKCPCB, user: *mut c_void)>,
}

/// Upstream's typedef.
pub type ikcpcb = IKCPCB;

/// A congestion controller for `ikcp_setcc` (2.x): a table of hooks, each
/// of which may be NULL. The three window updates (`on_ack`,
/// `on_fast_retransmit`, `on_timeout`) replace the built-in arithmetic where
/// they are set; the others only inform, except `pacing_rate`. While a table
/// is installed the congestion window applies even with `nocwnd = 1`. Hooks
/// run inside library calls: they may read and write the object's public
/// fields (`cwnd`, `ssthresh`, `incr`, `congest`...), the library sees the
/// writes when the hook returns, and they may call the API on the object.
#[cfg(feature = "abi2")]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IKCPOPS {
    /// For the program's own use; never read by the library.
    pub name: *const c_char,
    /// Called by `ikcp_setcc` after installing the table; a negative return
    /// uninstalls it again and makes `ikcp_setcc` return -1.
    pub init: Option<unsafe extern "C" fn(kcp: *mut ikcpcb) -> c_int>,
    /// Called when the table is replaced by `ikcp_setcc` and by `ikcp_release`.
    pub release: Option<unsafe extern "C" fn(kcp: *mut ikcpcb)>,
    /// At the end of an `ikcp_input` that moved `snd_una`: `acked_segs`
    /// segments (how far it moved), `acked_bytes` payload bytes acknowledged
    /// by this input (`ackedlen`), `prior_in_flight` segments in flight
    /// before it. Replaces the built-in window growth.
    pub on_ack: Option<
        unsafe extern "C" fn(
            kcp: *mut ikcpcb,
            acked_segs: IUINT32,
            acked_bytes: IUINT32,
            prior_in_flight: IUINT32,
        ),
    >,
    /// At the end of a flush that fast-retransmitted `fast_retrans`
    /// segments, with `inflight` segments in flight and `prior_cwnd` the
    /// `cwnd` when the flush began. Replaces the built-in reduction.
    pub on_fast_retransmit: Option<
        unsafe extern "C" fn(
            kcp: *mut ikcpcb,
            fast_retrans: IUINT32,
            inflight: IUINT32,
            prior_cwnd: IUINT32,
        ),
    >,
    /// At the end of a flush that retransmitted on timeout; `prior_cwnd` is
    /// the `cwnd` when the flush began. Replaces the built-in collapse.
    pub on_timeout: Option<unsafe extern "C" fn(kcp: *mut ikcpcb, prior_cwnd: IUINT32)>,
    /// When a flush begins.
    pub on_tick: Option<unsafe extern "C" fn(kcp: *mut ikcpcb)>,
    /// During a flush whose send queue is empty, when fewer than the
    /// effective window's segments (`inflight`) are in flight.
    pub on_app_limited: Option<unsafe extern "C" fn(kcp: *mut ikcpcb, inflight: IUINT32)>,
    /// After each RTT sample (ms) has updated the RTO.
    pub on_rtt: Option<unsafe extern "C" fn(kcp: *mut ikcpcb, rtt: IINT32)>,
    /// Before segment `sn` (`len` payload bytes, transmission `xmit`) goes
    /// into the datagram, stamped `ts`, with `inflight` segments in flight.
    pub on_pkt_sent: Option<
        unsafe extern "C" fn(
            kcp: *mut ikcpcb,
            sn: IUINT32,
            ts: IUINT32,
            len: IUINT32,
            inflight: IUINT32,
            xmit: IUINT32,
        ),
    >,
    /// When segment `sn` leaves the send buffer acknowledged: by its own ACK
    /// (`rtt` its age in ms, -1 when its stamp is in the future) or by a
    /// cumulative `una` (`rtt` = -1).
    pub on_pkt_acked: Option<
        unsafe extern "C" fn(
            kcp: *mut ikcpcb,
            sn: IUINT32,
            ts: IUINT32,
            len: IUINT32,
            rtt: IINT32,
            xmit: IUINT32,
        ),
    >,
    /// For the program's own use; never called by the library.
    pub get_info: Option<
        unsafe extern "C" fn(kcp: *mut ikcpcb, buf: *mut c_void, bufsize: IUINT32) -> IUINT32,
    >,
    /// When a flush begins, after `on_tick`: the payload bytes it may send,
    /// read as a signed number (negative: no limit). A segment larger than
    /// what is left ends the flush's sending.
    pub pacing_rate: Option<unsafe extern "C" fn(kcp: *mut ikcpcb) -> IUINT32>,
}

/// Log mask: datagrams handed to `output`.
pub const IKCP_LOG_OUTPUT: c_int = 1;
/// Log mask: datagrams passed to `ikcp_input`.
pub const IKCP_LOG_INPUT: c_int = 2;
/// Log mask: reserved (never emitted).
pub const IKCP_LOG_SEND: c_int = 4;
/// Log mask: segments consumed by `ikcp_recv`.
pub const IKCP_LOG_RECV: c_int = 8;
/// Log mask: data segments received.
pub const IKCP_LOG_IN_DATA: c_int = 16;
/// Log mask: acknowledgements received.
pub const IKCP_LOG_IN_ACK: c_int = 32;
/// Log mask: window questions received.
pub const IKCP_LOG_IN_PROBE: c_int = 64;
/// Log mask: window answers received.
pub const IKCP_LOG_IN_WINS: c_int = 128;
/// Log mask: reserved (never emitted).
pub const IKCP_LOG_OUT_DATA: c_int = 256;
/// Log mask: reserved (never emitted).
pub const IKCP_LOG_OUT_ACK: c_int = 512;
/// Log mask: reserved (never emitted).
pub const IKCP_LOG_OUT_PROBE: c_int = 1024;
/// Log mask: reserved (never emitted).
pub const IKCP_LOG_OUT_WINS: c_int = 2048;
