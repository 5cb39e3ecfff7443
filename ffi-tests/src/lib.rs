//! Shared plumbing for the differential and C-level tests.
//!
//! Our library is loaded with `dlopen` from the cargo target directory; the
//! reference `ikcp.c` is linked statically through `kcp-io`. [`api::Api`]
//! puts both behind the same table of function pointers.

pub mod api;
pub mod cc;
pub mod kcp;
pub mod link;
pub mod lockstep;
pub mod lockstep_env;
pub mod paths;
pub mod rng;
pub mod scenarios;
pub mod v2;
pub mod wire;
