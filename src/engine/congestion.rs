//! Congestion window growth and collapse, as the reference computes them.

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
