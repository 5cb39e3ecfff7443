//! Parsing datagrams from the peer: each segment's header, its cumulative
//! acknowledgement, and its command (ACK, data, window question or answer).

use super::codec::{Command, SegmentHeader, HEADER_LEN};
use super::constants::*;
use super::controller::{CcEvent, CcOutcome};
use super::error::InputError;
use super::host::{Host, Silent};
use super::kcp::{Kcp, OVERHEAD};
use super::output::LogMask;
use super::payload::Payload;
use super::recv_window::Fragment;
use super::tail::TailFields;

impl<P: Payload> Kcp<P> {
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

    /// `ikcp_input`. `size` is the caller's claimed length (a C `long`);
    /// `data` holds at least `size` bytes when `size` is positive.
    pub(crate) fn input_raw<H: Host<P>>(
        &mut self,
        data: Option<&[u8]>,
        size: i64,
        host: &mut H,
    ) -> i32 {
        let prev_una = self.snd_una;
        let prev_in_flight = self.snd_buf.len() as u32;
        let mut max_ack: Option<(u32, u32)> = None;
        self.tail.set_ackedlen(0);

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
                if self.controlled(host) {
                    self.parse_una_hooked(host, hdr.una);
                } else {
                    let pool_limit = self.pool_limit();
                    let mut acked = self.tail.ackedlen();
                    let (pool, lent, lent_acked) =
                        (&mut self.pool, &self.lent, &mut self.lent_acked);
                    self.snd_buf.remove_before(hdr.una, |seg| {
                        acked = acked.wrapping_add(seg.data.len() as u32);
                        if lent.contains(&seg.sn) {
                            lent_acked.push((seg.sn, seg.data));
                        } else {
                            pool.give(seg.data, pool_limit);
                        }
                    });
                    self.tail.set_ackedlen(acked);
                }
                self.shrink_buf();
            }

            match cmd {
                Command::Ack => {
                    let rtt = diff(self.current, hdr.ts);
                    if rtt >= 0 {
                        let mut s = self.rtt_state();
                        s.sample(rtt, self.interval, RTO_MAX);
                        self.set_rtt_state(s);
                        self.hook(host, CcEvent::Rtt { rtt });
                    }
                    self.parse_ack(host, hdr.sn);
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
            let event = CcEvent::Ack {
                acked_segs: self.snd_una.wrapping_sub(prev_una),
                acked_bytes: self.tail.ackedlen(),
                prior_in_flight: prev_in_flight,
            };
            if self.hook(host, event) == CcOutcome::NotSet {
                let mut c = self.congestion();
                c.on_progress(self.mss, self.rmt_wnd);
                self.set_congestion(c);
            }
        }
        0
    }
}
