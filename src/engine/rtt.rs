//! Smoothed RTT and RTO (RFC 6298 style, with the reference's integer maths).
//!
//! The arithmetic deliberately reproduces the reference's C integer
//! semantics (32-bit wrapping, mixed signed/unsigned comparisons), so that
//! values stay identical even for absurd samples or fields set by a program.

/// RTT estimator state, as the reference keeps it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RttState {
    pub srtt: i32,
    pub rttval: i32,
    pub rto: i32,
    pub minrto: i32,
}

impl RttState {
    /// Feeds one RTT sample (ms). `interval` is the update interval, which
    /// floors the variance term.
    #[inline]
    pub fn sample(&mut self, rtt: i32, interval: u32, rto_max: u32) {
        if self.srtt == 0 {
            self.srtt = rtt;
            self.rttval = rtt / 2;
        } else {
            let delta = (rtt.wrapping_sub(self.srtt) as i64).abs();
            self.rttval = ((self.rttval.wrapping_mul(3) as i64 + delta) / 4) as i32;
            self.srtt = self.srtt.wrapping_mul(7).wrapping_add(rtt) / 8;
            if self.srtt < 1 {
                self.srtt = 1;
            }
        }
        let variance = (self.rttval.wrapping_mul(4) as u32).max(interval);
        let rto = (self.srtt as u32).wrapping_add(variance);
        self.rto = rto.max(self.minrto as u32).min(rto_max) as i32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> RttState {
        RttState {
            srtt: 0,
            rttval: 0,
            rto: 200,
            minrto: 100,
        }
    }

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut s = fresh();
        s.sample(80, 100, 60_000);
        assert_eq!((s.srtt, s.rttval), (80, 40));
        // 80 + max(100, 160)
        assert_eq!(s.rto, 240);
    }

    #[test]
    fn rto_is_clamped_to_min_and_max() {
        let mut s = fresh();
        s.sample(1, 10, 60_000);
        assert_eq!(s.rto, 100);
        let mut s = fresh();
        s.sample(50_000, 10, 60_000);
        assert_eq!(s.rto, 60_000);
    }

    #[test]
    fn later_samples_smooth() {
        let mut s = fresh();
        s.sample(100, 10, 60_000);
        s.sample(200, 10, 60_000);
        // rttval = (3*50 + 100)/4, srtt = (700 + 200)/8
        assert_eq!((s.srtt, s.rttval), (112, 62));
    }
}
