//! The C ABI differential fuzz target: a fuzzer's input decides a lockstep
//! scenario (two endpoints, a simulated lossy link, a virtual clock, forged
//! datagrams, settings and direct field writes) that runs on upstream's
//! `ikcp.c` and on our `libkcp.so` in one process. After every call the
//! return value, the bytes `ikcp_recv` wrote, every datagram handed to
//! `output`, every `writelog` line and every public `IKCPCB` field of both
//! endpoints must be identical; any difference panics with the diverging
//! call, the calls before it and a shrunk trace.
//!
//! The scenario generator and the lockstep harness are the ones of the
//! `ffi-tests` differential tests ([`ffi_tests::scenarios::Scenario::from_tape`]):
//! the input's first byte picks the scenario family, every later decision
//! takes the next two bytes of the input, and the scenario's main phase
//! lasts as long as the input.
//!
//! # Upstream's undefined cases, excluded
//!
//! The generator never makes calls on which upstream's C has undefined
//! behaviour (no answer to compare against), and so neither does this target:
//! - `ikcp_send(kcp, NULL, len)` with `len > 0` (upstream copies from NULL);
//!   a length larger than the buffer is only passed where upstream reads no
//!   further than the data;
//! - `ikcp_input` with a size larger than the buffer it reads;
//! - `ikcp_setmtu` shrinking the MTU so that `3 * (mtu + 24)` is smaller
//!   than a segment queued at a larger MSS needs (upstream's flush buffer
//!   overflows); such a value is raised to the smallest safe one;
//! - RTT samples near 2^31 ms (upstream's signed `int` RTT arithmetic
//!   overflows): timestamps of forged ACK and PUSH segments are defused,
//!   clock jumps are limited to 3 per scenario, and direct writes of
//!   `rx_srtt`, `rx_rttval` and `current` stay small. Clock jumps can
//!   still make `3 * rx_rttval` or `7 * rx_srtt` overflow: `scripts/fuzz.sh`
//!   builds the reference with `-fwrapv`, the two's-complement meaning that
//!   gcc's build of it (used by the tests) has and that ours implements
//!   (without it, clang's optimiser gave such a state another answer);
//! - `ikcp_log` formats with conversions (variadic arguments), which have
//!   their own test in ffi-tests.
//!
//! Reentrant output callbacks (feeding `ikcp_input` from inside `output`)
//! are not generated here; the `ffi-tests` lockstep tests run them.
#![forbid(unsafe_code)]

use std::time::Duration;

use ffi_tests::api::Api;
use ffi_tests::scenarios::{FirstDivergence, Scenario};

/// Time a finding may spend shrinking its trace for the report.
const SHRINK_BUDGET: Duration = Duration::from_secs(10);

/// Runs the scenario `data` decides; panics on the first divergence.
pub fn run(data: &[u8]) {
    let [reference, ours] = [Api::reference(), Api::ours()];
    let mut sc = Scenario::from_tape(data, reference, ours);
    if let Err(d) = sc.run() {
        let first = FirstDivergence::capture(0, &sc.ls, &d, SHRINK_BUDGET);
        panic!(
            "{}",
            first.render("replay: FUZZ_REPLAY=<input> cargo test --release -p ikcp-fuzz-capi --test replay replay_one")
        );
    }
}

/// Calls made by the scenario `data` decides (for statistics and tests).
pub fn calls(data: &[u8]) -> u64 {
    let mut sc = Scenario::from_tape(data, Api::reference(), Api::ours());
    let _ = sc.run();
    sc.ls.counters.calls
}
