//! The lockstep differential for the 2.x flavour: the scenario families of
//! `tests/lockstep.rs` (the same generator) run on upstream 2.1.1 and on
//! our library built with `abi2`, with the 2.x overlay: most scenarios
//! install the C controller of `c/cc_controller.c` (every hook, or some
//! NULL), which logs each hook with its arguments and the fields it sees,
//! steers cwnd/ssthresh/incr, sets pacing budgets (none, fixed, bursts, 0),
//! re-enters the API, and is replaced, restored to NULL or refused by its
//! `init` mid-transfer; some scenarios also set `nocwnd = 1`. After every
//! call: return values, datagrams, writelog lines, controller log lines and
//! all public fields must be identical.
//!
//! Without upstream 2.1.1's sources every test prints one line and passes
//! (`IKCP_REQUIRE_2X=1` makes that a failure).
//!
//! Environment:
//! - `IKCP_DIFF2_SCENARIOS=N` runs N scenarios in total (default 2400);
//! - `IKCP_DIFF2_FIRST=S` starts at seed S;
//! - `IKCP_DIFF2_SEED=S` replays exactly scenario S (and prints its trace);
//! - `IKCP_OURS_LIB2=path` compares another 2.x build instead of ours.

use std::collections::BTreeMap;

use ffi_tests::api::Api;
use ffi_tests::lockstep::{self, Wiring};
use ffi_tests::lockstep_env::{self, say, LockstepEnv};
use ffi_tests::scenarios::{self, CcProfile, Family, RunOptions};
use ffi_tests::v2;

const ENV: LockstepEnv = LockstepEnv {
    seed_var: "IKCP_DIFF2_SEED",
    scenarios_var: "IKCP_DIFF2_SCENARIOS",
    first_var: "IKCP_DIFF2_FIRST",
    default_scenarios: 2400,
    test: "lockstep_v2",
    label: "2.x ",
};

/// Both 2.x implementations, or None (skipped) without the 2.1.1 sources.
fn apis() -> Option<(Api, Api)> {
    let oracle = v2::oracle()?;
    Some((oracle, v2::ours()))
}

/// What the 2.x overlay must reach in a default-sized run of a family.
const CC_COVERAGE: &[&str] = &[
    "setcc installed",
    "setcc NULL",
    "setcc init failed",
    "init",
    "release",
    "on_ack",
    "on_tick",
    "on_app_limited",
    "on_rtt",
    "on_pkt_sent",
    "on_pkt_acked",
    "pacing_rate",
    "reentry query",
];

fn run_family(family: Family) {
    let Some((oracle, ours)) = apis() else { return };
    let seeds = ENV.seeds(family);
    if seeds.is_empty() {
        return;
    }
    let replaying = ENV.replaying(&seeds);
    let mut profiles: BTreeMap<u64, CcProfile> = BTreeMap::new();
    let run = scenarios::run_family(
        family,
        &seeds,
        oracle,
        ours,
        RunOptions::default(),
        &mut |seed, sc| {
            profiles.insert(seed, sc.cc_profile);
            if replaying {
                say(&format!(
                    "seed {seed} ({family:?}, {}) trace:{}",
                    sc.cc_profile.name(),
                    lockstep::listing(&sc.ls.trace, 0)
                ));
            }
        },
    );
    let totals = run.counters;
    let per_profile: Vec<String> = [CcProfile::None, CcProfile::Full, CcProfile::Sparse]
        .iter()
        .map(|p| {
            let n = profiles.values().filter(|q| *q == p).count();
            let bad = run
                .diverged
                .iter()
                .filter(|s| profiles.get(s) == Some(p))
                .count();
            format!("{}: {n} scenarios, {bad} diverged", p.name())
        })
        .collect();
    say(&format!(
        "lockstep 2.x {family:?}: {} scenarios ({}), {} calls, {} datagrams ({} bytes), {} log lines and {} controller lines compared, {} diverged, {:.1}s",
        run.scenarios,
        per_profile.join("; "),
        totals.calls,
        totals.datagrams,
        totals.datagram_bytes,
        totals.log_lines,
        totals.cc_lines,
        run.diverged.len(),
        run.elapsed.as_secs_f64()
    ));
    say(&format!(
        "lockstep 2.x {family:?} coverage: {:?}",
        run.coverage
    ));
    ENV.judge(&run, &seeds, CC_COVERAGE);
}

#[test]
fn lockstep_v2_traffic() {
    run_family(Family::Traffic);
}

#[test]
fn lockstep_v2_lossy_links() {
    run_family(Family::Lossy);
}

#[test]
fn lockstep_v2_settings_churn() {
    run_family(Family::Churn);
}

#[test]
fn lockstep_v2_hostile_input() {
    run_family(Family::Hostile);
}

#[test]
fn lockstep_v2_edges() {
    run_family(Family::Edges);
}

#[test]
fn lockstep_v2_protocol_state_pokes() {
    run_family(Family::Poke);
}

/// Output callbacks that feed `ikcp_input` themselves, on 2.x.
#[test]
fn lockstep_v2_reentrant_output() {
    let Some((oracle, ours)) = apis() else { return };
    for (wiring, seeds) in [(Wiring::SelfLoop, 0..40), (Wiring::Crossed, 1000..1040)] {
        let what = format!("2.x {wiring:?} reentrancy scenario");
        let t = lockstep_env::reentrant_traffic(oracle, ours, wiring, seeds, &what);
        say(&format!(
            "lockstep 2.x {wiring:?}: 40 scenarios, {} calls, {} datagrams compared",
            t.calls, t.datagrams
        ));
        assert!(t.datagrams > 100, "{wiring:?} traffic barely ran: {t:?}");
    }
}
