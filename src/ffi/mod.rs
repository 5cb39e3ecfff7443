//! The C ABI: upstream `ikcp.h`, function for function and field for field.
//!
//! All `unsafe` code of the crate lives in this module tree.
//!
//! A `kcp` pointer handed to C points at the first field of a [`Control`]
//! block: the `struct IKCPCB` the program reads and writes, followed by the
//! engine. Public fields are copied into the engine when a call starts and
//! back out when it ends, and around every callback, so a program sees them
//! live both ways (see [`control`] for which fields are engine-owned).

mod alloc;
mod api;
mod control;
mod types;

pub use api::*;
pub use types::*;
