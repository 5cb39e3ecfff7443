//! How datagrams and log lines leave the engine.

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

/// Where [`Kcp::flush`](super::Kcp::flush) and [`Kcp::update`](super::Kcp::update)
/// put datagrams.
///
/// Any `FnMut(&[u8])` closure is an `Output`. Implement the trait yourself to
/// also receive the engine's log lines (for the categories enabled with
/// [`Kcp::set_log_mask`](super::Kcp::set_log_mask)).
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
