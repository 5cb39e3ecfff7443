//! KCP — a fast, reliable ARQ protocol over datagrams — in Rust.
//!
//! Three layers over one engine:
//! * [`engine`]: the sans-IO protocol state machine, safe Rust, time and I/O
//!   passed in by the caller.
//! * `ffi` (feature `capi`): the exact `ikcp.c` C ABI, a drop-in replacement.
//! * `runtime` (feature `tokio`): `KcpStream` / `KcpListener` over tokio.

pub mod engine;

mod ffi;

pub use engine::Kcp;
