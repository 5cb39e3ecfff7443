//! Acknowledgements: those the peer sends us (per segment and cumulative,
//! and the duplicate-ACK counting behind fast retransmit), and those we owe
//! the peer for the data it sent, written at the next flush.

use super::codec::SegmentHeader;
use super::constants::*;
use super::controller::CcEvent;
use super::host::Host;
use super::kcp::{Kcp, OVERHEAD};
use super::payload::Payload;
use super::tail::TailFields;

impl<P: Payload> Kcp<P> {
    pub(super) fn shrink_buf(&mut self) {
        self.snd_una = self.snd_buf.first_sn().unwrap_or(self.snd_nxt);
    }

    pub(super) fn parse_ack<H: Host<P>>(&mut self, host: &mut H, sn: u32) {
        if diff(sn, self.snd_una) < 0 || diff(sn, self.snd_nxt) >= 0 {
            return;
        }
        if self.controlled(host) {
            let Some(seg) = self.snd_buf.get(sn) else {
                return;
            };
            let (ts, len, xmit) = (seg.ts, seg.data.len() as u32, seg.xmit);
            let acked = self.tail.ackedlen().wrapping_add(len);
            self.tail.set_ackedlen(acked);
            let age = diff(self.current, ts);
            let rtt = if age >= 0 { age } else { -1 };
            // Like upstream, the hook sees the segment still in flight.
            self.hook(
                host,
                CcEvent::PktAcked {
                    sn,
                    ts,
                    len,
                    rtt,
                    xmit,
                },
            );
            if let Some(seg) = self.snd_buf.remove(sn) {
                self.retire(seg.sn, seg.data);
            }
        } else if let Some(seg) = self.snd_buf.remove(sn) {
            let acked = self.tail.ackedlen().wrapping_add(seg.data.len() as u32);
            self.tail.set_ackedlen(acked);
            self.retire(seg.sn, seg.data);
        }
    }

    /// The cumulative acknowledgement `una` with a controller installed:
    /// segment by segment, each reported to `on_pkt_acked` while still in
    /// flight, as upstream walks its list.
    pub(super) fn parse_una_hooked<H: Host<P>>(&mut self, host: &mut H, una: u32) {
        while let Some(sn) = self.snd_buf.first_sn() {
            if diff(una, sn) <= 0 {
                break;
            }
            let Some(seg) = self.snd_buf.get(sn) else {
                break;
            };
            let (ts, len, xmit) = (seg.ts, seg.data.len() as u32, seg.xmit);
            let acked = self.tail.ackedlen().wrapping_add(len);
            self.tail.set_ackedlen(acked);
            self.hook(
                host,
                CcEvent::PktAcked {
                    sn,
                    ts,
                    len,
                    rtt: -1,
                    xmit,
                },
            );
            let mut taken = None;
            self.snd_buf
                .remove_before(sn.wrapping_add(1), |seg| taken = Some(seg));
            if let Some(seg) = taken {
                self.retire(seg.sn, seg.data);
            }
        }
    }

    pub(super) fn parse_fastack(&mut self, sn: u32, ts: u32) {
        if diff(sn, self.snd_una) < 0 || diff(sn, self.snd_nxt) >= 0 {
            return;
        }
        self.snd_buf.for_each_through(sn, |seg| {
            if seg.sn != sn && diff(ts, seg.ts) >= 0 {
                seg.fastack = seg.fastack.wrapping_add(1);
            }
        });
    }

    pub(super) fn ack_push(&mut self, sn: u32, ts: u32) {
        let needed = self.acklist.len() as u32 + 1;
        if needed > self.tail.ackblock() {
            let mut block = 8u32;
            while block < needed {
                block <<= 1;
            }
            self.tail.set_ackblock(block);
        }
        self.acklist.push((sn, ts));
    }

    /// Writes an ACK for every data segment received since the last flush
    /// into `buf` (emitting it whenever it is full), using `header` as the
    /// template, and empties the list.
    pub(super) fn write_acks<H: Host<P>>(
        &mut self,
        host: &mut H,
        mut buf: Vec<u8>,
        header: &mut SegmentHeader,
    ) -> Vec<u8> {
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
        buf
    }
}
