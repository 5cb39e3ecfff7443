//! The clock: `update` decides when a flush is due, `check` when the caller
//! should next call `update`.

use super::constants::*;
use super::host::{Host, OutputHost};
use super::kcp::Kcp;
use super::output::Output;
use super::payload::Payload;

impl<P: Payload> Kcp<P> {
    /// Advances the clock to `now` (ms) and flushes if the interval elapsed.
    /// Call it at the time [`check`](Kcp::check) returns, or after
    /// `send`/`input` to transmit promptly.
    pub fn update(&mut self, now: u32, out: &mut impl Output) {
        self.update_with(now, &mut OutputHost(out))
    }

    /// The time (ms) at which [`update`](Kcp::update) should next be called,
    /// assuming no `send`/`input` happens before then.
    pub fn check(&self, now: u32) -> u32 {
        if self.updated == 0 {
            return now;
        }
        let mut ts_flush = self.ts_flush;
        let since = diff(now, ts_flush);
        if !(-10_000..10_000).contains(&since) {
            ts_flush = now;
        }
        if diff(now, ts_flush) >= 0 {
            return now;
        }
        let tm_flush = diff(ts_flush, now);
        let mut tm_packet = i32::MAX;
        for seg in self.snd_buf.iter() {
            let d = diff(seg.resendts, now);
            if d <= 0 {
                return now;
            }
            tm_packet = tm_packet.min(d);
        }
        let minimal = (tm_packet.min(tm_flush) as u32).min(self.interval);
        now.wrapping_add(minimal)
    }

    /// `ikcp_update`.
    pub(crate) fn update_with<H: Host<P>>(&mut self, current: u32, host: &mut H) {
        self.current = current;
        if self.updated == 0 {
            self.updated = 1;
            self.ts_flush = current;
        }
        let mut slap = diff(current, self.ts_flush);
        if !(-10_000..10_000).contains(&slap) {
            self.ts_flush = current;
            slap = 0;
        }
        if slap >= 0 {
            self.ts_flush = self.ts_flush.wrapping_add(self.interval);
            if diff(current, self.ts_flush) >= 0 {
                self.ts_flush = current.wrapping_add(self.interval);
            }
            self.flush_with(host);
        }
    }
}
