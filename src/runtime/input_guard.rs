//! What a connection lets into its engine: the memory bound against a hostile
//! or misconfigured peer.
//!
//! The engine (like the reference) stores any data segment inside its receive
//! window, whatever its length, so a peer could make one connection hold
//! `rcv_wnd` segments of 64 KiB each. Before a datagram reaches
//! [`Kcp::input`], this guard:
//! - drops a datagram longer than the MTU (our peer never builds one);
//! - removes data segments longer than the MSS;
//! - removes out-of-order data segments once the bytes buffered out of order
//!   would pass the connection's cap ([`KcpConfig::max_out_of_order_bytes`]),
//!   or, for a listener's connection, its floor
//!   ([`ListenerLimits::out_of_order_floor`]) plus what it can draw from the
//!   listener-wide pool ([`ListenerLimits::max_out_of_order_total`]).
//!   A half-open listener connection holds nothing out of order.
//!
//! A removed segment is never acknowledged (the engine does not see it), so
//! the peer retransmits it later; the next expected segment is always let
//! through, so a connection always makes progress. Buffered bytes are counted
//! as segments times the MSS, an upper bound of what they hold.
//!
//! [`KcpConfig::max_out_of_order_bytes`]: super::KcpConfig#structfield.max_out_of_order_bytes
//! [`ListenerLimits::max_out_of_order_total`]: super::ListenerLimits#structfield.max_out_of_order_total
//! [`ListenerLimits::out_of_order_floor`]: super::ListenerLimits#structfield.out_of_order_floor

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::engine::{segments, Command, Kcp, SegmentHeader, HEADER_LEN};

/// Bytes shared by the connections of one listener, with a cap.
#[derive(Debug)]
pub(crate) struct BytePool {
    used: AtomicUsize,
    cap: usize,
    /// What the members hold in all, drawn from the pool or not.
    held: AtomicUsize,
}

impl BytePool {
    pub(crate) fn new(cap: usize) -> Arc<BytePool> {
        Arc::new(BytePool {
            used: AtomicUsize::new(0),
            cap,
            held: AtomicUsize::new(0),
        })
    }

    /// Bytes currently charged.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes the members hold in all, floors included.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Charges `bytes` if they fit under the cap.
    pub(crate) fn try_charge(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(bytes).filter(|&n| n <= self.cap)
            })
            .is_ok()
    }

    /// Charges `bytes` whatever the cap (a bounded overshoot).
    pub(crate) fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Counters of what the guard kept out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GuardCounters {
    pub oversized_datagrams: u64,
    pub oversized_segments: u64,
    pub out_of_order_dropped: u64,
}

/// One connection's screening of incoming datagrams.
pub(crate) struct InputGuard {
    mtu: usize,
    /// Out-of-order bytes this connection may hold; 0 while it is half-open.
    cap: usize,
    configured_cap: usize,
    pool: Option<Arc<BytePool>>,
    /// Out-of-order bytes held without drawing from the pool.
    floor: usize,
    /// What this connection has drawn from the pool.
    charged: usize,
    /// What this connection last reported as held.
    held: usize,
    /// Called once when a half-open connection proves itself.
    on_established: Option<Box<dyn FnOnce() + Send>>,
    half_open: bool,
    scratch: Vec<u8>,
    pub counters: GuardCounters,
}

impl InputGuard {
    /// `max_out_of_order`: `None` for the receive window (which the engine
    /// bounds by itself once segments are at most the MSS).
    pub(crate) fn new(mtu: usize, max_out_of_order: Option<usize>) -> Self {
        let cap = max_out_of_order.unwrap_or(usize::MAX);
        InputGuard {
            mtu,
            cap,
            configured_cap: cap,
            pool: None,
            floor: 0,
            charged: 0,
            held: 0,
            on_established: None,
            half_open: false,
            scratch: Vec::new(),
            counters: GuardCounters::default(),
        }
    }

    /// A listener's connection: it shares the listener's pool, and while
    /// half-open it buffers nothing out of order. It is established once the
    /// peer acknowledged our data or sent data past its first segment; then
    /// the configured cap applies and `on_established` runs.
    pub(crate) fn join_listener(
        &mut self,
        pool: Arc<BytePool>,
        floor: usize,
        on_established: Box<dyn FnOnce() + Send>,
    ) {
        self.pool = Some(pool);
        self.floor = floor;
        self.cap = 0;
        self.half_open = true;
        self.on_established = Some(on_established);
    }

    /// Whether the peer has not proved itself yet.
    pub(crate) fn is_half_open(&self) -> bool {
        self.half_open
    }

    /// The datagram to feed to the engine, possibly with segments removed,
    /// or `None` to drop it. Datagrams that do not parse pass unchanged: the
    /// engine rejects them as the reference would.
    pub(crate) fn screen<'a>(&'a mut self, kcp: &Kcp, d: &'a [u8]) -> Option<&'a [u8]> {
        if d.len() > self.mtu {
            self.counters.oversized_datagrams += 1;
            return None;
        }
        // Usually nothing is removed and the datagram passes as it is.
        let mut removing = false;
        let rcv_nxt = kcp.rcv_nxt();
        let (_, rcv_wnd) = kcp.window_size();
        let mss = kcp.mss();
        let mut buffered = kcp.recv_buffer_len() * mss;
        // The sequence number that will be next once this datagram's earlier
        // segments are in, and the receive queue's room for them.
        let mut next = (rcv_nxt, rcv_wnd.saturating_sub(kcp.recv_queue_len() as u32));
        // Where the whole segments end; what follows passes unchanged.
        let mut tail = 0;
        for (at, h) in segments(d) {
            let end = at + HEADER_LEN + h.len as usize;
            let keep = self.keep(&h, mss, (rcv_nxt, rcv_wnd), &mut next, &mut buffered);
            if !keep && !removing {
                removing = true;
                self.scratch.clear();
                self.scratch.extend_from_slice(&d[..at]);
            }
            if keep && removing {
                self.scratch.extend_from_slice(&d[at..end]);
            }
            tail = end;
        }
        if !removing {
            return Some(d);
        }
        self.scratch.extend_from_slice(&d[tail..]);
        (self.scratch.len() >= HEADER_LEN).then_some(&self.scratch[..])
    }

    /// Whether one segment may enter; `buffered` counts what the receive
    /// window will hold, this datagram's earlier segments included.
    fn keep(
        &mut self,
        h: &SegmentHeader,
        mss: usize,
        (rcv_nxt, rcv_wnd): (u32, u32),
        (next, room): &mut (u32, u32),
        buffered: &mut usize,
    ) -> bool {
        if h.cmd != Command::Push as u8 {
            return true;
        }
        if h.len as usize > mss {
            self.counters.oversized_segments += 1;
            return false;
        }
        if h.sn == *next && *room > 0 {
            // Delivered in order at once: the next expected segment always
            // enters while the receive queue has room (progress).
            *next = next.wrapping_add(1);
            *room -= 1;
            return true;
        }
        if h.sn.wrapping_sub(rcv_nxt) >= rcv_wnd {
            // Outside the window (or already delivered): the engine stores
            // nothing.
            return true;
        }
        if *buffered + mss > self.cap {
            self.counters.out_of_order_dropped += 1;
            return false;
        }
        if let Some(pool) = &self.pool {
            // Drawn up front from the pool; settled after the input.
            let drawn = (*buffered + mss).saturating_sub(self.floor);
            if drawn > self.charged && !pool.try_charge(drawn - self.charged) {
                self.counters.out_of_order_dropped += 1;
                return false;
            }
            self.charged = self.charged.max(drawn);
        }
        *buffered += mss;
        true
    }

    /// Notes what an input or a read changed: whether the peer proved
    /// itself, and what the engine now holds out of order.
    pub(crate) fn settle(&mut self, kcp: &Kcp) {
        if self.half_open && (kcp.snd_una() != 0 || kcp.rcv_nxt() >= 2) {
            self.half_open = false;
            self.cap = self.configured_cap;
            if let Some(f) = self.on_established.take() {
                f();
            }
        }
        let Some(pool) = &self.pool else {
            return;
        };
        let held = kcp.recv_buffer_len() * kcp.mss();
        if held >= self.held {
            pool.held.fetch_add(held - self.held, Ordering::Relaxed);
        } else {
            pool.held.fetch_sub(self.held - held, Ordering::Relaxed);
        }
        self.held = held;
        let drawn = held.saturating_sub(self.floor);
        if drawn < self.charged {
            pool.release(self.charged - drawn);
        } else if drawn > self.charged {
            // In-order segments waiting for a full receive queue.
            pool.charge(drawn - self.charged);
        }
        self.charged = drawn;
    }
}

impl Drop for InputGuard {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.release(self.charged);
            pool.held.fetch_sub(self.held, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(conv: u32, sn: u32, len: usize) -> Vec<u8> {
        let mut v = Vec::new();
        SegmentHeader {
            conv,
            cmd: Command::Push as u8,
            sn,
            len: len as u32,
            wnd: 128,
            ..Default::default()
        }
        .encode(&mut v);
        v.resize(v.len() + len, 7);
        v
    }

    fn ack(conv: u32, sn: u32) -> Vec<u8> {
        let mut v = Vec::new();
        SegmentHeader {
            conv,
            cmd: Command::Ack as u8,
            sn,
            wnd: 128,
            ..Default::default()
        }
        .encode(&mut v);
        v
    }

    fn engine(mtu: usize) -> Kcp {
        let mut k = Kcp::new(1);
        k.set_mtu(mtu).unwrap();
        k
    }

    #[test]
    fn datagrams_over_the_mtu_are_dropped() {
        let k = engine(200);
        let mut g = InputGuard::new(200, None);
        let d = [push(1, 0, 100), push(1, 1, 100)].concat();
        assert_eq!(g.screen(&k, &d), None);
        assert_eq!(g.counters.oversized_datagrams, 1);
        let d = push(1, 0, 176);
        assert_eq!(g.screen(&k, &d), Some(&d[..]));
    }

    #[test]
    fn segments_over_the_mss_are_removed_and_the_rest_kept() {
        // Under an MTU check alone a segment cannot pass the MSS; a transport
        // allowing longer datagrams than the engine's MTU shows the check.
        let k = engine(1400);
        let mut g = InputGuard::new(2000, None);
        let d = [ack(1, 0), push(1, 0, 1376)].concat();
        assert_eq!(g.screen(&k, &d), Some(&d[..]), "within the mss: kept");
        let d = [ack(1, 0), push(1, 0, 1377)].concat();
        assert_eq!(g.screen(&k, &d), Some(&ack(1, 0)[..]));
        assert_eq!(g.counters.oversized_segments, 1);
        assert_eq!(g.screen(&k, &push(1, 0, 1377)), None, "nothing left");
    }

    #[test]
    fn out_of_order_bytes_stop_at_the_cap_but_the_next_segment_enters() {
        let mut k = engine(1400);
        let mss = 1376;
        let mut g = InputGuard::new(1400, Some(3 * mss));
        for sn in 1..=5 {
            if let Some(d) = g.screen(&k, &push(1, sn, 1000)) {
                let d = d.to_vec();
                k.input(&d).unwrap();
            }
        }
        assert_eq!(k.recv_buffer_len(), 3);
        assert_eq!(g.counters.out_of_order_dropped, 2);
        // The gap itself always enters, and delivery drains the buffer.
        let d = push(1, 0, 1000);
        assert_eq!(g.screen(&k, &d), Some(&d[..]));
        k.input(&d).unwrap();
        assert_eq!(k.recv_buffer_len(), 0);
        assert_eq!(k.rcv_nxt(), 4);
    }

    #[test]
    fn consecutive_segments_in_one_datagram_are_in_order() {
        let mut k = engine(1400);
        let mut g = InputGuard::new(1400, Some(0));
        let d = [
            push(1, 0, 10),
            push(1, 1, 10),
            push(1, 2, 10),
            push(1, 4, 10),
        ]
        .concat();
        let kept = g.screen(&k, &d).unwrap().to_vec();
        assert_eq!(
            kept,
            d[..3 * 34],
            "the run from rcv_nxt is in order; 4 is not"
        );
        k.input(&kept).unwrap();
        assert_eq!((k.rcv_nxt(), k.recv_buffer_len()), (3, 0));
    }

    #[test]
    fn the_listener_pool_is_charged_and_returned() {
        // A floor of one segment, and two more from the pool.
        let pool = BytePool::new(2 * 1376);
        let mut k = engine(1400);
        let mut g = InputGuard::new(1400, None);
        let established = Arc::new(AtomicUsize::new(0));
        let e = established.clone();
        g.join_listener(
            pool.clone(),
            1376,
            Box::new(move || {
                e.fetch_add(1, Ordering::Relaxed);
            }),
        );
        assert_eq!(
            g.screen(&k, &push(1, 2, 10)),
            None,
            "half-open: nothing out of order"
        );
        assert_eq!(g.counters.out_of_order_dropped, 1);
        for sn in 0..2 {
            k.input(&push(1, sn, 10)).unwrap();
            g.settle(&k);
            assert_eq!(
                g.is_half_open(),
                sn == 0,
                "established by its second segment"
            );
        }
        assert_eq!(established.load(Ordering::Relaxed), 1);
        // rcv_nxt is 2: segments 3 to 6 are out of order; three fit.
        let d = [
            push(1, 3, 10),
            push(1, 4, 10),
            push(1, 5, 10),
            push(1, 6, 10),
        ]
        .concat();
        let kept = g.screen(&k, &d).unwrap().to_vec();
        assert_eq!(kept, d[..3 * 34]);
        k.input(&kept).unwrap();
        g.settle(&k);
        assert_eq!(pool.used(), 2 * 1376);
        k.input(&push(1, 2, 10)).unwrap();
        g.settle(&k);
        assert_eq!(pool.used(), 0, "the gap filled: all delivered in order");
        for sn in 7..9 {
            k.input(&push(1, sn, 10)).unwrap();
        }
        g.settle(&k);
        assert_eq!(pool.used(), 1376, "one segment within the floor");
        assert_eq!(pool.held(), 2 * 1376);
        drop(g);
        assert_eq!(pool.used(), 0, "a closed connection returns its share");
        assert_eq!(pool.held(), 0);
    }
}
