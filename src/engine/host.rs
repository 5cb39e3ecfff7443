//! The engine's view of its surroundings while it runs: where datagrams and
//! log lines go, and whether that code may call back into the engine.

use super::controller::{CcEvent, CcOutcome};
use super::kcp::Kcp;
use super::output::{LogMask, Output};
use super::payload::Payload;
use super::tail::TailFields;

/// The engine's view of its surroundings. Unlike [`Output`], a host receives
/// the engine itself on every call, so that it may call back into it (the C
/// ABI allows an output callback to call `ikcp_input` on the same object).
pub(crate) trait Host<P: Payload> {
    /// True when the host never calls back into the engine (neither from
    /// `transmit` nor from `log`), so the engine may hand it bytes that live
    /// inside itself through [`Host::transmit_detached`].
    const DETACHED: bool = false;

    fn transmit(&mut self, kcp: &mut Kcp<P>, datagram: &[u8]);

    /// Sends a datagram without lending the engine; only called when
    /// [`Host::DETACHED`] is true.
    fn transmit_detached(&mut self, _datagram: &[u8]) {}

    /// Sends in-flight segment `sn` as a datagram straight from its buffer
    /// (header in its header room), for hosts that must lend the engine to
    /// their callback. `datagram` is where those bytes are: until this
    /// returns the engine keeps that buffer allocated and unchanged (see
    /// [`Kcp::lent_datagram`]), whatever the callback does to the engine, so
    /// a host that hands the address to foreign code may read it there. This
    /// default copies it out first.
    fn transmit_lent(&mut self, kcp: &mut Kcp<P>, sn: u32, datagram: LentDatagram) {
        let _ = datagram;
        if let Some(bytes) = kcp.lent_datagram(sn).map(<[u8]>::to_vec) {
            self.transmit(kcp, &bytes);
        }
    }

    fn wants_log(&self, kcp: &Kcp<P>) -> bool;
    fn log(&mut self, kcp: &mut Kcp<P>, mask: LogMask, line: &str);

    /// Whether a congestion controller is installed (its hooks run, and
    /// the congestion window applies even with `nocwnd`). By default: a
    /// Rust controller in the engine.
    #[inline(always)]
    fn has_controller(&self, kcp: &Kcp<P>) -> bool {
        kcp.controller.0.is_some()
    }

    /// Runs hook `event` on the installed controller (only called when
    /// [`Host::has_controller`] is true). The controller may change the
    /// engine's congestion fields; a host that runs foreign code here may
    /// also let it re-enter the engine, as from `transmit`.
    fn congestion(&mut self, kcp: &mut Kcp<P>, event: CcEvent) -> CcOutcome {
        kcp.run_rust_controller(event)
    }
}

/// Where a lent datagram's bytes are (see [`Host::transmit_lent`]): an
/// address and a length, valid while the call it is passed to runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LentDatagram {
    // Read by the C ABI's host only.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub ptr: *const u8,
    pub len: usize,
}

/// Adapts an [`Output`] to a [`Host`] that never re-enters the engine.
pub(crate) struct OutputHost<'a, O: ?Sized>(pub &'a mut O);

impl<P: Payload, O: Output + ?Sized> Host<P> for OutputHost<'_, O> {
    // An `Output` has no way to reach the engine.
    const DETACHED: bool = true;

    #[inline]
    fn transmit(&mut self, _kcp: &mut Kcp<P>, datagram: &[u8]) {
        self.0.output(datagram)
    }
    #[inline]
    fn transmit_detached(&mut self, datagram: &[u8]) {
        self.0.output(datagram)
    }
    #[inline]
    fn wants_log(&self, _kcp: &Kcp<P>) -> bool {
        self.0.wants_log()
    }
    #[inline]
    fn log(&mut self, _kcp: &mut Kcp<P>, mask: LogMask, line: &str) {
        self.0.log(mask, line)
    }
}

/// A host for calls that produce no datagrams and whose logs nobody reads.
pub(crate) struct Silent;

impl<P: Payload> Host<P> for Silent {
    fn transmit(&mut self, _kcp: &mut Kcp<P>, _datagram: &[u8]) {}
    fn wants_log(&self, _kcp: &Kcp<P>) -> bool {
        false
    }
    fn log(&mut self, _kcp: &mut Kcp<P>, _mask: LogMask, _line: &str) {}
}

impl<P: Payload> Kcp<P> {
    #[inline(always)]
    pub(super) fn can_log<H: Host<P>>(&self, host: &H, mask: LogMask) -> bool {
        self.tail.logmask() & mask.0 != 0 && host.wants_log(self)
    }

    #[inline(always)]
    pub(super) fn log<H: Host<P>>(
        &mut self,
        host: &mut H,
        mask: LogMask,
        line: std::fmt::Arguments<'_>,
    ) {
        if self.can_log(host, mask) {
            let line = line.to_string();
            host.log(self, mask, &line);
        }
    }
}
