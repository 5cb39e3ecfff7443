//! The engine target: two [`Kcp`] endpoints joined by a link the input
//! controls, driven by an arbitrary sequence of calls (send, recv, peek,
//! input, update, flush, check and every setter), with arbitrary datagrams
//! injected and genuine ones dropped, duplicated, reordered or corrupted.
//!
//! Checked after every call:
//! - nothing panics;
//! - `snd_una <= snd_nxt` and at most a send window apart; segments in
//!   flight never exceed that distance, and never exceed what is queued;
//! - the receive buffer and queue hold at most a receive window of segments
//!   (memory bounded by the windows);
//! - every datagram the engine emits fits the largest MTU configured;
//! - `check()` never asks to wait longer than the interval;
//! - `peek_size`, `peek` and `recv` agree on the next message, and a buffer
//!   too small is refused without consuming it;
//! - the bytes one endpoint received are a prefix of the bytes the other
//!   sent, as long as nothing forged reached it.

use std::collections::VecDeque;

use kcp::engine::{Command, Kcp, RecvError, SegmentHeader};

use crate::input::Input;

/// Calls per input, so a long input cannot make one execution slow.
const MAX_OPS: usize = 1_500;
/// Datagrams buffered per direction before the oldest are lost.
const LINK_CAP: usize = 4_096;

/// Longest single `send`: past 128 full segments at the largest MTU tried.
const MAX_SEND: usize = 128 * 3_000;

/// Payload bytes: a pattern that repeats every 251 bytes, so a misplaced
/// chunk shows; computed once, sliced by every send.
fn pattern() -> &'static [u8] {
    static P: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    P.get_or_init(|| (0..MAX_SEND + 251).map(|i| (i % 251) as u8).collect())
}

struct End {
    kcp: Kcp,
    /// Bytes `send` accepted, in order.
    sent: Vec<u8>,
    /// Bytes `recv` returned so far (each checked against the peer's `sent`).
    received: usize,
    /// A datagram that did not come unchanged from the peer reached this end.
    forged: bool,
    max_snd_wnd: u32,
    max_rcv_wnd: u32,
    max_mtu: usize,
    pattern: u8,
}

impl End {
    fn new(conv: u32) -> End {
        let kcp = Kcp::new(conv);
        let (snd, rcv) = kcp.window_size();
        let mtu = kcp.mtu();
        End {
            kcp,
            sent: Vec::new(),
            received: 0,
            forged: false,
            max_snd_wnd: snd,
            max_rcv_wnd: rcv,
            max_mtu: mtu,
            pattern: 0,
        }
    }

    fn note_settings(&mut self) {
        let (snd, rcv) = self.kcp.window_size();
        self.max_snd_wnd = self.max_snd_wnd.max(snd);
        self.max_rcv_wnd = self.max_rcv_wnd.max(rcv);
        self.max_mtu = self.max_mtu.max(self.kcp.mtu());
    }
}

struct World {
    ends: [End; 2],
    /// `links[i]`: datagrams emitted by end `i`, not yet delivered to the other.
    links: [VecDeque<Vec<u8>>; 2],
    now: u32,
    conv: u32,
}

impl World {
    fn output(&mut self, ep: usize, flush_only: bool) {
        let max_mtu = self.ends[ep].max_mtu;
        let now = self.now;
        let link = &mut self.links[ep];
        let mut out = |d: &[u8]| {
            assert!(
                d.len() <= max_mtu,
                "emitted a {}-byte datagram with MTU at most {max_mtu}",
                d.len()
            );
            if link.len() >= LINK_CAP {
                link.pop_front();
            }
            link.push_back(d.to_vec());
        };
        if flush_only {
            self.ends[ep].kcp.flush(&mut out);
        } else {
            self.ends[ep].kcp.update(now, &mut out);
        }
    }

    fn input(&mut self, ep: usize, d: &[u8], genuine: bool) {
        let end = &mut self.ends[ep];
        if !genuine && d.get(..4) == Some(&end.kcp.conv().to_le_bytes()[..]) {
            end.forged = true;
        }
        let _ = end.kcp.input(d);
    }

    fn send(&mut self, ep: usize, len: usize) {
        let end = &mut self.ends[ep];
        let start = end.pattern as usize % 251;
        end.pattern = end.pattern.wrapping_add(17);
        let data = &pattern()[start..start + len.min(MAX_SEND)];
        if let Ok(n) = end.kcp.send(data) {
            assert!(n <= data.len(), "send accepted {n} of {} bytes", data.len());
            end.sent.extend_from_slice(&data[..n]);
        }
    }

    /// `recv` or `peek` into a buffer chosen by `mode`, checked against
    /// `peek_size`.
    fn recv(&mut self, ep: usize, mode: u8, peek: bool) {
        let end = &mut self.ends[ep];
        let size = end.kcp.peek_size();
        let cap = match (size, mode % 5) {
            (Ok(n), 0) => n,
            (Ok(n), 1) => n + 1 + mode as usize,
            // Too small by one or more, and empty.
            (Ok(n), 2) if n > 1 => n - 1 - (mode as usize % (n - 1)),
            (Ok(n), 3) if n > 0 => 0,
            (_, _) => 65_536,
        };
        let mut buf = vec![0u8; cap];
        let r = if peek {
            end.kcp.peek(&mut buf)
        } else {
            end.kcp.recv(&mut buf)
        };
        match (size, r) {
            (Ok(n), Ok(m)) => {
                assert_eq!(n, m, "peek_size said {n}, recv/peek returned {m}");
                assert!(cap >= n, "returned a {n}-byte message into {cap} bytes");
                if peek {
                    // The message is still there, identical.
                    let mut again = vec![0u8; n];
                    assert_eq!(end.kcp.recv(&mut again), Ok(n), "peeked message vanished");
                    assert_eq!(again, buf[..n], "peek and recv returned different bytes");
                }
                buf.truncate(n);
                self.check_delivery(ep, &buf);
            }
            (Ok(n), Err(RecvError::BufferTooSmall { needed })) => {
                assert!(
                    cap < n,
                    "refused a {n}-byte message with {cap} bytes of room"
                );
                assert_eq!(needed, n);
                assert_eq!(end.kcp.peek_size(), Ok(n), "a refused recv consumed data");
            }
            (Ok(n), Err(e)) => panic!("peek_size said {n} but recv/peek failed: {e:?}"),
            (Err(e), Ok(m)) => panic!("peek_size failed ({e:?}) but recv/peek returned {m}"),
            (Err(_), Err(RecvError::BufferTooSmall { .. })) => {
                panic!("no message ready, yet recv/peek said the buffer is too small")
            }
            (Err(_), Err(_)) => {}
        }
    }

    fn check_invariants(&self) {
        for (i, end) in self.ends.iter().enumerate() {
            let k = &end.kcp;
            let distance = k.snd_nxt().wrapping_sub(k.snd_una());
            assert!(
                distance <= end.max_snd_wnd,
                "end {i}: snd_una {} is {distance} behind snd_nxt {} (send window at most {})",
                k.snd_una(),
                k.snd_nxt(),
                end.max_snd_wnd
            );
            assert!(
                k.in_flight() as u64 <= u64::from(distance),
                "end {i}: {} segments in flight between snd_una and snd_nxt {distance} apart",
                k.in_flight()
            );
            assert!(
                k.in_flight() <= k.wait_snd(),
                "end {i}: in flight > waiting"
            );
            assert!(
                k.recv_buffer_len() <= end.max_rcv_wnd as usize,
                "end {i}: {} segments buffered, receive window at most {}",
                k.recv_buffer_len(),
                end.max_rcv_wnd
            );
            assert!(
                k.recv_queue_len() <= end.max_rcv_wnd as usize,
                "end {i}: {} segments queued, receive window at most {}",
                k.recv_queue_len(),
                end.max_rcv_wnd
            );
        }
    }

    /// `got` was just received by `ep`: it must continue what the peer sent.
    fn check_delivery(&mut self, ep: usize, got: &[u8]) {
        let at = self.ends[ep].received;
        self.ends[ep].received += got.len();
        if self.ends[ep].forged {
            return;
        }
        let sent = &self.ends[1 - ep].sent;
        assert!(
            at + got.len() <= sent.len() && sent[at..at + got.len()] == *got,
            "end {ep} received bytes {at}..{} that differ from what its peer sent ({} bytes)",
            at + got.len(),
            sent.len()
        );
    }

    fn deliver(&mut self, from: usize, inp: &mut Input) {
        let n = 1 + inp.u8() as usize % 16;
        for _ in 0..n {
            let action = inp.u8();
            let Some(d) = self.links[from].pop_front() else {
                return;
            };
            let to = 1 - from;
            match action % 16 {
                0 => {} // lost
                1 => {
                    self.input(to, &d, true);
                    self.input(to, &d, true);
                }
                2 => {
                    // Overtaken by the next one.
                    let at = self.links[from].len().min(1);
                    self.links[from].insert(at, d);
                }
                3 => {
                    let mut d = d;
                    let at = inp.u16() as usize % d.len().max(1);
                    if let Some(b) = d.get_mut(at) {
                        *b ^= inp.u8() | 1;
                    }
                    self.input(to, &d, false);
                }
                4 => {
                    let cut = inp.u16() as usize % (d.len() + 1);
                    // A shorter datagram is forged only if it still parses.
                    self.input(to, &d[..cut], false);
                }
                _ => self.input(to, &d, true),
            }
        }
    }

    fn forge(&mut self, ep: usize, inp: &mut Input) {
        let mut d = Vec::new();
        let segments = 1 + inp.u8() % 4;
        for _ in 0..segments {
            let sel = inp.u8();
            let cmd = match sel % 8 {
                0..=2 => Command::Push as u8,
                3 | 4 => Command::Ack as u8,
                5 => Command::WindowAsk as u8,
                6 => Command::WindowTell as u8,
                _ => inp.u8(),
            };
            let k = &self.ends[ep].kcp;
            let near = |base: u32, inp: &mut Input| match inp.u8() % 4 {
                0 => inp.u32(),
                v => base
                    .wrapping_add(u32::from(inp.u8()))
                    .wrapping_sub(u32::from(v) * 8),
            };
            let payload = if cmd == Command::Push as u8 {
                inp.u16() as usize % 2_000
            } else {
                0
            };
            let h = SegmentHeader {
                conv: if sel & 0x80 != 0 {
                    inp.u32()
                } else {
                    self.conv
                },
                cmd,
                frg: inp.u8() % 8,
                wnd: inp.u16(),
                ts: near(self.now, inp),
                sn: near(k.rcv_nxt(), inp),
                una: near(k.snd_una(), inp),
                len: if sel & 0x40 != 0 {
                    inp.u32()
                } else {
                    payload as u32
                },
            };
            h.encode(&mut d);
            d.resize(d.len() + payload, 0xEE);
        }
        self.input(ep, &d, false);
    }

    fn setter(&mut self, ep: usize, inp: &mut Input) {
        let which = inp.u8();
        let v = inp.u16();
        let k = &mut self.ends[ep].kcp;
        match which % 9 {
            0 => {
                let _ = k.set_mtu(v as usize % 3_000);
            }
            1 => k.set_window_size(u32::from(v % 600), u32::from(inp.u16() % 600)),
            2 => k.set_nodelay(
                i32::from(v % 4) - 1,
                i32::from(inp.u8()) - 10,
                i32::from(inp.u8() % 6) - 1,
                inp.bool(),
            ),
            3 => k.set_interval(i32::from(v) - 100),
            4 => k.set_stream_mode(v & 1 == 1),
            5 => k.set_min_rto(u32::from(v % 2_000)),
            6 => k.set_dead_link(u32::from(v % 40)),
            7 => k.set_fast_limit(i32::from(v % 10) - 1),
            _ => {
                // A conv change makes the peer's datagrams foreign; only
                // sometimes, so most runs keep talking.
                if v & 7 == 0 {
                    k.set_conv(inp.u32());
                }
            }
        }
        self.ends[ep].note_settings();
    }

    fn advance(&mut self, inp: &mut Input) {
        let step = match inp.u8() % 8 {
            0 => u32::from(inp.u16()),
            1 => inp.u32(),
            2 => 0,
            v => u32::from(v) * 5 + u32::from(inp.u8() % 16),
        };
        self.now = self.now.wrapping_add(step);
    }
}

/// Runs one scenario decoded from `data`; panics on a finding.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let conv = match inp.u8() % 4 {
        0 => 0,
        1 => u32::MAX,
        _ => 0x1122_3344,
    };
    let now = match inp.u8() % 4 {
        // Close to the 2^32 ms wrap.
        0 => u32::MAX - 5_000,
        _ => 1_000,
    };
    let mut w = World {
        ends: [End::new(conv), End::new(conv)],
        links: [VecDeque::new(), VecDeque::new()],
        now,
        conv,
    };
    let mut ops = 0;
    while !inp.is_empty() && ops < MAX_OPS {
        ops += 1;
        let op = inp.u8();
        let ep = (op >> 7) as usize;
        match op % 16 {
            0 | 1 => {
                let len = match inp.u8() % 8 {
                    0 if inp.u8() == 0 => 128 * w.ends[ep].kcp.mss() + inp.u8() as usize,
                    0 => inp.u16() as usize,
                    1 => w.ends[ep].kcp.mss() * (1 + inp.u8() as usize % 4),
                    2 => 0,
                    _ => inp.u16() as usize % 3_000,
                };
                w.send(ep, len);
            }
            2 => {
                let mode = inp.u8();
                w.recv(ep, mode, false);
            }
            3 => {
                let mode = inp.u8();
                w.recv(ep, mode, true);
            }
            4 | 5 => {
                w.advance(&mut inp);
                w.output(ep, false);
                if inp.bool() {
                    w.output(1 - ep, false);
                }
            }
            6 => w.output(ep, true),
            7 | 8 => w.deliver(ep, &mut inp),
            9 => w.forge(ep, &mut inp),
            10 => {
                let n = match inp.u8() {
                    0 => inp.u16() as usize % 1_600,
                    n => n as usize,
                };
                let d = inp.bytes(n).to_vec();
                w.input(ep, &d, false);
            }
            11 => w.setter(ep, &mut inp),
            12 => {
                let k = &w.ends[ep].kcp;
                let at = k.check(w.now);
                let wait = at.wrapping_sub(w.now);
                assert!(
                    wait <= k.interval(),
                    "check({}) = {at}: waits {wait} ms, interval {}",
                    w.now,
                    k.interval()
                );
            }
            _ => {
                // A quiet round trip: both ends run and everything in flight
                // arrives, so scenarios make progress.
                w.now = w.now.wrapping_add(w.ends[ep].kcp.interval());
                for e in 0..2 {
                    w.output(e, false);
                }
                for from in 0..2 {
                    for d in std::mem::take(&mut w.links[from]) {
                        w.input(1 - from, &d, true);
                    }
                }
                for e in 0..2 {
                    w.recv(e, 0, false);
                }
            }
        }
        w.check_invariants();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_exchange_delivers_in_order() {
        // send 100 bytes from A, then quiet rounds; B must have them.
        let mut data = vec![2, 1, 0, 3, 100];
        data.extend([13u8; 8]);
        run(&data);
    }
}
