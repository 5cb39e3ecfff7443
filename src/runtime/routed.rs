//! Datagrams on their way from a listener's task to a connection's task.
//!
//! The listener receives a batch into its own buffers, which it reuses at
//! once, so each datagram routed to a connection is copied out, once. The
//! copy goes into a buffer from a free list shared by the listener and its
//! connections: the connection's task gives it back after feeding the
//! datagram to its engine, so a warm listener allocates nothing per datagram.
//! A long train (GRO) that is all for one connection is not copied: its
//! receive buffer itself is handed over, and a spare takes its place.
//! Datagrams received together in one train (GRO) for the same connection
//! travel together: one copy, one buffer, one message for the whole run, so
//! the per-datagram work of the hand-over (budget, free list, channel) is
//! paid once per train.
//!
//! Buffers come in size classes (powers of two from 64 bytes, the MTU, and
//! powers of two above it up to a whole train), and the listener's queued-bytes budget
//! ([`ListenerLimits::max_queued_bytes`]) is charged a datagram's buffer, not
//! its length: the budget bounds the memory queued datagrams hold, whatever
//! their sizes. A full-MTU datagram costs its length; a 24-byte
//! acknowledgement 64 bytes.
//!
//! [`ListenerLimits::max_queued_bytes`]: super::ListenerLimits#structfield.max_queued_bytes

use std::sync::{Arc, Mutex, MutexGuard};

use super::input_guard::BytePool;
use crate::engine::{conv_of, HEADER_LEN};

/// The smallest buffer (below it malloc's own rounding dominates).
const MIN_CLASS: usize = 64;
/// Bytes of spare buffers a size class keeps for reuse; beyond, returned
/// buffers are freed. A 256-segment window's burst of full-MTU datagrams
/// (about 350 KB) fits.
const KEEP_PER_CLASS: usize = 1 << 20;
/// The largest run of datagrams routed in one buffer: what one receive
/// buffer holds (a GRO train).
pub(crate) const RUN_MAX: usize = 65_536;

/// The buffers routed datagrams travel in, and the budget they are charged to.
#[derive(Debug)]
pub(crate) struct RoutedPool {
    /// Bytes of buffers holding queued datagrams.
    queued: Arc<BytePool>,
    /// Buffer size of each class, ascending; the last is the MTU.
    sizes: Vec<usize>,
    /// Spare buffers, per class.
    free: Mutex<Vec<Vec<Vec<u8>>>>,
}

impl RoutedPool {
    /// A pool for datagrams of at most `mtu` bytes, and runs of them of at
    /// most [`RUN_MAX`], charging `queued`.
    pub(crate) fn new(queued: Arc<BytePool>, mtu: usize) -> Arc<RoutedPool> {
        let mut sizes = Vec::new();
        let mut size = MIN_CLASS;
        while size < mtu {
            sizes.push(size);
            size *= 2;
        }
        sizes.push(mtu);
        // `size` is now the first power of two at or above the MTU.
        while size <= RUN_MAX {
            if size > mtu {
                sizes.push(size);
            }
            size *= 2;
        }
        let free = Mutex::new(vec![Vec::new(); sizes.len()]);
        Arc::new(RoutedPool {
            queued,
            sizes,
            free,
        })
    }

    /// The class of `len` bytes (a datagram of at most the MTU, or a run).
    fn class(&self, len: usize) -> usize {
        self.sizes
            .iter()
            .position(|&s| s >= len)
            .unwrap_or(self.sizes.len() - 1)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<Vec<u8>>>> {
        // A panic while holding this lock leaves plain buffers behind.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the datagram `d` (at most the MTU long) with every segment
    /// under conversation `conv` (a peer that opened with 0 keeps sending
    /// 0 until it hears the id it was given); `None` if the queued bytes
    /// would pass their budget.
    pub(crate) fn copy(self: &Arc<Self>, d: &[u8], conv: u32) -> Option<Routed> {
        self.copy_run(d, d.len(), conv)
    }

    /// A copy of a run of datagrams received together, each `stride` bytes
    /// but the last (which may be shorter), at most [`RUN_MAX`] in all; as
    /// [`copy`](RoutedPool::copy) for each of them.
    pub(crate) fn copy_run(
        self: &Arc<Self>,
        run: &[u8],
        stride: usize,
        conv: u32,
    ) -> Option<Routed> {
        debug_assert!(run.len() <= RUN_MAX && stride > 0);
        let class = self.class(run.len());
        if !self.queued.try_charge(self.sizes[class]) {
            return None;
        }
        let spare = self.lock()[class].pop();
        let mut buf = spare.unwrap_or_else(|| Vec::with_capacity(self.sizes[class]));
        buf.clear();
        buf.extend_from_slice(run);
        Some(self.routed(buf, stride, conv, class))
    }

    /// Takes a whole receive buffer whose first `len` bytes are a run of
    /// datagrams for one connection (as [`copy_run`](RoutedPool::copy_run)),
    /// without copying them, and leaves a spare buffer of [`RUN_MAX`] bytes
    /// in its place for the next receive. Only for runs longer than half of
    /// [`RUN_MAX`]: their copy would take a buffer of that size anyway, so
    /// the budget is charged the same. `None` (the buffer left as it was)
    /// if the queued bytes would pass their budget.
    pub(crate) fn adopt(
        self: &Arc<Self>,
        buf: &mut Vec<u8>,
        len: usize,
        stride: usize,
        conv: u32,
    ) -> Option<Routed> {
        debug_assert!(len > RUN_MAX / 2 && len <= buf.len() && buf.len() == RUN_MAX);
        let class = self.sizes.len() - 1;
        if !self.queued.try_charge(self.sizes[class]) {
            return None;
        }
        let spare = self.lock()[class].pop();
        let mut spare = spare.unwrap_or_default();
        // Spares keep their length: only a new or shorter one is zeroed.
        spare.resize(RUN_MAX, 0);
        let mut run = std::mem::replace(buf, spare);
        run.truncate(len);
        Some(self.routed(run, stride, conv, class))
    }

    /// `buf` as routed datagrams of `stride` bytes under `conv`.
    fn routed(
        self: &Arc<Self>,
        mut buf: Vec<u8>,
        stride: usize,
        conv: u32,
        class: usize,
    ) -> Routed {
        for d in buf.chunks_mut(stride.max(1)) {
            if conv_of(d) != Some(conv) {
                set_conv(d, conv);
            }
        }
        Routed {
            buf,
            stride: stride.max(1),
            class,
            pool: self.clone(),
        }
    }

    /// Whether a run of `len` bytes is routed by [`adopt`](RoutedPool::adopt).
    pub(crate) fn adopts(len: usize) -> bool {
        len > RUN_MAX / 2
    }

    fn give_back(&self, buf: Vec<u8>, class: usize) {
        let size = self.sizes[class];
        self.queued.release(size);
        // Not cleared: a spare of the largest class becomes a receive
        // buffer as it is, without being zeroed again.
        let mut free = self.lock();
        if (free[class].len() + 1) * size <= KEEP_PER_CLASS.max(size) {
            free[class].push(buf);
        }
    }

    /// Spare buffers kept, in bytes.
    #[cfg(test)]
    fn spare_bytes(&self) -> usize {
        let free = self.lock();
        free.iter()
            .zip(&self.sizes)
            .map(|(bufs, size)| bufs.len() * size)
            .sum()
    }
}

/// Datagrams routed to a connection's task (one, or a run received
/// together), charged to the listener's queued bytes until the task drops
/// them (after its engine's `input`); the buffer then goes back to the pool.
#[derive(Debug)]
pub(crate) struct Routed {
    buf: Vec<u8>,
    /// Size of each datagram but the last.
    stride: usize,
    class: usize,
    pool: Arc<RoutedPool>,
}

impl Routed {
    /// The datagrams, in the order received.
    pub(crate) fn datagrams(&self) -> std::slice::Chunks<'_, u8> {
        self.buf.chunks(self.stride)
    }

    /// All their bytes, one after another.
    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Routed {
    fn drop(&mut self) {
        self.pool
            .give_back(std::mem::take(&mut self.buf), self.class);
    }
}

/// Rewrites the conversation id of every segment.
fn set_conv(d: &mut [u8], conv: u32) {
    let mut at = 0;
    while at + HEADER_LEN <= d.len() {
        d[at..at + 4].copy_from_slice(&conv.to_le_bytes());
        let len = u32::from_le_bytes([d[at + 20], d[at + 21], d[at + 22], d[at + 23]]) as usize;
        at += HEADER_LEN + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Command;
    use crate::runtime::routing::tests::segment;

    #[test]
    fn conv_rewrite_touches_every_segment() {
        let mut d = segment(0, Command::Push as u8, 0, b"xy");
        d.extend_from_slice(&segment(0, Command::Push as u8, 1, b"z"));
        set_conv(&mut d, 0xaabbccdd);
        assert_eq!(conv_of(&d), Some(0xaabbccdd));
        assert_eq!(conv_of(&d[HEADER_LEN + 2..]), Some(0xaabbccdd));
    }

    #[test]
    fn buffers_are_charged_by_class_and_reused() {
        let queued = BytePool::new(1400 + 64);
        let pool = RoutedPool::new(queued.clone(), 1400);
        assert_eq!(
            pool.sizes,
            [64, 128, 256, 512, 1024, 1400, 2048, 4096, 8192, 16384, 32768, 65536]
        );
        let ack = segment(7, Command::Ack as u8, 0, b"");
        let data = segment(0, Command::Push as u8, 0, &[9; 1376]);

        let a = pool.copy(&ack, 7).unwrap();
        let d = pool.copy(&data, 7).unwrap();
        assert_eq!(a.bytes(), &ack[..]);
        assert_eq!(conv_of(d.bytes()), Some(7), "conversation assigned");
        assert_eq!(&d.bytes()[HEADER_LEN..], &data[HEADER_LEN..]);
        assert_eq!(queued.used(), 1400 + 64, "charged by buffer size");
        assert!(pool.copy(&ack, 7).is_none(), "over the budget");

        let (a_ptr, d_ptr) = (a.bytes().as_ptr(), d.bytes().as_ptr());
        drop((a, d));
        assert_eq!(queued.used(), 0);
        assert_eq!(pool.spare_bytes(), 1400 + 64);
        // The same buffers come back, whatever the length within a class.
        let d = pool.copy(&data[..1100], 7).unwrap();
        let a = pool.copy(&ack[..], 7).unwrap();
        assert_eq!((a.bytes().as_ptr(), d.bytes().as_ptr()), (a_ptr, d_ptr));
        assert_eq!(&d.bytes()[HEADER_LEN..], &data[HEADER_LEN..1100]);
    }

    #[test]
    fn a_run_travels_in_one_buffer_charged_by_its_class() {
        let queued = BytePool::new(usize::MAX);
        let pool = RoutedPool::new(queued.clone(), 1400);
        // A train of three full datagrams and a shorter last one, from a
        // peer that still sends conversation 0.
        let full = segment(0, Command::Push as u8, 0, &[5; 1376]);
        let last = segment(0, Command::Push as u8, 3, &[6; 100]);
        let mut run = Vec::new();
        for _ in 0..3 {
            run.extend_from_slice(&full);
        }
        run.extend_from_slice(&last);
        let r = pool.copy_run(&run, full.len(), 9).unwrap();
        assert_eq!(queued.used(), 8192, "4,324 bytes in the 8 KiB class");
        let got: Vec<&[u8]> = r.datagrams().collect();
        assert_eq!(got.len(), 4);
        for d in &got {
            assert_eq!(
                conv_of(d),
                Some(9),
                "every datagram's conversation assigned"
            );
        }
        assert_eq!(&got[0][HEADER_LEN..], &full[HEADER_LEN..]);
        assert_eq!(&got[3][HEADER_LEN..], &last[HEADER_LEN..]);
        drop(r);
        assert_eq!(queued.used(), 0);
    }

    #[test]
    fn a_long_train_is_handed_over_in_its_own_buffer() {
        let queued = BytePool::new(usize::MAX);
        let pool = RoutedPool::new(queued.clone(), 1400);
        let full = segment(0, Command::Push as u8, 0, &[5; 1376]);
        let count = 30;
        let len = count * full.len();
        assert!(RoutedPool::adopts(len) && !RoutedPool::adopts(RUN_MAX / 2));
        let mut buf = vec![0; RUN_MAX];
        for d in buf[..len].chunks_mut(full.len()) {
            d.copy_from_slice(&full);
        }
        let received_at = buf.as_ptr();

        let r = pool.adopt(&mut buf, len, full.len(), 9).unwrap();
        assert_eq!(r.bytes().as_ptr(), received_at, "not copied");
        assert_eq!(r.bytes().len(), len);
        assert!(r
            .datagrams()
            .all(|d| conv_of(d) == Some(9) && d.len() == full.len()));
        assert_eq!(queued.used(), RUN_MAX, "charged as its copy would be");
        assert_eq!(buf.len(), RUN_MAX, "a whole buffer for the next receive");
        assert_ne!(buf.as_ptr(), received_at);

        // Given back, it becomes the next receive buffer, without zeroing.
        drop(r);
        assert_eq!(queued.used(), 0);
        let mut next = vec![0; RUN_MAX];
        let r = pool.adopt(&mut next, len, full.len(), 9).unwrap();
        assert_eq!(next.as_ptr(), received_at);
        assert_eq!(next.len(), RUN_MAX);
        assert_eq!(
            &next[HEADER_LEN..full.len()],
            &full[HEADER_LEN..],
            "left as it was"
        );
        drop(r);

        let tight = RoutedPool::new(BytePool::new(RUN_MAX - 1), 1400);
        let before = next.as_ptr();
        assert!(
            tight.adopt(&mut next, len, full.len(), 9).is_none(),
            "over the budget"
        );
        assert_eq!(next.as_ptr(), before, "the buffer stays with the listener");
    }

    #[test]
    fn spare_buffers_are_bounded() {
        let queued = BytePool::new(usize::MAX);
        let pool = RoutedPool::new(queued, 1400);
        let d = vec![0; 1400];
        let many: Vec<Routed> = (0..2000).map(|_| pool.copy(&d, 0).unwrap()).collect();
        drop(many);
        let spare = pool.spare_bytes();
        assert!(spare <= KEEP_PER_CLASS && spare > KEEP_PER_CLASS - 1400);
    }
}
