//! One workload, three implementations: our engine's Rust API, the reference
//! `ikcp.c` (linked through `kcp-io`), and our C ABI (`libkcp.so`, loaded with
//! dlopen so its symbols cannot be confused with the reference's).

use std::os::raw::{c_char, c_int, c_long, c_void};
use std::path::PathBuf;

use kcp_io::sys as reference;

/// Datagrams collected from an output callback, stored back to back so the
/// harness itself allocates nothing per datagram.
#[derive(Default)]
pub struct Wire {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Wire {
    pub fn push(&mut self, datagram: &[u8]) {
        self.bytes.extend_from_slice(datagram);
        self.ends.push(self.bytes.len());
    }

    /// Hands every datagram to `f` and empties the wire.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) {
        let mut start = 0;
        for &end in &self.ends {
            f(&self.bytes[start..end]);
            start = end;
        }
        self.bytes.clear();
        self.ends.clear();
    }

    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// What a benchmark needs from a KCP endpoint.
pub trait Endpoint {
    fn send(&mut self, data: &[u8]) -> i32;
    fn recv(&mut self, buf: &mut [u8]) -> i32;
    fn input(&mut self, datagram: &[u8]) -> i32;
    fn update(&mut self, now: u32);
    fn wait_snd(&self) -> usize;
    /// Datagrams emitted since the last call.
    fn wire(&mut self) -> &mut Wire;
}

/// Settings applied to both ends of a pair.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    pub window: i32,
    pub nodelay: i32,
    pub interval: i32,
    pub resend: i32,
    pub nc: i32,
}

impl Mode {
    /// Fast mode, as in the window-scaling benchmark.
    pub fn fast(window: i32) -> Mode {
        Mode {
            window,
            nodelay: 1,
            interval: 10,
            resend: 2,
            nc: 1,
        }
    }
}

// ---------------------------------------------------------------- ours, Rust API

pub struct Ours {
    kcp: kcp::Kcp,
    wire: Wire,
}

impl Ours {
    pub fn new(conv: u32, mode: Mode) -> Ours {
        let mut kcp = kcp::Kcp::new(conv);
        kcp.set_window_size(mode.window as u32, mode.window as u32);
        kcp.set_nodelay(mode.nodelay, mode.interval, mode.resend, mode.nc != 0);
        Ours {
            kcp,
            wire: Wire::default(),
        }
    }
}

impl Endpoint for Ours {
    fn send(&mut self, data: &[u8]) -> i32 {
        self.kcp.send(data).map_or(-1, |n| n as i32)
    }
    fn recv(&mut self, buf: &mut [u8]) -> i32 {
        self.kcp.recv(buf).map_or(-1, |n| n as i32)
    }
    fn input(&mut self, datagram: &[u8]) -> i32 {
        self.kcp.input(datagram).map_or(-1, |_| 0)
    }
    fn update(&mut self, now: u32) {
        let wire = &mut self.wire;
        self.kcp.update(now, &mut |d: &[u8]| wire.push(d));
    }
    fn wait_snd(&self) -> usize {
        self.kcp.wait_snd()
    }
    fn wire(&mut self) -> &mut Wire {
        &mut self.wire
    }
}

// ---------------------------------------------------------------- C functions

/// The C API as function pointers, so the reference and our libkcp.so are
/// driven by the same code.
#[derive(Clone, Copy)]
pub struct CApi {
    create: unsafe extern "C" fn(u32, *mut c_void) -> *mut c_void,
    release: unsafe extern "C" fn(*mut c_void),
    setoutput: unsafe extern "C" fn(*mut c_void, OutputFn),
    send: unsafe extern "C" fn(*mut c_void, *const c_char, c_int) -> c_int,
    recv: unsafe extern "C" fn(*mut c_void, *mut c_char, c_int) -> c_int,
    input: unsafe extern "C" fn(*mut c_void, *const c_char, c_long) -> c_int,
    update: unsafe extern "C" fn(*mut c_void, u32),
    waitsnd: unsafe extern "C" fn(*const c_void) -> c_int,
    wndsize: unsafe extern "C" fn(*mut c_void, c_int, c_int) -> c_int,
    nodelay: unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, c_int) -> c_int,
}

type OutputFn = unsafe extern "C" fn(*const c_char, c_int, *mut c_void, *mut c_void) -> c_int;

impl CApi {
    /// The reference ikcp.c.
    // Each transmute's target type is the field it initialises.
    #[allow(clippy::missing_transmute_annotations)]
    pub fn reference() -> CApi {
        // SAFETY: the signatures are upstream's; only the pointee type of
        // the `kcp` argument differs (`IKCPCB` vs opaque `c_void`).
        unsafe {
            CApi {
                create: std::mem::transmute::<*const (), _>(reference::ikcp_create as *const ()),
                release: std::mem::transmute::<*const (), _>(reference::ikcp_release as *const ()),
                setoutput: std::mem::transmute::<*const (), _>(
                    reference::ikcp_setoutput as *const (),
                ),
                send: std::mem::transmute::<*const (), _>(reference::ikcp_send as *const ()),
                recv: std::mem::transmute::<*const (), _>(reference::ikcp_recv as *const ()),
                input: std::mem::transmute::<*const (), _>(reference::ikcp_input as *const ()),
                update: std::mem::transmute::<*const (), _>(reference::ikcp_update as *const ()),
                waitsnd: std::mem::transmute::<*const (), _>(reference::ikcp_waitsnd as *const ()),
                wndsize: std::mem::transmute::<*const (), _>(reference::ikcp_wndsize as *const ()),
                nodelay: std::mem::transmute::<*const (), _>(reference::ikcp_nodelay as *const ()),
            }
        }
    }

    /// Our C ABI from `target/release/libkcp.so`, if it has been built
    /// (`cargo build --release -p ikcp`).
    pub fn ours() -> Option<CApi> {
        let path = ours_shared_lib()?;
        // SAFETY: loading our own library; it runs no initialisers that matter.
        let lib = Box::leak(Box::new(unsafe { libloading::Library::new(&path).ok()? }));
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the symbol has the C signature of the field it fills.
                unsafe { *lib.get(concat!($name, "\0").as_bytes()).ok()? }
            };
        }
        Some(CApi {
            create: sym!("ikcp_create"),
            release: sym!("ikcp_release"),
            setoutput: sym!("ikcp_setoutput"),
            send: sym!("ikcp_send"),
            recv: sym!("ikcp_recv"),
            input: sym!("ikcp_input"),
            update: sym!("ikcp_update"),
            waitsnd: sym!("ikcp_waitsnd"),
            wndsize: sym!("ikcp_wndsize"),
            nodelay: sym!("ikcp_nodelay"),
        })
    }
}

fn ours_shared_lib() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("release/libkcp.so");
    path.exists().then_some(path)
}

unsafe extern "C" fn collect(
    buf: *const c_char,
    len: c_int,
    _kcp: *mut c_void,
    user: *mut c_void,
) -> c_int {
    // SAFETY: `user` is the boxed Wire of a `CEndpoint`, `buf` holds `len` bytes.
    unsafe {
        let wire = &mut *(user as *mut Wire);
        wire.push(std::slice::from_raw_parts(buf as *const u8, len as usize));
    }
    0
}

/// An endpoint driven through a C API table.
pub struct CEndpoint {
    api: CApi,
    kcp: *mut c_void,
    wire: Box<Wire>,
}

impl CEndpoint {
    pub fn new(api: CApi, conv: u32, mode: Mode) -> CEndpoint {
        let mut wire = Box::<Wire>::default();
        // SAFETY: creating and configuring a fresh object; `wire` outlives it
        // (released in Drop before the box is freed).
        unsafe {
            let kcp = (api.create)(conv, &mut *wire as *mut Wire as *mut c_void);
            (api.setoutput)(kcp, collect);
            (api.wndsize)(kcp, mode.window, mode.window);
            (api.nodelay)(kcp, mode.nodelay, mode.interval, mode.resend, mode.nc);
            CEndpoint { api, kcp, wire }
        }
    }
}

impl Drop for CEndpoint {
    fn drop(&mut self) {
        // SAFETY: `kcp` came from `create` and is released once.
        unsafe { (self.api.release)(self.kcp) }
    }
}

impl Endpoint for CEndpoint {
    fn send(&mut self, data: &[u8]) -> i32 {
        // SAFETY: valid object and buffer.
        unsafe { (self.api.send)(self.kcp, data.as_ptr().cast(), data.len() as c_int) }
    }
    fn recv(&mut self, buf: &mut [u8]) -> i32 {
        // SAFETY: valid object and buffer.
        unsafe { (self.api.recv)(self.kcp, buf.as_mut_ptr().cast(), buf.len() as c_int) }
    }
    fn input(&mut self, datagram: &[u8]) -> i32 {
        // SAFETY: valid object and buffer.
        unsafe { (self.api.input)(self.kcp, datagram.as_ptr().cast(), datagram.len() as c_long) }
    }
    fn update(&mut self, now: u32) {
        // SAFETY: valid object.
        unsafe { (self.api.update)(self.kcp, now) }
    }
    fn wait_snd(&self) -> usize {
        // SAFETY: valid object.
        unsafe { (self.api.waitsnd)(self.kcp) as usize }
    }
    fn wire(&mut self) -> &mut Wire {
        &mut self.wire
    }
}

// ---------------------------------------------------------------- workloads

/// Deterministic xorshift for the simulated link's losses.
pub struct Rng(pub u64);

impl Rng {
    pub fn percent(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 100
    }
}

/// Delivers every datagram of `from` to `to`, dropping `loss` percent.
pub fn carry<A: Endpoint, B: Endpoint>(
    from: &mut A,
    to: &mut B,
    loss: u64,
    rng: &mut Rng,
) -> usize {
    let mut bytes = 0;
    from.wire().drain(|d| {
        bytes += d.len();
        if loss == 0 || rng.percent() >= loss {
            to.input(d);
        }
    });
    bytes
}

/// Sends `count` messages of `size` bytes from `a` to `b` through a link with
/// `loss` percent loss, 1 ms per step, until all are received. Returns the
/// bytes put on the wire (a check that both implementations did the same work).
pub fn transfer<A: Endpoint, B: Endpoint>(
    a: &mut A,
    b: &mut B,
    clock: &mut u32,
    count: usize,
    size: usize,
    loss: u64,
    window: usize,
) -> usize {
    let message = vec![0x5au8; size];
    let mut buf = vec![0u8; size.max(1) + 1];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut sent, mut received, mut wire_bytes) = (0, 0, 0);
    while received < count {
        while sent < count && a.wait_snd() < 2 * window {
            assert!(a.send(&message) >= 0);
            sent += 1;
        }
        *clock = clock.wrapping_add(1);
        a.update(*clock);
        wire_bytes += carry(a, b, loss, &mut rng);
        b.update(*clock);
        wire_bytes += carry(b, a, loss, &mut rng);
        while b.recv(&mut buf) >= 0 {
            received += 1;
        }
    }
    wire_bytes
}

/// A one-way link with a fixed delay (in 1 ms ticks) and random loss. Each
/// tick's datagrams travel in the buffer the output callback filled, so the
/// link neither copies nor (in steady state) allocates.
pub struct DelayLine {
    slots: Vec<Wire>,
    delay: usize,
    loss: u64,
    rng: Rng,
}

impl DelayLine {
    /// A link that hands a datagram sent at tick `t` to its receiver at the
    /// start of tick `t + delay` (`delay >= 1`).
    fn new(delay: usize, loss: u64, seed: u64) -> DelayLine {
        let delay = delay.max(1);
        DelayLine {
            slots: (0..=delay).map(|_| Wire::default()).collect(),
            delay,
            loss,
            rng: Rng(seed),
        }
    }

    /// Takes everything `from` emitted during tick `now` onto the link.
    /// Returns the bytes offered (before loss). The datagrams are not copied:
    /// the endpoint's buffer and the (already delivered, empty) slot swap.
    pub fn accept<A: Endpoint>(&mut self, now: u32, from: &mut A) -> usize {
        let slot = (now as usize + self.delay) % self.slots.len();
        std::mem::swap(from.wire(), &mut self.slots[slot]);
        self.slots[slot].total_bytes()
    }

    /// Inputs into `to` every datagram due at tick `now`, dropping `loss`
    /// percent of them.
    pub fn deliver<B: Endpoint>(&mut self, now: u32, to: &mut B) {
        let slot = now as usize % self.slots.len();
        let (rng, loss) = (&mut self.rng, self.loss);
        self.slots[slot].drain(|d| {
            if loss == 0 || rng.percent() >= loss {
                to.input(d);
            }
        });
    }
}

/// Both directions of a simulated link. Built once per benchmark and reused
/// across iterations, so its buffers are allocated (and page-faulted) once
/// instead of inside every measured transfer.
pub struct Link {
    forward: DelayLine,
    backward: DelayLine,
}

impl Link {
    /// A link with `delay` ticks each way and `loss` percent loss both ways.
    pub fn new(delay: usize, loss: u64) -> Link {
        Link {
            forward: DelayLine::new(delay, loss, 0),
            backward: DelayLine::new(delay, loss, 0),
        }
    }

    /// Empties the link and restarts its loss pattern.
    fn reset(&mut self) {
        for (line, seed) in [
            (&mut self.forward, 0x9e37_79b9_7f4a_7c15),
            (&mut self.backward, 0x2545_f491_4f6c_dd1d),
        ] {
            line.rng = Rng(seed);
            for slot in &mut line.slots {
                slot.drain(|_| {});
            }
        }
    }
}

/// A bulk transfer of `count` messages of `size` bytes from `a` to `b` over
/// `link`; the sender keeps up to `2 * window` messages queued. Returns the
/// bytes offered to the link (a check that both implementations did the same
/// work) once `b` has received everything.
pub fn bulk_over_link<A: Endpoint, B: Endpoint>(
    link: &mut Link,
    a: &mut A,
    b: &mut B,
    count: usize,
    size: usize,
    window: usize,
) -> usize {
    link.reset();
    let message = vec![0x5au8; size];
    let mut buf = vec![0u8; size.max(1) + 1];
    let (mut sent, mut received, mut wire_bytes) = (0, 0, 0);
    let mut now = 0u32;
    while received < count {
        now = now.wrapping_add(1);
        link.forward.deliver(now, b);
        link.backward.deliver(now, a);
        while sent < count && a.wait_snd() < 2 * window {
            assert!(a.send(&message) >= 0);
            sent += 1;
        }
        a.update(now);
        b.update(now);
        wire_bytes += link.forward.accept(now, a);
        wire_bytes += link.backward.accept(now, b);
        while b.recv(&mut buf) >= 0 {
            received += 1;
        }
    }
    wire_bytes
}

// ---------------------------------------------------------------- measurement

/// A criterion measurement of the CPU time of the benchmarking thread
/// (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds. Unlike wall time it leaves
/// out the time the thread waited for a core, which on a shared machine can
/// be most of it; what other processes do to the caches still shows.
pub struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl criterion::measurement::Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn criterion::measurement::ValueFormatter {
        // Nanoseconds, shown and stored as criterion shows wall time.
        static WALL: criterion::measurement::WallTime = criterion::measurement::WallTime;
        criterion::measurement::Measurement::formatter(&WALL)
    }
}
