//! `abi`: the lockstep scenario families of ffi-tests (the same code the
//! project's own differential tests run) between the reference ikcp.c and
//! any shared library exporting the ikcp C ABI.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use ffi_tests::api::{Api, Flavour};
use ffi_tests::lockstep::{self, Call, Counters, Side, Wiring};
use ffi_tests::scenarios::{self, FirstDivergence, RunOptions, FAMILIES};
use ffi_tests::v2;
use ffi_tests::wire;
use serde::Serialize;

use crate::layout::{self, LayoutReport};
use crate::record::Recorder;
use crate::report::{ReportArgs, Table};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The shared library to test (exports ikcp_create, ikcp_send, ...).
    #[arg(long, value_name = "PATH.so")]
    pub lib: PathBuf,
    /// Which upstream generation to compare against: 1 (ikcp.c 1.x, linked
    /// into this tool) or 2 (upstream 2.x's ikcp.c from --upstream2,
    /// compiled by the tool; the library must export ikcp_setcc, and the
    /// scenarios also install C congestion controllers with it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub flavour: u8,
    /// With --flavour 2: a directory holding upstream 2.x's ikcp.c and
    /// ikcp.h (tag 2.1.1); default $IKCP_REF_2X, else
    /// ../shared/reference/kcp-2.1.1 next to this checkout.
    #[arg(long, value_name = "DIR")]
    pub upstream2: Option<PathBuf>,
    /// Scenarios in total, split evenly over the six generated families
    /// (the two reentrancy families get one per hundred, 5 to 60).
    #[arg(long, default_value_t = 3000)]
    pub scenarios: u64,
    /// First seed; scenario seeds are SEED..SEED+SCENARIOS, and seed s
    /// belongs to family s mod 6. Same seeds, same scenarios, always.
    #[arg(long, default_value_t = 0, value_parser = crate::decode::parse_u64)]
    pub seed: u64,
    /// Run only the scenario of this seed and print its whole call trace.
    #[arg(long, value_name = "SEED", value_parser = crate::decode::parse_u64)]
    pub replay: Option<u64>,
    /// Also compare the struct layout declared by this ikcp.h (file or
    /// directory) with upstream's, by compiling a C program against both.
    #[arg(long, value_name = "PATH/ikcp.h")]
    pub header: Option<PathBuf>,
    /// Seconds allowed to shrink each family's first divergence.
    #[arg(long, default_value_t = 10)]
    pub shrink_secs: u64,
    /// Write the datagrams of each family's minimal diverging trace (both
    /// implementations), or of its first scenario when none diverged, as a
    /// pcap file for `decode`.
    #[arg(long, value_name = "FILE.pcap")]
    pub record: Option<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// One call of a trace, for the JSON report.
#[derive(Debug, Serialize)]
pub struct TraceCall {
    pub index: usize,
    pub call: String,
    /// The datagram handed to `ikcp_input`, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datagram: Option<String>,
}

/// A family's first divergence.
#[derive(Debug, Serialize)]
pub struct DivergenceReport {
    pub seed: u64,
    pub convs: [u32; 2],
    pub call_index: usize,
    pub call: String,
    /// What differs ("ours" is the library under test).
    pub difference: String,
    pub replay: String,
    /// The shrunk call sequence, replayable on fresh objects; its last call
    /// diverges with `minimal_difference`.
    pub minimal_trace: Vec<TraceCall>,
    pub minimal_difference: Option<String>,
    /// The whole text block, as printed.
    pub text: String,
}

/// One row of the report.
#[derive(Debug, Serialize)]
pub struct FamilyReport {
    pub family: String,
    pub scenarios: usize,
    pub calls: u64,
    pub datagrams: u64,
    pub datagram_bytes: u64,
    pub log_lines: u64,
    /// Lines the C congestion controllers logged, compared (--flavour 2).
    pub controller_lines: u64,
    pub divergences: usize,
    pub diverged_seeds: Vec<u64>,
    /// Expected outcomes no scenario reached (only judged from 300
    /// scenarios of a family on).
    pub missing_coverage: Vec<String>,
    pub seconds: f64,
    pub first_divergence: Option<DivergenceReport>,
}

#[derive(Debug, Serialize)]
pub struct AbiReport {
    pub library: String,
    pub flavour: u8,
    pub reference: String,
    pub first_seed: u64,
    pub families: Vec<FamilyReport>,
    pub layout: Option<LayoutReport>,
    pub conformant: bool,
}

/// The reference implementation of `flavour`.
fn reference(flavour: u8) -> Result<(Api, String), String> {
    match flavour {
        1 => Ok((
            Api::reference(),
            "upstream ikcp.c 1.x (kcp-io 0.0.5), linked into this tool".into(),
        )),
        _ => {
            let dir = v2::reference2_dir();
            if !dir.join("ikcp.c").is_file() {
                return Err(format!(
                    "--flavour 2 compares against upstream 2.x's ikcp.c, not found in {}: \
                     pass --upstream2 DIR (a checkout of upstream tag 2.1.1) or set IKCP_REF_2X",
                    dir.display()
                ));
            }
            let api = v2::oracle().ok_or("the 2.x oracle did not build")?;
            Ok((
                api,
                format!(
                    "upstream ikcp.c 2.x from {}, compiled by this tool",
                    dir.display()
                ),
            ))
        }
    }
}

fn trace_calls(calls: &[Call], from: usize) -> Vec<TraceCall> {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| TraceCall {
            index: from + i,
            call: c.to_string(),
            datagram: match c {
                Call::Input { data: Some(d), .. } => Some(wire::hex_short(d, usize::MAX)),
                _ => None,
            },
        })
        .collect()
}

fn divergence_report(first: &FirstDivergence, replay: String) -> DivergenceReport {
    let d = &first.divergence;
    DivergenceReport {
        seed: first.seed,
        convs: first.convs,
        call_index: d.index,
        call: d.call.to_string(),
        difference: d.diff.clone(),
        minimal_trace: first
            .minimal
            .as_ref()
            .map_or_else(Vec::new, |m| trace_calls(&m.calls, 0)),
        minimal_difference: first.minimal.as_ref().map(|m| m.diff.clone()),
        text: first.render(&replay),
        replay,
    }
}

/// A trace to put in the capture: which family, the calls, the wiring.
struct Recording {
    family: String,
    convs: [u32; 2],
    wiring: Wiring,
    calls: Vec<Call>,
}

/// Replays `rec` on fresh objects of `api` and writes every datagram the two
/// endpoints emit: A on port 1001, B on port 1002, at address `ip`.
fn record_replay(
    out: &mut Recorder,
    api: Api,
    ip: Ipv4Addr,
    rec: &Recording,
    t0: Duration,
) -> Result<(), String> {
    let mut side = Side::new(api, rec.convs, rec.wiring);
    let eps = [SocketAddrV4::new(ip, 1001), SocketAddrV4::new(ip, 1002)];
    let mut clock: [Option<u32>; 2] = [None; 2];
    let mut first: Option<u32> = None;
    for call in &rec.calls {
        if let Call::Update { ep, now } | Call::Check { ep, now } = call {
            clock[*ep] = Some(*now);
            first.get_or_insert(*now);
        }
        let obs = side.apply(call);
        for (ep, datagrams) in obs.datagrams.iter().enumerate() {
            // Virtual time: the endpoint's last clock value since the trace began.
            let ms = match (clock[ep], first) {
                (Some(c), Some(f)) => c.wrapping_sub(f) as u64,
                _ => 0,
            };
            for d in datagrams {
                out.datagram(t0 + Duration::from_millis(ms), eps[ep], eps[1 - ep], d)?;
            }
        }
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<bool, String> {
    if let Some(dir) = &args.upstream2 {
        // Read by ffi_tests::v2 when it builds the oracle; set before any
        // thread starts.
        std::env::set_var("IKCP_REF_2X", dir);
    }
    let (reference, reference_name) = reference(args.flavour)?;
    let lib = args
        .lib
        .canonicalize()
        .map_err(|e| format!("{}: {e}", args.lib.display()))?;
    let candidate = match args.flavour {
        1 => Api::load(&lib)?,
        _ => Api::load_flavour(&lib, Flavour::V2)?,
    };
    if let Some(seed) = args.replay {
        return replay_one(reference, candidate, &lib, seed);
    }
    let layout = args.header.as_deref().map(layout::check).transpose()?;
    let opts = RunOptions {
        shrink_budget: Duration::from_secs(args.shrink_secs),
        max_failures: 20,
    };
    let reentrant_n = (args.scenarios / 100).clamp(5, 60);
    let total = args.scenarios + 2 * reentrant_n;
    let done = AtomicUsize::new(0);
    let diverged = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let start = Instant::now();
    let recordings = Mutex::new(Vec::<Recording>::new());
    let lib_text = lib.display().to_string();
    let flavour_arg = match args.flavour {
        1 => String::new(),
        _ => " --flavour 2".to_string(),
    };
    let replay_hint =
        |seed: u64| format!("kcp-conformance abi --lib {lib_text}{flavour_arg} --replay {seed}");
    let families: Vec<FamilyReport> = std::thread::scope(|s| {
        if !args.report.quiet {
            s.spawn(|| {
                let mut last = Instant::now();
                while !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() >= Duration::from_secs(2) {
                        last = Instant::now();
                        eprintln!(
                            "abi: {}/{total} scenarios, {} diverged, {:.0} s",
                            done.load(Ordering::Relaxed),
                            diverged.load(Ordering::Relaxed),
                            start.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
        let mut handles = Vec::new();
        for family in FAMILIES {
            let (done, diverged, recordings) = (&done, &diverged, &recordings);
            let replay_hint = &replay_hint;
            handles.push(s.spawn(move || {
                let seeds = family.seeds(args.seed, args.scenarios);
                let mut first_trace = None;
                let run = scenarios::run_family(
                    family,
                    &seeds,
                    reference,
                    candidate,
                    opts,
                    &mut |_, sc| {
                        done.fetch_add(1, Ordering::Relaxed);
                        if first_trace.is_none() {
                            first_trace = Some((sc.ls.convs, sc.ls.trace.clone()));
                        }
                    },
                );
                diverged.fetch_add(run.diverged.len(), Ordering::Relaxed);
                let rec = match (&run.first, first_trace) {
                    (Some(f), _) => f.minimal.as_ref().map(|m| (f.convs, m.calls.clone())),
                    (None, t) => t,
                };
                if let Some((convs, calls)) = rec {
                    recordings.lock().unwrap().push(Recording {
                        family: family.name().into(),
                        convs,
                        wiring: Wiring::Recorded,
                        calls,
                    });
                }
                let missing = if run.scenarios >= 300 {
                    run.missing_coverage()
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                } else {
                    Vec::new()
                };
                FamilyReport {
                    family: family.name().into(),
                    scenarios: run.scenarios,
                    calls: run.counters.calls,
                    datagrams: run.counters.datagrams,
                    datagram_bytes: run.counters.datagram_bytes,
                    log_lines: run.counters.log_lines,
                    controller_lines: run.counters.cc_lines,
                    divergences: run.diverged.len(),
                    diverged_seeds: run.diverged.clone(),
                    missing_coverage: missing,
                    seconds: run.elapsed.as_secs_f64(),
                    first_divergence: run
                        .first
                        .as_ref()
                        .map(|f| divergence_report(f, replay_hint(f.seed))),
                }
            }));
        }
        for (name, wiring, base) in [
            ("reentrant-self", Wiring::SelfLoop, 0u64),
            ("reentrant-crossed", Wiring::Crossed, 1000),
        ] {
            let (done, diverged, recordings) = (&done, &diverged, &recordings);
            handles.push(s.spawn(move || {
                let t = Instant::now();
                let first = args.seed + base;
                let seeds = first..first + reentrant_n;
                let r = scenarios::reentrant_traffic(
                    reference,
                    candidate,
                    wiring,
                    seeds,
                    opts.shrink_budget,
                );
                let (counters, divergence): (Counters, _) = match r {
                    Ok(c) => (c, None),
                    Err((c, f)) => (c, Some(f)),
                };
                // Stops at the first diverging seed, so the count is an upper bound of those run.
                done.fetch_add(reentrant_n as usize, Ordering::Relaxed);
                if let Some(m) = divergence.as_ref().and_then(|f| f.minimal.as_ref()) {
                    recordings.lock().unwrap().push(Recording {
                        family: name.into(),
                        convs: divergence.as_ref().unwrap().convs,
                        wiring,
                        calls: m.calls.clone(),
                    });
                }
                let scenarios_run = match &divergence {
                    Some(f) => (f.seed - first + 1) as usize,
                    None => reentrant_n as usize,
                };
                diverged.fetch_add(divergence.is_some() as usize, Ordering::Relaxed);
                FamilyReport {
                    family: name.into(),
                    scenarios: scenarios_run,
                    calls: counters.calls,
                    datagrams: counters.datagrams,
                    datagram_bytes: counters.datagram_bytes,
                    log_lines: counters.log_lines,
                    controller_lines: counters.cc_lines,
                    divergences: divergence.is_some() as usize,
                    diverged_seeds: divergence.iter().map(|f| f.seed).collect(),
                    missing_coverage: Vec::new(),
                    seconds: t.elapsed().as_secs_f64(),
                    first_divergence: divergence.as_ref().map(|f| {
                        divergence_report(
                            f,
                            format!("{name} seed {}, rerun with --seed {}", f.seed, args.seed),
                        )
                    }),
                }
            }));
        }
        let rows = handles.into_iter().map(|h| h.join().unwrap()).collect();
        finished.store(true, Ordering::Relaxed);
        rows
    });
    let conformant = families.iter().all(|f| f.divergences == 0)
        && layout.as_ref().map_or(true, |l| l.differences.is_empty());
    let report = AbiReport {
        library: lib_text.clone(),
        flavour: args.flavour,
        reference: reference_name,
        first_seed: args.seed,
        families,
        layout,
        conformant,
    };
    if let Some(path) = &args.record {
        write_recording(path, reference, candidate, recordings.into_inner().unwrap())?;
        args.report
            .progress(&format!("abi: datagrams recorded in {}", path.display()));
    }
    args.report.publish(|| render(&report), &report)?;
    Ok(conformant)
}

/// Candidate on 127.0.0.1, reference on 127.0.0.2; families one after the
/// other, a minute apart.
fn write_recording(
    path: &Path,
    reference: Api,
    candidate: Api,
    mut recs: Vec<Recording>,
) -> Result<(), String> {
    recs.sort_by(|a, b| a.family.cmp(&b.family));
    let mut out = Recorder::create(path)?;
    for (i, rec) in recs.iter().enumerate() {
        let t0 = Duration::from_secs(60 * i as u64);
        record_replay(&mut out, candidate, Ipv4Addr::new(127, 0, 0, 1), rec, t0)?;
        record_replay(&mut out, reference, Ipv4Addr::new(127, 0, 0, 2), rec, t0)?;
    }
    Ok(())
}

fn replay_one(reference: Api, candidate: Api, lib: &Path, seed: u64) -> Result<bool, String> {
    let family = FAMILIES[(seed % FAMILIES.len() as u64) as usize];
    let run = scenarios::run_family(
        family,
        &[seed],
        reference,
        candidate,
        RunOptions::default(),
        &mut |_, sc| {
            println!(
                "seed {seed} ({}) trace:{}",
                family.name(),
                lockstep::listing(&sc.ls.trace, 0)
            );
        },
    );
    match &run.first {
        None => {
            println!("seed {seed}: no divergence in {} calls", run.counters.calls);
            Ok(true)
        }
        Some(f) => {
            let hint = format!(
                "kcp-conformance abi --lib {} --replay {seed}",
                lib.display()
            );
            println!("{}", f.render(&hint));
            Ok(false)
        }
    }
}

/// The text report.
pub fn render(r: &AbiReport) -> String {
    let mut s = format!(
        "kcp-conformance abi\n  library:   {}\n  reference: {}\n  seeds from {}; \"ours\" below is the library under test\n\n",
        r.library, r.reference, r.first_seed
    );
    let mut t = Table::new(&[
        "family",
        "scenarios",
        "calls",
        "datagrams",
        "bytes",
        "log lines",
        "divergences",
        "time",
    ]);
    for f in &r.families {
        t.row(vec![
            f.family.clone(),
            f.scenarios.to_string(),
            f.calls.to_string(),
            f.datagrams.to_string(),
            f.datagram_bytes.to_string(),
            f.log_lines.to_string(),
            f.divergences.to_string(),
            format!("{:.1}s", f.seconds),
        ]);
    }
    let sum = |g: fn(&FamilyReport) -> u64| r.families.iter().map(g).sum::<u64>();
    t.row(vec![
        "total".into(),
        sum(|f| f.scenarios as u64).to_string(),
        sum(|f| f.calls).to_string(),
        sum(|f| f.datagrams).to_string(),
        sum(|f| f.datagram_bytes).to_string(),
        sum(|f| f.log_lines).to_string(),
        sum(|f| f.divergences as u64).to_string(),
        String::new(),
    ]);
    s.push_str(&t.render());
    for f in &r.families {
        if !f.missing_coverage.is_empty() {
            s.push_str(&format!(
                "\nnote: {} scenarios never reached {:?} (the library may refuse what the reference accepts)\n",
                f.family, f.missing_coverage
            ));
        }
    }
    for f in &r.families {
        if let Some(d) = &f.first_divergence {
            s.push_str(&format!(
                "\n== first divergence in {} (diverging seeds: {:?})\n{}\n",
                f.family, f.diverged_seeds, d.text
            ));
        }
    }
    if let Some(l) = &r.layout {
        s.push_str(&format!(
            "\nlayout of {}: {} sizes and offsets compared, {} differ\n",
            l.header,
            l.lines,
            l.differences.len()
        ));
        for (a, b) in &l.differences {
            s.push_str(&format!("    reference: {a}\n    candidate: {b}\n"));
        }
    }
    s.push_str(&format!(
        "\nresult: {}\n",
        if r.conformant {
            "CONFORMANT (no divergence)".to_string()
        } else {
            "DIVERGES from the reference".to_string()
        }
    ));
    s
}
