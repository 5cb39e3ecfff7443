//! Protocol expectations on what the remote sends, judged from the wire:
//! every datagram that arrives from it (before our impairments) and every
//! datagram of ours that really left.

use std::collections::{BTreeMap, HashMap};

use ffi_tests::wire::{self, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS};

use super::{Row, Settings, Status};

/// How long after we advertised a zero window a new data segment of the
/// remote's still counts as in flight (it left before our window reached it).
pub const ZERO_WINDOW_GRACE_MS: u32 = 500;

pub struct Observer {
    conv: u32,
    mtu: usize,
    mss: usize,
    wnd_flag: u32,
    nodelay: i32,
    interval: u32,
    minrto: u32,
    pub datagrams: u64,
    pub segments: u64,
    pub max_datagram: usize,
    over_mtu: Vec<usize>,
    over_mss: Vec<(u32, u32)>,
    /// Segments of other conversations, by conversation id.
    pub foreign: BTreeMap<u32, u64>,
    unknown_cmd: u64,
    unparsed_bytes: u64,
    last_una: Option<u32>,
    una_back: Vec<(u32, u32)>,
    pub wnd_min: Option<u16>,
    pub wnd_max: Option<u16>,
    /// Arrival times (ms) of each transmission of each remote data segment.
    pub pushes: HashMap<u32, Vec<u32>>,
    /// First transmission's fragment number and length, by sn.
    pub shapes: HashMap<u32, (u8, u32)>,
    pub max_sn: Option<u32>,
    pub wask: Vec<u32>,
    pub wins: u64,
    pub full_datagrams: u64,
    /// Our data segments delivered and not yet acknowledged: sn -> when.
    pending: BTreeMap<u32, u32>,
    pub delivered: u64,
    pub ack_delays: Vec<u32>,
    /// Since when the window we advertise is zero, if it is.
    pub peer_zero_since: Option<u32>,
    pub new_data_into_zero_window: u64,
}

impl Observer {
    pub fn new(conv: u32, s: &Settings) -> Observer {
        Observer {
            conv,
            mtu: s.mtu as usize,
            mss: s.mtu as usize - wire::OVERHEAD,
            wnd_flag: s.wnd,
            nodelay: s.nodelay,
            interval: s.interval as u32,
            minrto: s.minrto,
            datagrams: 0,
            segments: 0,
            max_datagram: 0,
            over_mtu: Vec::new(),
            over_mss: Vec::new(),
            foreign: BTreeMap::new(),
            unknown_cmd: 0,
            unparsed_bytes: 0,
            last_una: None,
            una_back: Vec::new(),
            wnd_min: None,
            wnd_max: None,
            pushes: HashMap::new(),
            shapes: HashMap::new(),
            max_sn: None,
            wask: Vec::new(),
            wins: 0,
            full_datagrams: 0,
            pending: BTreeMap::new(),
            delivered: 0,
            ack_delays: Vec::new(),
            peer_zero_since: None,
            new_data_into_zero_window: 0,
        }
    }

    /// A datagram from the remote, as it arrived.
    pub fn remote_datagram(&mut self, now: u32, d: &[u8]) {
        self.datagrams += 1;
        self.max_datagram = self.max_datagram.max(d.len());
        if d.len() > self.mtu {
            self.over_mtu.push(d.len());
        }
        if d.len() == self.mtu {
            self.full_datagrams += 1;
        }
        let (segs, rest) = wire::segments(d);
        self.unparsed_bytes += rest as u64;
        for s in segs {
            if s.conv != self.conv {
                *self.foreign.entry(s.conv).or_default() += 1;
                continue;
            }
            self.segments += 1;
            if let Some(last) = self.last_una {
                if (s.una.wrapping_sub(last) as i32) < 0 {
                    self.una_back.push((last, s.una));
                }
            }
            if self
                .last_una
                .map_or(true, |l| (s.una.wrapping_sub(l) as i32) > 0)
            {
                self.last_una = Some(s.una);
            }
            self.wnd_min = Some(self.wnd_min.map_or(s.wnd, |w| w.min(s.wnd)));
            self.wnd_max = Some(self.wnd_max.map_or(s.wnd, |w| w.max(s.wnd)));
            // Whatever the command, una acknowledges everything before it.
            let rest = self.pending.split_off(&s.una);
            for (_, at) in std::mem::replace(&mut self.pending, rest) {
                self.ack_delays.push(now.wrapping_sub(at));
            }
            match s.cmd {
                CMD_PUSH => {
                    if s.len as usize > self.mss {
                        self.over_mss.push((s.sn, s.len));
                    }
                    let fresh = self
                        .max_sn
                        .map_or(true, |m| (s.sn.wrapping_sub(m) as i32) > 0);
                    if fresh {
                        self.max_sn = Some(s.sn);
                        if let Some(since) = self.peer_zero_since {
                            if now.wrapping_sub(since) > ZERO_WINDOW_GRACE_MS {
                                self.new_data_into_zero_window += 1;
                            }
                        }
                    }
                    self.shapes.entry(s.sn).or_insert((s.frg, s.len));
                    self.pushes.entry(s.sn).or_default().push(now);
                }
                CMD_ACK => {
                    if let Some(at) = self.pending.remove(&s.sn) {
                        self.ack_delays.push(now.wrapping_sub(at));
                    }
                }
                CMD_WASK => self.wask.push(now),
                CMD_WINS => self.wins += 1,
                _ => self.unknown_cmd += 1,
            }
        }
    }

    /// A datagram of ours that went on the wire.
    pub fn peer_datagram(&mut self, now: u32, d: &[u8]) {
        for s in wire::segments(d).0 {
            if s.conv != self.conv {
                continue;
            }
            if s.wnd == 0 {
                self.peer_zero_since.get_or_insert(now);
            } else {
                self.peer_zero_since = None;
            }
            if s.cmd == CMD_PUSH && !self.pending.contains_key(&s.sn) {
                let acked_before = self
                    .last_una
                    .is_some_and(|u| (s.sn.wrapping_sub(u) as i32) < 0);
                if !acked_before {
                    self.delivered += 1;
                    self.pending.insert(s.sn, now);
                }
            }
        }
    }

    /// Stops expecting acknowledgements for what we delivered from `since`
    /// on (the remote ended the conversation on purpose).
    pub fn forget_pending_since(&mut self, since: u32) {
        self.pending
            .retain(|_, at| (at.wrapping_sub(since) as i32) < 0);
    }

    /// The upper bound (ms) for the gap before the `k`-th retransmission of
    /// a segment (k >= 1), from the remote's advertised settings and the
    /// round trip we measured (`max_rto`: the largest RTO the reference
    /// computed on this link). ikcp.c doubles the RTO per timeout without
    /// nodelay and multiplies it by 1.5 with it; we allow twice that, plus
    /// two timer ticks, plus scheduling noise.
    pub fn rto_bound(&self, k: u32, max_rto: u32) -> u32 {
        let base = self.minrto.max(max_rto) as f64;
        let growth: f64 = if self.nodelay == 0 { 2.0 } else { 1.5 };
        let first = if self.nodelay == 0 { 1.125 } else { 1.0 };
        let rto = (base * first * growth.powi(k as i32 - 1)).min(120_000.0);
        (2.0 * rto) as u32 + 2 * self.interval + 30
    }

    /// The rows of the protocol checks, for the whole run.
    pub fn rows(&self, max_rto: u32) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut row = |check: &str, status, detail: String| {
            rows.push(Row {
                check: check.into(),
                status,
                detail,
            })
        };
        if self.pending.is_empty() {
            row(
                "every data segment acknowledged",
                Status::Held,
                format!(
                    "{} of ours delivered, all acknowledged (ACK or una); slowest after {} ms",
                    self.delivered,
                    self.ack_delays.iter().max().copied().unwrap_or(0)
                ),
            );
        } else {
            let first: Vec<String> = self.pending.keys().take(8).map(|s| s.to_string()).collect();
            row(
                "every data segment acknowledged",
                Status::Failed,
                format!(
                    "{} of {} delivered never acknowledged (sn {})",
                    self.pending.len(),
                    self.delivered,
                    first.join(", ")
                ),
            );
        }
        if self.una_back.is_empty() {
            row(
                "una never goes back",
                Status::Held,
                format!(
                    "{} segments, una rose to {}",
                    self.segments,
                    self.last_una.unwrap_or(0)
                ),
            );
        } else {
            let (a, b) = self.una_back[0];
            row(
                "una never goes back",
                Status::Failed,
                format!("{} times; first from {a} to {b}", self.una_back.len()),
            );
        }
        if self.over_mtu.is_empty() {
            row(
                "datagrams within the MTU",
                Status::Held,
                format!(
                    "largest {} bytes (MTU {}), {} filled it exactly",
                    self.max_datagram, self.mtu, self.full_datagrams
                ),
            );
        } else {
            row(
                "datagrams within the MTU",
                Status::Failed,
                format!(
                    "{} datagrams above the MTU {}, largest {}",
                    self.over_mtu.len(),
                    self.mtu,
                    self.max_datagram
                ),
            );
        }
        if self.over_mss.is_empty() {
            row(
                "data segments within the MSS",
                Status::Held,
                format!("none above {} bytes", self.mss),
            );
        } else {
            let (sn, len) = self.over_mss[0];
            row(
                "data segments within the MSS",
                Status::Failed,
                format!(
                    "{} above {} bytes; first sn {sn}, {len} bytes",
                    self.over_mss.len(),
                    self.mss
                ),
            );
        }
        let (lo, hi) = (self.wnd_min.unwrap_or(0), self.wnd_max.unwrap_or(0));
        let window = if u32::from(hi) <= self.wnd_flag {
            Status::Held
        } else {
            Status::Differs
        };
        row(
            "window field sane",
            window,
            format!(
                "advertised {lo}..{hi} segments (--wnd {}{})",
                self.wnd_flag,
                if window == Status::Held {
                    ""
                } else {
                    ": more than the remote was said to have"
                }
            ),
        );
        let wrong = self.unknown_cmd + self.unparsed_bytes;
        row(
            "well-formed segments",
            if wrong == 0 {
                Status::Held
            } else {
                Status::Failed
            },
            format!(
                "{} datagrams; {} unknown commands, {} bytes not parsed as KCP",
                self.datagrams, self.unknown_cmd, self.unparsed_bytes
            ),
        );
        // Retransmission timers: every repeat of a data segment came within
        // the bound for its rank.
        let (mut repeats, mut late, mut worst) = (0u64, Vec::new(), (0u32, 0u32, 0u32));
        for (sn, times) in &self.pushes {
            for (k, w) in times.windows(2).enumerate() {
                repeats += 1;
                let gap = w[1].wrapping_sub(w[0]);
                let bound = self.rto_bound(k as u32 + 1, max_rto);
                if gap > bound {
                    late.push((*sn, k + 1, gap, bound));
                }
                if gap > worst.1 {
                    worst = (*sn, gap, bound);
                }
            }
        }
        late.sort();
        if late.is_empty() {
            row(
                "retransmissions within the RTO bounds",
                Status::Held,
                format!(
                    "{repeats} retransmissions; longest gap {} ms (sn {}, bound {} ms from minrto {}, \
                     interval {}, our RTO up to {max_rto} ms)",
                    worst.1, worst.0, worst.2, self.minrto, self.interval
                ),
            );
        } else {
            let (sn, k, gap, bound) = late[0];
            row(
                "retransmissions within the RTO bounds",
                Status::Failed,
                format!(
                    "{} of {repeats} late; first: sn {sn} retransmission {k} after {gap} ms (bound {bound} ms)",
                    late.len()
                ),
            );
        }
        rows
    }
}
