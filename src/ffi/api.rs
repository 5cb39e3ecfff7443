//! The exported `ikcp_*` functions.
//!
//! Every function returns upstream's value for every input upstream
//! handles. Where upstream would crash (NULL object, NULL data) these return
//! an error value instead, listed per function. No panic crosses into C: a
//! panic is caught and turned into the same error value.

use std::os::raw::{c_char, c_int, c_long, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::alloc;
use super::control::{self, enter};
#[cfg(feature = "abi2")]
use super::types::IKCPOPS;
use super::types::{ikcpcb, IUINT32};
use crate::engine::copy_into;

/// Runs `body`, turning a panic into `fallback`.
fn guarded<R>(fallback: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Creates a KCP object for conversation `conv` (both ends must use the same
/// id). `user` is passed to the callbacks. Returns NULL if memory is refused.
#[no_mangle]
pub extern "C" fn ikcp_create(conv: IUINT32, user: *mut c_void) -> *mut ikcpcb {
    guarded(std::ptr::null_mut(), || control::create(conv, user))
}

/// Releases a KCP object and everything it holds. NULL is ignored. Called
/// from inside one of the object's own callbacks, the release happens when
/// the outermost call on the object returns.
///
/// # Safety
/// `kcp` must be NULL or an object from `ikcp_create` not yet released.
#[no_mangle]
pub unsafe extern "C" fn ikcp_release(kcp: *mut ikcpcb) {
    if kcp.is_null() {
        return;
    }
    // SAFETY: non-NULL object from ikcp_create (caller contract).
    guarded((), || unsafe { control::release(kcp) })
}

/// Sets the output callback (same as assigning `kcp->output`). NULL `kcp` is ignored.
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_setoutput(
    kcp: *mut ikcpcb,
    output: Option<
        unsafe extern "C" fn(
            buf: *const c_char,
            len: c_int,
            kcp: *mut ikcpcb,
            user: *mut c_void,
        ) -> c_int,
    >,
) {
    if kcp.is_null() {
        return;
    }
    // SAFETY: live object; a plain field write, as upstream does.
    unsafe { (*kcp).output = output };
}

/// Receives one message into `buffer` (`len` bytes). Returns its size, or
/// -1 if nothing is queued, -2 if the next message is incomplete, -3 if it
/// is larger than `len`. A negative `len` peeks: copies without consuming.
/// `buffer` may be NULL (the message is consumed without copying).
/// Returns -1 for a NULL `kcp`.
///
/// # Safety
/// `kcp` must be NULL or a live object; a non-NULL `buffer` must have room
/// for `abs(len)` bytes.
#[no_mangle]
pub unsafe extern "C" fn ikcp_recv(kcp: *mut ikcpcb, buffer: *mut c_char, len: c_int) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    // SAFETY: live object (caller contract). The common "nothing yet" answer
    // needs no call into the engine.
    if unsafe { control::receive_queue_is_empty(kcp) } {
        return -1;
    }
    guarded(-1, || {
        let room = if len == c_int::MIN {
            0
        } else {
            len.unsigned_abs() as usize
        };
        // SAFETY: the caller promises `abs(len)` writable bytes at `buffer`.
        let out = (!buffer.is_null())
            .then(|| unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), room) });
        // SAFETY: live object (caller contract).
        unsafe { enter(kcp, |k, host| k.recv_raw(&mut copy_into(out), len, host)) }
    })
}

/// Queues `len` bytes for sending. Returns the number of bytes accepted, -1
/// for a negative `len`, -2 if the message needs more than 127 fragments or
/// memory is refused. A NULL `buffer` sends `len` zero bytes (upstream sends
/// uninitialised memory). Returns -1 for a NULL `kcp`.
///
/// # Safety
/// `kcp` must be NULL or a live object; a non-NULL `buffer` must hold `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ikcp_send(kcp: *mut ikcpcb, buffer: *const c_char, len: c_int) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    guarded(-1, || {
        let data = (!buffer.is_null() && len > 0)
            // SAFETY: the caller promises `len` readable bytes at `buffer`.
            .then(|| unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), len as usize) });
        let data = if buffer.is_null() {
            None
        } else {
            Some(data.unwrap_or(&[]))
        };
        // SAFETY: live object (caller contract).
        unsafe { enter(kcp, |k, host| k.send_raw(data, len, host)) }
    })
}

/// Advances the clock to `current` (ms) and flushes when the interval has
/// elapsed. NULL `kcp` is ignored.
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_update(kcp: *mut ikcpcb, current: IUINT32) {
    if kcp.is_null() {
        return;
    }
    // SAFETY: live object (caller contract).
    guarded((), || unsafe {
        enter(kcp, |k, host| k.update_with(current, host))
    })
}

/// Returns when `ikcp_update` should next be called (ms), assuming no
/// `ikcp_send`/`ikcp_input` before then. Returns `current` for a NULL `kcp`.
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_check(kcp: *const ikcpcb, current: IUINT32) -> IUINT32 {
    if kcp.is_null() {
        return current;
    }
    // SAFETY: live object (caller contract). The object was allocated mutable
    // by ikcp_create; `const` only states the call does not change it, and
    // indeed only the program's own field writes are applied.
    guarded(current, || unsafe {
        enter(kcp.cast_mut(), |k, _| k.check(current))
    })
}

/// Feeds one datagram of `size` bytes received from the peer. Returns 0, or
/// -1 (NULL data, shorter than a header, or wrong conversation id), -2 (a
/// segment's length exceeds the datagram), -3 (unknown command). Segments
/// before a bad one have been processed. Returns -1 for a NULL `kcp`.
///
/// # Safety
/// `kcp` must be NULL or a live object; `data` must be NULL or hold `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn ikcp_input(kcp: *mut ikcpcb, data: *const c_char, size: c_long) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    guarded(-1, || {
        let readable = usize::try_from(size).unwrap_or(0);
        // SAFETY: the caller promises `size` readable bytes at `data`.
        let bytes = (!data.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(data.cast::<u8>(), readable) });
        // `c_long` is 32 or 64 bits depending on the platform.
        #[allow(clippy::useless_conversion)]
        let size = i64::from(size);
        // SAFETY: live object (caller contract).
        unsafe { enter(kcp, |k, host| k.input_raw(bytes, size, host)) }
    })
}

/// Transmits what is due now. Does nothing before the first `ikcp_update`.
/// NULL `kcp` is ignored.
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_flush(kcp: *mut ikcpcb) {
    if kcp.is_null() {
        return;
    }
    // SAFETY: live object (caller contract).
    guarded((), || unsafe { enter(kcp, |k, host| k.flush_with(host)) })
}

/// Size of the next complete message, or -1 if none. -1 for a NULL `kcp`.
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_peeksize(kcp: *const ikcpcb) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    // SAFETY: live object (caller contract); see ikcp_check about `const`.
    guarded(-1, || unsafe {
        enter(kcp.cast_mut(), |k, _| k.peek_size_raw())
    })
}

/// Sets the MTU (default 1400). Returns 0, or -1 if `mtu` < 50 or `kcp` is NULL.
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_setmtu(kcp: *mut ikcpcb, mtu: c_int) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    // SAFETY: live object (caller contract).
    guarded(-1, || unsafe { enter(kcp, |k, _| k.set_mtu_raw(mtu)) })
}

/// Sets the update interval in ms, clamped to 10..5000. Returns 0, or -1
/// for a NULL `kcp`. (Upstream defines this function without declaring it.)
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_interval(kcp: *mut ikcpcb, interval: c_int) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    // SAFETY: live object (caller contract).
    guarded(-1, || unsafe {
        enter(kcp, |k, _| k.interval_raw(interval))
    })
}

/// Sets the send and receive windows in segments (defaults 32 and 128);
/// values <= 0 leave one unchanged, and the receive window is at least 128.
/// Returns 0, also for a NULL `kcp` (as upstream).
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_wndsize(kcp: *mut ikcpcb, sndwnd: c_int, rcvwnd: c_int) -> c_int {
    if kcp.is_null() {
        return 0;
    }
    // SAFETY: live object (caller contract).
    guarded(0, || unsafe {
        enter(kcp, |k, _| k.wndsize_raw(sndwnd, rcvwnd))
    })
}

/// Segments waiting to be sent or acknowledged. -1 for a NULL `kcp`.
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_waitsnd(kcp: *const ikcpcb) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    // Like upstream, the sum of the two published counters (kept current
    // after every call), read without entering the engine.
    // SAFETY: live object (caller contract).
    unsafe { (*kcp).nsnd_buf.wrapping_add((*kcp).nsnd_que) as c_int }
}

/// No-delay tuning; the fastest setting is `ikcp_nodelay(kcp, 1, 10, 2, 1)`.
/// `nodelay`: 0 off (default), 1 on, 2 gentler RTO back-off; `interval`: ms,
/// clamped to 10..5000 (default 100); `resend`: duplicate ACKs that trigger a
/// fast retransmit, 0 off (default); `nc`: 1 disables congestion control.
/// Negative values leave a setting unchanged. Returns 0, or -1 for a NULL `kcp`.
///
/// # Safety
/// `kcp` must be NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn ikcp_nodelay(
    kcp: *mut ikcpcb,
    nodelay: c_int,
    interval: c_int,
    resend: c_int,
    nc: c_int,
) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    // SAFETY: live object (caller contract).
    guarded(-1, || unsafe {
        enter(kcp, |k, _| k.nodelay_raw(nodelay, interval, resend, nc))
    })
}

/// Installs allocator hooks for control blocks and segment buffers; NULL
/// restores `malloc`/`free`. Memory is always freed through the allocator
/// that allocated it, even if the hooks change in between.
#[no_mangle]
pub extern "C" fn ikcp_allocator(
    new_malloc: Option<unsafe extern "C" fn(size: usize) -> *mut c_void>,
    new_free: Option<unsafe extern "C" fn(ptr: *mut c_void)>,
) {
    alloc::set_hooks(new_malloc, new_free)
}

/// Reads the conversation id from a datagram's first four bytes. Returns 0
/// for NULL.
///
/// # Safety
/// `ptr` must be NULL or point to at least 4 readable bytes.
#[no_mangle]
pub unsafe extern "C" fn ikcp_getconv(ptr: *const c_void) -> IUINT32 {
    if ptr.is_null() {
        return 0;
    }
    let mut bytes = [0u8; 4];
    // SAFETY: the caller promises 4 readable bytes; no alignment is assumed.
    unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), bytes.as_mut_ptr(), 4) };
    u32::from_le_bytes(bytes)
}

/// Installs congestion controller `ops` (2.x), or with NULL goes back to the
/// built-in algorithm. The previous controller's `release` runs first and
/// `kcp->congest` is set to NULL; then `ops->init`, if set, runs: when it
/// returns a negative value the controller is uninstalled again and this
/// returns -1. Otherwise returns 0. A NULL `kcp` returns -1.
///
/// # Safety
/// `kcp` must be NULL or a live object; `ops` must be NULL or point to a
/// table that stays valid while installed.
#[cfg(feature = "abi2")]
#[no_mangle]
pub unsafe extern "C" fn ikcp_setcc(kcp: *mut ikcpcb, ops: *const IKCPOPS) -> c_int {
    if kcp.is_null() {
        return -1;
    }
    // SAFETY: non-NULL live object (caller contract).
    guarded(-1, || unsafe {
        enter(kcp, |engine, host| host.set_controller(engine, ops))
    })
}
