//! One generated lockstep scenario: two endpoints per implementation, a
//! simulated link each way and a virtual clock, all driven by a seeded PRNG.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{Api, Flavour};
use crate::kcp::{Field, FIELD_NAMES};
use crate::link::{Link, LinkConfig};
use crate::lockstep::{Call, Divergence, Lockstep, Observation, Ret, Wiring};
use crate::rng::Rng;
use crate::wire::{self, CMD_ACK, CMD_PUSH, CMD_WASK};

use super::controllers::CcProfile;
use super::{Family, FAMILIES};

#[derive(Clone, Copy, Debug)]
enum Action {
    Tick,
    Send,
    Recv,
    Query,
    Flush,
    Config,
    FieldWrite,
    Logging,
    Forge,
    ClockJump,
    Outage,
}

const ACTIONS: [Action; 11] = [
    Action::Tick,
    Action::Send,
    Action::Recv,
    Action::Query,
    Action::Flush,
    Action::Config,
    Action::FieldWrite,
    Action::Logging,
    Action::Forge,
    Action::ClockJump,
    Action::Outage,
];

fn weights(f: Family) -> [u32; 11] {
    // Tick Send Recv Query Flush Config Field Log Forge Jump Outage
    match f {
        Family::Traffic => [40, 25, 20, 6, 2, 1, 0, 2, 0, 0, 0],
        Family::Lossy => [45, 20, 15, 4, 2, 2, 1, 1, 0, 1, 2],
        Family::Churn => [35, 18, 14, 4, 3, 12, 12, 4, 0, 1, 1],
        Family::Hostile => [32, 15, 12, 4, 2, 2, 2, 2, 28, 0, 1],
        Family::Edges => [35, 18, 14, 6, 2, 4, 5, 2, 4, 6, 4],
        Family::Poke => [36, 18, 14, 4, 3, 3, 16, 2, 2, 1, 1],
    }
}

// ---------------------------------------------------------------------------
// One scenario
// ---------------------------------------------------------------------------

fn field_index(name: &str) -> usize {
    FIELD_NAMES.iter().position(|&f| f == name).unwrap()
}

pub struct Scenario {
    pub(super) family: Family,
    pub(super) rng: Rng,
    /// Both implementations and the trace of every call made so far.
    pub ls: Lockstep,
    /// links[0] carries A's datagrams to B, links[1] B's to A.
    pub(super) links: [Link; 2],
    pub(super) normal_links: [LinkConfig; 2],
    /// Virtual milliseconds since the start; each endpoint's clock is its own
    /// base plus this, wrapping at 2^32.
    pub(super) elapsed: u64,
    pub(super) clock0: [u32; 2],
    /// Largest MSS any send used per endpoint: upstream's flush buffer must
    /// stay big enough for those segments when the MTU shrinks.
    pub(super) max_mss: [u32; 2],
    /// Real datagrams seen recently, material for forged input.
    pub(super) recent: Vec<Vec<u8>>,
    /// Time jumps left (each can make RTT samples large; upstream's RTT
    /// arithmetic is signed int, so the total is kept far from overflow).
    pub(super) jumps_left: u32,
    pub(super) last: Observation,
    pub(super) idx: Idx,
    pub(super) init_err: Option<Box<Divergence>>,
    pub coverage: Coverage,
    /// Both implementations are 2.x: the controller overlay runs.
    pub(super) v2: bool,
    pub cc_profile: CcProfile,
}

/// How often each notable outcome happened, so a generator change that stops
/// reaching some path fails loudly instead of silently testing less.
#[derive(Default)]
pub struct Coverage {
    pub counts: BTreeMap<&'static str, u64>,
    /// Events counted at most once per scenario.
    seen: BTreeSet<&'static str>,
}

impl Coverage {
    fn bump(&mut self, e: &'static str) {
        *self.counts.entry(e).or_default() += 1;
    }

    fn once(&mut self, e: &'static str) {
        if self.seen.insert(e) {
            self.bump(e);
        }
    }

    pub fn merge(&mut self, o: &Coverage) {
        for (k, v) in &o.counts {
            *self.counts.entry(k).or_default() += v;
        }
    }
}

/// Positions of the fields the generator looks at.
pub(super) struct Idx {
    pub(super) conv: usize,
    pub(super) mss: usize,
    pub(super) current: usize,
    pub(super) rcv_nxt: usize,
    pub(super) snd_una: usize,
    pub(super) snd_nxt: usize,
    pub(super) rcv_wnd: usize,
    pub(super) ts_flush: usize,
    pub(super) state: usize,
    pub(super) xmit: usize,
}

pub(crate) type Step = Result<(), Box<Divergence>>;

impl Scenario {
    /// The scenario of `seed` (its family is `seed` modulo the number of
    /// families), comparing `candidate` against `reference`.
    pub fn new(seed: u64, reference: Api, candidate: Api) -> Scenario {
        let family = FAMILIES[(seed % FAMILIES.len() as u64) as usize];
        Scenario::with_rng(family, Rng::new(seed), reference, candidate)
    }

    /// A scenario decided by a fuzzer's input: its first byte picks the
    /// family, the rest is the tape every decision is drawn from (see
    /// [`Rng::from_tape`]). The main phase ends with the tape; then the
    /// links are cleaned and the traffic settles as in a seeded scenario.
    pub fn from_tape(tape: &[u8], reference: Api, candidate: Api) -> Scenario {
        let (family, rest) = match tape.split_first() {
            Some((&f, rest)) => (FAMILIES[f as usize % FAMILIES.len()], rest),
            None => (FAMILIES[0], tape),
        };
        Scenario::with_rng(family, Rng::from_tape(rest), reference, candidate)
    }

    fn with_rng(family: Family, mut rng: Rng, reference: Api, candidate: Api) -> Scenario {
        let conv = match rng.below(4) {
            0 => 0,
            1 => u32::MAX,
            _ => rng.next_u32(),
        };
        let mut ls = Lockstep::with_apis(reference, candidate, [conv, conv], Wiring::Recorded);
        let normal_links = match family {
            Family::Traffic if rng.chance(700) => [LinkConfig::PERFECT; 2],
            Family::Traffic => {
                [LinkConfig {
                    loss: 0,
                    dup: 0,
                    delay: 5,
                    jitter: 5,
                }; 2]
            }
            _ => [LinkConfig::random(&mut rng), LinkConfig::random(&mut rng)],
        };
        let base = match (family, rng.below(4)) {
            (Family::Edges, _) | (_, 0) => u32::MAX - rng.below(20_000) as u32,
            (_, 1) => 0,
            _ => rng.next_u32(),
        };
        let skew = if rng.chance(500) { 0 } else { rng.next_u32() };
        // Fresh objects must already agree; a difference is reported by run().
        let (first, init_err) = match ls.call(Call::Peeksize { ep: 0 }) {
            Ok(o) => (o, None),
            Err(d) => (ls.reference.apply(&Call::Peeksize { ep: 0 }), Some(d)),
        };
        let idx = Idx {
            conv: field_index("conv"),
            mss: field_index("mss"),
            current: field_index("current"),
            rcv_nxt: field_index("rcv_nxt"),
            snd_una: field_index("snd_una"),
            snd_nxt: field_index("snd_nxt"),
            rcv_wnd: field_index("rcv_wnd"),
            ts_flush: field_index("ts_flush"),
            state: field_index("state"),
            xmit: field_index("xmit"),
        };
        Scenario {
            family,
            rng,
            ls,
            links: [Link::new(normal_links[0]), Link::new(normal_links[1])],
            normal_links,
            elapsed: 0,
            clock0: [base, base.wrapping_add(skew)],
            max_mss: [0; 2],
            recent: Vec::new(),
            jumps_left: 3,
            last: first,
            idx,
            init_err,
            coverage: Coverage::default(),
            v2: reference.flavour == Flavour::V2 && candidate.flavour == Flavour::V2,
            cc_profile: CcProfile::None,
        }
    }

    pub(super) fn field(&self, ep: usize, idx: usize) -> i64 {
        self.last.fields[ep][idx]
    }

    fn now(&self, ep: usize) -> u32 {
        self.clock0[ep].wrapping_add(self.elapsed as u32)
    }

    /// Runs a call on both implementations and routes what they emitted.
    pub(super) fn call(&mut self, call: Call) -> Step {
        if let Call::Send { ep, .. } = call {
            let mss = self.field(ep, self.idx.mss) as u32;
            self.max_mss[ep] = self.max_mss[ep].max(mss);
        }
        let obs = self.ls.call(call)?;
        self.note(&obs);
        for ep in 0..2 {
            for d in &obs.datagrams[ep] {
                self.links[ep].send(&mut self.rng, self.elapsed, d);
                if self.recent.len() >= 16 {
                    self.recent.remove(0);
                }
                self.recent.push(d.clone());
            }
        }
        self.last = obs;
        Ok(())
    }

    /// Tallies what the last call exercised (see `Coverage`).
    fn note(&mut self, obs: &Observation) {
        let call = self.ls.trace.last().expect("a call was just made");
        let event = match (call, &obs.ret) {
            (Call::Send { .. }, Ret::Int(r)) => Some(if *r >= 0 {
                "send ok"
            } else if *r == -1 {
                "send -1"
            } else {
                "send -2"
            }),
            (Call::Recv { len, .. }, Ret::Recv(r, _)) => Some(match r {
                0.. if *len < 0 => "recv peek ok",
                0.. => "recv ok",
                -1 => "recv -1",
                -2 => "recv -2",
                _ => "recv -3",
            }),
            (Call::Input { .. }, Ret::Int(r)) => Some(match r {
                0 => "input 0",
                -1 => "input -1",
                -2 => "input -2",
                _ => "input -3",
            }),
            (Call::SetMtu { .. }, Ret::Int(r)) => {
                Some(if *r == 0 { "setmtu 0" } else { "setmtu -1" })
            }
            (Call::SetCc { cfg: None, .. }, _) => Some("setcc NULL"),
            (Call::SetCc { .. }, Ret::Int(0)) => Some("setcc installed"),
            (Call::SetCc { .. }, _) => Some("setcc init failed"),
            _ => None,
        };
        if let Some(e) = event {
            self.coverage.bump(e);
        }
        for d in obs.datagrams.iter().flatten() {
            for seg in wire::segments(d).0 {
                self.coverage.bump(match seg.cmd {
                    CMD_PUSH if seg.frg > 0 => "out PUSH frg>0",
                    CMD_PUSH => "out PUSH",
                    CMD_ACK => "out ACK",
                    CMD_WASK => "out WASK",
                    _ => "out WINS",
                });
            }
        }
        for ep in 0..2 {
            if obs.fields[ep][self.idx.state] == u32::MAX as i64 {
                self.coverage.once("dead link state");
            }
            if obs.fields[ep][self.idx.xmit] > 0 {
                self.coverage.once("retransmission");
            }
            if self.now(ep) < self.clock0[ep] {
                self.coverage.once("clock wrapped");
            }
        }
        if !obs.logs[0].is_empty() || !obs.logs[1].is_empty() {
            self.coverage.once("log lines");
        }
        for log in &obs.cc_logs {
            for line in String::from_utf8_lossy(log).lines() {
                let word = line.trim_start().split(' ').next().unwrap_or_default();
                let event = if let Some(name) = crate::cc::HOOK_NAMES.iter().find(|n| **n == word) {
                    Some(*name)
                } else if word.starts_with("setcc(NULL)") {
                    Some("reentry setcc")
                } else if word.starts_with("waitsnd=") {
                    Some("reentry query")
                } else if word.starts_with("send=") {
                    Some("reentry send")
                } else {
                    None
                };
                if let Some(e) = event {
                    self.coverage.bump(e);
                }
            }
        }
    }

    fn setup(&mut self) -> Step {
        // What the output callback returns is ignored by upstream; vary it
        // so ours is seen to ignore it too.
        let output_ret = self.rng.pick(&[0, 0, -1, 1, 1400]);
        for side in [&self.ls.reference, &self.ls.ours] {
            for k in &side.eps {
                k.with_recorder(|r| r.output_ret = output_ret);
            }
        }
        for ep in 0..2 {
            let stream = match self.family {
                Family::Traffic | Family::Lossy => self.rng.chance(400),
                _ => self.rng.chance(300),
            };
            if stream {
                self.call(Call::SetField {
                    ep,
                    field: Field::Stream,
                    value: 1,
                })?;
            }
            match self.rng.below(4) {
                0 => {}
                1 => self.call(Call::Nodelay {
                    ep,
                    nodelay: 1,
                    interval: 10,
                    resend: 2,
                    nc: 1,
                })?,
                2 => self.call(Call::Nodelay {
                    ep,
                    nodelay: 0,
                    interval: 40,
                    resend: 0,
                    nc: 0,
                })?,
                _ => self.config_nodelay(ep)?,
            }
            if self.rng.chance(500) {
                self.config_wndsize(ep)?;
            }
            if self.rng.chance(300) {
                self.config_mtu(ep)?;
            }
            let log_chance = if self.family == Family::Churn {
                500
            } else {
                200
            };
            if self.rng.chance(log_chance) {
                self.call(Call::Writelog { ep, on: true })?;
                let mask = self.pick_logmask();
                self.call(Call::SetField {
                    ep,
                    field: Field::Logmask,
                    value: mask,
                })?;
            }
            if self.family == Family::Edges && self.rng.chance(400) {
                let dl = self.rng.pick(&[1, 2, 3, 5]);
                self.call(Call::SetField {
                    ep,
                    field: Field::DeadLink,
                    value: dl,
                })?;
            }
        }
        Ok(())
    }

    /// Runs the whole scenario; the first divergence stops it.
    pub fn run(&mut self) -> Step {
        if let Some(d) = self.init_err.take() {
            return Err(d);
        }
        self.setup()?;
        if self.v2 {
            self.cc_setup()?;
        }
        let steps = self.rng.range(120, 320);
        let w = weights(self.family);
        for _ in 0..steps {
            if self.rng.tape_done() {
                break;
            }
            if self.v2 {
                self.cc_step()?;
            }
            match ACTIONS[self.rng.weighted(&w)] {
                Action::Tick => self.tick()?,
                Action::Send => self.send()?,
                Action::Recv => self.recv()?,
                Action::Query => self.query()?,
                Action::Flush => {
                    let ep = self.ep();
                    self.call(Call::Flush { ep })?
                }
                Action::Config => self.config()?,
                Action::FieldWrite => self.field_write()?,
                Action::Logging => self.logging()?,
                Action::Forge => self.forge()?,
                Action::ClockJump => self.clock_jump()?,
                Action::Outage => self.outage(),
            }
        }
        // Let the traffic settle so steady-state paths run too.
        self.links = [
            Link::new(self.normal_links[0]),
            Link::new(self.normal_links[1]),
        ];
        for _ in 0..self.rng.range(10, 40) {
            self.tick()?;
            for ep in 0..2 {
                if self.rng.chance(700) {
                    self.recv_exact(ep)?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn ep(&mut self) -> usize {
        self.rng.below(2) as usize
    }

    /// Advances the clock, delivers due datagrams, updates both endpoints.
    fn tick(&mut self) -> Step {
        let dt = match self.rng.below(10) {
            0 => 0,
            1..=5 => self.rng.range(1, 30) as u64,
            6 | 7 => self.rng.range(30, 300) as u64,
            _ => {
                // Jump to the next interesting moment, as an event loop would.
                let mut next = self.elapsed + 1000;
                for l in &self.links {
                    if let Some(t) = l.next_arrival() {
                        next = next.min(t);
                    }
                }
                let ep = self.ep();
                let now = self.now(ep);
                self.call(Call::Check { ep, now })?;
                if let Ret::Int(t) = self.last.ret {
                    let wait = (t as u32).wrapping_sub(now) as u64;
                    if wait < 10_000 {
                        next = next.min(self.elapsed + wait);
                    }
                }
                next.max(self.elapsed) - self.elapsed
            }
        };
        self.elapsed += dt;
        let order = if self.rng.chance(500) { [0, 1] } else { [1, 0] };
        for ep in order {
            // links[1 - ep] carries the peer's datagrams to `ep`.
            for d in self.links[1 - ep].due(self.elapsed) {
                self.call(Call::Input {
                    ep,
                    size: d.len() as i64,
                    data: Some(d),
                })?;
            }
        }
        for ep in order {
            if self.rng.chance(900) {
                let now = self.now(ep);
                self.call(Call::Update { ep, now })?;
            }
        }
        Ok(())
    }

    fn pick_len(&mut self, ep: usize) -> i64 {
        let mss = self.field(ep, self.idx.mss).max(1);
        let max_msg = 127 * mss;
        // Whole-window messages are expensive to move; keep them rare.
        let big = if max_msg <= 400_000 { 2 } else { 0 };
        match self
            .rng
            .weighted(&[4, 6, 30, 4, 5, 4, 12, 3, big, big, 1, 2, 1])
        {
            0 => 0,
            1 => 1,
            2 => self.rng.range(2, 200.min(mss).max(2)),
            3 => mss - 1,
            4 => mss,
            5 => mss + 1,
            6 => self.rng.range(1, 4 * mss),
            7 => self.rng.range(4 * mss, 20 * mss),
            8 => max_msg,
            9 => max_msg + 1,
            10 => 128 * mss,
            11 => -self.rng.range(1, 3),
            _ => i32::MIN as i64,
        }
    }

    fn send(&mut self) -> Step {
        let ep = self.ep();
        let len = self.pick_len(ep);
        let call = if len < 0 {
            let data = if self.rng.chance(500) {
                None
            } else {
                Some(vec![7; 4])
            };
            Call::Send {
                ep,
                data,
                len: len as i32,
            }
        } else if len == 0 && self.rng.chance(300) {
            Call::Send {
                ep,
                data: None,
                len: 0,
            }
        } else {
            let data = self.rng.bytes(len as usize);
            Call::Send {
                ep,
                data: Some(data),
                len: len as i32,
            }
        };
        self.call(call)
    }

    /// `ikcp_peeksize` then an `ikcp_recv` of exactly that size.
    fn recv_exact(&mut self, ep: usize) -> Step {
        self.call(Call::Peeksize { ep })?;
        let peek = self.ret_int();
        let len = peek.max(1) as i32;
        self.call(Call::Recv {
            ep,
            len,
            cap: len as usize,
            null: false,
        })
    }

    fn ret_int(&self) -> i64 {
        match self.last.ret {
            Ret::Int(v) => v,
            _ => unreachable!("expected an int result"),
        }
    }

    fn recv(&mut self) -> Step {
        let ep = self.ep();
        self.call(Call::Peeksize { ep })?;
        let peek = self.ret_int().max(0);
        let (len, null) = match self.rng.below(10) {
            0..=3 => (peek, false),
            4 => (peek - 1, false),
            5 => (peek + self.rng.range(1, 100), false),
            6 => (-peek, false),
            7 => (-(peek - 1).max(0), false),
            8 => (peek, true),
            _ => (self.rng.range(0, 64), false),
        };
        let null = null || (len != 0 && self.rng.chance(30));
        let cap = if null { 0 } else { len.unsigned_abs() as usize };
        self.call(Call::Recv {
            ep,
            len: len as i32,
            cap,
            null,
        })
    }

    fn query(&mut self) -> Step {
        let ep = self.ep();
        match self.rng.below(4) {
            0 => self.call(Call::Peeksize { ep }),
            1 => self.call(Call::Waitsnd { ep }),
            2 => {
                let now = match self.rng.below(3) {
                    0 => self.now(ep),
                    1 => self.now(ep).wrapping_add(self.rng.range(0, 20_000) as u32),
                    _ => self.rng.next_u32(),
                };
                self.call(Call::Check { ep, now })
            }
            _ => {
                let data = match self.recent.last() {
                    Some(d) if d.len() >= 4 && self.rng.chance(700) => d.clone(),
                    _ => self.rng.bytes_between(4, 30),
                };
                self.call(Call::Getconv { data })
            }
        }
    }

    fn pick_interval(&mut self) -> i32 {
        if self.rng.chance(300) {
            return self.rng.range(-100, 7000) as i32;
        }
        self.rng.pick(&[
            -1,
            0,
            1,
            9,
            10,
            11,
            20,
            40,
            100,
            4999,
            5000,
            5001,
            i32::MAX,
            i32::MIN,
        ])
    }

    fn config_nodelay(&mut self, ep: usize) -> Step {
        let nodelay = self.rng.pick(&[-1, 0, 1, 2, 3]);
        let interval = self.pick_interval();
        let resend = self.rng.pick(&[-1, 0, 1, 2, 3, 5]);
        let nc = self.rng.pick(&[-1, 0, 1, 2]);
        self.call(Call::Nodelay {
            ep,
            nodelay,
            interval,
            resend,
            nc,
        })
    }

    fn config_wndsize(&mut self, ep: usize) -> Step {
        let pick = |rng: &mut Rng| {
            if rng.chance(200) {
                rng.range(-10, 5000) as i32
            } else {
                rng.pick(&[-1, 0, 1, 2, 8, 32, 64, 127, 128, 129, 256, 1024, 4096])
            }
        };
        let snd = pick(&mut self.rng);
        let rcv = pick(&mut self.rng);
        self.call(Call::Wndsize { ep, snd, rcv })
    }

    fn config_mtu(&mut self, ep: usize) -> Step {
        let mut mtu = if self.rng.chance(200) {
            self.rng.range(-100, 3000) as i32
        } else {
            self.rng.pick(&[
                i32::MIN,
                -1,
                0,
                23,
                24,
                49,
                50,
                51,
                76,
                100,
                300,
                576,
                1000,
                1400,
                1500,
                4096,
                9000,
            ])
        };
        // Upstream writes queued segments into a buffer of 3*(mtu+24) bytes:
        // shrinking below what the largest queued segment needs is upstream
        // UB, so such a value is raised to the smallest safe one.
        if mtu >= 50 && 3 * (mtu as i64 + 24) < 24 + self.max_mss[ep] as i64 {
            mtu = ((24 + self.max_mss[ep] as i64 + 2) / 3 - 24).max(50) as i32;
        }
        self.call(Call::SetMtu { ep, mtu })
    }

    fn config(&mut self) -> Step {
        let ep = self.ep();
        match self.rng.below(4) {
            0 => self.config_nodelay(ep),
            1 => self.config_wndsize(ep),
            2 => self.config_mtu(ep),
            _ => {
                let interval = self.pick_interval();
                self.call(Call::Interval { ep, interval })
            }
        }
    }

    fn pick_logmask(&mut self) -> i64 {
        match self.rng.below(5) {
            0 => -1,
            1 => 0xfff,
            2 => 1 << self.rng.below(12),
            3 => 0,
            _ => self.rng.next_u32() as i32 as i64,
        }
    }

    /// A value for a protocol-state field. Values stay where upstream's
    /// signed RTT arithmetic cannot overflow (`rx_srtt`, `rx_rttval`, and
    /// `current`, which RTT samples are taken against).
    fn state_value(&mut self, ep: usize, field: Field) -> i64 {
        let cur = self.field(ep, self.idx.current);
        let near = |rng: &mut Rng, span: i64| (cur + rng.range(-span, span)) as u32 as i64;
        match field {
            Field::State => self.rng.pick(&[0, 0, 1, u32::MAX as i64]),
            Field::Nodelay => self.rng.pick(&[0, 1, 2, 7]),
            Field::Ssthresh | Field::Cwnd => {
                self.rng.pick(&[0, 1, 2, 3, 16, 1000, u32::MAX as i64])
            }
            Field::Incr => self.rng.pick(&[0, 1, 100, 1376, 100_000, u32::MAX as i64]),
            Field::RmtWnd => self.rng.pick(&[0, 1, 32, 128, 65535, 100_000]),
            Field::RxRto => self.rng.pick(&[0, 1, 30, 200, 60_000, 1 << 20, -1]),
            Field::RxSrtt | Field::RxRttval => self.rng.pick(&[0, 1, 50, 1000, 60_000, -5]),
            Field::Probe => self.rng.pick(&[0, 1, 2, 3, 0xff]),
            Field::ProbeWait => self.rng.pick(&[0, 1, 7000, 120_000, 200_000]),
            Field::TsProbe => near(&mut self.rng, 10_000),
            Field::TsFlush => {
                if self.rng.chance(500) {
                    (cur + self.rng.pick(&[-10_001, -10_000, 10_000, 10_001])) as u32 as i64
                } else {
                    near(&mut self.rng, 20_000)
                }
            }
            Field::Current => near(&mut self.rng, 5000),
            Field::Updated => self.rng.pick(&[0, 1, 2]),
            Field::Xmit | Field::TsRecent | Field::TsLastack => self.rng.next_u32() as i64,
            _ => unreachable!("{field:?} is not a state field"),
        }
    }

    fn field_write(&mut self) -> Step {
        let ep = self.ep();
        if self.family == Family::Poke && self.rng.chance(600) {
            let field = self.rng.pick(&Field::STATE);
            let value = self.state_value(ep, field);
            return self.call(Call::SetField { ep, field, value });
        }
        let field = self.rng.pick(&Field::ALL);
        let value: i64 = match field {
            Field::Conv => {
                let conv = self.rng.next_u32() as i64;
                // Usually both ends move to the new conv together.
                if self.rng.chance(600) {
                    self.call(Call::SetField {
                        ep: 1 - ep,
                        field,
                        value: conv,
                    })?;
                }
                conv
            }
            Field::Stream => self.rng.pick(&[0, 0, 1, 1, 2, -1]),
            Field::RxMinrto => self.rng.pick(&[0, 1, 10, 30, 100, 1000, 70_000, -1]),
            Field::Fastresend => self.rng.pick(&[-1, 0, 1, 2, 3, 10]),
            Field::Interval => self.rng.pick(&[0, 1, 10, 100, 5000, 100_000]),
            Field::DeadLink => self.rng.pick(&[1, 2, 3, 5, 10, 20, 1000]),
            Field::Logmask => self.pick_logmask(),
            Field::Fastlimit => self.rng.pick(&[-1, 0, 1, 5, 10]),
            Field::Nocwnd => self.rng.pick(&[0, 1]),
            Field::SndWnd => self.rng.pick(&[0, 1, 2, 32, 128, 1024, 4096]),
            Field::RcvWnd => self.rng.pick(&[0, 1, 16, 127, 128, 256, 4096]),
            _ => unreachable!("state fields are written by state_value"),
        };
        self.call(Call::SetField { ep, field, value })
    }

    fn logging(&mut self) -> Step {
        let ep = self.ep();
        match self.rng.below(4) {
            0 => {
                let on = self.rng.chance(700);
                self.call(Call::Writelog { ep, on })
            }
            1 => {
                let value = self.pick_logmask();
                self.call(Call::SetField {
                    ep,
                    field: Field::Logmask,
                    value,
                })
            }
            _ => {
                let n = self.rng.range(0, 80) as usize;
                let text: String = (0..n)
                    .map(|_| (b' ' + self.rng.below(94) as u8) as char)
                    .filter(|&c| c != '%')
                    .collect();
                let mask = self.pick_logmask() as i32;
                self.call(Call::Log { ep, mask, text })
            }
        }
    }

    fn clock_jump(&mut self) -> Step {
        if self.jumps_left == 0 {
            return self.tick();
        }
        self.jumps_left -= 1;
        let ep = self.ep();
        match self.rng.below(4) {
            // Exactly at upstream's 10 s resync thresholds around ts_flush.
            3 => {
                let ts_flush = self.field(ep, self.idx.ts_flush) as u32;
                let delta = self
                    .rng
                    .pick(&[9_999i32, 10_000, 10_001, -9_999, -10_000, -10_001]);
                let now = ts_flush.wrapping_add(delta as u32);
                if self.rng.chance(500) {
                    return self.call(Call::Check { ep, now });
                }
                return self.call(Call::Update { ep, now });
            }
            // Past upstream's 10 s resync threshold, or just short of it.
            0 => {
                self.elapsed += self
                    .rng
                    .pick(&[9_999, 10_000, 10_001, 20_000, 65_536, 300_000])
            }
            // One endpoint's clock steps backwards for one update.
            1 => {
                let back = self.rng.pick(&[1, 50, 9_999, 10_001, 100_000]);
                let now = self.now(ep).wrapping_sub(back);
                return self.call(Call::Update { ep, now });
            }
            // An update far in the future (half the u32 range away).
            _ => {
                let now = self
                    .now(ep)
                    .wrapping_add(self.rng.pick(&[0x7fff_ffff, 0x8000_0000]));
                return self.call(Call::Check { ep, now });
            }
        }
        self.tick()
    }

    fn outage(&mut self) {
        let dir = self.rng.below(3) as usize;
        for (i, link) in self.links.iter_mut().enumerate() {
            if dir == 2 || dir == i {
                link.cfg.loss = if link.cfg.loss == 1000 {
                    self.normal_links[i].loss
                } else {
                    1000
                };
            }
        }
    }
}
