//! Hostile and careless use of our C ABI: NULL objects and buffers, negative
//! and huge lengths, `long` sizes beyond 2^31, lying and garbage datagrams,
//! tiny receive buffers, allocator hooks swapped while objects live.
//!
//! Wherever upstream's behaviour is defined for the same input, the results
//! are compared with the reference through the lockstep harness (return
//! value, datagrams, logs, fields); elsewhere ours must simply not crash and
//! return an error.
//!
//! All tests here take one lock: the allocator hooks are process-global in
//! our library, and the hook test counts every allocation it sees.

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::sync::{Mutex, MutexGuard};

use ffi_tests::api::{Api, FreeFn, MallocFn};
use ffi_tests::kcp::{Field, Kcp};
use ffi_tests::lockstep::{Call, Lockstep, Ret, Wiring};
use ffi_tests::rng::Rng;
use ffi_tests::wire::{Segment, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS};
use kcp_io::sys::IKCPCB;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const CONV: u32 = 0x0102_0304;

/// A lockstep pair (reference vs ours) that panics with the difference.
struct Pair(Lockstep);

impl Pair {
    fn new() -> Pair {
        Pair(Lockstep::new([CONV, CONV], Wiring::Recorded))
    }

    fn call(&mut self, call: Call) -> Ret {
        match self.0.call(call) {
            Ok(obs) => obs.ret,
            Err(d) => panic!(
                "ours differs from the reference at call #{} {}\n  {}\n  calls so far:{}",
                d.index,
                d.call,
                d.diff,
                ffi_tests::lockstep::listing(&self.0.trace, 0)
            ),
        }
    }

    fn int(&mut self, call: Call) -> i64 {
        match self.call(call) {
            Ret::Int(v) => v,
            r => panic!("expected an int result, got {r:?}"),
        }
    }

    fn recv(&mut self, ep: usize, len: i32, cap: usize) -> i32 {
        match self.call(Call::Recv {
            ep,
            len,
            cap,
            null: false,
        }) {
            Ret::Recv(r, _) => r,
            r => panic!("expected a recv result, got {r:?}"),
        }
    }

    fn input(&mut self, ep: usize, data: Vec<u8>) -> i64 {
        let size = data.len() as i64;
        self.int(Call::Input {
            ep,
            data: Some(data),
            size,
        })
    }

    /// Moves everything queued from A to B and back (A and B both updated
    /// at `now`), a few rounds.
    fn exchange(&mut self, now: &mut u32) {
        for _ in 0..4 {
            *now = now.wrapping_add(100);
            for ep in 0..2 {
                let obs = self.0.call(Call::Update { ep, now: *now });
                let obs = obs.unwrap_or_else(|d| panic!("update diverged: {}", d.diff));
                for d in &obs.datagrams[ep] {
                    self.input(1 - ep, d.clone());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// NULL objects
// ---------------------------------------------------------------------------

unsafe extern "C" fn never_output(_: *const c_char, _: i32, _: *mut IKCPCB, _: *mut c_void) -> i32 {
    0
}

#[test]
fn null_object_is_harmless_in_every_function() {
    let _g = serial();
    let ours = Api::ours();
    let null = std::ptr::null_mut();
    let mut buf = [0u8; 64];
    let data = [0u8; 64];
    // SAFETY: every call passes a NULL object, which our ABI documents as
    // ignored or rejected; buffers are valid for the lengths given.
    unsafe {
        (ours.release)(null);
        (ours.setoutput)(null, Some(never_output));
        (ours.setoutput)(null, None);
        assert!(
            (ours.recv)(null, buf.as_mut_ptr().cast(), 64) < 0,
            "ikcp_recv(NULL)"
        );
        assert!(
            (ours.recv)(null, std::ptr::null_mut(), -5) < 0,
            "ikcp_recv(NULL, NULL, -5)"
        );
        assert!(
            (ours.send)(null, data.as_ptr().cast(), 64) < 0,
            "ikcp_send(NULL)"
        );
        assert!(
            (ours.send)(null, std::ptr::null(), 0) < 0,
            "ikcp_send(NULL, NULL, 0)"
        );
        (ours.update)(null, 123);
        for t in [0u32, 1, 0x7fff_ffff, u32::MAX] {
            assert_eq!((ours.check)(null, t), t, "ikcp_check(NULL, {t})");
        }
        assert!(
            (ours.input)(null, data.as_ptr().cast(), 64) < 0,
            "ikcp_input(NULL)"
        );
        assert!(
            (ours.input)(null, std::ptr::null(), -1) < 0,
            "ikcp_input(NULL, NULL, -1)"
        );
        (ours.flush)(null);
        assert!((ours.peeksize)(null) < 0, "ikcp_peeksize(NULL)");
        assert!((ours.setmtu)(null, 1400) < 0, "ikcp_setmtu(NULL)");
        assert!((ours.interval)(null, 10) < 0, "ikcp_interval(NULL)");
        assert_eq!(
            (ours.wndsize)(null, 64, 64),
            0,
            "ikcp_wndsize(NULL) returns 0 like upstream"
        );
        assert!((ours.waitsnd)(null) < 0, "ikcp_waitsnd(NULL)");
        assert!((ours.nodelay)(null, 1, 10, 2, 1) < 0, "ikcp_nodelay(NULL)");
        (ours.log)(null, -1, c"nobody listens".as_ptr());
        assert_eq!((ours.getconv)(std::ptr::null()), 0, "ikcp_getconv(NULL)");
    }
    // Upstream defines these two for NULL as well: same results.
    let reference = Api::reference();
    // SAFETY: upstream checks for NULL in both.
    unsafe {
        (reference.release)(null);
        assert_eq!((reference.wndsize)(null, 64, 64), 0);
    }
}

// ---------------------------------------------------------------------------
// NULL buffers, negative and huge lengths
// ---------------------------------------------------------------------------

#[test]
fn null_buffers_and_bad_lengths_match_upstream() {
    let _g = serial();
    let mut p = Pair::new();
    let mut now = 1000u32;
    for len in [-1, -100, i32::MIN] {
        assert_eq!(
            p.int(Call::Send {
                ep: 0,
                data: None,
                len
            }),
            -1
        );
        assert_eq!(
            p.int(Call::Send {
                ep: 0,
                data: Some(vec![1; 8]),
                len
            }),
            -1
        );
    }
    // NULL with length 0 is defined upstream: an empty message.
    assert_eq!(
        p.int(Call::Send {
            ep: 0,
            data: None,
            len: 0
        }),
        0
    );
    assert_eq!(
        p.int(Call::Send {
            ep: 0,
            data: Some(Vec::new()),
            len: 0
        }),
        0
    );
    for size in [0, 1, 24, 100, -1] {
        assert_eq!(
            p.int(Call::Input {
                ep: 1,
                data: None,
                size
            }),
            -1
        );
    }
    for len in [0, 10, -10, i32::MAX] {
        p.call(Call::Recv {
            ep: 1,
            len,
            cap: 0,
            null: true,
        });
    }
    p.exchange(&mut now);
    // Two empty messages arrived; NULL buffers consume or peek them.
    assert_eq!(p.int(Call::Peeksize { ep: 1 }), 0);
    p.call(Call::Recv {
        ep: 1,
        len: -1,
        cap: 0,
        null: true,
    });
    p.call(Call::Recv {
        ep: 1,
        len: 5,
        cap: 0,
        null: true,
    });
    assert_eq!(p.recv(1, 0, 0), 0);
    assert_eq!(p.recv(1, 0, 0), -1);
}

#[test]
fn send_with_null_buffer_and_positive_length_returns_what_upstream_returns() {
    // Upstream queues uninitialised bytes here, so only the return values
    // (and the resulting queue sizes) are compared, on separate objects.
    let _g = serial();
    for stream in [0, 1] {
        let [r, o] = Api::both().map(|api| Kcp::new(api, CONV));
        for k in [&r, &o] {
            k.set_field(Field::Stream, stream);
        }
        for len in [
            1,
            100,
            1376,
            1377,
            5000,
            127 * 1376,
            127 * 1376 + 1,
            i32::MAX,
        ] {
            let rr = r.send_raw(std::ptr::null(), len);
            let or = o.send_raw(std::ptr::null(), len);
            assert_eq!(or, rr, "ikcp_send(kcp, NULL, {len}) stream={stream}");
            assert_eq!(
                o.waitsnd(),
                r.waitsnd(),
                "queue after ikcp_send(NULL, {len})"
            );
        }
    }
}

#[test]
fn huge_send_lengths_match_upstream() {
    let _g = serial();
    for mtu in [1400, 50, 9000] {
        for stream in [0, 1] {
            let mut p = Pair::new();
            for ep in 0..2 {
                assert_eq!(p.int(Call::SetMtu { ep, mtu }), 0);
                p.call(Call::SetField {
                    ep,
                    field: Field::Stream,
                    value: stream,
                });
            }
            let mss = mtu - 24;
            // A partly filled segment first, so stream mode appends to it.
            p.int(Call::Send {
                ep: 0,
                data: Some(vec![9; 10]),
                len: 10,
            });
            // Upstream reads at most one MSS of the buffer before deciding a
            // length this large is too many fragments.
            let buf = vec![0x5a; mss as usize];
            for len in [
                i32::MAX,
                i32::MAX - 1,
                0x4000_0000,
                128 * mss,
                127 * mss + 1,
            ] {
                p.int(Call::Send {
                    ep: 0,
                    data: Some(buf.clone()),
                    len,
                });
            }
            let max = vec![0x33; (127 * mss) as usize];
            p.int(Call::Send {
                ep: 0,
                data: Some(max),
                len: 127 * mss,
            });
            p.int(Call::Waitsnd { ep: 0 });
        }
    }
}

// ---------------------------------------------------------------------------
// Lying, truncated and garbage datagrams
// ---------------------------------------------------------------------------

fn push(sn: u32, data: &[u8]) -> Segment {
    let mut s = Segment::new(CONV, CMD_PUSH, sn, data.to_vec());
    s.wnd = 128;
    s
}

#[test]
fn input_sizes_beyond_int_range_match_upstream() {
    let _g = serial();
    let mut p = Pair::new();
    let valid = push(0, b"abc").encode();
    // Sizes whose low 32 bits, as a C int, are below one header: upstream
    // rejects them before reading anything.
    for size in [
        1i64 << 31,
        (1 << 32) + 10,
        (1 << 32) + 23,
        -1,
        i64::MIN,
        i64::MAX,
        0xffff_ffff,
    ] {
        assert_eq!(
            p.int(Call::Input {
                ep: 1,
                data: Some(valid.clone()),
                size
            }),
            -1,
            "size {size}"
        );
    }
    // Negative as a long but a plausible int: upstream's loop stops at once.
    p.int(Call::Input {
        ep: 1,
        data: Some(valid.clone()),
        size: -(1 << 32) + 100,
    });
    // A size whose int value is plausible but whose long value is huge:
    // parsing must stop at a bad header inside the buffer, like upstream.
    let mut d = push(0, b"xyz").encode();
    let mut wrong = push(1, b"").encode();
    wrong[0] ^= 0xff;
    d.extend_from_slice(&wrong);
    let size = (1i64 << 32) + d.len() as i64;
    assert_eq!(
        p.int(Call::Input {
            ep: 1,
            data: Some(d),
            size
        }),
        -1
    );
    assert_eq!(
        p.int(Call::Peeksize { ep: 1 }),
        3,
        "the valid segment before it was taken"
    );
}

#[test]
fn truncated_lying_and_garbage_datagrams_match_upstream() {
    let _g = serial();
    let mut p = Pair::new();
    let mut rng = Rng::new(99);
    let good = push(0, b"hello").encode();
    // Every truncation of a valid datagram, including 0 bytes.
    for cut in 0..good.len() {
        p.input(1, good[..cut].to_vec());
    }
    // Header length field larger than the datagram, or negative as an int.
    for extra in [1u32, 2, 1000, 0x7fff_fffb, 0x7fff_fffc, 0xffff_fffb] {
        let mut s = push(1, b"data");
        s.len = 4u32.wrapping_add(extra);
        assert_eq!(p.input(1, s.encode()), -2, "len field {}", s.len);
    }
    // Wrong conversation, unknown commands.
    let mut s = push(1, b"data");
    s.conv = CONV + 1;
    assert_eq!(p.input(1, s.encode()), -1);
    for cmd in [0u8, 1, 80, 85, 200, 255] {
        let mut s = push(1, b"data");
        s.cmd = cmd;
        assert_eq!(p.input(1, s.encode()), -3, "cmd {cmd}");
    }
    // A valid prefix followed by garbage: the prefix is processed.
    let mut d = push(1, b"first").encode();
    d.extend_from_slice(&rng.bytes(30));
    p.input(1, d);
    let mut d = push(2, b"second").encode();
    let mut bad = push(3, b"").encode();
    bad[4] = 99;
    d.extend_from_slice(&bad);
    assert_eq!(p.input(1, d), -3);
    // Size argument shorter than the buffer.
    let d = push(3, b"0123456789").encode();
    for size in [0, 23, 24, 30, 33, 34] {
        p.int(Call::Input {
            ep: 1,
            data: Some(d.clone()),
            size,
        });
    }
    // Pure garbage of every small length, with and without our conv.
    for n in 0..80 {
        let mut g = rng.bytes(n);
        if n >= 4 && n % 2 == 0 {
            g[..4].copy_from_slice(&CONV.to_le_bytes());
        }
        p.input(1, g);
    }
    let mut now = 5000;
    p.exchange(&mut now);
    while p.int(Call::Peeksize { ep: 1 }) >= 0 {
        p.recv(1, 4096, 4096);
    }
}

/// One megabyte in a single datagram: pure garbage, garbage behind our conv,
/// and a megabyte of well-formed segments (then the resulting ACK storm).
#[test]
fn one_megabyte_datagrams_match_upstream() {
    let _g = serial();
    let mut rng = Rng::new(1 << 20);
    let mut p = Pair::new();
    let mut now = 0x1000u32;
    for ep in 0..2 {
        p.int(Call::Wndsize {
            ep,
            snd: 4096,
            rcv: 4096,
        });
        p.call(Call::Update { ep, now });
    }
    p.input(1, rng.bytes(1 << 20));
    let mut g = rng.bytes(1 << 20);
    g[..4].copy_from_slice(&CONV.to_le_bytes());
    p.input(1, g);

    let mut d = Vec::with_capacity(1 << 20);
    let mut sn = 0u32;
    while d.len() < (1 << 20) - 2000 {
        let seg = match rng.below(10) {
            0 => {
                let mut s = Segment::new(CONV, CMD_ACK, rng.below(50) as u32, Vec::new());
                s.ts = now.wrapping_sub(rng.below(100) as u32);
                s
            }
            1 => Segment::new(CONV, rng.pick(&[CMD_WASK, CMD_WINS]), 0, Vec::new()),
            _ => {
                // In order, out of order, duplicated, beyond the window.
                let this = match rng.below(4) {
                    0 => sn.wrapping_add(rng.below(5000) as u32),
                    1 => sn.saturating_sub(rng.below(50) as u32),
                    _ => {
                        sn += 1;
                        sn - 1
                    }
                };
                let n = rng.range(0, 1400) as usize;
                let mut s = push(this, &rng.bytes(n));
                s.frg = if rng.chance(900) {
                    0
                } else {
                    rng.below(4) as u8
                };
                s.ts = now.wrapping_sub(rng.below(100) as u32);
                s
            }
        };
        seg.encode_into(&mut d);
    }
    assert_eq!(p.input(1, d), 0);
    p.exchange(&mut now);
    for _ in 0..2000 {
        let n = p.int(Call::Peeksize { ep: 1 });
        if n < 0 {
            break;
        }
        p.recv(1, n as i32, n as usize);
    }
}

#[test]
fn tiny_receive_buffers_match_upstream() {
    let _g = serial();
    let mut p = Pair::new();
    let mut now = 77u32;
    let msg: Vec<u8> = (0..100u8).collect();
    for _ in 0..3 {
        p.int(Call::Send {
            ep: 0,
            data: Some(msg.clone()),
            len: 100,
        });
    }
    p.exchange(&mut now);
    for len in [0, 1, 2, 50, 99, -1, -2, -99] {
        assert_eq!(
            p.recv(1, len, len.unsigned_abs() as usize),
            -3,
            "recv len {len}"
        );
    }
    // Buffer smaller than len (a C caller may lie about it): upstream writes
    // only the message, which fits.
    assert_eq!(p.recv(1, -i32::MAX, 100), 100, "peek with huge len");
    assert_eq!(p.recv(1, i32::MAX, 100), 100);
    assert_eq!(p.recv(1, 100, 100), 100);
    assert_eq!(p.recv(1, 101, 101), 100);
    assert_eq!(p.recv(1, 100, 100), -1);
    // Ours only: i32::MIN would overflow upstream's negation (UB there).
    let ours = &p.0.ours.eps[1];
    let (r, _) = ours.recv(i32::MIN, 16, false);
    assert_eq!(r, -1, "nothing queued: -1 before the length matters");
}

#[test]
fn out_of_range_settings_match_upstream() {
    let _g = serial();
    let mut p = Pair::new();
    for mtu in [i32::MIN, -1, 0, 23, 24, 49, 50, 1 << 16, 1 << 20] {
        p.int(Call::SetMtu { ep: 0, mtu });
    }
    for (snd, rcv) in [
        (i32::MIN, i32::MIN),
        (0, 0),
        (i32::MAX, i32::MAX),
        (-1, 1),
        (1, -1),
    ] {
        p.int(Call::Wndsize { ep: 0, snd, rcv });
    }
    for v in [i32::MIN, -1, 0, 9, 5001, i32::MAX] {
        p.int(Call::Interval { ep: 0, interval: v });
        p.int(Call::Nodelay {
            ep: 0,
            nodelay: v,
            interval: v,
            resend: v,
            nc: v,
        });
    }
    // Ours only: upstream's buffer size computation overflows int for these.
    let ours = &p.0.ours.eps[1];
    for mtu in [i32::MAX, i32::MAX - 24, 0x3000_0000] {
        let r = ours.setmtu(mtu);
        assert!(r <= 0, "setmtu({mtu}) returned {r}");
    }
    assert!(ours.send(b"still alive") > 0);
}

// ---------------------------------------------------------------------------
// Allocator hooks
// ---------------------------------------------------------------------------

/// What the hooks saw. Hook blocks carry a header so a block freed through
/// the wrong allocator would be detected rather than corrupt the heap.
#[derive(Default)]
struct HookLog {
    live: HashMap<usize, usize>,
    allocations: u64,
    frees: u64,
    /// Pointers given to the free hook that it never allocated.
    foreign: Vec<usize>,
    /// Make the malloc hook fail.
    refuse: bool,
}

static HOOKS: Mutex<Option<HookLog>> = Mutex::new(None);
const MAGIC: u64 = 0x6b63_705f_686f_6f6b;

fn hooks() -> MutexGuard<'static, Option<HookLog>> {
    HOOKS.lock().unwrap_or_else(|e| e.into_inner())
}

unsafe extern "C" fn hook_malloc(size: usize) -> *mut c_void {
    let mut g = hooks();
    let log = g.get_or_insert_with(HookLog::default);
    if log.refuse {
        return std::ptr::null_mut();
    }
    let raw = libc::malloc(size + 16) as *mut u64;
    if raw.is_null() {
        return std::ptr::null_mut();
    }
    raw.write(MAGIC);
    raw.add(1).write(size as u64);
    let p = raw.add(2) as *mut c_void;
    log.live.insert(p as usize, size);
    log.allocations += 1;
    p
}

unsafe extern "C" fn hook_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    let mut g = hooks();
    let log = g.get_or_insert_with(HookLog::default);
    if log.live.remove(&(p as usize)).is_none() {
        // Not ours to free: keep it (a leak) rather than corrupt the heap.
        log.foreign.push(p as usize);
        return;
    }
    let raw = (p as *mut u64).sub(2);
    assert_eq!(raw.read(), MAGIC, "hook block header overwritten");
    raw.write(0);
    log.frees += 1;
    libc::free(raw as *mut c_void);
}

fn install(api: &Api, on: bool) {
    let (m, f): (Option<MallocFn>, Option<FreeFn>) = if on {
        (Some(hook_malloc), Some(hook_free))
    } else {
        (None, None)
    };
    // SAFETY: the hooks are valid for the whole process.
    unsafe { (api.allocator)(m, f) }
}

/// Moves messages both ways between two objects until all are received.
fn transfer(a: &Kcp, b: &Kcp, rng: &mut Rng, now: &mut u32) -> usize {
    let mut sent = 0;
    for _ in 0..20 {
        let m = rng.bytes_between(0, 4000);
        assert!(a.send(&m) >= 0 && b.send(&m) >= 0);
        sent += 2;
    }
    let mut got = 0;
    for _ in 0..1000 {
        *now += 20;
        a.update(*now);
        b.update(*now);
        for d in a.take_datagrams() {
            assert_eq!(b.input(&d), 0);
        }
        for d in b.take_datagrams() {
            assert_eq!(a.input(&d), 0);
        }
        while a.recv_message().is_some() || b.recv_message().is_some() {
            got += 1;
        }
        if got == sent {
            break;
        }
    }
    assert_eq!(got, sent, "transfer incomplete");
    got
}

#[test]
fn allocator_hooks_allocate_and_free_everything() {
    let _g = serial();
    let ours = Api::ours();
    *hooks() = Some(HookLog::default());
    let mut rng = Rng::new(5);
    let mut now = 0;

    // Everything under hooks, with data left queued at release.
    install(&ours, true);
    let a = Kcp::new(ours, CONV);
    let b = Kcp::new(ours, CONV);
    a.setmtu(500);
    transfer(&a, &b, &mut rng, &mut now);
    a.send(&[1; 3000]);
    a.update(now + 100);
    for d in a.take_datagrams() {
        b.input(&d);
    }
    drop(a);
    drop(b);
    install(&ours, false);
    {
        let g = hooks();
        let log = g.as_ref().unwrap();
        assert!(log.allocations > 0, "ours never called the malloc hook");
        assert!(
            log.foreign.is_empty(),
            "freed through the hook but not allocated by it: {:?}",
            log.foreign
        );
        assert!(
            log.live.is_empty(),
            "{} hook blocks never freed: {:?}",
            log.live.len(),
            log.live
        );
        assert_eq!(log.allocations, log.frees);
    }

    // Hooks changed while objects live: created before, released after, and
    // the other way round; every block goes back to the allocator it came
    // from. (Upstream would free `mid` with libc's free after the hooks are
    // removed: with these header-carrying hook blocks it aborts.)
    *hooks() = Some(HookLog::default());
    let early = Kcp::new(ours, CONV);
    install(&ours, true);
    let mid = Kcp::new(ours, CONV);
    transfer(&early, &mid, &mut rng, &mut now);
    early.send(&[2; 2000]);
    mid.send(&[3; 2000]);
    install(&ours, false);
    let late = [Kcp::new(ours, CONV), Kcp::new(ours, CONV)];
    transfer(&late[0], &late[1], &mut rng, &mut now);
    transfer(&early, &mid, &mut rng, &mut now);
    install(&ours, true);
    let [late0, late1] = late;
    drop(early);
    drop(late0);
    install(&ours, false);
    drop(mid);
    drop(late1);
    let g = hooks();
    let log = g.as_ref().unwrap();
    assert!(log.allocations > 0);
    assert!(
        log.foreign.is_empty(),
        "freed through the hook but not allocated by it: {:?}",
        log.foreign
    );
    assert!(
        log.live.is_empty(),
        "{} hook blocks never freed",
        log.live.len()
    );
}

/// Uninstalls the hooks from both implementations when dropped, so a failed
/// assertion does not leave a refusing allocator behind for other tests.
struct HooksOff;

impl Drop for HooksOff {
    fn drop(&mut self) {
        for api in Api::both() {
            install(&api, false);
        }
        *hooks() = None;
    }
}

#[test]
fn refusing_allocator_matches_upstream() {
    let _g = serial();
    let _off = HooksOff;
    *hooks() = Some(HookLog {
        refuse: true,
        ..HookLog::default()
    });
    for api in Api::both() {
        install(&api, true);
        // SAFETY: plain create; NULL is the documented out-of-memory result.
        let k = unsafe { (api.create)(CONV, std::ptr::null_mut()) };
        assert!(
            k.is_null(),
            "{}: ikcp_create must return NULL when malloc fails",
            api.name
        );
        install(&api, false);
    }
    // Sends while every allocation is refused: upstream returns -2.
    let mut differences = Vec::new();
    for stream in [0, 1] {
        let [r, o] = Api::both().map(|api| Kcp::new(api, CONV));
        for k in [&r, &o] {
            k.set_field(Field::Stream, stream);
            assert!(k.send(b"seed") >= 0);
        }
        for api in Api::both() {
            install(&api, true);
        }
        for len in [0usize, 10, 2000, 1376] {
            let data = vec![4u8; len];
            let (rr, or) = (r.send(&data), o.send(&data));
            if rr != or {
                differences.push(format!(
                    "stream={stream} send of {len} bytes: ours {or}, reference {rr}"
                ));
            }
        }
        for api in Api::both() {
            install(&api, false);
        }
        if o.waitsnd() != r.waitsnd() {
            differences.push(format!(
                "stream={stream}: ikcp_waitsnd afterwards: ours {}, reference {}",
                o.waitsnd(),
                r.waitsnd()
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "with malloc failing: {differences:#?}"
    );
}
