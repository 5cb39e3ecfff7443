//! A simulated one-way datagram link on a virtual clock: loss, duplication,
//! delay with jitter (which reorders), all decided by the caller's PRNG so a
//! seed fixes every decision.

use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Per-mille chance a datagram is dropped.
    pub loss: u32,
    /// Per-mille chance a delivered datagram arrives twice.
    pub dup: u32,
    /// Base one-way delay in ms.
    pub delay: u32,
    /// Extra random delay in `0..=jitter` ms per datagram; datagrams sent
    /// close together overtake each other when it exceeds their spacing.
    pub jitter: u32,
}

impl LinkConfig {
    pub const PERFECT: LinkConfig = LinkConfig {
        loss: 0,
        dup: 0,
        delay: 0,
        jitter: 0,
    };

    /// A random link, from clean to nasty.
    pub fn random(rng: &mut Rng) -> LinkConfig {
        LinkConfig {
            loss: rng.pick(&[0, 0, 10, 50, 100, 200, 300]),
            dup: rng.pick(&[0, 0, 10, 50, 150]),
            delay: rng.pick(&[0, 1, 5, 20, 50, 150]),
            jitter: rng.pick(&[0, 0, 5, 30, 100, 300]),
        }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    at: u64,
    seq: u64,
    data: Vec<u8>,
}

/// Datagrams in flight in one direction. Times are virtual milliseconds.
#[derive(Clone, Debug)]
pub struct Link {
    pub cfg: LinkConfig,
    queue: Vec<InFlight>,
    seq: u64,
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

impl Link {
    pub fn new(cfg: LinkConfig) -> Link {
        Link {
            cfg,
            queue: Vec::new(),
            seq: 0,
            sent: 0,
            dropped: 0,
            duplicated: 0,
        }
    }

    /// Hands a datagram to the link at virtual time `now`.
    pub fn send(&mut self, rng: &mut Rng, now: u64, data: &[u8]) {
        self.sent += 1;
        if rng.chance(self.cfg.loss) {
            self.dropped += 1;
            return;
        }
        let copies = if rng.chance(self.cfg.dup) { 2 } else { 1 };
        self.duplicated += copies - 1;
        for _ in 0..copies {
            let at = now + self.cfg.delay as u64 + rng.range(0, self.cfg.jitter as i64) as u64;
            self.seq += 1;
            self.queue.push(InFlight {
                at,
                seq: self.seq,
                data: data.to_vec(),
            });
        }
    }

    /// Removes and returns the datagrams due at or before `now`, in arrival order.
    pub fn due(&mut self, now: u64) -> Vec<Vec<u8>> {
        let mut due: Vec<InFlight> = Vec::new();
        self.queue.retain(|p| {
            if p.at <= now {
                due.push(p.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|p| (p.at, p.seq));
        due.into_iter().map(|p| p.data).collect()
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<u64> {
        self.queue.iter().map(|p| p.at).min()
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Drops everything in flight (a link outage).
    pub fn clear(&mut self) {
        self.dropped += self.queue.len() as u64;
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_reorders_and_due_is_sorted() {
        let mut rng = Rng::new(3);
        let mut link = Link::new(LinkConfig {
            loss: 0,
            dup: 0,
            delay: 10,
            jitter: 100,
        });
        for i in 0..50u8 {
            link.send(&mut rng, i as u64, &[i]);
        }
        let got: Vec<u8> = link.due(1000).into_iter().map(|d| d[0]).collect();
        assert_eq!(got.len(), 50);
        assert!(
            got.windows(2).any(|w| w[0] > w[1]),
            "expected some reordering: {got:?}"
        );
        assert_eq!(link.in_flight(), 0);
    }

    #[test]
    fn total_loss_drops_everything() {
        let mut rng = Rng::new(4);
        let mut link = Link::new(LinkConfig {
            loss: 1000,
            dup: 0,
            delay: 0,
            jitter: 0,
        });
        for _ in 0..20 {
            link.send(&mut rng, 0, b"x");
        }
        assert_eq!(link.dropped, 20);
        assert!(link.due(u64::MAX).is_empty());
    }
}
