//! How much written data a connection keeps in flight.
//!
//! The engine sends as much as its windows allow. On a path whose
//! bandwidth-delay product is far below the window (loopback, a LAN), the
//! excess only waits in queues: the peer's socket buffer and our segment
//! buffers. It buys no throughput, adds queueing delay, and every byte of it
//! is memory touched on its way (on loopback, a 1,024-segment window in
//! flight ran a bulk echo at two thirds of the speed of 128).
//!
//! So each connection measures its path, as BBR does: the fastest delivery
//! rate over recent round trips and the lowest round-trip time. The engine
//! is fed one and a half times their product (never below a floor, never
//! above what the window allows). With nothing measured yet (at the start, after a
//! pause) nothing is held back, so a long fat path still gets its whole
//! window in the first round trip.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::diff;

/// In-flight data allowed, in bandwidth-delay products. Above one so the
/// path stays full while acknowledgements are on their way, and so the
/// delivery rate can grow (by half per round trip at most). BBR uses two;
/// on loopback 1.5 ran the bulk echo about a tenth faster (the fastest
/// rate seen is itself above the average, acknowledgements arriving in
/// bunches).
const GAIN: f64 = 1.5;
/// Segments always allowed, whatever the measurements: small enough to
/// keep loopback queues short, large enough that a slow measurement
/// never starves a transfer.
pub(crate) const FLOOR: usize = 64;
/// A lowest round-trip time older than this is measured again, with the
/// limit lowered for one round trip so that our own queue drains first
/// (otherwise a standing queue would be taken for the path's delay).
const MIN_RTT_LIFETIME: Duration = Duration::from_secs(10);
/// A delivery rate is measured over at least this many lowest round-trip
/// times: acknowledgements arrive in bunches (a peer answers a whole batch
/// at once), and a shorter view would see a bunch as the path's speed...
const RATE_SPAN_RTTS: u32 = 4;
/// ...and at least this long.
const RATE_SPAN_MIN: Duration = Duration::from_millis(1);
/// The fastest rate is remembered for this many lowest round-trip times,
/// so that a pause of the application does not lower the limit...
const RATE_MEMORY_RTTS: u32 = 10;
/// ...and at least this long. A connection idle for longer forgets its
/// measurements altogether.
const RATE_MEMORY_MIN: Duration = Duration::from_millis(10);
/// New segments timed together (see [`InflightLimit::on_data_sent`]).
const MARK_EVERY: usize = 16;
/// Send times kept; more sends while they are all in flight are not timed.
const MAX_MARKS: usize = 128;
/// Delivery checkpoints kept for the rate span.
const MAX_CHECKPOINTS: usize = 256;
/// Rate samples kept by the windowed maximum.
const MAX_RATES: usize = 32;

/// When the segments before `sn` had all been sent, and whether the
/// sending was held back by something other than the path (see
/// [`InflightLimit::set_held_back`]).
#[derive(Debug, Clone, Copy)]
struct Mark {
    sn: u32,
    at: Instant,
    held_back: bool,
}

/// The path measurements of one connection and the in-flight limit drawn
/// from them.
#[derive(Debug)]
pub(crate) struct InflightLimit {
    enabled: bool,
    marks: VecDeque<Mark>,
    /// Segments acknowledged in order so far.
    delivered: u64,
    last_una: Option<u32>,
    /// `(when, delivered)` at recent acknowledgements, oldest first.
    checkpoints: VecDeque<(Instant, u64)>,
    /// The lowest round-trip time seen, and when it was last confirmed.
    min_rtt: Option<(Duration, Instant)>,
    /// Delivery rates (segments per second) with their times, each larger
    /// than every later one: the front is the recent maximum.
    rates: VecDeque<(f64, Instant)>,
    /// Measuring the round-trip time again since this instant.
    probing_since: Option<Instant>,
    /// Nothing queued or in flight since this instant.
    idle_since: Option<Instant>,
    /// The sequence number after the newest segment sent.
    next_new: Option<u32>,
    /// New segments sent since the latest mark.
    unmarked: usize,
    /// What the next marks record (see [`InflightLimit::set_held_back`]).
    held_back: bool,
    /// Whether the newest acknowledged mark was held back.
    acked_held_back: bool,
}

impl InflightLimit {
    pub(crate) fn new(enabled: bool) -> Self {
        InflightLimit {
            enabled,
            marks: VecDeque::new(),
            delivered: 0,
            last_una: None,
            checkpoints: VecDeque::new(),
            min_rtt: None,
            rates: VecDeque::new(),
            probing_since: None,
            idle_since: None,
            next_new: None,
            unmarked: 0,
            held_back: false,
            acked_held_back: false,
        }
    }

    /// How long the fastest rate is remembered.
    fn rate_memory(&self) -> Duration {
        self.min_rtt
            .map_or(RATE_MEMORY_MIN, |(r, _)| r * RATE_MEMORY_RTTS)
            .max(RATE_MEMORY_MIN)
    }

    /// Data segment `sn` was handed to the transport, with everything before
    /// `snd_una` acknowledged. First transmissions are timed in groups of
    /// [`MARK_EVERY`]: all the segments of a flush leave at once, and the
    /// first of them see the path's delay without the queue the rest make.
    pub(crate) fn on_data_sent(&mut self, sn: u32, snd_una: u32, now: Instant) {
        if !self.enabled {
            return;
        }
        if let Some(since) = self.idle_since.take() {
            if now.saturating_duration_since(since) > self.rate_memory() {
                self.forget();
            }
        }
        if self.last_una.is_none() {
            self.last_una = Some(snd_una);
            self.checkpoints.push_back((now, self.delivered));
        }
        if matches!(self.next_new, Some(next) if diff(sn, next) < 0) {
            // A retransmission: its acknowledgement times nothing.
            return;
        }
        self.next_new = Some(sn.wrapping_add(1));
        self.unmarked += 1;
        if self.unmarked >= MARK_EVERY {
            self.mark(now);
        }
    }

    /// A flush is over: its last new segments are timed too.
    pub(crate) fn on_flushed(&mut self, now: Instant) {
        if self.unmarked > 0 {
            self.mark(now);
        }
    }

    fn mark(&mut self, now: Instant) {
        self.unmarked = 0;
        if let Some(sn) = self.next_new {
            if self.marks.len() < MAX_MARKS {
                self.marks.push_back(Mark {
                    sn,
                    at: now,
                    held_back: self.held_back,
                });
            }
        }
    }

    /// Whether what is sent from now on is held back by something other
    /// than the path: the application wrote nothing more, or the peer's
    /// window is full. The delivery rates such data measures are the
    /// application's or the reader's, not the path's: they may raise the
    /// remembered fastest rate, never replace it, so a stalled reader or a
    /// pause in writing does not cost the limit it had.
    pub(crate) fn set_held_back(&mut self, held_back: bool) {
        self.held_back = held_back;
    }

    /// Acknowledgements arrived: everything before `snd_una` is delivered.
    pub(crate) fn on_acked(&mut self, snd_una: u32, now: Instant) {
        if !self.enabled {
            return;
        }
        let Some(last) = self.last_una else { return };
        if diff(snd_una, last) <= 0 {
            return;
        }
        self.delivered += u64::from(snd_una.wrapping_sub(last));
        self.last_una = Some(snd_una);
        let mut newest = None;
        while let Some(m) = self.marks.front() {
            if diff(snd_una, m.sn) < 0 {
                break;
            }
            newest = self.marks.pop_front();
        }
        if let Some(m) = newest {
            self.acked_held_back = m.held_back;
            self.rtt_sample(now.saturating_duration_since(m.at), m.at, now);
        }
        self.rate_sample(now);
    }

    fn rtt_sample(&mut self, rtt: Duration, sent: Instant, now: Instant) {
        if let Some(since) = self.probing_since {
            // The first round trip of data sent during the probe ends it.
            if sent >= since {
                self.probing_since = None;
                self.min_rtt = Some((rtt, now));
            }
        }
        match self.min_rtt {
            Some((best, _)) if rtt > best => {}
            _ => self.min_rtt = Some((rtt, now)),
        }
        if self.probing_since.is_none() {
            if let Some((_, confirmed)) = self.min_rtt {
                if now.saturating_duration_since(confirmed) > MIN_RTT_LIFETIME {
                    self.probing_since = Some(now);
                }
            }
        }
    }

    fn rate_sample(&mut self, now: Instant) {
        let Some((rtt, _)) = self.min_rtt else { return };
        // A paused test clock can make round trips zero.
        let span = (rtt * RATE_SPAN_RTTS).max(RATE_SPAN_MIN);
        // The base is the newest checkpoint at least a span old.
        while self.checkpoints.len() > 1
            && now.saturating_duration_since(self.checkpoints[1].0) >= span
        {
            self.checkpoints.pop_front();
        }
        if let Some(&(then, base)) = self.checkpoints.front() {
            let elapsed = now.saturating_duration_since(then);
            if elapsed > span * 2 {
                // Nothing was acknowledged for a while (a closed window, a
                // pause): a rate across the gap would measure the gap.
                self.checkpoints.clear();
            } else if elapsed >= span {
                let rate = (self.delivered - base) as f64 / elapsed.as_secs_f64();
                let fastest = self.delivery_rate().unwrap_or(0.0);
                if !self.acked_held_back || rate > fastest {
                    self.remember_rate(rate, now);
                }
            }
        }
        if self.checkpoints.len() < MAX_CHECKPOINTS {
            self.checkpoints.push_back((now, self.delivered));
        }
    }

    fn remember_rate(&mut self, rate: f64, now: Instant) {
        while matches!(self.rates.back(), Some(&(r, _)) if r <= rate) {
            self.rates.pop_back();
        }
        if self.rates.len() == MAX_RATES {
            self.rates.pop_back();
        }
        self.rates.push_back((rate, now));
        let memory = self.rate_memory();
        while self.rates.len() > 1
            && matches!(self.rates.front(), Some(&(_, at)) if now.saturating_duration_since(at) > memory)
        {
            self.rates.pop_front();
        }
    }

    /// Nothing is queued or in flight. A pause longer than the rate memory
    /// makes the measurements stale: the next burst is not held back.
    pub(crate) fn on_idle(&mut self, now: Instant) {
        self.idle_since.get_or_insert(now);
    }

    fn forget(&mut self) {
        *self = InflightLimit::new(self.enabled);
    }

    /// The lowest round-trip time measured, if any.
    pub(crate) fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.map(|(r, _)| r)
    }

    /// The fastest recent delivery rate, in segments per second.
    pub(crate) fn delivery_rate(&self) -> Option<f64> {
        self.rates.front().map(|&(r, _)| r)
    }

    /// How many segments the engine may hold (queued or in flight), given
    /// that the windows allow `window_limit`.
    pub(crate) fn limit(&self, window_limit: usize) -> usize {
        let (Some(rtt), Some(rate)) = (self.min_rtt(), self.delivery_rate()) else {
            return window_limit;
        };
        let bdp = rate * rtt.as_secs_f64();
        let gain = if self.probing_since.is_some() {
            0.5
        } else {
            GAIN
        };
        let allowed = ((bdp * gain).ceil() as usize).max(FLOOR);
        // A quarter more waiting in the engine, so the flush after an
        // acknowledgement sends at once.
        (allowed + allowed / 4).min(window_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(base: Instant, millis: u64) -> Instant {
        base + Duration::from_millis(millis)
    }

    /// One flush sending segments `from..to` at `at`.
    fn send(l: &mut InflightLimit, from: u32, to: u32, una: u32, at: Instant) {
        for sn in from..to {
            l.on_data_sent(sn, una, at);
        }
        l.on_flushed(at);
    }

    /// Sends 100 segments every millisecond for `millis` ms from `from`,
    /// each acknowledged `rtt_ms` later; returns the next sequence number.
    fn steady(
        l: &mut InflightLimit,
        t0: Instant,
        from: u64,
        millis: u64,
        rtt_ms: u64,
        sn: u32,
    ) -> u32 {
        Flow {
            from,
            millis,
            rtt_ms,
            per_ms: 100,
            stop: from + millis + rtt_ms,
        }
        .run(l, t0, sn)
        .0
    }

    /// A flow of segments on a path with a fixed round trip.
    struct Flow {
        /// Start, in ms after the test's `t0`.
        from: u64,
        /// How long segments are sent, in ms.
        millis: u64,
        /// When each segment is acknowledged after it was sent, in ms.
        rtt_ms: u64,
        /// Segments sent each millisecond.
        per_ms: u32,
        /// When the clock stops, in ms after `t0`.
        stop: u64,
    }

    impl Flow {
        /// Runs the flow from sequence number `sn`; returns the next
        /// sequence number to send and the next to be acknowledged.
        fn run(&self, l: &mut InflightLimit, t0: Instant, sn: u32) -> (u32, u32) {
            let mut sent = sn;
            let mut acked = sn;
            for t in self.from..self.stop {
                if t >= self.from + self.rtt_ms && acked != sent {
                    acked += self.per_ms;
                    l.on_acked(acked, ms(t0, t));
                }
                if t < self.from + self.millis {
                    send(l, sent, sent + self.per_ms, acked, ms(t0, t));
                    sent += self.per_ms;
                }
            }
            (sent, acked)
        }
    }

    #[test]
    fn nothing_is_held_back_before_a_measurement() {
        let l = InflightLimit::new(true);
        assert_eq!(l.limit(1280), 1280);
    }

    #[test]
    fn the_limit_follows_rate_times_round_trip() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(true);
        // 100 segments per ms, 10 ms round trip: a product of 1,000.
        steady(&mut l, t0, 0, 200, 10, 0);
        assert_eq!(l.min_rtt(), Some(Duration::from_millis(10)));
        let rate = l.delivery_rate().unwrap();
        assert!((rate - 100_000.0).abs() < 1_000.0, "{rate}");
        // One and a half products, plus a quarter waiting in the engine.
        let limit = l.limit(10_000);
        assert!((1_830..=1_920).contains(&limit), "{limit}");
        // Never above what the window allows.
        assert_eq!(l.limit(1280), 1280);
    }

    #[test]
    fn a_small_product_is_raised_to_the_floor() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(true);
        // 100 segments per ms, 0.1 ms round trip: a product of 10.
        let mut sn = 0;
        for i in 0..100u64 {
            let t = t0 + Duration::from_micros(i * 100);
            send(&mut l, sn, sn + 10, sn, t);
            sn += 10;
            l.on_acked(sn, t + Duration::from_micros(100));
        }
        assert_eq!(l.limit(1280), FLOOR + FLOOR / 4);
    }

    #[test]
    fn a_long_pause_forgets_and_a_short_one_does_not() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(true);
        let sn = steady(&mut l, t0, 0, 100, 10, 0);
        let measured = l.limit(100_000);
        assert!(measured < 100_000);
        // Idle for 50 ms, less than ten round trips: kept.
        l.on_idle(ms(t0, 110));
        send(&mut l, sn, sn + 1, sn, ms(t0, 160));
        assert_eq!(l.limit(100_000), measured);
        l.on_acked(sn + 1, ms(t0, 170));
        // Idle for 200 ms: forgotten, nothing held back.
        l.on_idle(ms(t0, 170));
        send(&mut l, sn + 1, sn + 2, sn + 1, ms(t0, 370));
        assert_eq!(l.limit(100_000), 100_000);
    }

    #[test]
    fn the_first_segments_of_a_burst_time_the_path_without_its_queue() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(true);
        // 512 segments in one flush over a link taking 0.1 ms per segment
        // and 10 ms each way: segment `i` comes back after 20 + 0.1 i ms.
        send(&mut l, 0, 512, 0, t0);
        for acked in (16..=512).step_by(16) {
            let back = t0 + Duration::from_micros(20_000 + 100 * acked as u64);
            l.on_acked(acked, back);
        }
        assert_eq!(l.min_rtt(), Some(Duration::from_micros(21_600)));
    }

    #[test]
    fn retransmissions_time_nothing() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(true);
        send(&mut l, 0, 16, 0, t0);
        // Segment 3 again, much later: its acknowledgement must not be
        // taken for a round trip of the resend.
        l.on_data_sent(3, 0, ms(t0, 500));
        l.on_flushed(ms(t0, 500));
        l.on_acked(16, ms(t0, 501));
        assert_eq!(l.min_rtt(), Some(Duration::from_millis(501)));
    }

    #[test]
    fn rates_of_held_back_data_never_lower_the_limit() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(true);
        let sn = steady(&mut l, t0, 0, 100, 10, 0);
        let fast = l.limit(100_000);
        // For two seconds the application writes a tenth as much (or the
        // reader takes a tenth as much): the limit stays.
        l.set_held_back(true);
        let (sn, _) = Flow {
            from: 110,
            millis: 2_000,
            rtt_ms: 10,
            per_ms: 10,
            stop: 2_120,
        }
        .run(&mut l, t0, sn);
        assert_eq!(l.limit(100_000), fast);
        // The same rate with data waiting is the path's: the limit follows.
        l.set_held_back(false);
        Flow {
            from: 2_120,
            millis: 2_000,
            rtt_ms: 10,
            per_ms: 10,
            stop: 4_130,
        }
        .run(&mut l, t0, sn);
        let slow = l.limit(100_000);
        assert!(slow * 5 < fast, "{slow} against {fast}");
    }

    #[test]
    fn a_gap_in_acknowledgements_is_not_measured_as_a_slow_path() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(true);
        let sn = steady(&mut l, t0, 0, 100, 10, 0);
        let fast = l.limit(100_000);
        // Nothing acknowledged for 3 s (a closed window), then the flow
        // resumes at the same speed: no sample spans the gap (the first
        // one measures the four round trips after it).
        Flow {
            from: 3_110,
            millis: 100,
            rtt_ms: 10,
            per_ms: 100,
            stop: 3_140,
        }
        .run(&mut l, t0, sn);
        assert_eq!(l.limit(100_000), fast);
    }

    #[test]
    fn switched_off_it_never_limits() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(false);
        steady(&mut l, t0, 0, 100, 10, 0);
        assert_eq!(l.limit(1280), 1280);
        assert_eq!(l.min_rtt(), None);
    }

    #[test]
    fn an_old_minimum_is_measured_again_with_the_queue_drained() {
        let t0 = Instant::now();
        let mut l = InflightLimit::new(true);
        let sn = steady(&mut l, t0, 0, 100, 10, 0);
        let steady_limit = l.limit(100_000);
        // Then round trips of 20 ms (a standing queue) for ten seconds:
        // the minimum of 10 ms expires and a probe halves the product
        // instead of doubling it.
        let (_, acked) = Flow {
            from: 110,
            millis: 10_030,
            rtt_ms: 20,
            per_ms: 100,
            stop: 10_125,
        }
        .run(&mut l, t0, sn);
        let since = l.probing_since.expect("probing");
        assert!(since >= ms(t0, 10_110), "{:?}", since - t0);
        let probe_limit = l.limit(100_000);
        assert!(
            probe_limit < steady_limit / 2,
            "{probe_limit} vs {steady_limit}"
        );
        // Data sent during the probe comes back after 12 ms: the new
        // minimum replaces the old one and the probe ends.
        steady(&mut l, t0, 10_125, 30, 12, acked);
        assert_eq!(l.min_rtt(), Some(Duration::from_millis(12)));
        assert!(l.probing_since.is_none());
    }
}
