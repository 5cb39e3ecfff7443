//! Shared plumbing for the differential and C-level tests.
//!
//! Our library is loaded with `dlopen` from the cargo target directory; the
//! reference `ikcp.c` is linked statically through `kcp-io`.

pub mod paths;
