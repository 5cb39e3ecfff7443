//! Who may open a connection on a listener, and which connection gives way
//! when the table is full.
//!
//! KCP has no handshake: the first data segment of an unknown (address,
//! conversation) pair opens a connection, and its source address may be
//! forged. So a new connection starts *half-open* and must prove itself (see
//! [`ListenerLimits`](super::ListenerLimits) for the rules and defaults):
//! - openings are rate-limited per source IP and in total, with a second
//!   chance for a peer that retransmits an opening the limits refused
//!   (forged one-shot openings never do);
//! - half-open connections are few, expire once their peer is silent for a
//!   short while (a forged opening is never followed by more), buffer
//!   nothing out of order, and the oldest gives way to a new opening; an
//!   established connection never does.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

/// A connection's identity on a listener.
pub type Key = (SocketAddr, u32);

/// What to do with an opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// Its source IP opened too many connections this second.
    SourceLimited,
    /// The listener opened too many connections this second.
    RateLimited,
}

/// A token bucket refilled at `rate` per second, holding at most `rate`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32, now: Instant) -> Self {
        Bucket {
            tokens: f64::from(rate),
            rate: f64::from(rate),
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Source IPs tracked per second, and refused openings remembered for their
/// second chance, at most (each; a flood beyond them is still bounded by the
/// total rate).
const TRACKED: usize = 16_384;
/// A retransmitted opening is one that comes back at least this late (KCP
/// retransmits after its RTO, never sooner than 10 ms) and at most this late.
const RETRY_AFTER: Duration = Duration::from_millis(10);
const RETRY_WITHIN: Duration = Duration::from_secs(10);

/// The opening rate limits.
#[derive(Debug)]
pub(crate) struct Admission {
    per_source: u32,
    second: Instant,
    sources: HashMap<IpAddr, u32>,
    total: Bucket,
    retries: Bucket,
    /// Openings refused recently, in two generations so that the newest
    /// `TRACKED` are always kept.
    refused: HashMap<Key, Instant>,
    refused_before: HashMap<Key, Instant>,
}

impl Admission {
    pub(crate) fn new(per_source: u32, total: u32, now: Instant) -> Self {
        Admission {
            per_source,
            second: now,
            sources: HashMap::new(),
            total: Bucket::new(total, now),
            retries: Bucket::new(total, now),
            refused: HashMap::new(),
            refused_before: HashMap::new(),
        }
    }

    /// Decides on an opening of `key` at `now`.
    pub(crate) fn check(&mut self, key: Key, now: Instant) -> Verdict {
        if now.saturating_duration_since(self.second) >= Duration::from_secs(1) {
            self.second = now;
            self.sources.clear();
        }
        let first_refused = self
            .refused
            .get(&key)
            .or_else(|| self.refused_before.get(&key))
            .copied();
        if let Some(at) = first_refused {
            let age = now.saturating_duration_since(at);
            if (RETRY_AFTER..=RETRY_WITHIN).contains(&age) {
                // A peer that retransmits: it receives what we send to its
                // address, or imitates a KCP sender at some cost. Its own
                // allowance keeps one-shot floods from starving it.
                if self.retries.take(now) {
                    self.refused.remove(&key);
                    self.refused_before.remove(&key);
                    return Verdict::Admit;
                }
                return Verdict::RateLimited;
            }
        }
        let ip = key.0.ip();
        let from_source = self.sources.get(&ip).copied().unwrap_or(0);
        let verdict = if from_source >= self.per_source {
            Verdict::SourceLimited
        } else if self.total.take(now) {
            Verdict::Admit
        } else {
            Verdict::RateLimited
        };
        match verdict {
            Verdict::Admit if from_source > 0 || self.sources.len() < TRACKED => {
                self.sources.insert(ip, from_source + 1);
            }
            Verdict::Admit => {}
            _ if first_refused.is_none() => self.remember_refused(key, now),
            _ => {}
        }
        verdict
    }

    fn remember_refused(&mut self, key: Key, now: Instant) {
        if self.refused.len() >= TRACKED {
            self.refused_before = std::mem::take(&mut self.refused);
        }
        self.refused.insert(key, now);
    }
}

/// Half-open connections by age, so the oldest can give way, and by how
/// long their peers have been silent, so the longest silent can expire.
#[derive(Debug, Default)]
pub(crate) struct HalfOpen {
    by_age: BTreeMap<(Instant, u64), Key>,
    by_silence: BTreeMap<(Instant, u64), Key>,
    /// When each (by id) opened and when its peer was last heard.
    times: HashMap<u64, (Instant, Instant)>,
}

impl HalfOpen {
    pub(crate) fn len(&self) -> usize {
        self.by_age.len()
    }

    pub(crate) fn insert(&mut self, opened: Instant, id: u64, key: Key) {
        self.by_age.insert((opened, id), key);
        self.by_silence.insert((opened, id), key);
        self.times.insert(id, (opened, opened));
    }

    pub(crate) fn remove(&mut self, id: u64) {
        if let Some((opened, heard)) = self.times.remove(&id) {
            self.by_age.remove(&(opened, id));
            self.by_silence.remove(&(heard, id));
        }
    }

    /// Its peer was heard at `now`.
    pub(crate) fn heard(&mut self, id: u64, now: Instant) {
        let Some((_, heard)) = self.times.get_mut(&id) else {
            return;
        };
        if now <= *heard {
            return;
        }
        if let Some(key) = self.by_silence.remove(&(*heard, id)) {
            self.by_silence.insert((now, id), key);
        }
        *heard = now;
    }

    /// The oldest, which gives way first.
    pub(crate) fn oldest(&self) -> Option<(u64, Key)> {
        self.by_age
            .first_key_value()
            .map(|(&(_, id), &key)| (id, key))
    }

    /// The one whose peer has been silent longest, and since when.
    pub(crate) fn most_silent(&self) -> Option<(Instant, u64, Key)> {
        self.by_silence
            .first_key_value()
            .map(|(&(at, id), &key)| (at, id, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: [u8; 4], port: u16, conv: u32) -> Key {
        ((ip, port).into(), conv)
    }

    #[test]
    fn one_source_is_limited_per_second_and_others_are_not() {
        let t0 = Instant::now();
        let mut a = Admission::new(3, 1000, t0);
        for port in 0..3 {
            assert_eq!(a.check(key([10, 0, 0, 1], port, 1), t0), Verdict::Admit);
        }
        assert_eq!(
            a.check(key([10, 0, 0, 1], 9, 1), t0),
            Verdict::SourceLimited
        );
        assert_eq!(a.check(key([10, 0, 0, 2], 9, 1), t0), Verdict::Admit);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            a.check(key([10, 0, 0, 1], 10, 1), t1),
            Verdict::Admit,
            "a new second"
        );
    }

    #[test]
    fn the_total_rate_refills_over_time() {
        let t0 = Instant::now();
        let mut a = Admission::new(1000, 10, t0);
        let admitted = (0..50)
            .filter(|&i| a.check(key([10, 0, 1, i as u8], 1, 1), t0) == Verdict::Admit)
            .count();
        assert_eq!(admitted, 10);
        let t1 = t0 + Duration::from_millis(500);
        let admitted = (50..100)
            .filter(|&i| a.check(key([10, 0, 1, i as u8], 1, 1), t1) == Verdict::Admit)
            .count();
        assert_eq!(admitted, 5, "half a second refills half the rate");
    }

    #[test]
    fn a_retransmitted_opening_gets_a_second_chance() {
        let t0 = Instant::now();
        let mut a = Admission::new(1, 1000, t0);
        let good = key([127, 0, 0, 1], 5000, 42);
        assert_eq!(a.check(key([127, 0, 0, 1], 1, 1), t0), Verdict::Admit);
        // The flood used up this IP's openings; the good peer is refused...
        assert_eq!(a.check(good, t0), Verdict::SourceLimited);
        // ...an immediate duplicate is not a retransmission...
        assert_eq!(
            a.check(good, t0 + Duration::from_millis(1)),
            Verdict::SourceLimited
        );
        // ...but its retransmission after an RTO is admitted.
        assert_eq!(
            a.check(good, t0 + Duration::from_millis(200)),
            Verdict::Admit
        );
    }

    #[test]
    fn forged_openings_cannot_crowd_out_the_memory_of_refusals() {
        let t0 = Instant::now();
        // No source may open anything at first try: only retransmissions get in.
        let mut a = Admission::new(0, 1, t0);
        let good = key([127, 0, 0, 1], 5000, 42);
        assert_eq!(a.check(good, t0), Verdict::SourceLimited);
        for i in 0..TRACKED as u32 {
            assert_eq!(
                a.check(key([10, 1, 0, 0], 1, i), t0),
                Verdict::SourceLimited
            );
        }
        assert!(a.refused.len() + a.refused_before.len() <= 2 * TRACKED);
        assert_eq!(
            a.check(good, t0 + Duration::from_millis(300)),
            Verdict::Admit
        );
    }

    #[test]
    fn half_open_connections_give_way_by_age_and_expire_by_silence() {
        let t0 = Instant::now();
        let mut h = HalfOpen::default();
        let later = t0 + Duration::from_millis(5);
        h.insert(later, 2, key([1, 1, 1, 1], 2, 2));
        h.insert(t0, 1, key([1, 1, 1, 1], 1, 1));
        h.insert(later, 3, key([1, 1, 1, 1], 3, 3));
        assert_eq!(h.oldest(), Some((1, key([1, 1, 1, 1], 1, 1))));
        assert_eq!(h.most_silent(), Some((t0, 1, key([1, 1, 1, 1], 1, 1))));
        // Hearing from the oldest's peer keeps it the oldest, but no longer
        // the most silent.
        h.heard(1, t0 + Duration::from_millis(9));
        assert_eq!(h.oldest(), Some((1, key([1, 1, 1, 1], 1, 1))));
        assert_eq!(h.most_silent(), Some((later, 2, key([1, 1, 1, 1], 2, 2))));
        h.remove(2);
        assert_eq!(h.most_silent(), Some((later, 3, key([1, 1, 1, 1], 3, 3))));
        h.remove(1);
        assert_eq!(h.oldest(), Some((3, key([1, 1, 1, 1], 3, 3))));
        h.remove(3);
        h.heard(3, later);
        assert_eq!(h.len(), 0);
        assert_eq!(h.most_silent(), None);
    }
}
