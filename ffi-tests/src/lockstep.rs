//! Lockstep execution: the same concrete calls applied to the reference and to
//! ours, with everything observable compared after every call.
//!
//! A call list is self-contained (datagrams are stored as bytes, clocks as
//! numbers), so a divergence can be replayed on fresh objects and shrunk to a
//! short trace without the scenario generator that produced it.

use std::fmt;
use std::time::{Duration, Instant};

use crate::api::Api;
use crate::cc::{self, CcConfig, CcLib};
use crate::kcp::{Field, Fields, Kcp, Reentry, FIELD_NAMES};
use crate::v2::IKCPOPS;
use crate::wire;

/// Endpoint names in traces.
pub const EP_NAMES: [&str; 2] = ["A", "B"];

/// One call into the C ABI (or one direct field write) on endpoint `ep`.
#[derive(Clone, Debug)]
pub enum Call {
    /// `ikcp_send(kcp, data or NULL, len)`; `len` may be negative, and may
    /// exceed `data.len()` only where upstream reads no further than the
    /// data (NULL with len > 0 is upstream UB: it queues uninitialised bytes).
    Send {
        ep: usize,
        data: Option<Vec<u8>>,
        len: i32,
    },
    /// `ikcp_recv(kcp, buffer of cap bytes or NULL, len)`.
    Recv {
        ep: usize,
        len: i32,
        cap: usize,
        null: bool,
    },
    Peeksize {
        ep: usize,
    },
    Update {
        ep: usize,
        now: u32,
    },
    Flush {
        ep: usize,
    },
    Check {
        ep: usize,
        now: u32,
    },
    Waitsnd {
        ep: usize,
    },
    /// `ikcp_input(kcp, data or NULL, size)`; `size` never exceeds the data
    /// where upstream would read it.
    Input {
        ep: usize,
        data: Option<Vec<u8>>,
        size: i64,
    },
    SetMtu {
        ep: usize,
        mtu: i32,
    },
    Wndsize {
        ep: usize,
        snd: i32,
        rcv: i32,
    },
    Nodelay {
        ep: usize,
        nodelay: i32,
        interval: i32,
        resend: i32,
        nc: i32,
    },
    Interval {
        ep: usize,
        interval: i32,
    },
    /// `kcp->field = value` from the application, between calls.
    SetField {
        ep: usize,
        field: Field,
        value: i64,
    },
    /// `kcp->writelog = on ? callback : NULL`.
    Writelog {
        ep: usize,
        on: bool,
    },
    /// `ikcp_log(kcp, mask, text)` called by the application.
    Log {
        ep: usize,
        mask: i32,
        text: String,
    },
    /// `ikcp_getconv(data)`; object-independent, run on endpoint A's library.
    Getconv {
        data: Vec<u8>,
    },
    /// `ikcp_setcc(kcp, table)` (2.x) with the test's C controller in
    /// configuration `cfg` (a fresh table each time), or NULL.
    SetCc {
        ep: usize,
        cfg: Option<CcConfig>,
    },
}

impl Call {
    pub fn ep(&self) -> Option<usize> {
        match self {
            Call::Send { ep, .. }
            | Call::Recv { ep, .. }
            | Call::Peeksize { ep }
            | Call::Update { ep, .. }
            | Call::Flush { ep }
            | Call::Check { ep, .. }
            | Call::Waitsnd { ep }
            | Call::Input { ep, .. }
            | Call::SetMtu { ep, .. }
            | Call::Wndsize { ep, .. }
            | Call::Nodelay { ep, .. }
            | Call::Interval { ep, .. }
            | Call::SetField { ep, .. }
            | Call::Writelog { ep, .. }
            | Call::Log { ep, .. }
            | Call::SetCc { ep, .. } => Some(*ep),
            Call::Getconv { .. } => None,
        }
    }
}

fn data_summary(data: &Option<Vec<u8>>) -> String {
    match data {
        None => "NULL".into(),
        Some(d) => format!("<{} bytes {}>", d.len(), wire::hex_short(d, 8)),
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.ep().map_or("", |e| EP_NAMES[e]);
        match self {
            Call::Send { data, len, .. } => write!(f, "{who}.send({}, {len})", data_summary(data)),
            Call::Recv { len, cap, null, .. } => {
                let buf = if *null {
                    "NULL".to_string()
                } else {
                    format!("buf[{cap}]")
                };
                write!(f, "{who}.recv({buf}, {len})")
            }
            Call::Peeksize { .. } => write!(f, "{who}.peeksize()"),
            Call::Update { now, .. } => write!(f, "{who}.update({now})"),
            Call::Flush { .. } => write!(f, "{who}.flush()"),
            Call::Check { now, .. } => write!(f, "{who}.check({now})"),
            Call::Waitsnd { .. } => write!(f, "{who}.waitsnd()"),
            Call::Input { data, size, .. } => {
                write!(f, "{who}.input({}, {size})", data_summary(data))?;
                if let Some(d) = data {
                    write!(f, " = {}", wire::describe(d))?;
                }
                Ok(())
            }
            Call::SetMtu { mtu, .. } => write!(f, "{who}.setmtu({mtu})"),
            Call::Wndsize { snd, rcv, .. } => write!(f, "{who}.wndsize({snd}, {rcv})"),
            Call::Nodelay {
                nodelay,
                interval,
                resend,
                nc,
                ..
            } => {
                write!(f, "{who}.nodelay({nodelay}, {interval}, {resend}, {nc})")
            }
            Call::Interval { interval, .. } => write!(f, "{who}.interval({interval})"),
            Call::SetField { field, value, .. } => write!(f, "{who}->{} = {value}", field.name()),
            Call::Writelog { on, .. } => write!(
                f,
                "{who}->writelog = {}",
                if *on { "recorder" } else { "NULL" }
            ),
            Call::Log { mask, text, .. } => write!(f, "{who}.log({mask:#x}, {text:?})"),
            Call::SetCc { cfg: None, .. } => write!(f, "{who}.setcc(NULL)"),
            Call::SetCc { cfg: Some(c), .. } => write!(f, "{who}.setcc({c})"),
            Call::Getconv { data } => write!(
                f,
                "getconv(<{} bytes {}>)",
                data.len(),
                wire::hex_short(data, 8)
            ),
        }
    }
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    Void,
    Int(i64),
    /// `ikcp_recv`: the result and the whole receive buffer afterwards.
    Recv(i32, Vec<u8>),
}

/// Everything observable after one call on one implementation.
#[derive(Clone, Debug)]
pub struct Observation {
    pub ret: Ret,
    /// Datagrams each endpoint passed to `output` during the call.
    pub datagrams: [Vec<Vec<u8>>; 2],
    /// Lines each endpoint passed to `writelog` during the call.
    pub logs: [Vec<Vec<u8>>; 2],
    /// Results of `ikcp_input` calls made from inside `output` (reentrancy).
    pub nested: [Vec<i32>; 2],
    pub fields: [Fields; 2],
    /// Broken callback plumbing (`user` overwritten, wrong `kcp` argument...).
    pub plumbing: Vec<String>,
    /// What each endpoint's C congestion controller logged (2.x).
    pub cc_logs: [Vec<u8>; 2],
}

/// How the two endpoints' output callbacks behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wiring {
    /// Datagrams are only recorded; the test carries them.
    Recorded,
    /// Each endpoint's output feeds its own `ikcp_input` (self-loopback).
    SelfLoop,
    /// A's output feeds B's `ikcp_input` directly and vice versa.
    Crossed,
}

/// Two endpoints (A, B) of one implementation.
pub struct Side {
    pub eps: [Kcp; 2],
    writelog: [bool; 2],
    /// Every controller table installed on each endpoint, kept valid for the
    /// object's life (the library may call a replaced table's `release`).
    /// Boxed: the library holds their addresses while the vector grows.
    #[allow(clippy::vec_box)]
    cc_tables: [Vec<Box<IKCPOPS>>; 2],
}

impl Side {
    pub fn new(api: Api, convs: [u32; 2], wiring: Wiring) -> Side {
        let eps = [Kcp::new(api, convs[0]), Kcp::new(api, convs[1])];
        match wiring {
            Wiring::Recorded => {}
            Wiring::SelfLoop => {
                for ep in &eps {
                    ep.set_reentry(Reentry::SelfInput);
                }
            }
            Wiring::Crossed => {
                eps[0].set_reentry(Reentry::PeerInput(eps[1].raw()));
                eps[1].set_reentry(Reentry::PeerInput(eps[0].raw()));
            }
        }
        Side {
            eps,
            writelog: [false; 2],
            cc_tables: [Vec::new(), Vec::new()],
        }
    }

    pub fn apply(&mut self, call: &Call) -> Observation {
        let ret = match call {
            Call::Send { ep, data, len } => {
                let p = data.as_ref().map_or(std::ptr::null(), |d| d.as_ptr());
                Ret::Int(self.eps[*ep].send_raw(p, *len) as i64)
            }
            Call::Recv { ep, len, cap, null } => {
                let (r, buf) = self.eps[*ep].recv(*len, *cap, *null);
                Ret::Recv(r, buf)
            }
            Call::Peeksize { ep } => Ret::Int(self.eps[*ep].peeksize() as i64),
            Call::Update { ep, now } => {
                self.eps[*ep].update(*now);
                Ret::Void
            }
            Call::Flush { ep } => {
                self.eps[*ep].flush();
                Ret::Void
            }
            Call::Check { ep, now } => Ret::Int(self.eps[*ep].check(*now) as i64),
            Call::Waitsnd { ep } => Ret::Int(self.eps[*ep].waitsnd() as i64),
            Call::Input { ep, data, size } => {
                let p = data.as_ref().map_or(std::ptr::null(), |d| d.as_ptr());
                Ret::Int(self.eps[*ep].input_sized(p, *size as std::ffi::c_long) as i64)
            }
            Call::SetMtu { ep, mtu } => Ret::Int(self.eps[*ep].setmtu(*mtu) as i64),
            Call::Wndsize { ep, snd, rcv } => Ret::Int(self.eps[*ep].wndsize(*snd, *rcv) as i64),
            Call::Nodelay {
                ep,
                nodelay,
                interval,
                resend,
                nc,
            } => Ret::Int(self.eps[*ep].nodelay(*nodelay, *interval, *resend, *nc) as i64),
            Call::Interval { ep, interval } => Ret::Int(self.eps[*ep].interval(*interval) as i64),
            Call::SetField { ep, field, value } => {
                self.eps[*ep].set_field(*field, *value);
                Ret::Void
            }
            Call::Writelog { ep, on } => {
                self.eps[*ep].set_writelog(*on);
                self.writelog[*ep] = *on;
                Ret::Void
            }
            Call::Log { ep, mask, text } => {
                self.eps[*ep].log(*mask, text);
                Ret::Void
            }
            Call::Getconv { data } => Ret::Int(self.eps[0].getconv(data) as i64),
            Call::SetCc { ep, cfg } => Ret::Int(self.setcc(*ep, cfg.as_ref()) as i64),
        };
        self.observe(ret)
    }

    fn setcc(&mut self, ep: usize, cfg: Option<&CcConfig>) -> i32 {
        let k = &self.eps[ep];
        let lib = CcLib::get();
        let state = k.with_recorder(|r| {
            if r.cc.is_null() {
                r.cc = lib.new_state(cc::cc_api(&k.api));
                r.cc_free = Some(lib.state_free);
            }
            r.cc
        });
        let table = match cfg {
            Some(cfg) => {
                // SAFETY: the endpoint's state, freed only after the object.
                let t = unsafe { lib.table(state, cfg) };
                let p: *const IKCPOPS = &*t;
                self.cc_tables[ep].push(t);
                p
            }
            None => std::ptr::null(),
        };
        let setcc = k.api.setcc.expect("setcc on a 1.x library");
        // SAFETY: live object; the table stays valid while the object lives.
        unsafe { setcc(k.raw(), table) }
    }

    fn observe(&self, ret: Ret) -> Observation {
        let mut plumbing = Vec::new();
        for (i, ep) in self.eps.iter().enumerate() {
            for e in ep.plumbing_errors(self.writelog[i]) {
                plumbing.push(format!("{}: {e}", EP_NAMES[i]));
            }
        }
        let nested = |ep: &Kcp| ep.with_recorder(|r| std::mem::take(&mut r.nested));
        Observation {
            ret,
            datagrams: [self.eps[0].take_datagrams(), self.eps[1].take_datagrams()],
            logs: [self.eps[0].take_logs(), self.eps[1].take_logs()],
            nested: [nested(&self.eps[0]), nested(&self.eps[1])],
            fields: [self.eps[0].fields(), self.eps[1].fields()],
            plumbing,
            cc_logs: [cc_log(&self.eps[0]), cc_log(&self.eps[1])],
        }
    }
}

/// What the endpoint's C controller logged since the last call.
fn cc_log(k: &Kcp) -> Vec<u8> {
    let state = k.with_recorder(|r| r.cc);
    if state.is_null() {
        return Vec::new();
    }
    // SAFETY: the endpoint's state, freed only after the object.
    unsafe { CcLib::get().take_log(state) }
}

/// Describes the first difference between two observations of the same call,
/// or None when they agree.
pub fn compare(reference: &Observation, ours: &Observation) -> Option<String> {
    if !ours.plumbing.is_empty() || !reference.plumbing.is_empty() {
        return Some(format!(
            "callback plumbing broken: ours {:?}, reference {:?}",
            ours.plumbing, reference.plumbing
        ));
    }
    if reference.ret != ours.ret {
        return Some(match (&reference.ret, &ours.ret) {
            (Ret::Recv(rr, rb), Ret::Recv(or, ob)) if rr == or => {
                let at = rb.iter().zip(ob).position(|(a, b)| a != b).unwrap_or(0);
                format!(
                    "recv returned {rr} on both, but the receive buffers differ from byte {at}\n    ours:{}\n    reference:{}",
                    wire::hex(&ob[at.saturating_sub(16)..], 128),
                    wire::hex(&rb[at.saturating_sub(16)..], 128)
                )
            }
            (Ret::Recv(rr, _), Ret::Recv(or, _)) => {
                format!("return value: ours {or}, reference {rr}")
            }
            (r, o) => format!("return value: ours {o:?}, reference {r:?}"),
        });
    }
    for (ep, name) in EP_NAMES.iter().enumerate() {
        let (r, o) = (&reference.datagrams[ep], &ours.datagrams[ep]);
        for (i, (rd, od)) in r.iter().zip(o).enumerate() {
            if rd != od {
                return Some(format!(
                    "{name} output datagram #{i} of this call differs\n    ours:      {}{}\n    reference: {}{}",
                    wire::describe(od),
                    wire::hex(od, 256),
                    wire::describe(rd),
                    wire::hex(rd, 256)
                ));
            }
        }
        if r.len() != o.len() {
            let extra = |v: &[Vec<u8>]| {
                v.iter()
                    .skip(r.len().min(o.len()))
                    .map(|d| format!("\n      {}", wire::describe(d)))
                    .collect::<String>()
            };
            return Some(format!(
                "{name} emitted {} datagrams in ours, {} in the reference; extra ones:{}{}",
                o.len(),
                r.len(),
                extra(o),
                extra(r)
            ));
        }
        if reference.nested[ep] != ours.nested[ep] {
            return Some(format!(
                "{name}: ikcp_input called from inside output returned {:?} in ours, {:?} in the reference",
                ours.nested[ep], reference.nested[ep]
            ));
        }
        let (r, o) = (&reference.logs[ep], &ours.logs[ep]);
        if r != o {
            let i = r
                .iter()
                .zip(o)
                .position(|(a, b)| a != b)
                .unwrap_or(r.len().min(o.len()));
            let show = |v: &[Vec<u8>]| {
                v.get(i).map_or("<none>".to_string(), |l| {
                    format!("{:?}", String::from_utf8_lossy(l))
                })
            };
            return Some(format!(
                "{name} log line #{i} of this call differs ({} lines in ours, {} in the reference)\n    ours:      {}\n    reference: {}",
                o.len(),
                r.len(),
                show(o),
                show(r)
            ));
        }
        let (r, o) = (&reference.cc_logs[ep], &ours.cc_logs[ep]);
        if r != o {
            let (rl, ol): (Vec<&[u8]>, Vec<&[u8]>) = (
                r.split(|&b| b == b'\n').collect(),
                o.split(|&b| b == b'\n').collect(),
            );
            let i = rl
                .iter()
                .zip(&ol)
                .position(|(a, b)| a != b)
                .unwrap_or(rl.len().min(ol.len()));
            let show = |v: &[&[u8]]| {
                v.get(i).map_or("<none>".to_string(), |l| {
                    format!("{:?}", String::from_utf8_lossy(l))
                })
            };
            return Some(format!(
                "{name} congestion controller line #{i} of this call differs\n    ours:      {}\n    reference: {}",
                show(&ol),
                show(&rl)
            ));
        }
        for (k, field) in FIELD_NAMES.iter().enumerate() {
            let (rv, ov) = (reference.fields[ep][k], ours.fields[ep][k]);
            if rv != ov {
                return Some(format!("{name}->{field}: ours {ov}, reference {rv}"));
            }
        }
    }
    None
}

/// Statistics of a lockstep run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub calls: u64,
    pub datagrams: u64,
    pub datagram_bytes: u64,
    pub log_lines: u64,
    /// Lines the C congestion controllers logged (one per hook call, plus
    /// the results of their re-entrant calls), compared like log lines.
    pub cc_lines: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.calls += o.calls;
        self.datagrams += o.datagrams;
        self.datagram_bytes += o.datagram_bytes;
        self.log_lines += o.log_lines;
        self.cc_lines += o.cc_lines;
    }
}

/// The first divergence of a lockstep run.
#[derive(Clone, Debug)]
pub struct Divergence {
    pub index: usize,
    pub call: Call,
    pub diff: String,
}

/// Both implementations driven side by side, with the trace of every call.
pub struct Lockstep {
    pub reference: Side,
    pub ours: Side,
    pub convs: [u32; 2],
    pub wiring: Wiring,
    pub trace: Vec<Call>,
    pub counters: Counters,
}

impl Lockstep {
    pub fn new(convs: [u32; 2], wiring: Wiring) -> Lockstep {
        Lockstep::with_apis(Api::reference(), Api::ours(), convs, wiring)
    }

    pub fn with_apis(reference: Api, ours: Api, convs: [u32; 2], wiring: Wiring) -> Lockstep {
        Lockstep {
            reference: Side::new(reference, convs, wiring),
            ours: Side::new(ours, convs, wiring),
            convs,
            wiring,
            trace: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// Applies `call` to both sides. On agreement returns the (common)
    /// observation; otherwise the divergence.
    pub fn call(&mut self, call: Call) -> Result<Observation, Box<Divergence>> {
        let r = self.reference.apply(&call);
        let o = self.ours.apply(&call);
        self.trace.push(call);
        self.counters.calls += 1;
        if let Some(diff) = compare(&r, &o) {
            let index = self.trace.len() - 1;
            return Err(Box::new(Divergence {
                index,
                call: self.trace[index].clone(),
                diff,
            }));
        }
        for d in r.datagrams.iter().flatten() {
            self.counters.datagrams += 1;
            self.counters.datagram_bytes += d.len() as u64;
        }
        self.counters.log_lines += r.logs.iter().map(|l| l.len() as u64).sum::<u64>();
        self.counters.cc_lines += r
            .cc_logs
            .iter()
            .map(|l| l.iter().filter(|&&b| b == b'\n').count() as u64)
            .sum::<u64>();
        Ok(r)
    }
}

/// Replays `calls` on fresh objects; the first divergence, if any.
pub fn replay(convs: [u32; 2], wiring: Wiring, calls: &[Call]) -> Option<Divergence> {
    replay_with(Api::reference(), Api::ours(), convs, wiring, calls)
}

/// [`replay`] between any two implementations.
pub fn replay_with(
    reference: Api,
    ours: Api,
    convs: [u32; 2],
    wiring: Wiring,
    calls: &[Call],
) -> Option<Divergence> {
    let mut ls = Lockstep::with_apis(reference, ours, convs, wiring);
    for c in calls {
        if let Err(d) = ls.call(c.clone()) {
            return Some(*d);
        }
    }
    None
}

/// Whether a call list stays clear of upstream's undefined behaviour that
/// removing calls could introduce: shrinking the MTU below what segments
/// queued at a larger MSS need in upstream's flush buffer.
pub fn upstream_defined(calls: &[Call]) -> bool {
    let mut mss = [1400u32 - 24; 2];
    let mut max_mss = [0u32; 2];
    for c in calls {
        match c {
            Call::Send { ep, .. } => max_mss[*ep] = max_mss[*ep].max(mss[*ep]),
            Call::SetMtu { ep, mtu } if *mtu >= 50 => {
                if 3 * (*mtu as i64 + 24) < 24 + max_mss[*ep] as i64 {
                    return false;
                }
                mss[*ep] = *mtu as u32 - 24;
            }
            _ => {}
        }
    }
    true
}

/// Shrinks a diverging call list (already cut after the divergence) by
/// removing chunks while it still diverges, within a time budget.
pub fn shrink(convs: [u32; 2], wiring: Wiring, calls: &[Call], budget: Duration) -> Vec<Call> {
    shrink_with(Api::reference(), Api::ours(), convs, wiring, calls, budget)
}

/// [`shrink`] between any two implementations.
pub fn shrink_with(
    reference: Api,
    ours: Api,
    convs: [u32; 2],
    wiring: Wiring,
    calls: &[Call],
    budget: Duration,
) -> Vec<Call> {
    let start = Instant::now();
    let mut best = calls.to_vec();
    let mut chunk = (best.len() / 2).max(1);
    loop {
        let mut i = 0;
        let mut progressed = false;
        while i < best.len() {
            if start.elapsed() > budget {
                return best;
            }
            let mut cand = best.clone();
            cand.drain(i..(i + chunk).min(cand.len()));
            if !cand.is_empty() && upstream_defined(&cand) {
                if let Some(d) = replay_with(reference, ours, convs, wiring, &cand) {
                    cand.truncate(d.index + 1);
                    best = cand;
                    progressed = true;
                    continue;
                }
            }
            i += chunk;
        }
        if chunk == 1 && !progressed {
            return best;
        }
        if !progressed {
            chunk = (chunk / 2).max(1);
        }
    }
}

/// A numbered listing of calls, for failure messages.
pub fn listing(calls: &[Call], first_index: usize) -> String {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| format!("\n    #{:<5} {c}", first_index + i))
        .collect()
}
