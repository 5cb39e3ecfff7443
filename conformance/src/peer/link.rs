//! The peer's end of the link: one UDP socket, the reference KCP object
//! (upstream ikcp.c 1.x), the impairments applied on our side of the wire,
//! and the observer that sees every datagram as it crosses the socket.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ffi_tests::api::Api;
use ffi_tests::kcp::{Field, Kcp};
use ffi_tests::rng::Rng;
use ffi_tests::wire::{self, Segment};

use super::observe::Observer;
use super::Settings;
use crate::record::Recorder;

/// Random impairments, in per mille of the datagrams of each direction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Impairment {
    pub loss: u32,
    pub duplicate: u32,
    pub reorder: u32,
}

/// Decides, from a datagram's segments, whether to drop it (targeted loss).
pub type DropFilter = Box<dyn FnMut(&[Segment]) -> bool>;

/// A datagram held back to be delivered after the next one (reordering).
struct Held {
    data: Vec<u8>,
    since: Instant,
}

/// How long a reordered datagram waits for a successor before it goes
/// anyway: reordering, not loss.
const HOLD: Duration = Duration::from_millis(20);

/// Datagram counts of the run.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct LinkStats {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    pub dropped_in: u64,
    pub dropped_out: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Datagrams from addresses other than the remote's (ignored).
    pub strangers: u64,
}

pub struct Link {
    sock: UdpSocket,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub conv: u32,
    pub kcp: Kcp,
    epoch: Instant,
    rng: Rng,
    pub impair: Impairment,
    pub drop_in: Option<DropFilter>,
    held_in: Option<Held>,
    held_out: Option<Held>,
    pub obs: Observer,
    recorder: Option<Recorder>,
    pub stats: LinkStats,
    buf: Vec<u8>,
    /// Messages (stream mode: chunks) the application side has read.
    pub received: Vec<Vec<u8>>,
    /// False while the peer plays a stalled reader.
    pub reading: bool,
    /// The largest `rx_rto` the reference computed (ms): our own view of
    /// the link's round trip, the yardstick for the remote's timers.
    pub max_rto: u32,
    /// Whether `max_rto` is sampled yet: not before the first round trip,
    /// while the reference still has its initial 200 ms.
    pub sample_rto: bool,
    /// Acknowledge every datagram on its own (a flush after each input),
    /// so the remote counts one duplicate acknowledgement per segment.
    pub ack_each: bool,
}

impl Link {
    pub fn new(
        sock: UdpSocket,
        remote: SocketAddr,
        conv: u32,
        settings: &Settings,
        seed: u64,
        recorder: Option<Recorder>,
    ) -> Result<Link, String> {
        let local = sock.local_addr().map_err(|e| e.to_string())?;
        let kcp = Kcp::new(Api::reference(), conv);
        let mtu = settings.mtu as i32;
        if kcp.setmtu(mtu) < 0 {
            return Err(format!("the reference refuses MTU {mtu}"));
        }
        kcp.nodelay(
            settings.nodelay,
            settings.interval,
            settings.resend,
            settings.nc as i32,
        );
        // Our receive window is never the bottleneck: it holds the largest
        // message plus what the zero-window scenario queues.
        kcp.wndsize(settings.wnd as i32, settings.wnd.max(256) as i32);
        if settings.stream {
            kcp.set_field(Field::Stream, 1);
        }
        Ok(Link {
            sock,
            remote,
            local,
            conv,
            kcp,
            epoch: Instant::now(),
            rng: Rng::new(seed),
            impair: Impairment::default(),
            drop_in: None,
            held_in: None,
            held_out: None,
            obs: Observer::new(conv, settings),
            recorder,
            stats: LinkStats::default(),
            buf: vec![0; 65536],
            received: Vec::new(),
            reading: true,
            max_rto: 0,
            sample_rto: false,
            ack_each: false,
        })
    }

    /// KCP time: milliseconds since the link was made.
    pub fn now(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Queues a message (stream mode: bytes) on the reference; its return value.
    pub fn send(&mut self, data: &[u8]) -> i32 {
        let r = self.kcp.send(data);
        self.flush_out();
        r
    }

    /// Sends a datagram as is, bypassing the reference (forged segments).
    pub fn send_raw(&mut self, data: &[u8]) {
        self.transmit(data);
    }

    /// One turn: waits up to `max_wait` (less when the reference has a
    /// timer due) for datagrams, feeds them in, runs the clock, reads what
    /// the application side may read, sends what the reference produced.
    pub fn step(&mut self, max_wait: Duration) {
        let now = self.now();
        let due = self.kcp.check(now).wrapping_sub(now) as i32;
        let mut wait = Duration::from_millis(due.max(0) as u64).min(max_wait);
        for h in [&self.held_in, &self.held_out].into_iter().flatten() {
            wait = wait.min(HOLD.saturating_sub(h.since.elapsed()));
        }
        let mut first = true;
        loop {
            let got = if first && wait >= Duration::from_millis(1) {
                let _ = self.sock.set_read_timeout(Some(wait));
                self.sock.recv_from(&mut self.buf)
            } else {
                let _ = self.sock.set_nonblocking(true);
                let r = self.sock.recv_from(&mut self.buf);
                let _ = self.sock.set_nonblocking(false);
                r
            };
            first = false;
            match got {
                Ok((n, from)) if from == self.remote => {
                    let d = self.buf[..n].to_vec();
                    self.incoming(d);
                }
                Ok(_) => self.stats.strangers += 1,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                // ICMP port unreachable from an earlier send: the remote is
                // not (yet) there; KCP retransmits.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                Err(_) => break,
            }
        }
        if let Some(h) = self.held_in.take_if(|h| h.since.elapsed() >= HOLD) {
            self.kcp.input(&h.data);
        }
        if let Some(h) = self.held_out.take_if(|h| h.since.elapsed() >= HOLD) {
            self.transmit(&h.data);
        }
        if self.reading {
            while let Some(m) = self.kcp.recv_message() {
                self.received.push(m);
            }
        }
        self.kcp.update(self.now());
        if self.sample_rto {
            let rto = self.kcp.with_cb(|cb| cb.rx_rto.max(0) as u32);
            self.max_rto = self.max_rto.max(rto);
        }
        self.flush_out();
    }

    /// Runs [`Link::step`] until `done` holds or `deadline` passes; whether
    /// `done` held.
    pub fn drive_until(&mut self, deadline: Instant, mut done: impl FnMut(&Link) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.step(Duration::from_millis(5));
        }
    }

    /// Steps for `d`, whatever happens.
    pub fn idle(&mut self, d: Duration) {
        let until = Instant::now() + d;
        self.drive_until(until, |_| false);
    }

    /// Everything we sent is acknowledged.
    pub fn all_acked(&self) -> bool {
        self.kcp.waitsnd() == 0
    }

    fn incoming(&mut self, d: Vec<u8>) {
        self.stats.datagrams_in += 1;
        let now = self.now();
        self.record(now, false, &d);
        self.obs.remote_datagram(now, &d);
        let (segs, _) = wire::segments(&d);
        if let Some(f) = self.drop_in.as_mut() {
            if f(&segs) {
                self.stats.dropped_in += 1;
                return;
            }
        }
        let imp = self.impair;
        if self.rng.chance(imp.loss) {
            self.stats.dropped_in += 1;
            return;
        }
        if self.rng.chance(imp.duplicate) {
            self.stats.duplicated += 1;
            self.kcp.input(&d);
        }
        if self.held_in.is_none() && self.rng.chance(imp.reorder) {
            self.stats.reordered += 1;
            self.held_in = Some(Held {
                data: d,
                since: Instant::now(),
            });
            return;
        }
        self.kcp.input(&d);
        if let Some(h) = self.held_in.take() {
            self.kcp.input(&h.data);
        }
        if self.ack_each {
            self.kcp.flush();
        }
    }

    /// Sends what the reference produced, through the impairments.
    fn flush_out(&mut self) {
        for d in self.kcp.take_datagrams() {
            let imp = self.impair;
            if self.rng.chance(imp.loss) {
                self.stats.dropped_out += 1;
                continue;
            }
            if self.rng.chance(imp.duplicate) {
                self.stats.duplicated += 1;
                self.deliver(&d);
            }
            if self.held_out.is_none() && self.rng.chance(imp.reorder) {
                self.stats.reordered += 1;
                self.held_out = Some(Held {
                    data: d,
                    since: Instant::now(),
                });
                continue;
            }
            self.deliver(&d);
            if let Some(h) = self.held_out.take() {
                self.deliver(&h.data);
            }
        }
    }

    /// A datagram of the reference's that really goes on the wire.
    fn deliver(&mut self, d: &[u8]) {
        let now = self.now();
        self.obs.peer_datagram(now, d);
        self.transmit(d);
    }

    fn transmit(&mut self, d: &[u8]) {
        self.stats.datagrams_out += 1;
        let now = self.now();
        self.record(now, true, d);
        let _ = self.sock.send_to(d, self.remote);
    }

    fn record(&mut self, now: u32, outgoing: bool, d: &[u8]) {
        let Some(rec) = self.recorder.as_mut() else {
            return;
        };
        let (SocketAddr::V4(l), SocketAddr::V4(r)) = (self.local, self.remote) else {
            return;
        };
        let (src, dst) = if outgoing { (l, r) } else { (r, l) };
        let _ = rec.datagram(Duration::from_millis(now as u64), src, dst, d);
    }
}
