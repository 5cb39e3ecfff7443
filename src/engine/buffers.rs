//! Payload buffers: reused through the pool while traffic flows, freed once
//! the connection is quiet, and kept alive while a host reads one in place.

use super::constants::*;
use super::kcp::Kcp;
use super::payload::{Payload, POOL_MAX, POOL_MIN};

/// Quiet time (ms) after which spare payload buffers are freed.
const SPARES_IDLE_MS: u32 = 1000;

impl<P: Payload> Kcp<P> {
    /// Spare payload buffers worth keeping: about one window.
    #[inline]
    pub(super) fn pool_limit(&self) -> usize {
        (2 * self.snd_wnd.max(self.rcv_wnd) as usize).clamp(POOL_MIN, POOL_MAX)
    }

    #[inline]
    pub(super) fn recycle(&mut self, buf: P) {
        let limit = self.pool_limit();
        self.pool.give(buf, limit);
    }

    /// Recycles the buffer of an acknowledged segment, unless a host is still
    /// reading it as a datagram.
    #[inline]
    pub(super) fn retire(&mut self, sn: u32, data: P) {
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

    /// Frees the spare payload buffers once no data has moved for a while,
    /// so idle connections hold no spare memory. A pure receiver never has
    /// anything queued to send, so arriving data counts as activity too.
    pub(super) fn release_spares_when_quiet(&mut self, now: u32) {
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
