//! KCP — a fast, reliable ARQ protocol over datagrams — in Rust.
//!
//! Three layers over one engine:
//! * [`engine`]: the sans-IO protocol state machine, safe Rust, time and I/O
//!   passed in by the caller. [`Kcp`] is its entry point.
//! * the C ABI (feature `capi`): the exact `ikcp.c` API and `struct IKCPCB`,
//!   a drop-in replacement for the C library (see `include/ikcp.h`).
//! * [`runtime`] (feature `tokio`): `KcpStream` / `KcpListener` over tokio.

pub mod engine;

#[cfg(feature = "capi")]
pub mod ffi;

#[cfg(feature = "tokio")]
pub mod runtime;

pub use engine::Kcp;

// Compiles the README's Rust snippets as doctests, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}

// The guides in doc/ are compiled (and run) the same way.
#[cfg(doctest)]
#[doc = include_str!("../doc/USAGE.md")]
mod usage_doctests {}

#[cfg(doctest)]
#[doc = include_str!("../doc/ARCHITECTURE.md")]
mod architecture_doctests {}

#[cfg(doctest)]
#[doc = include_str!("../doc/MODULES.md")]
mod modules_doctests {}

#[cfg(doctest)]
#[doc = include_str!("../doc/TESTING.md")]
mod testing_doctests {}

#[cfg(feature = "tokio")]
pub use runtime::{KcpConfig, KcpError, KcpListener, KcpStream, Result};

/// The async layer under the path kcp-tokio users know
/// (`kcp::async_kcp::{KcpStream, KcpListener}`): the same module as
/// [`runtime`], so the types are identical.
#[cfg(feature = "tokio")]
pub use runtime as async_kcp;
