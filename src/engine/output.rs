//! How datagrams and log lines leave the engine.

use super::kcp::Kcp;
use super::payload::Payload;

/// Log categories, the reference's `IKCP_LOG_*` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMask(pub i32);

impl LogMask {
    /// A datagram handed to the output.
    pub const OUTPUT: LogMask = LogMask(1);
    /// A datagram handed to `input`.
    pub const INPUT: LogMask = LogMask(2);
    /// Reserved by the reference; never emitted.
    pub const SEND: LogMask = LogMask(4);
    /// A segment consumed by `recv`.
    pub const RECV: LogMask = LogMask(8);
    /// A data segment received.
    pub const IN_DATA: LogMask = LogMask(16);
    /// An acknowledgement received.
    pub const IN_ACK: LogMask = LogMask(32);
    /// A window question received.
    pub const IN_PROBE: LogMask = LogMask(64);
    /// A window answer received.
    pub const IN_WINS: LogMask = LogMask(128);
    /// Reserved by the reference; never emitted.
    pub const OUT_DATA: LogMask = LogMask(256);
    /// Reserved by the reference; never emitted.
    pub const OUT_ACK: LogMask = LogMask(512);
    /// Reserved by the reference; never emitted.
    pub const OUT_PROBE: LogMask = LogMask(1024);
    /// Reserved by the reference; never emitted.
    pub const OUT_WINS: LogMask = LogMask(2048);
}

/// Where [`Kcp::flush`] and [`Kcp::update`] put datagrams.
///
/// Any `FnMut(&[u8])` closure is an `Output`. Implement the trait yourself to
/// also receive the engine's log lines (for the categories enabled with
/// [`Kcp::set_log_mask`]).
pub trait Output {
    /// Sends one datagram (at most `mtu` bytes, unless the MTU was lowered
    /// while larger segments were in flight).
    fn output(&mut self, datagram: &[u8]);

    /// Whether [`Output::log`] wants lines at all.
    fn wants_log(&self) -> bool {
        false
    }

    /// One log line, worded as the reference words it.
    fn log(&mut self, _mask: LogMask, _line: &str) {}
}

impl<F: FnMut(&[u8])> Output for F {
    #[inline]
    fn output(&mut self, datagram: &[u8]) {
        self(datagram)
    }
}

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
    /// their callback. Until this returns the engine keeps that buffer
    /// allocated and unchanged (see [`Kcp::lent_datagram`]), whatever the
    /// callback does to the engine. This default copies it out first.
    fn transmit_lent(&mut self, kcp: &mut Kcp<P>, sn: u32) {
        if let Some(bytes) = kcp.lent_datagram(sn).map(<[u8]>::to_vec) {
            self.transmit(kcp, &bytes);
        }
    }

    fn wants_log(&self) -> bool;
    fn log(&mut self, kcp: &mut Kcp<P>, mask: LogMask, line: &str);
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
    fn wants_log(&self) -> bool {
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
    fn wants_log(&self) -> bool {
        false
    }
    fn log(&mut self, _kcp: &mut Kcp<P>, _mask: LogMask, _line: &str) {}
}
