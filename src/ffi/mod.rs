//! The C ABI: upstream `ikcp.h`, function for function and field for field.
//!
//! All `unsafe` code of the crate lives in this module tree.
//!
//! A `kcp` pointer handed to C points at the engine itself: its first
//! fields are upstream's `IKCPCB` scalars in upstream's order and the rest
//! of `IKCPCB` follows (see `control.rs`), so the fields a program reads and
//! writes are the engine's own state; only the segment counts are stored
//! there before each callback and when each call returns.

mod alloc;
mod api;
mod control;
mod types;

pub use api::*;
pub use types::*;
