//! Shared by the async tests: `RUST_LOG` support, seeded payloads, a
//! transport wrapper that watches or loses sends (`hooked`), and
//! (`interop`) our side of the interop tests.
#![allow(dead_code)]

pub mod hooked;
pub mod interop;

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` subscriber filtered by `RUST_LOG` (nothing below
/// `error` without it), writing through the test harness's capture: so
/// `RUST_LOG=debug cargo test -- --nocapture` shows the connections' log
/// lines, and a failing test shows its own. Safe to call from every test.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// `len` pseudo-random bytes (xorshift), the same for the same `seed`.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
