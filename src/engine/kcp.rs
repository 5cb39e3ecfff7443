//! The KCP control block: sending, receiving, input, flush, timers.

use std::collections::VecDeque;

use super::codec::{Command, SegmentHeader, HEADER_LEN};
use super::congestion::CongestionState;
use super::constants::*;
use super::error::{ConfigError, InputError, RecvError, SendError};
use super::output::{Host, LogMask, Output, OutputHost, Silent};
use super::payload::{Payload, PayloadPool, SegmentBuf, POOL_MAX, POOL_MIN};
use super::recv_window::{Fragment, RecvWindow};
use super::rtt::RttState;
use super::send_window::{InFlight, SendWindow};
use super::stats::Stats;

const OVERHEAD: u32 = HEADER_LEN as u32;

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
/// Fields mirror the reference's `IKCPCB` one for one (same names, same
/// integer types) so that the C ABI can expose them as a live struct.
#[derive(Debug)]
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
    pub(crate) nodelay: u32,
    pub(crate) updated: u32,
    pub(crate) ts_probe: u32,
    pub(crate) probe_wait: u32,
    pub(crate) dead_link: u32,
    pub(crate) incr: u32,
    /// Capacity the reference's ack array would have (it grows in powers of two).
    pub(crate) ackblock: u32,
    pub(crate) fastresend: i32,
    pub(crate) fastlimit: i32,
    pub(crate) nocwnd: i32,
    pub(crate) stream: i32,
    pub(crate) logmask: i32,

    snd_buf: SendWindow<P>,
    rcv_buf: RecvWindow<P>,
    rcv_queue: VecDeque<Fragment<P>>,
    /// `(sn, ts)` of data segments to acknowledge at the next flush.
    acklist: Vec<(u32, u32)>,
    /// Datagram assembly buffer, reused across flushes.
    buffer: Vec<u8>,
    pool: PayloadPool<P>,
    /// Segments whose buffers a host is reading as datagrams right now (see
    /// [`Host::transmit_lent`]); nested while callbacks re-enter.
    lent: Vec<u32>,
    /// Buffers of lent segments acknowledged meanwhile, recycled once the
    /// host is done with them.
    lent_acked: Vec<(u32, P)>,
    /// When data last moved (ms), and the received-segment count then.
    busy_at: u32,
    segments_in_at_busy: u64,
    stats: Stats,
}

/// Quiet time (ms) after which spare payload buffers are freed.
const SPARES_IDLE_MS: u32 = 1000;

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
            nodelay: 0,
            updated: 0,
            ts_probe: 0,
            probe_wait: 0,
            dead_link: DEAD_LINK_DEFAULT,
            incr: 0,
            ackblock: 0,
            fastresend: 0,
            fastlimit: FASTACK_LIMIT,
            nocwnd: 0,
            stream: 0,
            logmask: 0,
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
        }
    }

    // ------------------------------------------------------------------
    // Rust API
    // ------------------------------------------------------------------

    /// Queues `data` for sending and returns how many bytes were accepted.
    ///
    /// In message mode the whole message is accepted or refused: it may need
    /// at most 127 fragments of `mss` bytes. In stream mode data first fills
    /// the last queued segment, and a partially accepted write returns the
    /// accepted count. Nothing is transmitted until the next
    /// [`flush`](Kcp::flush) / [`update`](Kcp::update).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        let len = i32::try_from(data.len()).map_err(|_| SendError::TooLarge)?;
        match self.send_raw(Some(data), len, &mut Silent) {
            n if n >= 0 => Ok(n as usize),
            _ if self.mss == 0 => Err(SendError::InvalidMss),
            _ if self.fragments_for(len) >= MAX_FRAGMENTS as i32 => Err(SendError::TooLarge),
            _ => Err(SendError::OutOfMemory),
        }
    }

    /// Moves the next complete message into `buf` and returns its length.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_into(buf, false)
    }

    /// Like [`recv`](Kcp::recv) but leaves the message queued.
    pub fn peek(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_into(buf, true)
    }

    fn recv_into(&mut self, buf: &mut [u8], peek: bool) -> Result<usize, RecvError> {
        let cap = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        let len = if peek { -cap.max(1) } else { cap };
        match self.recv_raw(Some(buf), len, &mut Silent) {
            n if n >= 0 => Ok(n as usize),
            -1 => Err(RecvError::Empty),
            -2 => Err(RecvError::Incomplete),
            _ => Err(RecvError::BufferTooSmall {
                needed: self.peek_size_raw().max(0) as usize,
            }),
        }
    }

    /// Size of the next complete message.
    pub fn peek_size(&self) -> Result<usize, RecvError> {
        if self.rcv_queue.is_empty() {
            return Err(RecvError::Empty);
        }
        match self.peek_size_raw() {
            n if n >= 0 => Ok(n as usize),
            _ => Err(RecvError::Incomplete),
        }
    }

    /// Feeds one datagram received from the peer.
    pub fn input(&mut self, datagram: &[u8]) -> Result<(), InputError> {
        if datagram.len() < HEADER_LEN {
            return Err(InputError::TooShort);
        }
        match self.input_raw(Some(datagram), datagram.len() as i64, &mut Silent) {
            0 => Ok(()),
            -1 => Err(InputError::ConvMismatch),
            -2 => Err(InputError::BadLength),
            _ => Err(InputError::UnknownCommand),
        }
    }

    /// Advances the clock to `now` (ms) and flushes if the interval elapsed.
    /// Call it at the time [`check`](Kcp::check) returns, or after
    /// `send`/`input` to transmit promptly.
    pub fn update(&mut self, now: u32, out: &mut impl Output) {
        self.update_with(now, &mut OutputHost(out))
    }

    /// Transmits what is due now: acknowledgements, window probes, new and
    /// retransmitted data. Does nothing before the first [`update`](Kcp::update).
    pub fn flush(&mut self, out: &mut impl Output) {
        self.flush_with(&mut OutputHost(out))
    }

    /// The time (ms) at which [`update`](Kcp::update) should next be called,
    /// assuming no `send`/`input` happens before then.
    pub fn check(&self, now: u32) -> u32 {
        if self.updated == 0 {
            return now;
        }
        let mut ts_flush = self.ts_flush;
        let since = diff(now, ts_flush);
        if !(-10_000..10_000).contains(&since) {
            ts_flush = now;
        }
        if diff(now, ts_flush) >= 0 {
            return now;
        }
        let tm_flush = diff(ts_flush, now);
        let mut tm_packet = i32::MAX;
        for seg in self.snd_buf.iter() {
            let d = diff(seg.resendts, now);
            if d <= 0 {
                return now;
            }
            tm_packet = tm_packet.min(d);
        }
        let minimal = (tm_packet.min(tm_flush) as u32).min(self.interval);
        now.wrapping_add(minimal)
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
        self.stream = stream as i32;
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
        self.fastlimit = limit;
    }

    /// Log categories passed to [`Output::log`].
    pub fn set_log_mask(&mut self, mask: i32) {
        self.logmask = mask;
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
        self.stream != 0
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
    // calls these directly; the Rust API above wraps them.
    // ------------------------------------------------------------------

    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn nsnd_que(&self) -> u32 {
        self.snd_buf.queued() as u32
    }
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn nsnd_buf(&self) -> u32 {
        self.snd_buf.len() as u32
    }
    pub(crate) fn nrcv_que(&self) -> u32 {
        self.rcv_queue.len() as u32
    }
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn nrcv_buf(&self) -> u32 {
        self.rcv_buf.len() as u32
    }
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn ackcount(&self) -> u32 {
        self.acklist.len() as u32
    }

    #[inline(always)]
    fn can_log<H: Host<P>>(&self, host: &H, mask: LogMask) -> bool {
        self.logmask & mask.0 != 0 && host.wants_log()
    }

    #[inline(always)]
    fn log<H: Host<P>>(&mut self, host: &mut H, mask: LogMask, line: std::fmt::Arguments<'_>) {
        if self.can_log(host, mask) {
            let line = line.to_string();
            host.log(self, mask, &line);
        }
    }

    /// Fragments a message of `len` bytes needs, with the reference's
    /// unsigned arithmetic (which is what decides its -2 for huge lengths).
    fn fragments_for(&self, len: i32) -> i32 {
        if len <= self.mss as i32 {
            1
        } else {
            ((len as u32).wrapping_add(self.mss).wrapping_sub(1) / self.mss.max(1)) as i32
        }
    }

    /// `ikcp_send`. `data` is `None` for a NULL buffer (segments are zero-filled).
    pub(crate) fn send_raw<H: Host<P>>(
        &mut self,
        data: Option<&[u8]>,
        len: i32,
        _host: &mut H,
    ) -> i32 {
        if len < 0 {
            return -1;
        }
        if self.mss == 0 {
            return -1;
        }
        let mut len = len;
        let mut offset = 0usize;
        let mut sent = 0i32;
        let mss = self.mss;
        let zeros;
        let source: &[u8] = match data {
            Some(d) => d,
            None => {
                zeros = vec![0u8; len as usize];
                &zeros
            }
        };

        if self.stream != 0 {
            if let Some(last) = self.snd_buf.last_queued_mut() {
                let old_len = last.data.len() as u32;
                if old_len < mss {
                    let capacity = (mss - old_len) as i32;
                    let extend = len.min(capacity);
                    let extra = &source[..extend as usize];
                    let Some(merged) = self.pool.take(&[last.data.as_bytes(), extra]) else {
                        return -2;
                    };
                    let old = std::mem::replace(&mut last.data, merged);
                    last.frg = 0;
                    self.recycle(old);
                    len -= extend;
                    offset += extend as usize;
                    sent = extend;
                }
            }
            if len <= 0 {
                return sent;
            }
        }

        let mut count = self.fragments_for(len);
        if count >= MAX_FRAGMENTS as i32 {
            if self.stream != 0 && sent > 0 {
                return sent;
            }
            return -2;
        }
        if count == 0 {
            count = 1;
        }

        for i in 0..count {
            let size = len.min(mss as i32).max(0);
            let chunk = &source[offset..offset + size as usize];
            let Some(payload) = self.pool.take(&[chunk]) else {
                return -2;
            };
            let frg = if self.stream == 0 {
                (count - i - 1) as u32
            } else {
                0
            };
            self.snd_buf.queue(InFlight::queued(frg, payload));
            offset += size as usize;
            len -= size;
            sent += size;
        }
        sent
    }

    /// `ikcp_peeksize`.
    pub(crate) fn peek_size_raw(&self) -> i32 {
        let Some(first) = self.rcv_queue.front() else {
            return -1;
        };
        if first.frg == 0 {
            return first.data.len() as i32;
        }
        if self.nrcv_que() < first.frg.wrapping_add(1) {
            return -1;
        }
        let mut length = 0i32;
        for frag in &self.rcv_queue {
            length = length.wrapping_add(frag.data.len() as i32);
            if frag.frg == 0 {
                break;
            }
        }
        length
    }

    /// `ikcp_recv`. A negative `len` peeks (`-len` bytes of buffer).
    pub(crate) fn recv_raw<H: Host<P>>(
        &mut self,
        mut buf: Option<&mut [u8]>,
        len: i32,
        host: &mut H,
    ) -> i32 {
        if self.rcv_queue.is_empty() {
            return -1;
        }
        let peek = len < 0;
        let len = len.wrapping_abs();
        let peeksize = self.peek_size_raw();
        if peeksize < 0 {
            return -2;
        }
        if peeksize > len {
            return -3;
        }
        let recover = self.nrcv_que() >= self.rcv_wnd;

        let mut copied = 0usize;
        let mut total = 0i32;
        let mut index = 0usize;
        // `len >= peeksize` guarantees room; stay in bounds regardless.
        let mut copy_out = |bytes: &[u8]| {
            if let Some(out) = buf.as_deref_mut() {
                let room = out.len().saturating_sub(copied).min(bytes.len());
                out[copied..copied + room].copy_from_slice(&bytes[..room]);
                copied += room;
            }
            total = total.wrapping_add(bytes.len() as i32);
        };
        loop {
            let (sn, frg) = if peek {
                let Some(frag) = self.rcv_queue.get(index) else {
                    break;
                };
                copy_out(frag.data.as_bytes());
                index += 1;
                (frag.sn, frag.frg)
            } else {
                let Some(frag) = self.rcv_queue.pop_front() else {
                    break;
                };
                copy_out(frag.data.as_bytes());
                self.recycle(frag.data);
                (frag.sn, frag.frg)
            };
            self.log(host, LogMask::RECV, format_args!("recv sn={sn}"));
            if frg == 0 {
                break;
            }
        }

        self.drain_in_order();

        if self.nrcv_que() < self.rcv_wnd && recover {
            self.probe |= ASK_TELL;
        }
        total
    }

    /// Moves segments that are now in order from the receive window to the
    /// receive queue, while the queue has room.
    #[inline]
    fn drain_in_order(&mut self) {
        if self.rcv_buf.len() == 0 {
            return;
        }
        while self.nrcv_que() < self.rcv_wnd {
            let Some(frag) = self.rcv_buf.pop_next(self.rcv_nxt) else {
                break;
            };
            self.rcv_queue.push_back(frag);
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        }
    }

    /// Spare payload buffers worth keeping: about one window.
    #[inline]
    fn pool_limit(&self) -> usize {
        (self.snd_wnd.max(self.rcv_wnd) as usize).clamp(POOL_MIN, POOL_MAX)
    }

    #[inline]
    fn recycle(&mut self, buf: P) {
        let limit = self.pool_limit();
        self.pool.give(buf, limit);
    }

    /// Recycles the buffer of an acknowledged segment, unless a host is still
    /// reading it as a datagram.
    #[inline]
    fn retire(&mut self, sn: u32, data: P) {
        if self.lent.contains(&sn) {
            self.lent_acked.push((sn, data));
        } else {
            self.recycle(data);
        }
    }

    /// The datagram (header room and payload) of in-flight segment `sn`
    /// whose buffer is lent to the host by [`Host::transmit_lent`]. While
    /// lent, the buffer is neither freed, reused nor written, even if the
    /// segment is acknowledged or sent again meanwhile; so its address may be
    /// handed to code that re-enters the engine.
    pub(crate) fn lent_datagram(&self, sn: u32) -> Option<&[u8]> {
        if !self.lent.contains(&sn) {
            return None;
        }
        match self.snd_buf.get(sn) {
            Some(seg) => Some(seg.data.framed()),
            None => self
                .lent_acked
                .iter()
                .find(|(acked, _)| *acked == sn)
                .map(|(_, data)| data.framed()),
        }
    }

    fn shrink_buf(&mut self) {
        self.snd_una = self.snd_buf.first_sn().unwrap_or(self.snd_nxt);
    }

    fn parse_ack(&mut self, sn: u32) {
        if diff(sn, self.snd_una) < 0 || diff(sn, self.snd_nxt) >= 0 {
            return;
        }
        if let Some(seg) = self.snd_buf.remove(sn) {
            self.retire(seg.sn, seg.data);
        }
    }

    fn parse_fastack(&mut self, sn: u32, ts: u32) {
        if diff(sn, self.snd_una) < 0 || diff(sn, self.snd_nxt) >= 0 {
            return;
        }
        self.snd_buf.for_each_through(sn, |seg| {
            if seg.sn != sn && diff(ts, seg.ts) >= 0 {
                seg.fastack = seg.fastack.wrapping_add(1);
            }
        });
    }

    fn ack_push(&mut self, sn: u32, ts: u32) {
        let needed = self.acklist.len() as u32 + 1;
        if needed > self.ackblock {
            let mut block = 8u32;
            while block < needed {
                block <<= 1;
            }
            self.ackblock = block;
        }
        self.acklist.push((sn, ts));
    }

    fn parse_data(&mut self, frag: Fragment<P>) {
        let sn = frag.sn;
        if diff(sn, self.rcv_nxt.wrapping_add(self.rcv_wnd)) >= 0 || diff(sn, self.rcv_nxt) < 0 {
            self.stats.duplicate_segments += 1;
            return;
        }
        if sn == self.rcv_nxt && self.rcv_buf.len() == 0 && self.nrcv_que() < self.rcv_wnd {
            // In order with nothing waiting: straight to the queue, which is
            // where inserting and draining would put it.
            self.rcv_queue.push_back(frag);
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            return;
        }
        if let Err(duplicate) = self.rcv_buf.insert(self.rcv_nxt, frag) {
            self.stats.duplicate_segments += 1;
            self.recycle(duplicate.data);
        }
        self.drain_in_order();
    }

    fn rtt_state(&self) -> RttState {
        RttState {
            srtt: self.rx_srtt,
            rttval: self.rx_rttval,
            rto: self.rx_rto,
            minrto: self.rx_minrto,
        }
    }

    fn set_rtt_state(&mut self, s: RttState) {
        self.rx_srtt = s.srtt;
        self.rx_rttval = s.rttval;
        self.rx_rto = s.rto;
        self.rx_minrto = s.minrto;
    }

    fn congestion(&self) -> CongestionState {
        CongestionState {
            cwnd: self.cwnd,
            incr: self.incr,
            ssthresh: self.ssthresh,
        }
    }

    fn set_congestion(&mut self, c: CongestionState) {
        self.cwnd = c.cwnd;
        self.incr = c.incr;
        self.ssthresh = c.ssthresh;
    }

    /// `ikcp_input`. `size` is the caller's claimed length (a C `long`);
    /// `data` holds at least `size` bytes when `size` is positive.
    pub(crate) fn input_raw<H: Host<P>>(
        &mut self,
        data: Option<&[u8]>,
        size: i64,
        host: &mut H,
    ) -> i32 {
        let prev_una = self.snd_una;
        let mut max_ack: Option<(u32, u32)> = None;

        self.log(
            host,
            LogMask::INPUT,
            format_args!("[RI] {} bytes", size as i32),
        );
        let Some(data) = data else {
            return -1;
        };
        if (size as i32) < OVERHEAD as i32 {
            return -1;
        }
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += size.max(0) as u64;

        let mut remaining = size;
        let mut pos = 0usize;
        while remaining >= OVERHEAD as i64 {
            let Some(hdr) = data.get(pos..).and_then(SegmentHeader::decode) else {
                break;
            };
            if hdr.conv != self.conv {
                return -1;
            }
            pos += HEADER_LEN;
            remaining -= OVERHEAD as i64;
            if remaining < hdr.len as i64 || (hdr.len as i32) < 0 {
                return -2;
            }
            let Some(cmd) = Command::from_byte(hdr.cmd) else {
                return -3;
            };

            self.rmt_wnd = hdr.wnd as u32;
            // Every segment still in flight has `sn >= snd_una`, so an `una`
            // at or below it acknowledges nothing new (the common case for
            // ACK runs and pure data).
            if diff(hdr.una, self.snd_una) > 0 {
                let pool_limit = self.pool_limit();
                let (pool, lent, lent_acked) = (&mut self.pool, &self.lent, &mut self.lent_acked);
                self.snd_buf.remove_before(hdr.una, |seg| {
                    if lent.contains(&seg.sn) {
                        lent_acked.push((seg.sn, seg.data));
                    } else {
                        pool.give(seg.data, pool_limit);
                    }
                });
                self.shrink_buf();
            }

            match cmd {
                Command::Ack => {
                    let rtt = diff(self.current, hdr.ts);
                    if rtt >= 0 {
                        let mut s = self.rtt_state();
                        s.sample(rtt, self.interval, RTO_MAX);
                        self.set_rtt_state(s);
                    }
                    self.parse_ack(hdr.sn);
                    self.shrink_buf();
                    max_ack = match max_ack {
                        None => Some((hdr.sn, hdr.ts)),
                        // Conservative fast-ack: a higher ACK only counts when
                        // it is also newer, so reordered ACKs don't trigger it.
                        Some((sn, ts)) if diff(hdr.sn, sn) > 0 && diff(hdr.ts, ts) > 0 => {
                            Some((hdr.sn, hdr.ts))
                        }
                        keep => keep,
                    };
                    let rto = self.rx_rto;
                    self.log(
                        host,
                        LogMask::IN_ACK,
                        format_args!("input ack: sn={} rtt={} rto={}", hdr.sn, rtt, rto),
                    );
                }
                Command::Push => {
                    self.stats.segments_in += 1;
                    self.log(
                        host,
                        LogMask::IN_DATA,
                        format_args!("input psh: sn={} ts={}", hdr.sn, hdr.ts),
                    );
                    if diff(hdr.sn, self.rcv_nxt.wrapping_add(self.rcv_wnd)) < 0 {
                        self.ack_push(hdr.sn, hdr.ts);
                        if diff(hdr.sn, self.rcv_nxt) >= 0 {
                            let bytes = &data[pos..pos + hdr.len as usize];
                            if let Some(payload) = self.pool.take(&[bytes]) {
                                self.parse_data(Fragment {
                                    sn: hdr.sn,
                                    frg: hdr.frg as u32,
                                    data: payload,
                                });
                            }
                        } else {
                            self.stats.duplicate_segments += 1;
                        }
                    } else {
                        self.stats.duplicate_segments += 1;
                    }
                }
                Command::WindowAsk => {
                    self.probe |= ASK_TELL;
                    self.log(host, LogMask::IN_PROBE, format_args!("input probe"));
                }
                Command::WindowTell => {
                    self.log(
                        host,
                        LogMask::IN_WINS,
                        format_args!("input wins: {}", hdr.wnd),
                    );
                }
            }
            pos += hdr.len as usize;
            remaining -= hdr.len as i64;
        }

        if let Some((sn, ts)) = max_ack {
            self.parse_fastack(sn, ts);
        }

        if diff(self.snd_una, prev_una) > 0 {
            let mut c = self.congestion();
            c.on_progress(self.mss, self.rmt_wnd);
            self.set_congestion(c);
        }
        0
    }

    fn wnd_unused(&self) -> u32 {
        self.rcv_wnd.saturating_sub(self.nrcv_que())
    }

    /// Hands the assembled datagram to the host (which may re-enter `self`)
    /// and returns the emptied buffer for reuse.
    fn emit<H: Host<P>>(&mut self, host: &mut H, mut buf: Vec<u8>) -> Vec<u8> {
        self.log(
            host,
            LogMask::OUTPUT,
            format_args!("[RO] {} bytes", buf.len()),
        );
        if !buf.is_empty() {
            self.stats.datagrams_out += 1;
            self.stats.bytes_out += buf.len() as u64;
            host.transmit(self, &buf);
        }
        buf.clear();
        buf
    }

    /// Emits the in-flight segment `sn` as a datagram straight from its
    /// buffer (header already written in its header room).
    fn emit_lone<H: Host<P>>(&mut self, host: &mut H, sn: u32) {
        let Some(size) = self.snd_buf.get(sn).map(|s| s.data.framed().len()) else {
            return;
        };
        self.log(host, LogMask::OUTPUT, format_args!("[RO] {size} bytes"));
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += size as u64;
        if H::DETACHED {
            if let Some(seg) = self.snd_buf.get(sn) {
                host.transmit_detached(seg.data.framed());
            }
            return;
        }
        self.lent.push(sn);
        host.transmit_lent(self, sn);
        self.lent.pop();
        if !self.lent_acked.is_empty() && !self.lent.contains(&sn) {
            if let Some(at) = self.lent_acked.iter().position(|(acked, _)| *acked == sn) {
                let (_, data) = self.lent_acked.swap_remove(at);
                self.recycle(data);
            }
        }
    }

    /// Emits the buffer first if `need` more bytes would overflow the MTU.
    fn make_room<H: Host<P>>(&mut self, host: &mut H, buf: Vec<u8>, need: u32) -> Vec<u8> {
        let size = buf.len() as i32;
        if size.wrapping_add(need as i32) > self.mtu as i32 {
            self.emit(host, buf)
        } else {
            buf
        }
    }

    /// `ikcp_update`.
    pub(crate) fn update_with<H: Host<P>>(&mut self, current: u32, host: &mut H) {
        self.current = current;
        if self.updated == 0 {
            self.updated = 1;
            self.ts_flush = current;
        }
        let mut slap = diff(current, self.ts_flush);
        if !(-10_000..10_000).contains(&slap) {
            self.ts_flush = current;
            slap = 0;
        }
        if slap >= 0 {
            self.ts_flush = self.ts_flush.wrapping_add(self.interval);
            if diff(current, self.ts_flush) >= 0 {
                self.ts_flush = current.wrapping_add(self.interval);
            }
            self.flush_with(host);
        }
    }

    /// `ikcp_flush`. The host may call back into `self` whenever it is handed
    /// a datagram, so every step re-reads state instead of holding on to it.
    pub(crate) fn flush_with<H: Host<P>>(&mut self, host: &mut H) {
        if self.updated == 0 {
            return;
        }
        let current = self.current;
        let mut buf = std::mem::take(&mut self.buffer);
        buf.clear();

        // Acknowledgements, window probes and window answers share one header
        // template; like the reference, its sn/ts keep the last ACK's values.
        let mut header = SegmentHeader {
            conv: self.conv,
            cmd: Command::Ack as u8,
            frg: 0,
            wnd: self.wnd_unused() as u16,
            ts: 0,
            sn: 0,
            una: self.rcv_nxt,
            len: 0,
        };
        let advertised_wnd = self.wnd_unused();

        let count = self.acklist.len();
        for i in 0..count {
            buf = self.make_room(host, buf, OVERHEAD);
            let Some(&(sn, ts)) = self.acklist.get(i) else {
                break;
            };
            header.sn = sn;
            header.ts = ts;
            header.encode(&mut buf);
        }
        self.acklist.clear();

        if self.rmt_wnd == 0 {
            if self.probe_wait == 0 {
                self.probe_wait = PROBE_INIT;
                self.ts_probe = self.current.wrapping_add(self.probe_wait);
            } else if diff(self.current, self.ts_probe) >= 0 {
                self.probe_wait = self.probe_wait.max(PROBE_INIT);
                self.probe_wait = self.probe_wait.wrapping_add(self.probe_wait / 2);
                self.probe_wait = self.probe_wait.min(PROBE_LIMIT);
                self.ts_probe = self.current.wrapping_add(self.probe_wait);
                self.probe |= ASK_SEND;
            }
        } else {
            self.ts_probe = 0;
            self.probe_wait = 0;
        }

        if self.probe & ASK_SEND != 0 {
            header.cmd = Command::WindowAsk as u8;
            buf = self.make_room(host, buf, OVERHEAD);
            header.encode(&mut buf);
        }
        if self.probe & ASK_TELL != 0 {
            header.cmd = Command::WindowTell as u8;
            buf = self.make_room(host, buf, OVERHEAD);
            header.encode(&mut buf);
        }
        self.probe = 0;

        let mut window = self.snd_wnd.min(self.rmt_wnd);
        if self.nocwnd == 0 {
            window = self.cwnd.min(window);
        }

        while diff(self.snd_nxt, self.snd_una.wrapping_add(window)) < 0 {
            let (conv, una, rto) = (self.conv, self.rcv_nxt, self.rx_rto as u32);
            let Some(seg) = self.snd_buf.start_next() else {
                break;
            };
            seg.conv = conv;
            seg.wnd = advertised_wnd;
            seg.ts = current;
            seg.sn = self.snd_nxt;
            seg.una = una;
            seg.resendts = current;
            seg.rto = rto;
            seg.fastack = 0;
            seg.xmit = 0;
            self.snd_nxt = self.snd_nxt.wrapping_add(1);
        }

        let resent = if self.fastresend > 0 {
            self.fastresend as u32
        } else {
            u32::MAX
        };
        let rtomin = if self.nodelay == 0 {
            (self.rx_rto >> 3) as u32
        } else {
            0
        };

        let mut fast_retransmits = 0u32;
        let mut timed_out = false;
        // A segment that so far fills the datagram alone, header written in
        // its own buffer (only for hosts that cannot re-enter the engine).
        let mut lone: Option<u32> = None;
        let mut cursor = self.snd_buf.first_sn();
        while let Some(sn) = cursor.and_then(|from| {
            // Only segments that will be sent are visited one by one; the
            // rest are skipped by a scan that cannot call out (state read
            // here is re-read after every call to the host).
            let fastlimit = self.fastlimit;
            self.snd_buf.next_due(from, |seg| {
                seg.xmit == 0
                    || diff(current, seg.resendts) >= 0
                    || (seg.fastack >= resent && (seg.xmit as i32 <= fastlimit || fastlimit <= 0))
            })
        }) {
            cursor = Some(sn.wrapping_add(1));
            let (rx_rto, nodelay, fastlimit, rcv_nxt) =
                (self.rx_rto, self.nodelay, self.fastlimit, self.rcv_nxt);
            let Some(seg) = self.snd_buf.get_mut(sn) else {
                continue;
            };
            let mut needsend = false;
            if seg.xmit == 0 {
                needsend = true;
                seg.xmit += 1;
                seg.rto = rx_rto as u32;
                seg.resendts = current.wrapping_add(seg.rto).wrapping_add(rtomin);
            } else if diff(current, seg.resendts) >= 0 {
                needsend = true;
                seg.xmit = seg.xmit.wrapping_add(1);
                self.xmit = self.xmit.wrapping_add(1);
                if nodelay == 0 {
                    seg.rto = seg.rto.wrapping_add(seg.rto.max(rx_rto as u32));
                } else {
                    let step = if nodelay < 2 { seg.rto as i32 } else { rx_rto };
                    seg.rto = seg.rto.wrapping_add((step / 2) as u32);
                }
                seg.resendts = current.wrapping_add(seg.rto);
                timed_out = true;
                self.stats.timeout_retransmits += 1;
            } else if seg.fastack >= resent && (seg.xmit as i32 <= fastlimit || fastlimit <= 0) {
                needsend = true;
                seg.xmit = seg.xmit.wrapping_add(1);
                seg.fastack = 0;
                seg.resendts = current.wrapping_add(seg.rto);
                fast_retransmits += 1;
                self.stats.fast_retransmits += 1;
            }
            if !needsend {
                continue;
            }
            seg.ts = current;
            seg.wnd = advertised_wnd;
            seg.una = rcv_nxt;
            let need = OVERHEAD.wrapping_add(seg.data.len() as u32);
            match lone.take() {
                // The datagram so far is one segment, not yet copied: it goes
                // out as it is, or is copied after all to share a datagram.
                Some(first) => {
                    let size = self.snd_buf.get(first).map_or(0, |s| s.data.framed().len());
                    if (size as i32).wrapping_add(need as i32) > self.mtu as i32 {
                        self.emit_lone(host, first);
                    } else if let Some(s) = self.snd_buf.get(first) {
                        buf.extend_from_slice(s.data.framed());
                    }
                }
                None => buf = self.make_room(host, buf, need),
            }
            // The host may have acknowledged (removed) the segment meanwhile.
            let Some(seg) = self.snd_buf.get_mut(sn) else {
                continue;
            };
            let header = SegmentHeader {
                conv: seg.conv,
                cmd: Command::Push as u8,
                frg: seg.frg as u8,
                wnd: seg.wnd as u16,
                ts: seg.ts,
                sn: seg.sn,
                una: seg.una,
                len: seg.data.len() as u32,
            };
            // A lent buffer is being read by the host: its header room is
            // not rewritten (this is a nested flush; copy instead).
            let room = if buf.is_empty() && !self.lent.contains(&sn) {
                seg.data.header_room()
            } else {
                None
            };
            if let Some(room) = room {
                header.encode_into(room);
                lone = Some(sn);
            } else {
                header.encode(&mut buf);
                buf.extend_from_slice(seg.data.as_bytes());
            }
            let xmit = seg.xmit;
            self.stats.segments_out += 1;
            if xmit >= self.dead_link {
                self.state = u32::MAX;
            }
        }

        if let Some(first) = lone {
            self.emit_lone(host, first);
        } else if !buf.is_empty() {
            buf = self.emit(host, buf);
        }

        let mut c = self.congestion();
        if fast_retransmits > 0 {
            let inflight = self.snd_nxt.wrapping_sub(self.snd_una);
            c.on_fast_retransmit(inflight, resent, self.mss);
        }
        if timed_out {
            c.on_timeout(window, self.mss);
        }
        c.ensure_minimum(self.mss);
        self.set_congestion(c);

        if self.buffer.capacity() < buf.capacity() {
            self.buffer = buf;
        }
        self.release_spares_when_quiet(current);
    }

    /// Frees the spare payload buffers once no data has moved for a while,
    /// so idle connections hold no spare memory. A pure receiver never has
    /// anything queued to send, so arriving data counts as activity too.
    fn release_spares_when_quiet(&mut self, now: u32) {
        let busy = self.snd_buf.len() > 0
            || self.snd_buf.queued() > 0
            || self.rcv_buf.len() > 0
            || !self.rcv_queue.is_empty()
            || self.stats.segments_in != self.segments_in_at_busy;
        if busy {
            self.busy_at = now;
            self.segments_in_at_busy = self.stats.segments_in;
        } else if diff(now, self.busy_at).unsigned_abs() >= SPARES_IDLE_MS {
            self.pool.clear();
        }
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
            self.fastresend = resend;
        }
        if nc >= 0 {
            self.nocwnd = nc;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A bulk receiver never queues anything to send; its spare buffers must
    /// survive between flushes while data arrives, and go once it is quiet.
    #[test]
    fn spare_buffers_are_kept_while_busy_and_freed_when_quiet() {
        let (mut a, mut b) = (Kcp::new(1), Kcp::new(1));
        a.set_nodelay(1, 10, 2, true);
        b.set_nodelay(1, 10, 2, true);
        let mut buf = [0u8; 2048];
        let mut now = 0;
        for _ in 0..20 {
            now += 10;
            for _ in 0..8 {
                a.send(&[7u8; 1000]).unwrap();
            }
            let mut wire = Vec::new();
            a.update(now, &mut |d: &[u8]| wire.push(d.to_vec()));
            for d in &wire {
                b.input(d).unwrap();
            }
            let mut acks = Vec::new();
            b.update(now, &mut |d: &[u8]| acks.push(d.to_vec()));
            for d in &acks {
                a.input(d).unwrap();
            }
            while b.recv(&mut buf).is_ok() {}
            assert!(
                b.pool.spares() > 0,
                "receiver dropped its spares at {now} ms"
            );
        }
        for _ in 0..(SPARES_IDLE_MS / 10 + 1) {
            now += 10;
            a.update(now, &mut |_: &[u8]| {});
            b.update(now, &mut |_: &[u8]| {});
        }
        assert_eq!(a.pool.spares(), 0);
        assert_eq!(b.pool.spares(), 0);
    }
}
