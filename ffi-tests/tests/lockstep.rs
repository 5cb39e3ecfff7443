//! Lockstep differential test: every generated scenario runs the same calls on
//! our library and on upstream's `ikcp.c`, and after every single call the
//! return value, the datagrams handed to `output`, the lines handed to
//! `writelog`, the public fields of both endpoints and the bytes `ikcp_recv`
//! wrote must be identical.
//!
//! Each scenario has two endpoints (A, B) per implementation, a simulated link
//! between them (loss, duplication, reordering, delay) and a virtual clock,
//! all driven by a seeded PRNG. The seed space is split into families (seed
//! modulo the number of families), one `#[test]` each, so they run in parallel.
//!
//! Environment:
//! - `IKCP_DIFF_SCENARIOS=N` runs N scenarios in total (default 10000);
//! - `IKCP_DIFF_FIRST=S` starts at seed S instead of 0 (to explore new seeds);
//! - `IKCP_DIFF_SEED=S` replays exactly scenario S (and prints its trace);
//! - `IKCP_OURS_LIB=path` compares another build instead of our libkcp.so.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_int, c_void};
use std::io::Write;
use std::time::{Duration, Instant};

use ffi_tests::api::{self, Api};
use ffi_tests::kcp::{Field, Kcp, FIELD_NAMES};
use ffi_tests::link::{Link, LinkConfig};
use ffi_tests::lockstep::{self, Call, Counters, Divergence, Lockstep, Observation, Ret, Wiring};
use ffi_tests::rng::Rng;
use ffi_tests::wire::{self, Segment, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS, OVERHEAD};

// ---------------------------------------------------------------------------
// Scenario families and their mix of actions
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// Data both ways over mostly clean links; every send/recv size class.
    Traffic,
    /// Loss, duplication, reordering, delay, outages; congestion control.
    Lossy,
    /// Settings changed mid-stream through calls and direct field writes.
    Churn,
    /// Forged, truncated and garbage datagrams mixed into real traffic.
    Hostile,
    /// Wrapping clocks, clock jumps, dead links, zero windows, size limits.
    Edges,
    /// Protocol-state fields (cwnd, state, rx_srtt, ts_flush...) written
    /// directly by the program between calls.
    Poke,
}

const FAMILIES: [Family; 6] = [
    Family::Traffic,
    Family::Lossy,
    Family::Churn,
    Family::Hostile,
    Family::Edges,
    Family::Poke,
];

/// The actions a scenario step can take.
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

struct Scenario {
    family: Family,
    rng: Rng,
    ls: Lockstep,
    /// links[0] carries A's datagrams to B, links[1] B's to A.
    links: [Link; 2],
    normal_links: [LinkConfig; 2],
    /// Virtual milliseconds since the start; each endpoint's clock is its own
    /// base plus this, wrapping at 2^32.
    elapsed: u64,
    clock0: [u32; 2],
    /// Largest MSS any send used per endpoint: upstream's flush buffer must
    /// stay big enough for those segments when the MTU shrinks.
    max_mss: [u32; 2],
    /// Real datagrams seen recently, material for forged input.
    recent: Vec<Vec<u8>>,
    /// Time jumps left (each can make RTT samples large; upstream's RTT
    /// arithmetic is signed int, so the total is kept far from overflow).
    jumps_left: u32,
    last: Observation,
    idx: Idx,
    init_err: Option<Box<Divergence>>,
    coverage: Coverage,
}

/// How often each notable outcome happened, so a generator change that stops
/// reaching some path fails loudly instead of silently testing less.
#[derive(Default)]
struct Coverage {
    counts: BTreeMap<&'static str, u64>,
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

    fn merge(&mut self, o: &Coverage) {
        for (k, v) in &o.counts {
            *self.counts.entry(k).or_default() += v;
        }
    }
}

/// Positions of the fields the generator looks at.
struct Idx {
    conv: usize,
    mss: usize,
    current: usize,
    rcv_nxt: usize,
    snd_una: usize,
    snd_nxt: usize,
    rcv_wnd: usize,
    ts_flush: usize,
    state: usize,
    xmit: usize,
}

type Step = Result<(), Box<Divergence>>;

impl Scenario {
    fn new(seed: u64) -> Scenario {
        let family = FAMILIES[(seed % FAMILIES.len() as u64) as usize];
        let mut rng = Rng::new(seed);
        let conv = match rng.below(4) {
            0 => 0,
            1 => u32::MAX,
            _ => rng.next_u32(),
        };
        let mut ls = Lockstep::new([conv, conv], Wiring::Recorded);
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
        }
    }

    fn field(&self, ep: usize, idx: usize) -> i64 {
        self.last.fields[ep][idx]
    }

    fn now(&self, ep: usize) -> u32 {
        self.clock0[ep].wrapping_add(self.elapsed as u32)
    }

    /// Runs a call on both implementations and routes what they emitted.
    fn call(&mut self, call: Call) -> Step {
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

    fn run(&mut self) -> Step {
        if let Some(d) = self.init_err.take() {
            return Err(d);
        }
        self.setup()?;
        let steps = self.rng.range(120, 320);
        let w = weights(self.family);
        for _ in 0..steps {
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

    fn ep(&mut self) -> usize {
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

    // -- forged input ------------------------------------------------------

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

    fn forge(&mut self) -> Step {
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

// ---------------------------------------------------------------------------
// Running seeds, reporting
// ---------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// Writes past libtest's output capture, so summaries show in normal runs.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn report(seed: u64, replay_hint: &str, ls: &Lockstep, d: &Divergence) -> String {
    let from = d.index.saturating_sub(30);
    let mut msg = format!(
        "lockstep divergence, seed {seed} ({replay_hint})\n\
         call #{}: {}\n\
         difference: {}\n\
         last calls:{}",
        d.index,
        d.call,
        d.diff,
        lockstep::listing(&ls.trace[from..=d.index], from)
    );
    let t = Instant::now();
    let small = lockstep::shrink(
        ls.convs,
        ls.wiring,
        &ls.trace[..=d.index],
        Duration::from_secs(20),
    );
    if let Some(sd) = lockstep::replay(ls.convs, ls.wiring, &small) {
        msg.push_str(&format!(
            "\nshrunk to {} calls in {:.1}s (convs {:#x}/{:#x}); the last one diverges with: {}\n  minimal trace:{}",
            small.len(),
            t.elapsed().as_secs_f64(),
            ls.convs[0],
            ls.convs[1],
            sd.diff,
            lockstep::listing(&small, 0)
        ));
    }
    msg
}

fn run_family(family: Family) {
    let fam_idx = FAMILIES.iter().position(|&f| f == family).unwrap() as u64;
    let n_fam = FAMILIES.len() as u64;
    let seeds: Vec<u64> = match env_u64("IKCP_DIFF_SEED") {
        Some(s) if s % n_fam == fam_idx => vec![s],
        Some(_) => Vec::new(),
        None => {
            let total = env_u64("IKCP_DIFF_SCENARIOS").unwrap_or(10_000);
            let first = env_u64("IKCP_DIFF_FIRST").unwrap_or(0);
            (first..first + total)
                .filter(|s| s % n_fam == fam_idx)
                .collect()
        }
    };
    if seeds.is_empty() {
        return;
    }
    let replaying = seeds.len() == 1 && std::env::var_os("IKCP_DIFF_SEED").is_some();
    let start = Instant::now();
    let mut totals = Counters::default();
    let mut coverage = Coverage::default();
    let mut failures: Vec<(u64, String)> = Vec::new();
    for &seed in &seeds {
        let mut sc = Scenario::new(seed);
        let result = sc.run();
        totals.add(&sc.ls.counters);
        coverage.merge(&sc.coverage);
        if replaying {
            say(&format!(
                "seed {seed} ({family:?}) trace:{}",
                lockstep::listing(&sc.ls.trace, 0)
            ));
        }
        if let Err(d) = result {
            let detail = if failures.is_empty() {
                report(
                    seed,
                    &format!("replay: IKCP_DIFF_SEED={seed} cargo test --release -p ffi-tests --test lockstep"),
                    &sc.ls,
                    &d,
                )
            } else {
                String::new()
            };
            failures.push((seed, detail));
            if failures.len() >= 20 {
                break;
            }
        }
    }
    say(&format!(
        "lockstep {family:?}: {} scenarios, {} calls, {} datagrams ({} bytes) and {} log lines compared, {} diverged, {:.1}s",
        seeds.len(),
        totals.calls,
        totals.datagrams,
        totals.datagram_bytes,
        totals.log_lines,
        failures.len(),
        start.elapsed().as_secs_f64()
    ));
    say(&format!(
        "lockstep {family:?} coverage: {:?}",
        coverage.counts
    ));
    if let Some((_, detail)) = failures.first() {
        let seeds: Vec<u64> = failures.iter().map(|f| f.0).collect();
        panic!("{detail}\n\ndiverging seeds in {family:?} (first 20 at most): {seeds:?}");
    }
    if seeds.len() >= 300 {
        let missing: Vec<&str> = expected_coverage(family)
            .into_iter()
            .filter(|e| !coverage.counts.contains_key(e))
            .collect();
        assert!(
            missing.is_empty(),
            "{family:?} scenarios never reached: {missing:?}"
        );
    }
}

/// Outcomes each family must reach in a default-sized run.
fn expected_coverage(f: Family) -> Vec<&'static str> {
    let mut v = vec![
        "send ok",
        "send -1",
        "send -2",
        "recv ok",
        "recv peek ok",
        "recv -1",
        "recv -2",
        "recv -3",
        "input 0",
        "out PUSH",
        "out PUSH frg>0",
        "out ACK",
        "out WINS",
        "setmtu 0",
        "setmtu -1",
        "retransmission",
        "clock wrapped",
        "log lines",
    ];
    match f {
        Family::Traffic | Family::Lossy | Family::Churn => {}
        Family::Hostile => v.extend(["input -1", "input -2", "input -3", "dead link state"]),
        Family::Edges => v.extend(["dead link state", "out WASK", "input -2"]),
        Family::Poke => v.extend(["dead link state", "out WASK"]),
    }
    v
}

#[test]
fn lockstep_traffic() {
    run_family(Family::Traffic);
}

#[test]
fn lockstep_lossy_links() {
    run_family(Family::Lossy);
}

#[test]
fn lockstep_settings_churn() {
    run_family(Family::Churn);
}

#[test]
fn lockstep_hostile_input() {
    run_family(Family::Hostile);
}

#[test]
fn lockstep_edges() {
    run_family(Family::Edges);
}

#[test]
fn lockstep_protocol_state_pokes() {
    run_family(Family::Poke);
}

// ---------------------------------------------------------------------------
// Reentrancy: callbacks that call back into the library
// ---------------------------------------------------------------------------

/// Simple send/update/recv traffic where the output callbacks feed
/// `ikcp_input` themselves, compared call by call.
fn reentrant_traffic(wiring: Wiring, seeds: std::ops::Range<u64>) -> Counters {
    let mut totals = Counters::default();
    for seed in seeds {
        let mut rng = Rng::new(seed);
        let conv = rng.next_u32();
        let mut ls = Lockstep::new([conv, conv], wiring);
        let mut now = rng.next_u32();
        let fast = rng.chance(500);
        let result: Result<(), Box<Divergence>> = (|| {
            for ep in 0..2 {
                if fast {
                    ls.call(Call::Nodelay {
                        ep,
                        nodelay: 1,
                        interval: 10,
                        resend: 2,
                        nc: 1,
                    })?;
                }
                if rng.chance(300) {
                    ls.call(Call::SetField {
                        ep,
                        field: Field::Stream,
                        value: 1,
                    })?;
                }
                if rng.chance(300) {
                    ls.call(Call::Writelog { ep, on: true })?;
                    ls.call(Call::SetField {
                        ep,
                        field: Field::Logmask,
                        value: -1,
                    })?;
                }
            }
            for _ in 0..rng.range(40, 120) {
                let ep = rng.below(2) as usize;
                match rng.below(6) {
                    0 | 1 => {
                        // Self-loopback stays within upstream's defined
                        // behaviour only while a flush fits one datagram:
                        // a few small messages per update.
                        let max = if wiring == Wiring::SelfLoop { 48 } else { 3000 };
                        for _ in 0..rng.range(1, 3) {
                            let data = rng.bytes_between(0, max);
                            let len = data.len() as i32;
                            ls.call(Call::Send {
                                ep,
                                data: Some(data),
                                len,
                            })?;
                        }
                    }
                    2 => {
                        ls.call(Call::Peeksize { ep })?;
                        ls.call(Call::Recv {
                            ep,
                            len: 4000,
                            cap: 4000,
                            null: false,
                        })?;
                    }
                    3 => {
                        ls.call(Call::Check { ep, now })?;
                    }
                    _ => {
                        now = now.wrapping_add(rng.range(1, 120) as u32);
                        for ep in 0..2 {
                            ls.call(Call::Update { ep, now })?;
                        }
                    }
                }
            }
            Ok(())
        })();
        totals.add(&ls.counters);
        if let Err(d) = result {
            panic!(
                "{}",
                report(
                    seed,
                    &format!("{wiring:?} reentrancy scenario; its seeds are fixed in the test"),
                    &ls,
                    &d
                )
            );
        }
    }
    totals
}

#[test]
fn reentrant_output_feeds_the_same_object() {
    let t = reentrant_traffic(Wiring::SelfLoop, 0..60);
    say(&format!(
        "lockstep self-loopback: 60 scenarios, {} calls, {} datagrams compared",
        t.calls, t.datagrams
    ));
    assert!(
        t.datagrams > 100,
        "the self-loopback traffic barely ran: {t:?}"
    );
}

#[test]
fn reentrant_output_feeds_the_peer_directly() {
    let t = reentrant_traffic(Wiring::Crossed, 1000..1060);
    say(&format!(
        "lockstep crossed loopback: 60 scenarios, {} calls, {} datagrams compared",
        t.calls, t.datagrams
    ));
    assert!(
        t.datagrams > 100,
        "the crossed loopback traffic barely ran: {t:?}"
    );
}

// ---------------------------------------------------------------------------
// ikcp_log with real format arguments
// ---------------------------------------------------------------------------

#[test]
fn ikcp_log_formats_like_printf() {
    let objs: Vec<Kcp> = Api::both()
        .into_iter()
        .map(|api| Kcp::new(api, 1))
        .collect();
    for k in &objs {
        k.set_writelog(true);
        k.set_field(Field::Logmask, -1);
    }
    let text = c"text";
    for k in &objs {
        let log = k.api.log;
        let p = k.raw();
        // SAFETY: each format is matched by arguments of the C types it names.
        unsafe {
            log(p, 1, c"plain".as_ptr());
            log(
                p,
                1,
                c"%d|%i|%u".as_ptr(),
                -42 as c_int,
                7 as c_int,
                4_000_000_000u32,
            );
            log(p, 2, c"%ld %lu".as_ptr(), -1i64, u64::MAX);
            log(
                p,
                4,
                c"[%s] %c%c".as_ptr(),
                text.as_ptr(),
                b'o' as c_int,
                b'k' as c_int,
            );
            log(
                p,
                8,
                c"%x %X %o %%".as_ptr(),
                0xbeef as c_int,
                0xbeef as c_int,
                8 as c_int,
            );
            log(
                p,
                16,
                c"%5d|%-5d|%05d".as_ptr(),
                42 as c_int,
                42 as c_int,
                42 as c_int,
            );
            log(p, 32, c"%.3s|%10s|".as_ptr(), text.as_ptr(), text.as_ptr());
            // Masked out: must not reach writelog.
            k.set_field(Field::Logmask, 1);
            log(p, 2, c"hidden %d".as_ptr(), 1 as c_int);
            k.set_field(Field::Logmask, -1);
        }
    }
    let lines: Vec<Vec<String>> = objs
        .iter()
        .map(|k| {
            k.take_logs()
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        lines[0][1], "-42|7|4000000000",
        "the reference itself formats as printf"
    );
    assert_eq!(
        lines[1], lines[0],
        "ikcp_log lines: ours (right) vs reference (left)"
    );
}

// ---------------------------------------------------------------------------
// The two implementations really are two
// ---------------------------------------------------------------------------

#[test]
fn ours_and_reference_are_different_implementations() {
    let [reference, ours] = Api::both();
    let ours_file = api::ours_path().canonicalize().expect("our library exists");
    let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
    let pairs: [(&str, usize, usize); 4] = [
        (
            "ikcp_create",
            reference.create as usize,
            ours.create as usize,
        ),
        ("ikcp_input", reference.input as usize, ours.input as usize),
        ("ikcp_flush", reference.flush as usize, ours.flush as usize),
        ("ikcp_send", reference.send as usize, ours.send as usize),
    ];
    for (name, r, o) in pairs {
        assert_ne!(r, o, "{name}: both tables point at the same code");
        let of = api::file_containing(o).expect("dladdr(ours)");
        let rf = api::file_containing(r).expect("dladdr(reference)");
        assert_eq!(
            of.canonicalize().unwrap(),
            ours_file,
            "{name} of ours is not in {}",
            ours_file.display()
        );
        assert_eq!(
            rf.canonicalize().unwrap(),
            exe,
            "{name} of the reference is not in the test executable"
        );
    }
    // Upstream's ikcp.c also exports two internal helpers; a library built
    // from it (rather than from our engine) would have them.
    if std::env::var_os("IKCP_OURS_LIB").is_none() {
        for internal in ["ikcp_parse_data", "ikcp_qprint"] {
            assert!(
                !api::library_exports(&ours_file, internal),
                "our library exports upstream's internal {internal}: is it ikcp.c?"
            );
        }
    }
    // Separate global state: allocator hooks installed in ours are not seen
    // by the reference.
    let before = hook_calls();
    // SAFETY: the hooks forward to libc; they are removed again right after.
    unsafe { (ours.allocator)(Some(counting_malloc), Some(counting_free)) };
    drop(Kcp::new(reference, 9));
    let after_reference = hook_calls();
    drop(Kcp::new(ours, 9));
    let after_ours = hook_calls();
    // SAFETY: restores the default allocator.
    unsafe { (ours.allocator)(None, None) };
    assert_eq!(
        after_reference, before,
        "the reference used hooks installed in ours"
    );
    assert!(
        after_ours > after_reference,
        "ours did not use its own allocator hooks"
    );
}

thread_local! {
    // Per thread: other tests in this binary use ours concurrently.
    static HOOK_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn hook_calls() -> u64 {
    HOOK_CALLS.with(|c| c.get())
}

unsafe extern "C" fn counting_malloc(size: usize) -> *mut c_void {
    HOOK_CALLS.with(|c| c.set(c.get() + 1));
    libc::malloc(size)
}

unsafe extern "C" fn counting_free(p: *mut c_void) {
    HOOK_CALLS.with(|c| c.set(c.get() + 1));
    libc::free(p)
}
