//! Flush: assembling datagrams from what is due (acknowledgements, probes,
//! new and retransmitted data) and handing them to the host, then adjusting
//! the congestion window for the losses seen.

use super::codec::{Command, SegmentHeader};
use super::constants::*;
use super::controller::{CcEvent, CcOutcome, Flavour};
use super::host::{Host, LentDatagram, OutputHost};
use super::kcp::{Kcp, OVERHEAD};
use super::output::{LogMask, Output};
use super::payload::Payload;
use super::tail::TailFields;

impl<P: Payload> Kcp<P> {
    /// Transmits what is due now: acknowledgements, window probes, new and
    /// retransmitted data. Does nothing before the first [`update`](Kcp::update).
    pub fn flush(&mut self, out: &mut impl Output) {
        self.flush_with(&mut OutputHost(out))
    }

    /// `ikcp_flush`. The host may call back into `self` whenever it is handed
    /// a datagram, so every step re-reads state instead of holding on to it.
    pub(crate) fn flush_with<H: Host<P>>(&mut self, host: &mut H) {
        if self.updated == 0 {
            return;
        }
        let current = self.current;
        self.hook(host, CcEvent::Tick);
        // Payload bytes this flush may still send; negative: no limit.
        let mut pacing = match self.hook(host, CcEvent::Pacing) {
            CcOutcome::Budget(b) => b as i32,
            _ => -1,
        };
        let prior_cwnd = self.cwnd;
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

        buf = self.write_acks(host, buf, &mut header);
        self.schedule_probe();
        buf = self.write_probes(host, buf, &mut header);

        let mut window = self.snd_wnd.min(self.rmt_wnd);
        if self.tail.nocwnd() == 0 || self.controlled(host) {
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

        if self.snd_buf.queued() == 0 && self.controlled(host) {
            let in_flight = self.snd_buf.len() as u32;
            if in_flight < self.snd_wnd.min(self.rmt_wnd).min(self.cwnd) {
                self.hook(host, CcEvent::AppLimited { in_flight });
            }
        }

        let resent = if self.tail.fastresend() > 0 {
            self.tail.fastresend() as u32
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
        // With the datagram's length (header room and payload).
        let mut lone: Option<(u32, usize)> = None;
        let mut cursor = self.snd_buf.first_sn();
        while let Some(sn) = cursor.and_then(|from| {
            // Only segments that will be sent are visited one by one; the
            // rest are skipped by a scan that cannot call out (state read
            // here is re-read after every call to the host).
            let fastlimit = self.tail.fastlimit();
            self.snd_buf.next_due(from, |seg| {
                seg.xmit == 0
                    || diff(current, seg.resendts) >= 0
                    || (seg.fastack >= resent && (seg.xmit as i32 <= fastlimit || fastlimit <= 0))
            })
        }) {
            cursor = Some(sn.wrapping_add(1));
            let (rx_rto, nodelay, fastlimit, rcv_nxt) = (
                self.rx_rto,
                self.nodelay,
                self.tail.fastlimit(),
                self.rcv_nxt,
            );
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
            let (len, xmit) = (seg.data.len() as u32, seg.xmit);
            if pacing >= 0 && pacing < len as i32 {
                break;
            }
            if self.controlled(host) {
                let in_flight = self.snd_buf.len() as u32;
                let event = CcEvent::PktSent {
                    sn,
                    ts: current,
                    len,
                    in_flight,
                    xmit,
                };
                self.hook(host, event);
            }
            let need = OVERHEAD.wrapping_add(len);
            match lone.take() {
                // The datagram so far is one segment, not yet copied: it goes
                // out as it is, or is copied after all to share a datagram.
                Some((first, size)) => {
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
                lone = Some((sn, seg.data.framed().len()));
            } else {
                header.encode(&mut buf);
                buf.extend_from_slice(seg.data.as_bytes());
            }
            let xmit = seg.xmit;
            if pacing >= 0 {
                pacing = pacing.wrapping_sub(len as i32);
            }
            self.stats.segments_out += 1;
            if xmit >= self.dead_link {
                self.state = u32::MAX;
            }
        }

        if let Some((first, _)) = lone {
            self.emit_lone(host, first);
        } else if !buf.is_empty() {
            buf = self.emit(host, buf);
        }

        if fast_retransmits > 0 {
            let event = CcEvent::FastRetransmit {
                count: fast_retransmits,
                in_flight: self.snd_buf.len() as u32,
                prior_cwnd,
            };
            if self.hook(host, event) == CcOutcome::NotSet {
                let mut c = self.congestion();
                let inflight = self.snd_nxt.wrapping_sub(self.snd_una);
                c.on_fast_retransmit(inflight, resent, self.mss);
                self.set_congestion(c);
            }
        }
        if timed_out && self.hook(host, CcEvent::Timeout { prior_cwnd }) == CcOutcome::NotSet {
            let used = match self.flavour {
                Flavour::V1 => window,
                Flavour::V2 => prior_cwnd,
            };
            let mut c = self.congestion();
            c.on_timeout(used, self.mss);
            self.set_congestion(c);
        }
        let mut c = self.congestion();
        c.ensure_minimum(self.mss);
        self.set_congestion(c);

        if self.buffer.capacity() < buf.capacity() {
            self.buffer = buf;
        }
        self.release_spares_when_quiet(current);
    }

    /// Hands the assembled datagram to the host (which may re-enter `self`)
    /// and returns the emptied buffer for reuse.
    pub(super) fn emit<H: Host<P>>(&mut self, host: &mut H, mut buf: Vec<u8>) -> Vec<u8> {
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
    pub(super) fn emit_lone<H: Host<P>>(&mut self, host: &mut H, sn: u32) {
        let Some(datagram) = self.snd_buf.get(sn).map(|s| {
            let framed = s.data.framed();
            LentDatagram {
                ptr: framed.as_ptr(),
                len: framed.len(),
            }
        }) else {
            return;
        };
        let size = datagram.len;
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
        host.transmit_lent(self, sn, datagram);
        self.lent.pop();
        if !self.lent_acked.is_empty() && !self.lent.contains(&sn) {
            if let Some(at) = self.lent_acked.iter().position(|(acked, _)| *acked == sn) {
                let (_, data) = self.lent_acked.swap_remove(at);
                self.recycle(data);
            }
        }
    }

    /// Emits the buffer first if `need` more bytes would overflow the MTU.
    pub(super) fn make_room<H: Host<P>>(
        &mut self,
        host: &mut H,
        buf: Vec<u8>,
        need: u32,
    ) -> Vec<u8> {
        let size = buf.len() as i32;
        if size.wrapping_add(need as i32) > self.mtu as i32 {
            self.emit(host, buf)
        } else {
            buf
        }
    }
}
