//! The lockstep scenario families: generated call sequences that run on a
//! reference implementation and on a candidate at once, compared after every
//! call (see [`crate::lockstep`]).
//!
//! Each scenario has two endpoints (A, B) per implementation, a simulated link
//! between them (loss, duplication, reordering, delay) and a virtual clock,
//! all driven by a seeded PRNG. The seed space is split into families (seed
//! modulo the number of families). The reentrancy scenarios, whose output
//! callbacks feed `ikcp_input` themselves, are run separately
//! ([`reentrant_traffic`]).
//!
//! Both users of this module take the two implementations as arguments: the
//! `lockstep` test (reference ikcp.c against our libkcp.so) and the
//! `kcp-conformance abi` tool (against any library with the C ABI).

mod controllers;
mod forge;
mod generator;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use controllers::CcProfile;
pub use generator::{Coverage, Scenario};

use crate::api::Api;
use crate::kcp::Field;
use crate::lockstep::{self, Call, Counters, Divergence, Lockstep, Wiring};
use crate::rng::Rng;

/// A family of generated scenarios, each stressing one side of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
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

/// Every family, in seed order: seed `s` belongs to `FAMILIES[s % 6]`.
pub const FAMILIES: [Family; 6] = [
    Family::Traffic,
    Family::Lossy,
    Family::Churn,
    Family::Hostile,
    Family::Edges,
    Family::Poke,
];

impl Family {
    /// Short lower-case name, for reports and command lines.
    pub fn name(self) -> &'static str {
        match self {
            Family::Traffic => "traffic",
            Family::Lossy => "lossy",
            Family::Churn => "churn",
            Family::Hostile => "hostile",
            Family::Edges => "edges",
            Family::Poke => "poke",
        }
    }

    /// Position in [`FAMILIES`] (the seed residue).
    pub fn index(self) -> u64 {
        FAMILIES.iter().position(|&f| f == self).unwrap() as u64
    }

    /// The seeds of this family among `first..first + total`.
    pub fn seeds(self, first: u64, total: u64) -> Vec<u64> {
        let n = FAMILIES.len() as u64;
        (first..first + total)
            .filter(|s| s % n == self.index())
            .collect()
    }

    /// Outcomes this family must reach in a default-sized run (300 scenarios
    /// or more), so a generator change that stops reaching some path fails
    /// loudly instead of silently testing less.
    pub fn expected_coverage(self) -> Vec<&'static str> {
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
        match self {
            Family::Traffic | Family::Lossy | Family::Churn => {}
            Family::Hostile => v.extend(["input -1", "input -2", "input -3", "dead link state"]),
            Family::Edges => v.extend(["dead link state", "out WASK", "input -2"]),
            Family::Poke => v.extend(["dead link state", "out WASK"]),
        }
        v
    }
}

/// The first divergence of a run, with the context to replay it: the calls
/// leading to it and, when shrinking succeeded, a minimal call list that
/// still diverges on fresh objects.
#[derive(Clone, Debug)]
pub struct FirstDivergence {
    pub seed: u64,
    pub convs: [u32; 2],
    pub wiring: Wiring,
    /// The diverging call, its index in the scenario's trace, and what differs.
    pub divergence: Divergence,
    /// Up to 30 calls before the diverging one, and that call; the first is
    /// call number `context_from` of the scenario.
    pub context: Vec<Call>,
    pub context_from: usize,
    pub minimal: Option<MinimalTrace>,
}

/// A shrunk call list that diverges at its last call.
#[derive(Clone, Debug)]
pub struct MinimalTrace {
    pub calls: Vec<Call>,
    /// What differs at the last call.
    pub diff: String,
    pub shrink_time: Duration,
}

impl FirstDivergence {
    /// Captures the divergence `d` of `ls` and shrinks its trace for at most
    /// `shrink_budget`, replaying between the same two implementations.
    pub fn capture(seed: u64, ls: &Lockstep, d: &Divergence, shrink_budget: Duration) -> Self {
        let from = d.index.saturating_sub(30);
        let (reference, ours) = (ls.reference.eps[0].api, ls.ours.eps[0].api);
        let t = Instant::now();
        let small = lockstep::shrink_with(
            reference,
            ours,
            ls.convs,
            ls.wiring,
            &ls.trace[..=d.index],
            shrink_budget,
        );
        let minimal =
            lockstep::replay_with(reference, ours, ls.convs, ls.wiring, &small).map(|sd| {
                MinimalTrace {
                    calls: small,
                    diff: sd.diff,
                    shrink_time: t.elapsed(),
                }
            });
        FirstDivergence {
            seed,
            convs: ls.convs,
            wiring: ls.wiring,
            divergence: d.clone(),
            context: ls.trace[from..=d.index].to_vec(),
            context_from: from,
            minimal,
        }
    }

    /// The divergence as text: the call, the difference, the calls before
    /// it and the minimal trace. `replay_hint` says how to rerun the seed.
    pub fn render(&self, replay_hint: &str) -> String {
        let d = &self.divergence;
        let mut msg = format!(
            "lockstep divergence, seed {} ({replay_hint})\n\
             call #{}: {}\n\
             difference: {}\n\
             last calls:{}",
            self.seed,
            d.index,
            d.call,
            d.diff,
            lockstep::listing(&self.context, self.context_from)
        );
        if let Some(m) = &self.minimal {
            msg.push_str(&format!(
                "\nshrunk to {} calls in {:.1}s (convs {:#x}/{:#x}); the last one diverges with: {}\n  minimal trace:{}",
                m.calls.len(),
                m.shrink_time.as_secs_f64(),
                self.convs[0],
                self.convs[1],
                m.diff,
                lockstep::listing(&m.calls, 0)
            ));
        }
        msg
    }
}

/// How a family run goes about its seeds.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Time allowed to shrink the first divergence.
    pub shrink_budget: Duration,
    /// Stop after this many diverging scenarios.
    pub max_failures: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shrink_budget: Duration::from_secs(20),
            max_failures: 20,
        }
    }
}

/// The outcome of running some seeds of one family.
#[derive(Debug)]
pub struct FamilyRun {
    pub family: Family,
    /// Scenarios run (fewer than the seeds given when `max_failures` stopped it).
    pub scenarios: usize,
    pub counters: Counters,
    pub coverage: BTreeMap<&'static str, u64>,
    /// Seeds that diverged, in order.
    pub diverged: Vec<u64>,
    pub first: Option<FirstDivergence>,
    pub elapsed: Duration,
}

impl FamilyRun {
    /// Expected outcomes that no scenario reached (see
    /// [`Family::expected_coverage`]).
    pub fn missing_coverage(&self) -> Vec<&'static str> {
        self.family
            .expected_coverage()
            .into_iter()
            .filter(|e| !self.coverage.contains_key(e))
            .collect()
    }
}

/// Runs the scenarios `seeds` of `family` comparing `candidate` with
/// `reference`. `each` sees every scenario after it ran (for progress
/// reports and trace listings).
pub fn run_family(
    family: Family,
    seeds: &[u64],
    reference: Api,
    candidate: Api,
    opts: RunOptions,
    each: &mut dyn FnMut(u64, &Scenario),
) -> FamilyRun {
    let start = Instant::now();
    let mut run = FamilyRun {
        family,
        scenarios: 0,
        counters: Counters::default(),
        coverage: BTreeMap::new(),
        diverged: Vec::new(),
        first: None,
        elapsed: Duration::ZERO,
    };
    let mut coverage = Coverage::default();
    for &seed in seeds {
        let mut sc = Scenario::new(seed, reference, candidate);
        let result = sc.run();
        run.scenarios += 1;
        run.counters.add(&sc.ls.counters);
        coverage.merge(&sc.coverage);
        each(seed, &sc);
        if let Err(d) = result {
            if run.first.is_none() {
                run.first = Some(FirstDivergence::capture(
                    seed,
                    &sc.ls,
                    &d,
                    opts.shrink_budget,
                ));
            }
            run.diverged.push(seed);
            if run.diverged.len() >= opts.max_failures {
                break;
            }
        }
    }
    run.coverage = coverage.counts;
    run.elapsed = start.elapsed();
    run
}

/// Simple send/update/recv traffic where the output callbacks feed
/// `ikcp_input` themselves (`wiring` is `SelfLoop` or `Crossed`), compared
/// call by call. Stops at the first diverging seed.
pub fn reentrant_traffic(
    reference: Api,
    candidate: Api,
    wiring: Wiring,
    seeds: std::ops::Range<u64>,
    shrink_budget: Duration,
) -> Result<Counters, (Counters, Box<FirstDivergence>)> {
    let mut totals = Counters::default();
    for seed in seeds {
        let mut rng = Rng::new(seed);
        let conv = rng.next_u32();
        let mut ls = Lockstep::with_apis(reference, candidate, [conv, conv], wiring);
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
            let first = FirstDivergence::capture(seed, &ls, &d, shrink_budget);
            return Err((totals, Box::new(first)));
        }
    }
    Ok(totals)
}
