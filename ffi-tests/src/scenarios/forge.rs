//! Forged, truncated and garbage input mixed into a scenario's real traffic.

use crate::lockstep::Call;
use crate::wire::{self, Segment, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS, OVERHEAD};

use super::generator::{Scenario, Step};

impl Scenario {
    /// A timestamp whose RTT sample at endpoint `at` stays small, or lies in
    /// the future (ignored): upstream computes RTT with signed int arithmetic
    /// that overflows (UB) for samples near 2^31.
    fn safe_ts(&mut self, at: usize) -> u32 {
        let cur = self.field(at, self.idx.current) as u32;
        if self.rng.chance(800) {
            cur.wrapping_sub(self.rng.range(0, 5000) as u32)
        } else {
            cur.wrapping_add(self.rng.range(1, 1 << 30) as u32)
        }
    }

    fn forged_segment(&mut self, ep: usize) -> Segment {
        let conv = self.field(ep, self.idx.conv) as u32;
        let rcv_nxt = self.field(ep, self.idx.rcv_nxt) as u32;
        let snd_una = self.field(ep, self.idx.snd_una) as u32;
        let snd_nxt = self.field(ep, self.idx.snd_nxt) as u32;
        let rcv_wnd = self.field(ep, self.idx.rcv_wnd);
        let mss = self.field(ep, self.idx.mss);
        let cmd = self.rng.pick(&[
            CMD_PUSH, CMD_PUSH, CMD_PUSH, CMD_ACK, CMD_ACK, CMD_WASK, CMD_WINS,
        ]);
        let mut s = Segment::new(conv, cmd, 0, Vec::new());
        s.wnd = if self.rng.chance(150) {
            0
        } else {
            self.rng.pick(&[1, 32, 128, 255, 1024, 65535])
        };
        s.una = match self.rng.below(4) {
            0 => snd_una,
            1 => snd_nxt,
            2 => snd_una.wrapping_add(self.rng.range(-3, 3) as u32),
            _ => self.rng.next_u32(),
        };
        match cmd {
            CMD_PUSH => {
                let lo = -3;
                let hi = rcv_wnd.clamp(0, 4096) + 3;
                s.sn = rcv_nxt.wrapping_add(self.rng.range(lo, hi) as u32);
                s.frg = if self.rng.chance(700) {
                    0
                } else {
                    self.rng.below(256) as u8
                };
                // Echoed back in the ACK, so safe for the peer's clock.
                s.ts = self.safe_ts(1 - ep);
                let n = self.rng.range(0, (2 * mss).min(3000)) as usize;
                s.data = self.rng.bytes(n);
                s.len = n as u32;
            }
            CMD_ACK => {
                s.sn = snd_una.wrapping_add(
                    self.rng.range(-2, snd_nxt.wrapping_sub(snd_una) as i64 + 2) as u32,
                );
                s.ts = self.safe_ts(ep);
            }
            _ => {
                s.ts = self.rng.next_u32();
                s.sn = self.rng.next_u32();
            }
        }
        s
    }

    /// Rewrites, in place, the timestamps of ACK and PUSH segments that
    /// upstream's parser would reach in `d[..size]` so no RTT sample can
    /// overflow (see `safe_ts`). Everything else is left as forged.
    fn defuse(&mut self, ep: usize, d: &mut [u8], size: usize) {
        let conv = self.field(ep, self.idx.conv) as u32;
        let mut off = 0;
        while size - off >= OVERHEAD {
            let h = wire::header(&d[off..]);
            if h.conv != conv || h.len as usize > size - off - OVERHEAD || h.len >= 1 << 31 {
                return;
            }
            let fix = match h.cmd {
                CMD_ACK => Some(ep),
                CMD_PUSH => Some(1 - ep),
                CMD_WASK | CMD_WINS => None,
                _ => return,
            };
            if let Some(at) = fix {
                let cur = self.field(at, self.idx.current) as u32;
                let diff = cur.wrapping_sub(h.ts) as i32;
                if (0..1 << 24).contains(&diff) || diff < 0 {
                    // Already harmless.
                } else {
                    let ts = self.safe_ts(at);
                    d[off + 8..off + 12].copy_from_slice(&ts.to_le_bytes());
                }
            }
            off += OVERHEAD + h.len as usize;
        }
    }

    pub(super) fn forge(&mut self) -> Step {
        let ep = self.ep();
        let conv = self.field(ep, self.idx.conv) as u32;
        let mut size: Option<i64> = None;
        let mut data: Vec<u8> = match self.rng.below(12) {
            // Pure garbage, sometimes with the right conv so parsing goes on.
            0 => {
                let mut g = self.rng.bytes_between(0, 80);
                if g.len() >= 4 && self.rng.chance(600) {
                    g[..4].copy_from_slice(&conv.to_le_bytes());
                }
                g
            }
            // A valid-looking segment for another conversation.
            1 => {
                let mut s = self.forged_segment(ep);
                s.conv = conv.wrapping_add(self.rng.range(1, 1000) as u32);
                s.encode()
            }
            // A real datagram cut short.
            2 => match self.recent.last().cloned() {
                Some(d) if !d.is_empty() => {
                    let cut = self.rng.below(d.len() as u64) as usize;
                    d[..cut].to_vec()
                }
                _ => self.rng.bytes(10),
            },
            // A real (or forged) datagram followed by garbage.
            3 => {
                let mut d = match self.recent.last() {
                    Some(d) if self.rng.chance(600) => d.clone(),
                    _ => self.forged_segment(ep).encode(),
                };
                let mut tail = self.rng.bytes_between(1, 60);
                if tail.len() >= 4 && self.rng.chance(500) {
                    tail[..4].copy_from_slice(&conv.to_le_bytes());
                }
                d.extend_from_slice(&tail);
                d
            }
            // Header length field larger than what follows.
            4 => {
                let mut s = self.forged_segment(ep);
                s.len = s.data.len() as u32 + self.rng.pick(&[1, 2, 100, 1 << 20]);
                s.encode()
            }
            // Length field that is negative as a C int.
            5 => {
                let mut s = self.forged_segment(ep);
                s.len = self.rng.pick(&[0x8000_0000, 0xffff_ffff, 0x9000_0000]);
                s.encode()
            }
            // Unknown command.
            6 => {
                let mut s = self.forged_segment(ep);
                s.cmd = self.rng.pick(&[0, 1, 80, 85, 255]);
                s.encode()
            }
            // A stale or foreign real datagram replayed to either endpoint.
            7 => match self.recent.len() {
                0 => self.rng.bytes(24),
                n => self.recent[self.rng.below(n as u64) as usize].clone(),
            },
            // The input size argument lies (shorter, zero, negative).
            8 => {
                let d = self.forged_segment(ep).encode();
                size = Some(match self.rng.below(4) {
                    0 => self.rng.range(0, d.len() as i64),
                    1 => 0,
                    2 => -self.rng.range(1, 1 << 40),
                    // Truncated to int by upstream: negative there.
                    _ => (1i64 << 32) - self.rng.range(1, 100),
                });
                d
            }
            // NULL data.
            9 => {
                let size = self.rng.pick(&[0, 24, 100, -1]);
                return self.call(Call::Input {
                    ep,
                    data: None,
                    size,
                });
            }
            // Several well-formed forged segments in one datagram.
            _ => {
                let mut d = Vec::new();
                for _ in 0..self.rng.range(1, 4) {
                    self.forged_segment(ep).encode_into(&mut d);
                }
                d
            }
        };
        let size = size.unwrap_or(data.len() as i64);
        if size > 0 {
            let parsed = (size as usize).min(data.len());
            self.defuse(ep, &mut data, parsed);
        }
        self.call(Call::Input {
            ep,
            data: Some(data),
            size,
        })
    }
}
