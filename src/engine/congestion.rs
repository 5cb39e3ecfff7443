//! Congestion control: the built-in window growth and collapse as the
//! reference computes them, and the seam through which another algorithm
//! replaces them ([`CongestionControl`], the hook points of upstream 2.x's
//! `struct IKCPOPS`).

/// What a [`CongestionControl`] hook sees of its connection, and the three
/// fields it steers. The engine takes `cwnd`, `ssthresh` and `incr` back
/// when the hook returns; the rest is a snapshot taken for the hook.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Congestion window (segments). With a controller installed it limits
    /// sending even when congestion control was turned off with `nocwnd`.
    pub cwnd: u32,
    /// Slow-start threshold (segments).
    pub ssthresh: u32,
    /// The built-in algorithm's byte count behind `cwnd` (`cwnd * mss` when
    /// the window was set directly).
    pub incr: u32,
    pub(crate) mss: u32,
    pub(crate) rmt_wnd: u32,
    pub(crate) snd_wnd: u32,
    pub(crate) snd_una: u32,
    pub(crate) snd_nxt: u32,
    pub(crate) in_flight: u32,
    pub(crate) queued: u32,
    pub(crate) now: u32,
    pub(crate) srtt: i32,
    pub(crate) rto: i32,
    pub(crate) fastresend: i32,
}

impl Window {
    /// Payload bytes per segment.
    pub fn mss(&self) -> u32 {
        self.mss
    }
    /// The peer's advertised receive window (segments).
    pub fn remote_window(&self) -> u32 {
        self.rmt_wnd
    }
    /// Our send window (segments).
    pub fn send_window(&self) -> u32 {
        self.snd_wnd
    }
    /// Oldest unacknowledged sequence number.
    pub fn snd_una(&self) -> u32 {
        self.snd_una
    }
    /// Next sequence number to send.
    pub fn snd_nxt(&self) -> u32 {
        self.snd_nxt
    }
    /// Segments in flight, unacknowledged.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }
    /// Segments queued, not yet sent.
    pub fn queued(&self) -> u32 {
        self.queued
    }
    /// The engine's clock (ms) at its last `update`.
    pub fn now(&self) -> u32 {
        self.now
    }
    /// Smoothed RTT (ms).
    pub fn srtt(&self) -> i32 {
        self.srtt
    }
    /// Current retransmission timeout (ms).
    pub fn rto(&self) -> i32 {
        self.rto
    }

    fn state(&self) -> CongestionState {
        CongestionState {
            cwnd: self.cwnd,
            incr: self.incr,
            ssthresh: self.ssthresh,
        }
    }

    fn set_state(&mut self, c: CongestionState) {
        self.cwnd = c.cwnd;
        self.incr = c.incr;
        self.ssthresh = c.ssthresh;
    }
}

/// A congestion controller: the hook points of upstream 2.x's `IKCPOPS`,
/// called at the same moments with the same arguments.
///
/// Every method has a default: the three window updates (`on_ack`,
/// `on_fast_retransmit`, `on_timeout`) default to the built-in algorithm,
/// the others do nothing, and `pacing_budget` sets no limit. So
/// [`BuiltIn`], which overrides nothing, behaves like an engine of
/// [`Flavour::V2`](super::Flavour::V2) without a controller, and a
/// controller overrides only what it changes. Installed on a
/// [`Flavour::V1`](super::Flavour::V1) engine, a controller still follows
/// 2.x's rules, which are the ones that define its hooks: the window
/// applies even with `nocwnd`, and the default `on_timeout` halves the
/// window at the start of the flush (1.x halves the effective window).
///
/// Install one with [`Kcp::set_congestion_control`](super::Kcp::set_congestion_control).
pub trait CongestionControl: Send {
    /// At the end of an input that moved `snd_una`: by `acked_segs`
    /// segments, acknowledging `acked_bytes` payload bytes, with
    /// `prior_in_flight` segments in flight before the input.
    fn on_ack(&mut self, w: &mut Window, acked_segs: u32, acked_bytes: u32, prior_in_flight: u32) {
        let _ = (acked_segs, acked_bytes, prior_in_flight);
        let mut c = w.state();
        c.on_progress(w.mss, w.rmt_wnd);
        w.set_state(c);
    }

    /// At the end of a flush that fast-retransmitted `count` segments, with
    /// `in_flight` segments in flight and `prior_cwnd` the window when the
    /// flush began.
    fn on_fast_retransmit(&mut self, w: &mut Window, count: u32, in_flight: u32, prior_cwnd: u32) {
        let _ = (count, in_flight, prior_cwnd);
        let resent = if w.fastresend > 0 {
            w.fastresend as u32
        } else {
            u32::MAX
        };
        let mut c = w.state();
        c.on_fast_retransmit(w.snd_nxt.wrapping_sub(w.snd_una), resent, w.mss);
        w.set_state(c);
    }

    /// At the end of a flush that retransmitted on timeout; `prior_cwnd` is
    /// the window when the flush began.
    fn on_timeout(&mut self, w: &mut Window, prior_cwnd: u32) {
        let mut c = w.state();
        c.on_timeout(prior_cwnd, w.mss);
        w.set_state(c);
    }

    /// When a flush begins.
    fn on_tick(&mut self, w: &mut Window) {
        let _ = w;
    }

    /// During a flush with nothing queued, when fewer segments than the
    /// window allows (`in_flight`) are in flight.
    fn on_app_limited(&mut self, w: &mut Window, in_flight: u32) {
        let _ = (w, in_flight);
    }

    /// After each RTT sample (ms) updated the RTO.
    fn on_rtt(&mut self, w: &mut Window, rtt: i32) {
        let _ = (w, rtt);
    }

    /// Before segment `sn` (`len` payload bytes, transmission number `xmit`,
    /// stamped `ts`) goes into a datagram, with `in_flight` segments in flight.
    fn on_pkt_sent(
        &mut self,
        w: &mut Window,
        sn: u32,
        ts: u32,
        len: u32,
        in_flight: u32,
        xmit: u32,
    ) {
        let _ = (w, sn, ts, len, in_flight, xmit);
    }

    /// When segment `sn` leaves the send buffer acknowledged, by its own ACK
    /// (`rtt` its age in ms, -1 if its stamp is in the future) or by a
    /// cumulative one (`rtt` -1).
    fn on_pkt_acked(&mut self, w: &mut Window, sn: u32, ts: u32, len: u32, rtt: i32, xmit: u32) {
        let _ = (w, sn, ts, len, rtt, xmit);
    }

    /// When a flush begins, after `on_tick`: the payload bytes the flush may
    /// send, or `None` for no limit. A segment larger than what is left ends
    /// the flush's sending (it goes out in a later flush).
    fn pacing_budget(&mut self, w: &mut Window) -> Option<u32> {
        let _ = w;
        None
    }
}

/// A boxed controller is a controller (e.g. one made per connection).
impl<C: CongestionControl + ?Sized> CongestionControl for Box<C> {
    fn on_ack(&mut self, w: &mut Window, acked_segs: u32, acked_bytes: u32, prior_in_flight: u32) {
        (**self).on_ack(w, acked_segs, acked_bytes, prior_in_flight)
    }
    fn on_fast_retransmit(&mut self, w: &mut Window, count: u32, in_flight: u32, prior_cwnd: u32) {
        (**self).on_fast_retransmit(w, count, in_flight, prior_cwnd)
    }
    fn on_timeout(&mut self, w: &mut Window, prior_cwnd: u32) {
        (**self).on_timeout(w, prior_cwnd)
    }
    fn on_tick(&mut self, w: &mut Window) {
        (**self).on_tick(w)
    }
    fn on_app_limited(&mut self, w: &mut Window, in_flight: u32) {
        (**self).on_app_limited(w, in_flight)
    }
    fn on_rtt(&mut self, w: &mut Window, rtt: i32) {
        (**self).on_rtt(w, rtt)
    }
    fn on_pkt_sent(
        &mut self,
        w: &mut Window,
        sn: u32,
        ts: u32,
        len: u32,
        in_flight: u32,
        xmit: u32,
    ) {
        (**self).on_pkt_sent(w, sn, ts, len, in_flight, xmit)
    }
    fn on_pkt_acked(&mut self, w: &mut Window, sn: u32, ts: u32, len: u32, rtt: i32, xmit: u32) {
        (**self).on_pkt_acked(w, sn, ts, len, rtt, xmit)
    }
    fn pacing_budget(&mut self, w: &mut Window) -> Option<u32> {
        (**self).pacing_budget(w)
    }
}

/// The built-in algorithm as a controller: every hook keeps its default.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltIn;

impl CongestionControl for BuiltIn {}

/// The congestion fields of an engine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CongestionState {
    pub cwnd: u32,
    pub incr: u32,
    pub ssthresh: u32,
}

impl CongestionState {
    /// Called after an input advanced `snd_una`: slow start below `ssthresh`,
    /// then additive increase, never beyond the peer's window.
    #[inline]
    pub fn on_progress(&mut self, mss: u32, rmt_wnd: u32) {
        if self.cwnd >= rmt_wnd {
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd = self.cwnd.wrapping_add(1);
            self.incr = self.incr.wrapping_add(mss);
        } else {
            if self.incr < mss {
                self.incr = mss;
            }
            let growth = mss
                .wrapping_mul(mss)
                .checked_div(self.incr)
                .unwrap_or(0)
                .wrapping_add(mss / 16);
            self.incr = self.incr.wrapping_add(growth);
            if self.cwnd.wrapping_add(1).wrapping_mul(mss) <= self.incr {
                self.cwnd = self.incr.wrapping_add(mss).wrapping_sub(1) / mss.max(1);
            }
        }
        if self.cwnd > rmt_wnd {
            self.cwnd = rmt_wnd;
            self.incr = rmt_wnd.wrapping_mul(mss);
        }
    }

    /// After a flush that fast-retransmitted: halve to the data in flight.
    #[inline]
    pub fn on_fast_retransmit(&mut self, inflight: u32, resent: u32, mss: u32) {
        self.ssthresh = (inflight / 2).max(super::THRESH_MIN);
        self.cwnd = self.ssthresh.wrapping_add(resent);
        self.incr = self.cwnd.wrapping_mul(mss);
    }

    /// After a flush that retransmitted on timeout: back to one segment.
    /// `window_used` is 1.x's effective window, or 2.x's `cwnd` at the
    /// start of the flush.
    #[inline]
    pub fn on_timeout(&mut self, window_used: u32, mss: u32) {
        self.ssthresh = (window_used / 2).max(super::THRESH_MIN);
        self.cwnd = 1;
        self.incr = mss;
    }

    /// The window never drops below one segment.
    #[inline]
    pub fn ensure_minimum(&mut self, mss: u32) {
        if self.cwnd < 1 {
            self.cwnd = 1;
            self.incr = mss;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_then_additive_increase() {
        let mut c = CongestionState {
            cwnd: 1,
            incr: 1376,
            ssthresh: 2,
        };
        c.on_progress(1376, 128);
        assert_eq!(c.cwnd, 2);
        c.on_progress(1376, 128);
        // at ssthresh: grows incr by mss*mss/incr + mss/16, cwnd follows slowly
        assert_eq!(c.cwnd, 2);
        assert!(c.incr > 2 * 1376);
    }

    #[test]
    fn never_exceeds_remote_window() {
        // Past slow start with a large byte count, the window would jump.
        let mut c = CongestionState {
            cwnd: 4,
            incr: 100_000,
            ssthresh: 2,
        };
        c.on_progress(1000, 5);
        assert_eq!(c.cwnd, 5);
        assert_eq!(c.incr, 5000);
    }
}
