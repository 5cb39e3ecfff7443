//! What the lockstep tests (`tests/lockstep.rs` for 1.x,
//! `tests/lockstep_v2.rs` for 2.x) share around [`scenarios::run_family`]:
//! the seeds their environment variables choose, the lines they print past
//! libtest's capture, and how a divergence fails the test (its minimal
//! trace and the command that replays it).

use std::io::Write;
use std::time::Duration;

use crate::api::Api;
use crate::lockstep::{Counters, Wiring};
use crate::scenarios::{self, Family, FamilyRun, FAMILIES};

/// Reads `name` as a number (decimal or `0x` hex); panics on anything else.
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// Writes past libtest's output capture, so summaries show in normal runs.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// One lockstep test binary: its environment variables and its name.
pub struct LockstepEnv {
    /// Replays exactly this scenario (and prints its trace), e.g. `IKCP_DIFF_SEED`.
    pub seed_var: &'static str,
    /// Scenarios in total over the families, e.g. `IKCP_DIFF_SCENARIOS`.
    pub scenarios_var: &'static str,
    /// The first seed, e.g. `IKCP_DIFF_FIRST`.
    pub first_var: &'static str,
    /// Scenarios in total without `scenarios_var`.
    pub default_scenarios: u64,
    /// The test target, for the replay command (`--test lockstep`).
    pub test: &'static str,
    /// Put before the family in failures ("2.x "), or "".
    pub label: &'static str,
}

impl LockstepEnv {
    /// The seeds of `family` in this run: the one of `seed_var` when it is
    /// set (none when that seed belongs to another family), else the
    /// family's share of `scenarios_var` from `first_var`.
    pub fn seeds(&self, family: Family) -> Vec<u64> {
        match env_u64(self.seed_var) {
            Some(s) if s % FAMILIES.len() as u64 == family.index() => vec![s],
            Some(_) => Vec::new(),
            None => {
                let total = env_u64(self.scenarios_var).unwrap_or(self.default_scenarios);
                let first = env_u64(self.first_var).unwrap_or(0);
                family.seeds(first, total)
            }
        }
    }

    /// Whether `seeds` is the one scenario `seed_var` asked to replay.
    pub fn replaying(&self, seeds: &[u64]) -> bool {
        seeds.len() == 1 && std::env::var_os(self.seed_var).is_some()
    }

    /// Fails the test on `run`'s first divergence (its minimal trace, the
    /// command that replays it and the diverging seeds), then, from 300
    /// seeds on, on expected outcomes no scenario reached (the family's own
    /// and `also_expected`).
    pub fn judge(&self, run: &FamilyRun, seeds: &[u64], also_expected: &[&'static str]) {
        let family = run.family;
        if let Some(first) = &run.first {
            let seed = first.seed;
            let detail = first.render(&format!(
                "replay: {}={seed} cargo test --release -p ffi-tests --test {}",
                self.seed_var, self.test
            ));
            panic!(
                "{detail}\n\ndiverging seeds in {family:?} (first 20 at most): {:?}",
                run.diverged
            );
        }
        if seeds.len() >= 300 {
            let mut missing = run.missing_coverage();
            missing.extend(
                also_expected
                    .iter()
                    .filter(|e| !run.coverage.contains_key(*e)),
            );
            assert!(
                missing.is_empty(),
                "{}{family:?} scenarios never reached: {missing:?}",
                self.label
            );
        }
    }
}

/// Runs [`scenarios::reentrant_traffic`] on `seeds` and fails the test on
/// its divergence, with `what` in the message (which scenario, how to
/// replay it); returns what was compared.
pub fn reentrant_traffic(
    reference: Api,
    ours: Api,
    wiring: Wiring,
    seeds: std::ops::Range<u64>,
    what: &str,
) -> Counters {
    match scenarios::reentrant_traffic(reference, ours, wiring, seeds, Duration::from_secs(20)) {
        Ok(totals) => totals,
        Err((_, first)) => panic!("{}", first.render(what)),
    }
}
