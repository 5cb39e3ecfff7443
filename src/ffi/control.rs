//! The block behind a `kcp` pointer, and how calls enter the engine.
//!
//! Re-entrancy: an output or log callback may call back into the API on the
//! same object (loopback demos call `ikcp_input` from `output`). The engine
//! hands itself to the callback host on every datagram, the host publishes a
//! raw pointer to that exact borrow in `active` and passes the same pointer
//! to the callback, and a nested call uses it instead of creating a second,
//! aliasing borrow. `ikcp_release` from inside a callback is
//! deferred until the outermost call returns.

use std::ffi::CString;
use std::mem::offset_of;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::{self, addr_of_mut, NonNull};

use super::alloc::{allocate, deallocate, HookBuf, Release};
#[cfg(feature = "abi2")]
use super::types::IKCPOPS;
use super::types::{IKCPCB, IQUEUEHEAD};
use crate::engine::{tail_fields_by_name, Host, Kcp, LentDatagram, LogMask};
#[cfg(feature = "abi2")]
use crate::engine::{CcEvent, CcOutcome};

/// The engine behind a `kcp` pointer. It *is* the block the program sees:
/// the engine starts with upstream's public scalars in upstream's order,
/// followed by [`CbTail`], so `IKCPCB` fields are the engine's own fields
/// and nothing is copied in or out around calls and callbacks.
pub type Engine = Kcp<HookBuf>;

/// The rest of upstream's `IKCPCB` after its scalars, in its order, then
/// this layer's bookkeeping (after everything a program may touch).
#[repr(C)]
#[derive(Debug)]
pub struct CbTail {
    snd_queue: IQUEUEHEAD,
    rcv_queue: IQUEUEHEAD,
    snd_buf: IQUEUEHEAD,
    rcv_buf: IQUEUEHEAD,
    acklist: *mut u32,
    ackcount: u32,
    ackblock: u32,
    #[cfg(feature = "abi2")]
    ackedlen: u32,
    user: *mut c_void,
    buffer: *mut c_char,
    fastresend: c_int,
    fastlimit: c_int,
    nocwnd: c_int,
    stream: c_int,
    #[cfg(feature = "abi2")]
    ccops: *const IKCPOPS,
    #[cfg(feature = "abi2")]
    congest: *mut c_void,
    logmask: c_int,
    output: Option<unsafe extern "C" fn(*const c_char, c_int, *mut IKCPCB, *mut c_void) -> c_int>,
    writelog: Option<unsafe extern "C" fn(*const c_char, *mut IKCPCB, *mut c_void)>,
    // Not part of IKCPCB.
    /// The engine borrow of the call currently running a callback, if any.
    active: *mut Engine,
    /// Calls into this object currently on the stack.
    depth: u32,
    release_pending: bool,
    release: Release,
    /// 1.x keeps ACK progress in no field; the engine still counts it.
    #[cfg(not(feature = "abi2"))]
    ackedlen: u32,
}

tail_fields_by_name!(
    CbTail,
    CbTail {
        snd_queue: empty_head(),
        rcv_queue: empty_head(),
        snd_buf: empty_head(),
        rcv_buf: empty_head(),
        acklist: ptr::null_mut(),
        ackcount: 0,
        ackblock: 0,
        ackedlen: 0,
        user: ptr::null_mut(),
        buffer: ptr::null_mut(),
        fastresend: 0,
        fastlimit: crate::engine::FASTACK_LIMIT,
        nocwnd: 0,
        stream: 0,
        #[cfg(feature = "abi2")]
        ccops: ptr::null(),
        #[cfg(feature = "abi2")]
        congest: ptr::null_mut(),
        logmask: 0,
        output: None,
        writelog: None,
        active: ptr::null_mut(),
        depth: 0,
        release_pending: false,
        release: Release::Libc,
    }
);

/// A list head to be made empty (self-linked) once the block is in place.
fn empty_head() -> IQUEUEHEAD {
    IQUEUEHEAD {
        next: ptr::null_mut(),
        prev: ptr::null_mut(),
    }
}

/// Checks, at compile time, that every `IKCPCB` field (the header's
/// struct) sits where the engine keeps that value.
macro_rules! same_offsets {
    (scalars: $($s:ident = $e:ident),* ; tail: $($t:ident),* $(,)?) => {
        const _: () = {
            $(assert!(offset_of!(IKCPCB, $s) == offset_of!(Engine, $e));)*
            $(assert!(offset_of!(IKCPCB, $t) == offset_of!(Engine, tail) + offset_of!(CbTail, $t));)*
            assert!(size_of::<IKCPCB>() <= offset_of!(Engine, tail) + offset_of!(CbTail, active));
        };
    };
}

same_offsets!(
    scalars: conv = conv, mtu = mtu, mss = mss, state = state, snd_una = snd_una,
    snd_nxt = snd_nxt, rcv_nxt = rcv_nxt, ts_recent = ts_recent, ts_lastack = ts_lastack,
    ssthresh = ssthresh, rx_rttval = rx_rttval, rx_srtt = rx_srtt, rx_rto = rx_rto,
    rx_minrto = rx_minrto, snd_wnd = snd_wnd, rcv_wnd = rcv_wnd, rmt_wnd = rmt_wnd,
    cwnd = cwnd, probe = probe, current = current, interval = interval, ts_flush = ts_flush,
    xmit = xmit, nrcv_buf = shown_nrcv_buf, nsnd_buf = shown_nsnd_buf,
    nrcv_que = shown_nrcv_que, nsnd_que = shown_nsnd_que, nodelay = nodelay,
    updated = updated, ts_probe = ts_probe, probe_wait = probe_wait, dead_link = dead_link,
    incr = incr;
    tail: snd_queue, rcv_queue, snd_buf, rcv_buf, acklist, ackcount, ackblock, user, buffer,
    fastresend, fastlimit, nocwnd, stream, logmask, output, writelog,
);

#[cfg(feature = "abi2")]
same_offsets!(scalars: conv = conv; tail: ackedlen, ccops, congest);

/// Allocates and initialises a control block; NULL if memory is refused.
pub fn create(conv: u32, user: *mut c_void) -> *mut IKCPCB {
    let size = std::mem::size_of::<Engine>();
    let Some((raw, release)) = allocate(size) else {
        return ptr::null_mut();
    };
    let block = raw.as_ptr().cast::<Engine>();
    if (block as usize) % std::mem::align_of::<Engine>() != 0 {
        // SAFETY: just allocated with this `release`, never used.
        unsafe { deallocate(raw, release) };
        return ptr::null_mut();
    }
    let mut engine = Engine::with_payload(conv);
    #[cfg(feature = "abi2")]
    engine.set_flavour(crate::engine::Flavour::V2);
    engine.tail.user = user;
    engine.tail.release = release;
    engine.publish_counts();
    // SAFETY: `block` is a fresh, suitably aligned allocation of
    // `size_of::<Engine>()` bytes; the list heads point at themselves only
    // once the engine is in its final place.
    unsafe {
        ptr::write(block, engine);
        for head in [
            addr_of_mut!((*block).tail.snd_queue),
            addr_of_mut!((*block).tail.rcv_queue),
            addr_of_mut!((*block).tail.snd_buf),
            addr_of_mut!((*block).tail.rcv_buf),
        ] {
            (*head).next = head;
            (*head).prev = head;
        }
    }
    block.cast::<IKCPCB>()
}

/// Frees a control block now, or when the outermost call on it returns.
///
/// # Safety
/// `kcp` must come from [`create`] and not have been released.
pub unsafe fn release(kcp: *mut IKCPCB) {
    // SAFETY: live block (caller contract). Like upstream 2.x, the
    // controller's `release` runs first, as a callback of this call.
    #[cfg(feature = "abi2")]
    unsafe {
        enter(kcp, |engine, host| host.release_controller(engine));
    }
    let block = kcp.cast::<Engine>();
    // SAFETY: `block` is a live block (caller contract); fields accessed by raw pointer.
    unsafe {
        if (*block).tail.depth > 0 {
            (*block).tail.release_pending = true;
            return;
        }
        destroy(block);
    }
}

/// # Safety
/// `block` is live and no call is running on it.
unsafe fn destroy(block: *mut Engine) {
    // SAFETY: per contract; the block was written by `create` and is dropped once.
    unsafe {
        let release = (*block).tail.release;
        ptr::drop_in_place(block);
        deallocate(NonNull::new_unchecked(block.cast::<u8>()), release);
    }
}

/// The engine a call on `kcp` works on: the block itself, or, while a
/// callback of an outer call runs, that call's borrow of it.
///
/// # Safety
/// `kcp` must come from [`create`], not released, and not NULL.
#[inline(always)]
unsafe fn current_engine(kcp: *const IKCPCB) -> *mut Engine {
    let block = kcp.cast::<Engine>().cast_mut();
    // SAFETY: per contract; one field read through the raw pointer.
    let active = unsafe { (*block).tail.active };
    if active.is_null() {
        block
    } else {
        active
    }
}

/// Runs `f` on the engine behind `kcp`. The program's field writes are
/// already the engine's; only the counts are published after.
///
/// # Safety
/// `kcp` must come from [`create`], not released, and not NULL.
pub unsafe fn enter<R>(kcp: *mut IKCPCB, f: impl FnOnce(&mut Engine, &mut CallbackHost) -> R) -> R {
    // SAFETY: live block (caller contract). When a callback of an outer
    // call is running, `active` points at that call's engine borrow, which
    // is not in use until the callback returns; otherwise nothing borrows
    // the engine. No reference into the block outlives this call.
    unsafe {
        let engine = current_engine(kcp);
        (*engine).tail.depth += 1;
        let mut host = CallbackHost;
        // Bookkeeping must survive a panic; it is re-raised for the caller's guard.
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut *engine, &mut host)));
        (*engine).publish_counts();
        (*engine).tail.depth -= 1;
        if (*engine).tail.depth == 0 && (*engine).tail.release_pending {
            destroy(engine);
        }
        result.unwrap_or_else(|panic| resume_unwind(panic))
    }
}

/// Whether the object has no message waiting: `ikcp_recv`'s first test,
/// answered without entering (nothing changes).
///
/// # Safety
/// `kcp` must come from [`create`], not released, and not NULL.
pub unsafe fn receive_queue_is_empty(kcp: *const IKCPCB) -> bool {
    // SAFETY: `kcp` is live (caller contract). During a callback the engine
    // is the outer call's, which that call does not touch until the
    // callback returns; a shared read of it is fine.
    unsafe { (*current_engine(kcp)).recv_queue_len() == 0 }
}

/// Delivers datagrams and log lines to the program's callbacks. The
/// callbacks receive the engine itself as the `kcp` pointer.
pub struct CallbackHost;

impl CallbackHost {
    /// Shows the program the current counts, runs `call` (which calls into
    /// C) with the object, and lets it re-enter.
    fn call_out(&mut self, engine: &mut Engine, call: impl FnOnce(*mut IKCPCB)) {
        engine.publish_counts();
        let me: *mut Engine = engine;
        // SAFETY: `me` is the borrow the running call holds, turned into the
        // one pointer C code uses: it is passed to `call` and published in
        // `active`, so re-entrant calls and field accesses during the
        // callback all go through it (none aliases a live reference), and
        // the compiler must assume the callback reads and writes the block.
        unsafe {
            let previous = (*me).tail.active;
            (*me).tail.active = me;
            call(me.cast::<IKCPCB>());
            (*me).tail.active = previous;
        }
    }
}

/// `ikcp_setcc` and the controller's life cycle (2.x). The table is read
/// from `kcp->ccops` each time, as upstream does: a program may also assign
/// that field itself.
#[cfg(feature = "abi2")]
impl CallbackHost {
    /// The installed table, if any.
    fn ops(engine: &Engine) -> Option<IKCPOPS> {
        // SAFETY: `ccops` is NULL or the program's table, which stays valid
        // while installed (ikcp_setcc's contract).
        unsafe { engine.tail.ccops.as_ref().copied() }
    }

    /// Calls the installed controller's `release`, if it has one.
    pub fn release_controller(&mut self, engine: &mut Engine) {
        if let Some(release) = Self::ops(engine).and_then(|ops| ops.release) {
            // SAFETY: the program's hook, called with the object.
            self.call_out(engine, |kcp| unsafe { release(kcp) });
        }
    }

    /// `ikcp_setcc`: release the old controller, clear `congest`, install
    /// `ops` and run its `init`; a refusing `init` uninstalls it again.
    /// Without a controller afterwards, `cwnd` and `incr` are made
    /// consistent for the built-in algorithm.
    pub fn set_controller(&mut self, engine: &mut Engine, ops: *const IKCPOPS) -> c_int {
        self.release_controller(engine);
        engine.tail.congest = ptr::null_mut();
        engine.tail.ccops = ops;
        let Some(table) = Self::ops(engine) else {
            engine.cwnd = engine.cwnd.max(1);
            engine.incr = engine.cwnd.wrapping_mul(engine.mss).max(engine.mss);
            return 0;
        };
        let Some(init) = table.init else {
            return 0;
        };
        let mut status = 0;
        // SAFETY: the program's hook, called with the object.
        self.call_out(engine, |kcp| status = unsafe { init(kcp) });
        if status >= 0 {
            return 0;
        }
        engine.tail.ccops = ptr::null();
        engine.tail.congest = ptr::null_mut();
        engine.cwnd = engine.cwnd.max(1);
        engine.incr = engine.cwnd.wrapping_mul(engine.mss);
        -1
    }
}

/// A C `IKCPOPS` table as the engine's congestion controller: each hook
/// reads the table from `kcp->ccops` when reached (NULL hooks leave the
/// built-in behaviour), and runs like any callback: it sees and may change
/// every field, and may re-enter.
#[cfg(feature = "abi2")]
impl CallbackHost {
    fn run_hook(&mut self, engine: &mut Engine, event: CcEvent) -> CcOutcome {
        let Some(ops) = Self::ops(engine) else {
            return CcOutcome::NotSet;
        };
        // SAFETY (every call below): the program's hook, with upstream's
        // arguments, called on the live object.
        match event {
            CcEvent::Ack {
                acked_segs,
                acked_bytes,
                prior_in_flight,
            } => ops.on_ack.map(|f| {
                self.call_out(engine, |k| unsafe {
                    f(k, acked_segs, acked_bytes, prior_in_flight)
                })
            }),
            CcEvent::FastRetransmit {
                count,
                in_flight,
                prior_cwnd,
            } => ops
                .on_fast_retransmit
                .map(|f| self.call_out(engine, |k| unsafe { f(k, count, in_flight, prior_cwnd) })),
            CcEvent::Timeout { prior_cwnd } => ops
                .on_timeout
                .map(|f| self.call_out(engine, |k| unsafe { f(k, prior_cwnd) })),
            CcEvent::Tick => ops
                .on_tick
                .map(|f| self.call_out(engine, |k| unsafe { f(k) })),
            CcEvent::AppLimited { in_flight } => ops
                .on_app_limited
                .map(|f| self.call_out(engine, |k| unsafe { f(k, in_flight) })),
            CcEvent::Rtt { rtt } => ops
                .on_rtt
                .map(|f| self.call_out(engine, |k| unsafe { f(k, rtt) })),
            CcEvent::PktSent {
                sn,
                ts,
                len,
                in_flight,
                xmit,
            } => ops
                .on_pkt_sent
                .map(|f| self.call_out(engine, |k| unsafe { f(k, sn, ts, len, in_flight, xmit) })),
            CcEvent::PktAcked {
                sn,
                ts,
                len,
                rtt,
                xmit,
            } => ops
                .on_pkt_acked
                .map(|f| self.call_out(engine, |k| unsafe { f(k, sn, ts, len, rtt, xmit) })),
            CcEvent::Pacing => {
                return match ops.pacing_rate {
                    Some(f) => {
                        let mut budget = 0;
                        self.call_out(engine, |k| budget = unsafe { f(k) });
                        CcOutcome::Budget(budget)
                    }
                    None => CcOutcome::NotSet,
                };
            }
        }
        .map_or(CcOutcome::NotSet, |()| CcOutcome::Done)
    }
}

impl Host<HookBuf> for CallbackHost {
    #[cfg(feature = "abi2")]
    #[inline(always)]
    fn has_controller(&self, engine: &Engine) -> bool {
        !engine.tail.ccops.is_null()
    }

    #[cfg(feature = "abi2")]
    fn congestion(&mut self, engine: &mut Engine, event: CcEvent) -> CcOutcome {
        self.run_hook(engine, event)
    }

    fn transmit(&mut self, engine: &mut Engine, datagram: &[u8]) {
        self.call_out(engine, |kcp| {
            // SAFETY: `kcp` is live; the output pointer and `user` are the
            // program's, called with a valid buffer of `len` bytes as upstream does.
            unsafe {
                if let Some(output) = (*kcp).output {
                    output(
                        datagram.as_ptr().cast::<c_char>(),
                        datagram.len() as c_int,
                        kcp,
                        (*kcp).user,
                    );
                }
            }
        });
    }

    fn transmit_lent(&mut self, engine: &mut Engine, _sn: u32, datagram: LentDatagram) {
        let (bytes, len) = (datagram.ptr, datagram.len);
        self.call_out(engine, |kcp| {
            // SAFETY: `kcp` is live. `bytes` points into the segment's own
            // buffer, which the engine keeps allocated and unwritten until
            // this method returns (`Host::transmit_lent`'s contract), even if
            // the callback re-enters and acknowledges or resends the segment.
            unsafe {
                if let Some(output) = (*kcp).output {
                    output(bytes.cast::<c_char>(), len as c_int, kcp, (*kcp).user);
                }
            }
        });
    }

    fn wants_log(&self, engine: &Engine) -> bool {
        engine.tail.writelog.is_some()
    }

    fn log(&mut self, engine: &mut Engine, _mask: LogMask, line: &str) {
        let Ok(line) = CString::new(line) else {
            return;
        };
        self.call_out(engine, |kcp| {
            // SAFETY: `kcp` is live; the log line is NUL-terminated and
            // outlives the call.
            unsafe {
                if let Some(writelog) = (*kcp).writelog {
                    writelog(line.as_ptr(), kcp, (*kcp).user);
                }
            }
        });
    }
}
