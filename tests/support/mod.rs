//! Shared by the async tests: `RUST_LOG` support, and (`interop`) our side
//! of the interop tests.
#![allow(dead_code)]

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
