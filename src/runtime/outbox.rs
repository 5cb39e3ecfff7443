//! Datagrams a connection's engine produced, waiting to be sent: back to
//! back in one buffer, grouped in runs that a batching transport sends in
//! one call (GSO), so a flush costs neither an allocation nor a copy per
//! datagram.

/// Bytes of buffer an idle outbox keeps.
const KEEP: usize = 64 << 10;

/// Consecutive datagrams of one size, the last possibly shorter.
#[derive(Debug, Clone, Copy)]
struct Run {
    end: usize,
    segment: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    data: Vec<u8>,
    /// Where each datagram ends in `data`.
    ends: Vec<usize>,
    runs: Vec<Run>,
}

impl Outbox {
    pub(crate) fn push(&mut self, d: &[u8]) {
        if d.is_empty() {
            return;
        }
        let run_start = self.run_start();
        self.data.extend_from_slice(d);
        self.ends.push(self.data.len());
        // A longer datagram, or any after a shorter one, starts a new run.
        match self.runs.last_mut() {
            Some(r) if d.len() <= r.segment && (r.end - run_start) % r.segment == 0 => {
                r.end = self.data.len();
            }
            _ => self.runs.push(Run {
                end: self.data.len(),
                segment: d.len(),
            }),
        }
    }

    /// Where the last run starts.
    fn run_start(&self) -> usize {
        match self.runs.len() {
            0 | 1 => 0,
            n => self.runs[n - 2].end,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The runs as (contents, segment size).
    pub(crate) fn runs(&self) -> impl Iterator<Item = (&[u8], usize)> + '_ {
        let mut start = 0;
        self.runs.iter().map(move |r| {
            let run = &self.data[start..r.end];
            start = r.end;
            (run, r.segment)
        })
    }

    /// Every datagram on its own.
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let d = &self.data[start..end];
            start = end;
            d
        })
    }

    /// Empties it, keeping up to [`KEEP`] bytes of its memory: a burst of
    /// a large window (1,024 segments: 1.4 MB) is not held for the
    /// connection's life.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.data.shrink_to(KEEP);
        self.ends.clear();
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_equal_sizes_and_end_at_a_shorter_or_longer_datagram() {
        let mut o = Outbox::default();
        for len in [1400, 1400, 1400, 300, 1400, 24, 24, 100, 1400] {
            o.push(&vec![len as u8; len]);
        }
        let runs: Vec<(usize, usize)> = o.runs().map(|(c, s)| (c.len(), s)).collect();
        assert_eq!(
            runs,
            vec![
                (4500, 1400),
                (1424, 1400),
                (24, 24),
                (100, 100),
                (1400, 1400)
            ]
        );
        let lens: Vec<usize> = o.datagrams().map(<[u8]>::len).collect();
        assert_eq!(lens, vec![1400, 1400, 1400, 300, 1400, 24, 24, 100, 1400]);
        o.clear();
        assert!(o.is_empty());
        for _ in 0..1000 {
            o.push(&[0; 1400]);
        }
        o.clear();
        assert!(o.data.capacity() <= KEEP, "a burst's memory is given back");
        assert_eq!(o.runs().count(), 0);
    }
}
