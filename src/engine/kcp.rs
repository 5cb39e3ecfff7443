//! The KCP control block: the state one endpoint keeps, how it is created
//! and configured, and what it reports. What the engine does with that state
//! lives in a file per concern: `send` (segmentation), `recv` (delivery and
//! reassembly), `input` (datagram parsing), `acks` (acknowledgements in both
//! directions), `flush` (datagram assembly and retransmission), `probe`
//! (zero-window probing), `timers` (update and check), `buffers` (payload
//! buffer reuse and lending).

use std::collections::VecDeque;

use super::codec::HEADER_LEN;
use super::congestion::CongestionState;
use super::constants::*;
use super::controller::{Controller, Flavour};
use super::error::ConfigError;
use super::payload::{Payload, PayloadPool, SegmentBuf};
use super::recv_window::{Fragment, RecvWindow};
use super::rtt::RttState;
use super::send_window::SendWindow;
use super::stats::Stats;
use super::tail::TailFields;

/// Bytes of a segment header, as the reference's `IKCP_OVERHEAD`.
pub(super) const OVERHEAD: u32 = HEADER_LEN as u32;

/// One KCP endpoint: a sans-IO state machine.
///
/// ```
/// use kcp::Kcp;
///
/// let (mut a, mut b) = (Kcp::new(7), Kcp::new(7));
/// // Without congestion control the first flush already sends (with it, the
/// // window opens at the end of the first flush, as in the reference).
/// a.set_nodelay(1, 10, 2, true);
/// a.send(b"hello").unwrap();
/// let mut wire = Vec::new();
/// a.update(0, &mut |d: &[u8]| wire.push(d.to_vec()));
/// for d in &wire {
///     b.input(d).unwrap();
/// }
/// let mut buf = [0u8; 16];
/// let n = b.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"hello");
/// ```
///
/// The first fields are the reference's `IKCPCB` scalars, one for one and
/// in its order (same names, same integer types), followed by the host's
/// [`TailFields`], so that the C ABI can show them to C programs in place.
#[derive(Debug)]
#[repr(C)]
pub struct Kcp<P: Payload = SegmentBuf> {
    pub(crate) conv: u32,
    pub(crate) mtu: u32,
    pub(crate) mss: u32,
    pub(crate) state: u32,
    pub(crate) snd_una: u32,
    pub(crate) snd_nxt: u32,
    pub(crate) rcv_nxt: u32,
    // Unused by the protocol (as in the reference) but part of the C struct.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) ts_recent: u32,
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) ts_lastack: u32,
    pub(crate) ssthresh: u32,
    pub(crate) rx_rttval: i32,
    pub(crate) rx_srtt: i32,
    pub(crate) rx_rto: i32,
    pub(crate) rx_minrto: i32,
    pub(crate) snd_wnd: u32,
    pub(crate) rcv_wnd: u32,
    pub(crate) rmt_wnd: u32,
    pub(crate) cwnd: u32,
    pub(crate) probe: u32,
    pub(crate) current: u32,
    pub(crate) interval: u32,
    pub(crate) ts_flush: u32,
    pub(crate) xmit: u32,
    /// Segment counts as last shown to the host (see
    /// [`Kcp::publish_counts`]); the engine itself counts its containers.
    pub(crate) shown_nrcv_buf: u32,
    pub(crate) shown_nsnd_buf: u32,
    pub(crate) shown_nrcv_que: u32,
    pub(crate) shown_nsnd_que: u32,
    pub(crate) nodelay: u32,
    pub(crate) updated: u32,
    pub(crate) ts_probe: u32,
    pub(crate) probe_wait: u32,
    pub(crate) dead_link: u32,
    pub(crate) incr: u32,
    /// Right after the scalars, where the host wants them.
    pub(crate) tail: P::Tail,

    pub(super) snd_buf: SendWindow<P>,
    pub(super) rcv_buf: RecvWindow<P>,
    pub(super) rcv_queue: VecDeque<Fragment<P>>,
    /// `(sn, ts)` of data segments to acknowledge at the next flush.
    pub(super) acklist: Vec<(u32, u32)>,
    /// Datagram assembly buffer, reused across flushes.
    pub(super) buffer: Vec<u8>,
    pub(super) pool: PayloadPool<P>,
    /// Segments whose buffers a host is reading as datagrams right now (see
    /// [`Host::transmit_lent`](super::host::Host::transmit_lent)); nested
    /// while callbacks re-enter.
    pub(super) lent: Vec<u32>,
    /// Buffers of lent segments acknowledged meanwhile, recycled once the
    /// host is done with them.
    pub(super) lent_acked: Vec<(u32, P)>,
    /// When data last moved (ms), and the received-segment count then.
    pub(super) busy_at: u32,
    pub(super) segments_in_at_busy: u64,
    pub(super) stats: Stats,
    /// A Rust congestion controller, if one replaces the built-in algorithm.
    pub(crate) controller: Controller,
    pub(crate) flavour: Flavour,
}

impl Kcp<SegmentBuf> {
    /// A new endpoint for conversation `conv` (both ends must use the same id),
    /// with the reference's defaults: MTU 1400, windows 32/128, interval
    /// 100 ms, no-delay off.
    pub fn new(conv: u32) -> Self {
        Kcp::with_payload(conv)
    }
}

impl<P: Payload> Kcp<P> {
    /// Like [`Kcp::new`], storing payloads in `P`.
    pub fn with_payload(conv: u32) -> Self {
        Kcp {
            conv,
            mtu: MTU_DEFAULT,
            mss: MTU_DEFAULT - OVERHEAD,
            state: 0,
            snd_una: 0,
            snd_nxt: 0,
            rcv_nxt: 0,
            ts_recent: 0,
            ts_lastack: 0,
            ssthresh: THRESH_INIT,
            rx_rttval: 0,
            rx_srtt: 0,
            rx_rto: RTO_DEFAULT,
            rx_minrto: RTO_MIN,
            snd_wnd: WND_SND_DEFAULT,
            rcv_wnd: WND_RCV_DEFAULT,
            rmt_wnd: WND_RCV_DEFAULT,
            cwnd: 0,
            probe: 0,
            current: 0,
            interval: INTERVAL_DEFAULT,
            ts_flush: INTERVAL_DEFAULT,
            xmit: 0,
            shown_nrcv_buf: 0,
            shown_nsnd_buf: 0,
            shown_nrcv_que: 0,
            shown_nsnd_que: 0,
            nodelay: 0,
            updated: 0,
            ts_probe: 0,
            probe_wait: 0,
            dead_link: DEAD_LINK_DEFAULT,
            incr: 0,
            tail: P::Tail::new_tail(),
            snd_buf: SendWindow::new(),
            rcv_buf: RecvWindow::new(),
            rcv_queue: VecDeque::new(),
            acklist: Vec::new(),
            buffer: Vec::new(),
            pool: PayloadPool::new(),
            lent: Vec::new(),
            lent_acked: Vec::new(),
            busy_at: 0,
            segments_in_at_busy: 0,
            stats: Stats::default(),
            controller: Controller::default(),
            flavour: Flavour::V1,
        }
    }

    /// Sets the MTU (bytes per datagram, at least 50).
    pub fn set_mtu(&mut self, mtu: usize) -> Result<(), ConfigError> {
        let mtu = i32::try_from(mtu).unwrap_or(i32::MAX);
        match self.set_mtu_raw(mtu) {
            0 => Ok(()),
            _ => Err(ConfigError::MtuTooSmall),
        }
    }

    /// No-delay tuning, as the reference's `ikcp_nodelay`: `nodelay` (0 off,
    /// 1 on, 2 aggressive RTO back-off), `interval` ms (clamped to 10..=5000),
    /// `resend` (duplicate ACKs that trigger a fast retransmit, 0 = off),
    /// `nc` (true disables congestion control). Negative values leave a
    /// setting unchanged.
    pub fn set_nodelay(&mut self, nodelay: i32, interval: i32, resend: i32, nc: bool) {
        self.nodelay_raw(nodelay, interval, resend, nc as i32);
    }

    /// Sets the update interval (ms), clamped to 10..=5000.
    pub fn set_interval(&mut self, interval: i32) {
        self.interval = interval.clamp(INTERVAL_MIN, INTERVAL_MAX) as u32;
    }

    /// Sets the send and receive windows in segments; zero leaves one
    /// unchanged. The receive window is at least 128.
    pub fn set_window_size(&mut self, snd: u32, rcv: u32) {
        let clamp = |w: u32| i32::try_from(w).unwrap_or(i32::MAX);
        self.wndsize_raw(clamp(snd), clamp(rcv));
    }

    /// Stream mode: no message boundaries, writes are coalesced.
    pub fn set_stream_mode(&mut self, stream: bool) {
        self.tail.set_stream(stream as i32);
    }

    /// Floor of the retransmission timeout (ms).
    pub fn set_min_rto(&mut self, ms: u32) {
        self.rx_minrto = i32::try_from(ms).unwrap_or(i32::MAX);
    }

    /// Transmissions of one segment after which [`is_dead`](Kcp::is_dead) is true.
    pub fn set_dead_link(&mut self, transmissions: u32) {
        self.dead_link = transmissions;
    }

    /// Cap on fast retransmissions per segment (0 = unlimited).
    pub fn set_fast_limit(&mut self, limit: i32) {
        self.tail.set_fastlimit(limit);
    }

    /// Log categories passed to [`Output::log`](crate::engine::Output::log).
    pub fn set_log_mask(&mut self, mask: i32) {
        self.tail.set_logmask(mask);
    }

    /// Changes the conversation id (e.g. one assigned by a server).
    pub fn set_conv(&mut self, conv: u32) {
        self.conv = conv;
    }

    /// The conversation id.
    pub fn conv(&self) -> u32 {
        self.conv
    }
    /// Bytes per datagram.
    pub fn mtu(&self) -> usize {
        self.mtu as usize
    }
    /// Payload bytes per segment (`mtu - 24`).
    pub fn mss(&self) -> usize {
        self.mss as usize
    }
    /// Update interval (ms).
    pub fn interval(&self) -> u32 {
        self.interval
    }
    /// Whether stream mode is on.
    pub fn is_stream(&self) -> bool {
        self.tail.stream() != 0
    }
    /// Segments queued or in flight (the reference's `ikcp_waitsnd`).
    pub fn wait_snd(&self) -> usize {
        self.snd_buf.len() + self.snd_buf.queued()
    }
    /// Segments in flight, unacknowledged.
    pub fn in_flight(&self) -> usize {
        self.snd_buf.len()
    }
    /// Complete or partial messages' fragments waiting for `recv`.
    pub fn recv_queue_len(&self) -> usize {
        self.rcv_queue.len()
    }
    /// Segments received out of order, waiting for a gap to fill.
    pub fn recv_buffer_len(&self) -> usize {
        self.rcv_buf.len()
    }
    /// True once a segment was transmitted `dead_link` times.
    pub fn is_dead(&self) -> bool {
        self.state == u32::MAX
    }
    /// Smoothed RTT (ms).
    pub fn srtt(&self) -> i32 {
        self.rx_srtt
    }
    /// Current retransmission timeout (ms).
    pub fn rto(&self) -> i32 {
        self.rx_rto
    }
    /// Congestion window (segments).
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }
    /// The peer's advertised receive window (segments).
    pub fn remote_window(&self) -> u32 {
        self.rmt_wnd
    }
    /// Send and receive windows (segments).
    pub fn window_size(&self) -> (u32, u32) {
        (self.snd_wnd, self.rcv_wnd)
    }
    /// Oldest unacknowledged sequence number.
    pub fn snd_una(&self) -> u32 {
        self.snd_una
    }
    /// Next sequence number to send.
    pub fn snd_nxt(&self) -> u32 {
        self.snd_nxt
    }
    /// Next sequence number expected from the peer.
    pub fn rcv_nxt(&self) -> u32 {
        self.rcv_nxt
    }
    /// Lifetime counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    // ------------------------------------------------------------------
    // Reference semantics (integer codes, C integer arithmetic). The C ABI
    // calls these directly; the Rust API wraps them.
    // ------------------------------------------------------------------

    pub(crate) fn nrcv_que(&self) -> u32 {
        self.rcv_queue.len() as u32
    }

    /// Stores the segment and ACK counts where a host reading the fields in
    /// place finds them (`nrcv_buf`, `nsnd_buf`, `nrcv_que`, `nsnd_que`,
    /// `ackcount`); the engine keeps them current only when asked, before
    /// the host looks.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    #[inline]
    pub(crate) fn publish_counts(&mut self) {
        self.shown_nrcv_buf = self.rcv_buf.len() as u32;
        self.shown_nsnd_buf = self.snd_buf.len() as u32;
        self.shown_nrcv_que = self.rcv_queue.len() as u32;
        self.shown_nsnd_que = self.snd_buf.queued() as u32;
        let acks = self.acklist.len() as u32;
        self.tail.set_ackcount(acks);
    }

    pub(super) fn wnd_unused(&self) -> u32 {
        self.rcv_wnd.saturating_sub(self.nrcv_que())
    }

    pub(super) fn rtt_state(&self) -> RttState {
        RttState {
            srtt: self.rx_srtt,
            rttval: self.rx_rttval,
            rto: self.rx_rto,
            minrto: self.rx_minrto,
        }
    }

    pub(super) fn set_rtt_state(&mut self, s: RttState) {
        self.rx_srtt = s.srtt;
        self.rx_rttval = s.rttval;
        self.rx_rto = s.rto;
        self.rx_minrto = s.minrto;
    }

    pub(super) fn congestion(&self) -> CongestionState {
        CongestionState {
            cwnd: self.cwnd,
            incr: self.incr,
            ssthresh: self.ssthresh,
        }
    }

    pub(super) fn set_congestion(&mut self, c: CongestionState) {
        self.cwnd = c.cwnd;
        self.incr = c.incr;
        self.ssthresh = c.ssthresh;
    }

    /// `ikcp_setmtu`.
    pub(crate) fn set_mtu_raw(&mut self, mtu: i32) -> i32 {
        if mtu < MTU_MIN || mtu < OVERHEAD as i32 {
            return -1;
        }
        self.mtu = mtu as u32;
        self.mss = self.mtu - OVERHEAD;
        0
    }

    /// `ikcp_interval`.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn interval_raw(&mut self, interval: i32) -> i32 {
        self.set_interval(interval);
        0
    }

    /// `ikcp_nodelay`.
    pub(crate) fn nodelay_raw(&mut self, nodelay: i32, interval: i32, resend: i32, nc: i32) -> i32 {
        if nodelay >= 0 {
            self.nodelay = nodelay as u32;
            self.rx_minrto = if nodelay != 0 {
                RTO_NODELAY_MIN
            } else {
                RTO_MIN
            };
        }
        if interval >= 0 {
            self.set_interval(interval);
        }
        if resend >= 0 {
            self.tail.set_fastresend(resend);
        }
        if nc >= 0 {
            self.tail.set_nocwnd(nc);
        }
        0
    }

    /// `ikcp_wndsize`.
    pub(crate) fn wndsize_raw(&mut self, snd: i32, rcv: i32) -> i32 {
        if snd > 0 {
            self.snd_wnd = snd as u32;
        }
        if rcv > 0 {
            self.rcv_wnd = (rcv as u32).max(WND_RCV_DEFAULT);
        }
        0
    }
}
