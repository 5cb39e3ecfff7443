//! The block behind a `kcp` pointer, and how calls enter the engine.
//!
//! Re-entrancy: an output or log callback may call back into the API on the
//! same object (loopback demos call `ikcp_input` from `output`). The engine
//! hands itself to the callback host on every datagram, the host publishes a
//! raw pointer to that exact borrow in `active`, and a nested call uses it
//! instead of creating a second, aliasing borrow. No reference into the
//! block is held while C code runs. `ikcp_release` from inside a callback is
//! deferred until the outermost call returns.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::{self, addr_of, addr_of_mut, NonNull};

use super::alloc::{allocate, deallocate, HookBuf, Release};
use super::types::IKCPCB;
#[cfg(feature = "abi2")]
use super::types::IKCPOPS;
#[cfg(feature = "abi2")]
use crate::engine::{CcEvent, CcOutcome};
use crate::engine::{Host, Kcp, LogMask};

pub type Engine = Kcp<HookBuf>;

#[repr(C)]
pub struct Control {
    /// First, so that a `*mut IKCPCB` is also a `*mut Control`.
    cb: IKCPCB,
    engine: Engine,
    /// The engine borrow of the call currently running a callback, if any.
    active: *mut Engine,
    /// Calls into this object currently on the stack.
    depth: u32,
    release_pending: bool,
    release: Release,
}

/// Declares the fields a program may write (they flow both ways) once, and
/// derives both copy directions from that one list.
macro_rules! shared_fields {
    ($($field:ident),* $(,)?) => {
        /// Copies what the program may have written into the engine.
        fn sync_in(cb: &IKCPCB, k: &mut Engine) {
            $(k.$field = cb.$field;)*
            #[cfg(feature = "abi2")]
            {
                k.ackedlen = cb.ackedlen;
            }
        }

        /// Publishes the engine's state to the program.
        fn sync_out(k: &Engine, cb: &mut IKCPCB) {
            $(cb.$field = k.$field;)*
            #[cfg(feature = "abi2")]
            {
                cb.ackedlen = k.ackedlen;
            }
            // Engine-owned: derived from the engine's queues and windows.
            cb.snd_una = k.snd_una;
            cb.snd_nxt = k.snd_nxt;
            cb.rcv_nxt = k.rcv_nxt;
            cb.nrcv_buf = k.nrcv_buf();
            cb.nsnd_buf = k.nsnd_buf();
            cb.nrcv_que = k.nrcv_que();
            cb.nsnd_que = k.nsnd_que();
            cb.ackcount = k.ackcount();
            cb.ackblock = k.ackblock;
        }
    };
}

shared_fields!(
    conv, mtu, mss, state, ts_recent, ts_lastack, ssthresh, rx_rttval, rx_srtt, rx_rto, rx_minrto,
    snd_wnd, rcv_wnd, rmt_wnd, cwnd, probe, current, interval, ts_flush, xmit, nodelay, updated,
    ts_probe, probe_wait, dead_link, incr, fastresend, fastlimit, nocwnd, stream, logmask,
);

/// Allocates and initialises a control block; NULL if memory is refused.
pub fn create(conv: u32, user: *mut std::os::raw::c_void) -> *mut IKCPCB {
    let size = std::mem::size_of::<Control>();
    let Some((raw, release)) = allocate(size) else {
        return ptr::null_mut();
    };
    let ctl = raw.as_ptr().cast::<Control>();
    if (ctl as usize) % std::mem::align_of::<Control>() != 0 {
        // SAFETY: just allocated with this `release`, never used.
        unsafe { deallocate(raw, release) };
        return ptr::null_mut();
    }
    #[allow(unused_mut)]
    let mut engine = Engine::with_payload(conv);
    #[cfg(feature = "abi2")]
    engine.set_flavour(crate::engine::Flavour::V2);
    // SAFETY: `ctl` is a fresh, suitably aligned allocation of `size_of::<Control>()` bytes.
    unsafe {
        ptr::write(
            ctl,
            Control {
                cb: blank_cb(user),
                engine,
                active: ptr::null_mut(),
                depth: 0,
                release_pending: false,
                release,
            },
        );
        let cb = addr_of_mut!((*ctl).cb);
        for head in [
            addr_of_mut!((*cb).snd_queue),
            addr_of_mut!((*cb).rcv_queue),
            addr_of_mut!((*cb).snd_buf),
            addr_of_mut!((*cb).rcv_buf),
        ] {
            (*head).next = head;
            (*head).prev = head;
        }
        sync_out(&(*ctl).engine, &mut *cb);
        cb
    }
}

fn blank_cb(user: *mut std::os::raw::c_void) -> IKCPCB {
    // SAFETY: every field of IKCPCB is an integer, a raw pointer or an
    // `Option` of a function pointer, for all of which all-zero bytes are a
    // valid value (0, NULL, None). `create` then fills in the real values.
    let mut cb: IKCPCB = unsafe { std::mem::zeroed() };
    cb.user = user;
    cb
}

/// Frees a control block now, or when the outermost call on it returns.
///
/// # Safety
/// `kcp` must come from [`create`] and not have been released.
pub unsafe fn release(kcp: *mut IKCPCB) {
    let ctl = kcp.cast::<Control>();
    // SAFETY: live block (caller contract). Like upstream 2.x, the
    // controller's `release` runs first, as a callback of this call.
    #[cfg(feature = "abi2")]
    unsafe {
        enter(kcp, |engine, host| host.release_controller(engine));
    }
    // SAFETY: `ctl` is a live block (caller contract); fields accessed by raw pointer.
    unsafe {
        if (*ctl).depth > 0 {
            (*ctl).release_pending = true;
            return;
        }
        destroy(ctl);
    }
}

/// # Safety
/// `ctl` is live and no call is running on it.
unsafe fn destroy(ctl: *mut Control) {
    // SAFETY: per contract; the block was written by `create` and is dropped once.
    unsafe {
        let release = (*ctl).release;
        ptr::drop_in_place(ctl);
        deallocate(NonNull::new_unchecked(ctl.cast::<u8>()), release);
    }
}

/// Runs `f` on the engine behind `kcp`, with the program's field writes
/// applied before and the engine's state published after.
///
/// # Safety
/// `kcp` must come from [`create`], not released, and not NULL.
pub unsafe fn enter<R>(kcp: *mut IKCPCB, f: impl FnOnce(&mut Engine, &mut CallbackHost) -> R) -> R {
    let ctl = kcp.cast::<Control>();
    // SAFETY: `ctl` is live (caller contract). When a callback of an outer
    // call is running, `active` points at that call's engine borrow, which is
    // not in use until the callback returns; otherwise nothing borrows the
    // engine. The `cb` references are short-lived and no other reference to
    // `cb` exists (outer calls only hold raw pointers while C runs).
    unsafe {
        let engine: *mut Engine = if (*ctl).active.is_null() {
            addr_of_mut!((*ctl).engine)
        } else {
            (*ctl).active
        };
        sync_in(&*kcp, &mut *engine);
        (*ctl).depth += 1;
        let mut host = CallbackHost { kcp };
        // Bookkeeping must survive a panic; it is re-raised for the caller's guard.
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut *engine, &mut host)));
        sync_out(&*engine, &mut *kcp);
        (*ctl).depth -= 1;
        if (*ctl).depth == 0 && (*ctl).release_pending {
            destroy(ctl);
        }
        result.unwrap_or_else(|panic| resume_unwind(panic))
    }
}

/// Whether the object has no message waiting: `ikcp_recv`'s first test,
/// answered without the field copies of [`enter`] (nothing changes, and no
/// program-writable field is read).
///
/// # Safety
/// `kcp` must come from [`create`], not released, and not NULL.
pub unsafe fn receive_queue_is_empty(kcp: *const IKCPCB) -> bool {
    let ctl = kcp.cast::<Control>();
    // SAFETY: `ctl` is live (caller contract). During a callback `active` is
    // the outer call's engine, which that call does not touch until the
    // callback returns; a shared read of it is fine.
    unsafe {
        let engine: *const Engine = if (*ctl).active.is_null() {
            addr_of!((*ctl).engine)
        } else {
            (*ctl).active
        };
        (*engine).recv_queue_len() == 0
    }
}

/// Delivers datagrams and log lines to the program's callbacks.
pub struct CallbackHost {
    kcp: *mut IKCPCB,
}

impl CallbackHost {
    /// Publishes `engine` to the program, runs `call` (which calls into C),
    /// then takes back whatever the program wrote.
    fn call_out(&mut self, engine: &mut Engine, call: impl FnOnce(*mut IKCPCB)) {
        let kcp = self.kcp;
        let ctl = kcp.cast::<Control>();
        // SAFETY: `kcp` is live for the duration of the call that owns this
        // host. `engine` is the borrow that call holds; its raw pointer is
        // published in `active` so that re-entrant calls reuse this borrow
        // rather than alias it, and it is not touched until `call` returns.
        unsafe {
            publish_for_callback(engine, kcp);
            let previous = (*ctl).active;
            (*ctl).active = engine as *mut Engine;
            call(kcp);
            (*ctl).active = previous;
            absorb_after_callback(kcp, engine);
        }
    }
}

/// Before C code runs inside a call (output, writelog, a controller hook):
/// makes every public field show the engine's current state.
///
/// # Safety
/// `kcp` is live and no reference into its block exists.
unsafe fn publish_for_callback(engine: &Engine, kcp: *mut IKCPCB) {
    // SAFETY: per contract.
    unsafe { sync_out(engine, &mut *kcp) }
}

/// After that C code returned: takes into the engine whatever it wrote to
/// the public fields (`cwnd`, `ssthresh`, `incr`, settings...).
///
/// # Safety
/// `kcp` is live and no reference into its block exists.
unsafe fn absorb_after_callback(kcp: *mut IKCPCB, engine: &mut Engine) {
    // SAFETY: per contract.
    unsafe { sync_in(&*kcp, engine) }
}

/// `ikcp_setcc` and the controller's life cycle (2.x). The table is read
/// from `kcp->ccops` each time, as upstream does: a program may also assign
/// that field itself.
#[cfg(feature = "abi2")]
impl CallbackHost {
    /// The installed table, if any.
    fn ops(&self) -> Option<&IKCPOPS> {
        // SAFETY: `kcp` is live; `ccops` is NULL or the program's table,
        // which stays valid while installed (ikcp_setcc's contract).
        unsafe { (*self.kcp).ccops.as_ref() }
    }

    /// Calls the installed controller's `release`, if it has one.
    pub fn release_controller(&mut self, engine: &mut Engine) {
        if let Some(release) = self.ops().and_then(|ops| ops.release) {
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
        let kcp = self.kcp;
        // SAFETY: `kcp` is live; plain writes to the program-visible block,
        // which `call_out` and `enter` copy into the engine afterwards.
        unsafe {
            (*kcp).congest = ptr::null_mut();
            (*kcp).ccops = ops;
        }
        let Some(table) = self.ops() else {
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
        // SAFETY: `kcp` is live.
        unsafe {
            (*kcp).ccops = ptr::null();
            (*kcp).congest = ptr::null_mut();
        }
        engine.cwnd = engine.cwnd.max(1);
        engine.incr = engine.cwnd.wrapping_mul(engine.mss);
        -1
    }
}

/// A C `IKCPOPS` table as the engine's congestion controller: each hook
/// reads the table from `kcp->ccops` when reached (NULL hooks leave the
/// built-in behaviour), and runs like any callback: fields published
/// before, the program's writes taken back after, re-entry allowed.
#[cfg(feature = "abi2")]
impl CallbackHost {
    fn ops_installed(&self) -> bool {
        // SAFETY: `kcp` is live; reading one field.
        unsafe { !(*self.kcp).ccops.is_null() }
    }

    fn run_hook(&mut self, engine: &mut Engine, event: CcEvent) -> CcOutcome {
        let Some(ops) = self.ops().copied() else {
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
    fn has_controller(&self, _engine: &Engine) -> bool {
        self.ops_installed()
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

    fn transmit_lent(&mut self, engine: &mut Engine, sn: u32) {
        let Some(datagram) = engine.lent_datagram(sn) else {
            return;
        };
        let (bytes, len) = (datagram.as_ptr(), datagram.len());
        self.call_out(engine, |kcp| {
            // SAFETY: `kcp` is live. `bytes` points into the segment's own
            // buffer, which the engine keeps allocated and unwritten until
            // this method returns (`lent_datagram`'s contract), even if the
            // callback re-enters and acknowledges or resends the segment.
            unsafe {
                if let Some(output) = (*kcp).output {
                    output(bytes.cast::<c_char>(), len as c_int, kcp, (*kcp).user);
                }
            }
        });
    }

    fn wants_log(&self) -> bool {
        // SAFETY: `kcp` is live; reading one field.
        unsafe { (*self.kcp).writelog.is_some() }
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
