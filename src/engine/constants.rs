//! Protocol constants, with the values the reference uses.

/// Minimum RTO in no-delay mode (ms).
pub const RTO_NODELAY_MIN: i32 = 30;
/// Minimum RTO in normal mode (ms).
pub const RTO_MIN: i32 = 100;
/// Initial RTO before any RTT sample (ms).
pub const RTO_DEFAULT: i32 = 200;
/// Upper bound of the RTO (ms).
pub const RTO_MAX: u32 = 60_000;
/// Default send window (segments).
pub const WND_SND_DEFAULT: u32 = 32;
/// Default receive window (segments); also the smallest allowed, since a
/// message of up to `WND_RCV_DEFAULT - 1` fragments must fit in it.
pub const WND_RCV_DEFAULT: u32 = 128;
/// Default MTU (bytes per datagram).
pub const MTU_DEFAULT: u32 = 1400;
/// Smallest MTU `set_mtu` accepts.
pub const MTU_MIN: i32 = 50;
/// Default update interval (ms).
pub const INTERVAL_DEFAULT: u32 = 100;
/// Bounds `set_interval` clamps to (ms).
pub const INTERVAL_MIN: i32 = 10;
/// Bounds `set_interval` clamps to (ms).
pub const INTERVAL_MAX: i32 = 5000;
/// Transmissions of one segment after which the link is declared dead.
pub const DEAD_LINK_DEFAULT: u32 = 20;
/// Initial and minimum slow-start threshold (segments).
pub const THRESH_INIT: u32 = 2;
/// Floor of the slow-start threshold after a loss (segments).
pub const THRESH_MIN: u32 = 2;
/// First window-probe delay when the peer's window is zero (ms).
pub const PROBE_INIT: u32 = 7_000;
/// [`PROBE_INIT`] of upstream 2.x (ms).
pub const PROBE_INIT_V2: u32 = 5_000;
/// Cap of the window-probe back-off (ms).
pub const PROBE_LIMIT: u32 = 120_000;
/// Default cap on fast retransmissions of one segment.
pub const FASTACK_LIMIT: i32 = 5;
/// Largest message in fragments is `MAX_FRAGMENTS - 1`.
pub const MAX_FRAGMENTS: u32 = 128;

/// `probe` flag: send a window-size question (WASK).
pub(crate) const ASK_SEND: u32 = 1;
/// `probe` flag: tell the peer our window size (WINS).
pub(crate) const ASK_TELL: u32 = 2;

/// Signed distance between two wrapping millisecond stamps or sequence numbers.
#[inline]
pub(crate) fn diff(later: u32, earlier: u32) -> i32 {
    later.wrapping_sub(earlier) as i32
}
