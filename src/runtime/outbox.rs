//! Datagrams a connection's engine produced, waiting to be sent: back to
//! back in one buffer, grouped in runs that a batching transport sends in
//! one call (GSO), so a flush costs neither an allocation nor a copy per
//! datagram.
//!
//! On a socket of its own, a large flush (a 1,024-segment window is 1.4 MB)
//! does not wait in the buffer for its end: as soon as a whole train (what
//! one call of the transport takes) is waiting, [`Outbox::send_trains`]
//! hands it to the transport without waiting, and the buffer stays about
//! one train long, in cache, instead of growing to the whole flush (fresh
//! pages from the kernel every flush). The datagrams and their order are
//! the same.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use tracing::trace;

use super::transport::Transport;
use super::udp::MAX_UDP_PAYLOAD;

/// Bytes of buffer an idle outbox keeps.
const KEEP: usize = 64 << 10;

/// The most one send call carries (a GSO train is one UDP payload).
const TRAIN_MAX: usize = MAX_UDP_PAYLOAD;

/// Consecutive datagrams of one size, the last possibly shorter.
#[derive(Debug, Clone, Copy)]
struct Run {
    end: usize,
    segment: usize,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    data: Vec<u8>,
    /// Where each datagram ends in `data`.
    ends: Vec<usize>,
    runs: Vec<Run>,
    /// Datagrams the transport took in one call when offered more: its
    /// train (1 without GSO). Unknown (unbounded) until seen.
    train: usize,
    /// The transport would block: early sends wait for the next
    /// [`clear`](Outbox::clear) (after the driver's own, waiting send).
    blocked: bool,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            data: Vec::new(),
            ends: Vec::new(),
            runs: Vec::new(),
            train: usize::MAX,
            blocked: false,
        }
    }
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

    /// Sends, without waiting, the whole trains waiting at the front: while
    /// at least a train's worth of the first run's datagrams (or
    /// [`TRAIN_MAX`] bytes) is waiting, one call of `t` each. What is left
    /// (less than a train) moves to the front of the buffer. Stops at the
    /// first call that would block; [`clear`](Outbox::clear) re-arms it.
    /// A failed send drops the rest of its run, as the driver's send does
    /// (the protocol retransmits).
    pub(crate) fn send_trains(
        &mut self,
        t: &dyn Transport,
        peer: SocketAddr,
        cx: &mut Context<'_>,
    ) {
        let mut sent = 0;
        let mut run = 0;
        while !self.blocked && sent < self.data.len() {
            while self.runs[run].end <= sent {
                run += 1;
            }
            let Run { end, segment } = self.runs[run];
            let train = self.train.saturating_mul(segment).min(TRAIN_MAX);
            if self.data.len() - sent < train {
                break;
            }
            let contents = &self.data[sent..end];
            match t.poll_send_segments(cx, contents, segment, peer) {
                Poll::Ready(Ok(n)) => {
                    let n = n.clamp(1, contents.len());
                    if n < contents.len() {
                        self.train = (n / segment).max(1);
                    }
                    sent += n;
                }
                Poll::Ready(Err(e)) => {
                    trace!(error = %e, "send failed");
                    sent = end;
                }
                Poll::Pending => self.blocked = true,
            }
        }
        self.forget(sent);
    }

    /// Drops the first `sent` bytes (whole datagrams).
    fn forget(&mut self, sent: usize) {
        if sent == 0 {
            return;
        }
        if sent == self.data.len() {
            self.data.clear();
            self.ends.clear();
            self.runs.clear();
            return;
        }
        self.data.drain(..sent);
        self.ends.retain_mut(|e| {
            *e = e.saturating_sub(sent);
            *e > 0
        });
        self.runs.retain_mut(|r| {
            r.end = r.end.saturating_sub(sent);
            r.end > 0
        });
    }

    /// Empties it, keeping its memory for the next flush: a busy connection
    /// whose flushes are large (a 1,024-segment window is 1.4 MB) would
    /// otherwise get that memory from the kernel again, page by page, every
    /// flush. [`release`](Outbox::release) gives it back once quiet.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.runs.clear();
        self.blocked = false;
    }

    /// Whether it keeps more than [`KEEP`] bytes of memory.
    pub(crate) fn holds(&self) -> bool {
        self.data.capacity() > KEEP
    }

    /// Gives back all but [`KEEP`] bytes of its memory when empty: a burst
    /// is not held for the connection's life.
    pub(crate) fn release(&mut self) {
        if self.data.is_empty() {
            self.data.shrink_to(KEEP);
            self.ends.shrink_to(KEEP / 1024);
            self.runs.shrink_to(KEEP / 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Mutex;
    use tokio::io::ReadBuf;

    /// Takes at most `train` datagrams per call, or would block; records
    /// every call.
    #[derive(Debug)]
    struct Recorder {
        train: usize,
        block: Mutex<bool>,
        calls: Mutex<Vec<(Vec<u8>, usize)>>,
    }

    impl Transport for Recorder {
        fn poll_send_to(
            &self,
            _: &mut Context<'_>,
            buf: &[u8],
            _: SocketAddr,
        ) -> Poll<io::Result<usize>> {
            self.calls.lock().unwrap().push((buf.to_vec(), buf.len()));
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_recv_from(
            &self,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<SocketAddr>> {
            Poll::Pending
        }
        fn local_addr(&self) -> io::Result<SocketAddr> {
            Ok("127.0.0.1:1".parse().unwrap())
        }
        fn poll_send_segments(
            &self,
            _: &mut Context<'_>,
            contents: &[u8],
            segment: usize,
            _: SocketAddr,
        ) -> Poll<io::Result<usize>> {
            if *self.block.lock().unwrap() {
                return Poll::Pending;
            }
            let len = contents.len().min(segment * self.train);
            self.calls
                .lock()
                .unwrap()
                .push((contents[..len].to_vec(), segment));
            Poll::Ready(Ok(len))
        }
    }

    #[test]
    fn whole_trains_leave_early_in_order_and_the_rest_waits() {
        let t = Recorder {
            train: 46,
            block: Mutex::new(false),
            calls: Mutex::new(Vec::new()),
        };
        let peer = "127.0.0.1:2".parse().unwrap();
        let waker = std::task::Waker::from(std::sync::Arc::new(NoWake));
        let mut cx = Context::from_waker(&waker);
        let mut o = Outbox::default();
        let mut want = Vec::new();
        // An acknowledgement datagram, then a window's burst of data.
        for (i, len) in std::iter::once(600)
            .chain(std::iter::repeat(1400).take(1000))
            .enumerate()
        {
            let d = vec![i as u8; len];
            want.extend_from_slice(&d);
            o.push(&d);
            o.send_trains(&t, peer, &mut cx);
            assert!(
                o.data.len() < TRAIN_MAX + 1400,
                "the buffer stays about a train long"
            );
        }
        let mut got = Vec::new();
        {
            let calls = t.calls.lock().unwrap();
            // The first call offered more than a train; then whole trains.
            assert!(calls[1..]
                .iter()
                .all(|(c, s)| *s == 1400 && c.len() == 46 * 1400));
            calls.iter().for_each(|(c, _)| got.extend_from_slice(c));
        }
        for (run, _) in o.runs() {
            got.extend_from_slice(run);
        }
        assert_eq!(got, want, "the same bytes, in order");

        // A transport that would block keeps the rest until `clear`.
        *t.block.lock().unwrap() = true;
        for _ in 0..100 {
            o.push(&[7; 1400]);
            o.send_trains(&t, peer, &mut cx);
        }
        assert!(o.blocked);
        assert!(o.data.len() >= 100 * 1400);
        o.clear();
        assert!(!o.blocked);
    }

    struct NoWake;
    impl std::task::Wake for NoWake {
        fn wake(self: std::sync::Arc<Self>) {}
    }

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
        assert!(o.holds(), "kept for the next flush");
        o.release();
        assert!(!o.holds());
        assert!(o.data.capacity() <= KEEP, "a burst's memory is given back");
        assert_eq!(o.runs().count(), 0);
    }
}
