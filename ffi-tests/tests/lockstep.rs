//! Lockstep differential test: every generated scenario runs the same calls on
//! our library and on upstream's `ikcp.c`, and after every single call the
//! return value, the datagrams handed to `output`, the lines handed to
//! `writelog`, the public fields of both endpoints and the bytes `ikcp_recv`
//! wrote must be identical.
//!
//! The scenario families themselves live in `ffi_tests::scenarios` (shared
//! with the `kcp-conformance abi` tool); this file runs each family as one
//! `#[test]`, so they run in parallel.
//!
//! Environment:
//! - `IKCP_DIFF_SCENARIOS=N` runs N scenarios in total (default 10000);
//! - `IKCP_DIFF_FIRST=S` starts at seed S instead of 0 (to explore new seeds);
//! - `IKCP_DIFF_SEED=S` replays exactly scenario S (and prints its trace);
//! - `IKCP_OURS_LIB=path` compares another build instead of our libkcp.so.

use std::ffi::{c_int, c_void};

use ffi_tests::api::{self, Api};
use ffi_tests::kcp::{Field, Kcp};
use ffi_tests::lockstep::{self, Counters, Wiring};
use ffi_tests::lockstep_env::{self, say, LockstepEnv};
use ffi_tests::scenarios::{self, Family, RunOptions};

// ---------------------------------------------------------------------------
// Running seeds, reporting
// ---------------------------------------------------------------------------

const ENV: LockstepEnv = LockstepEnv {
    seed_var: "IKCP_DIFF_SEED",
    scenarios_var: "IKCP_DIFF_SCENARIOS",
    first_var: "IKCP_DIFF_FIRST",
    default_scenarios: 10_000,
    test: "lockstep",
    label: "",
};

fn run_family(family: Family) {
    let seeds = ENV.seeds(family);
    if seeds.is_empty() {
        return;
    }
    let replaying = ENV.replaying(&seeds);
    let [reference, ours] = Api::both();
    let run = scenarios::run_family(
        family,
        &seeds,
        reference,
        ours,
        RunOptions::default(),
        &mut |seed, sc| {
            if replaying {
                say(&format!(
                    "seed {seed} ({family:?}) trace:{}",
                    lockstep::listing(&sc.ls.trace, 0)
                ));
            }
        },
    );
    let totals = run.counters;
    say(&format!(
        "lockstep {family:?}: {} scenarios, {} calls, {} datagrams ({} bytes) and {} log lines compared, {} diverged, {:.1}s",
        run.scenarios,
        totals.calls,
        totals.datagrams,
        totals.datagram_bytes,
        totals.log_lines,
        run.diverged.len(),
        run.elapsed.as_secs_f64()
    ));
    say(&format!("lockstep {family:?} coverage: {:?}", run.coverage));
    ENV.judge(&run, &seeds, &[]);
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

fn reentrant_traffic(wiring: Wiring, seeds: std::ops::Range<u64>) -> Counters {
    let [reference, ours] = Api::both();
    lockstep_env::reentrant_traffic(
        reference,
        ours,
        wiring,
        seeds,
        &format!("{wiring:?} reentrancy scenario; its seeds are fixed in the test"),
    )
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
