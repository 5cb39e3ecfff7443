//! The settings and counters the reference keeps after its scalar block.
//!
//! [`Kcp`](super::Kcp) starts with the reference's public scalars in the
//! reference's order (`#[repr(C)]`), so a host may show the engine's state
//! in place instead of copying it out and back on every call. What follows
//! those scalars in the reference is interleaved with things the engine
//! knows nothing about (list heads, pointers, callbacks), so the engine
//! reaches its own fields there through this trait and the host decides
//! where they sit: the C ABI lays them out as `IKCPCB` does, Rust users get
//! [`PlainTail`].

use super::constants::FASTACK_LIMIT;

/// Access to the engine's fields that a host may lay out itself.
pub trait TailFields {
    /// The values of a new endpoint.
    fn new_tail() -> Self;
    /// Duplicate ACKs that trigger a fast retransmit (0 = off).
    fn fastresend(&self) -> i32;
    fn set_fastresend(&mut self, v: i32);
    /// Cap on fast retransmissions per segment (0 or less = unlimited).
    fn fastlimit(&self) -> i32;
    fn set_fastlimit(&mut self, v: i32);
    /// Non-zero: no congestion window.
    fn nocwnd(&self) -> i32;
    fn set_nocwnd(&mut self, v: i32);
    /// Non-zero: stream mode.
    fn stream(&self) -> i32;
    fn set_stream(&mut self, v: i32);
    /// Log categories wanted.
    fn logmask(&self) -> i32;
    fn set_logmask(&mut self, v: i32);
    /// Capacity the reference's ACK array would have.
    fn ackblock(&self) -> u32;
    fn set_ackblock(&mut self, v: u32);
    /// ACKs waiting for the next flush, as last shown to the host.
    fn set_ackcount(&mut self, v: u32);
    /// Payload bytes acknowledged by the input in progress (or the last).
    fn ackedlen(&self) -> u32;
    fn set_ackedlen(&mut self, v: u32);
}

/// Implements [`TailFields`] for a struct that has fields of those names
/// (`fastresend`, `fastlimit`, `nocwnd`, `stream`, `logmask`: `i32`;
/// `ackblock`, `ackcount`, `ackedlen`: `u32`), given how to make a new one.
macro_rules! tail_fields_by_name {
    ($tail:ty, $new:expr) => {
        impl $crate::engine::TailFields for $tail {
            fn new_tail() -> Self {
                $new
            }
            #[inline(always)]
            fn fastresend(&self) -> i32 {
                self.fastresend
            }
            #[inline(always)]
            fn set_fastresend(&mut self, v: i32) {
                self.fastresend = v
            }
            #[inline(always)]
            fn fastlimit(&self) -> i32 {
                self.fastlimit
            }
            #[inline(always)]
            fn set_fastlimit(&mut self, v: i32) {
                self.fastlimit = v
            }
            #[inline(always)]
            fn nocwnd(&self) -> i32 {
                self.nocwnd
            }
            #[inline(always)]
            fn set_nocwnd(&mut self, v: i32) {
                self.nocwnd = v
            }
            #[inline(always)]
            fn stream(&self) -> i32 {
                self.stream
            }
            #[inline(always)]
            fn set_stream(&mut self, v: i32) {
                self.stream = v
            }
            #[inline(always)]
            fn logmask(&self) -> i32 {
                self.logmask
            }
            #[inline(always)]
            fn set_logmask(&mut self, v: i32) {
                self.logmask = v
            }
            #[inline(always)]
            fn ackblock(&self) -> u32 {
                self.ackblock
            }
            #[inline(always)]
            fn set_ackblock(&mut self, v: u32) {
                self.ackblock = v
            }
            #[inline(always)]
            fn set_ackcount(&mut self, v: u32) {
                self.ackcount = v
            }
            #[inline(always)]
            fn ackedlen(&self) -> u32 {
                self.ackedlen
            }
            #[inline(always)]
            fn set_ackedlen(&mut self, v: u32) {
                self.ackedlen = v
            }
        }
    };
}
#[cfg_attr(not(feature = "capi"), allow(unused_imports))]
pub(crate) use tail_fields_by_name;

/// The tail of an engine no host looks into.
#[derive(Debug, Clone)]
pub struct PlainTail {
    fastresend: i32,
    fastlimit: i32,
    nocwnd: i32,
    stream: i32,
    logmask: i32,
    ackblock: u32,
    ackcount: u32,
    ackedlen: u32,
}

tail_fields_by_name!(
    PlainTail,
    PlainTail {
        fastresend: 0,
        fastlimit: FASTACK_LIMIT,
        nocwnd: 0,
        stream: 0,
        logmask: 0,
        ackblock: 0,
        ackcount: 0,
        ackedlen: 0,
    }
);
