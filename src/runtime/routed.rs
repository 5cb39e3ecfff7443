//! Datagrams on their way from a listener's task to a connection's task.
//!
//! The listener receives a batch into its own buffers, which it reuses at
//! once, so each datagram routed to a connection is copied out, once. The
//! copy goes into a buffer from a free list shared by the listener and its
//! connections: the connection's task gives it back after feeding the
//! datagram to its engine, so a warm listener allocates nothing per datagram.
//!
//! Buffers come in size classes (powers of two from 64 bytes, the largest
//! being the MTU), and the listener's queued-bytes budget
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
    /// A pool for datagrams of at most `mtu` bytes, charging `queued`.
    pub(crate) fn new(queued: Arc<BytePool>, mtu: usize) -> Arc<RoutedPool> {
        let mut sizes = Vec::new();
        let mut size = MIN_CLASS;
        while size < mtu {
            sizes.push(size);
            size *= 2;
        }
        sizes.push(mtu);
        let free = Mutex::new(vec![Vec::new(); sizes.len()]);
        Arc::new(RoutedPool {
            queued,
            sizes,
            free,
        })
    }

    /// The class of a datagram of `len` bytes (at most the MTU).
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
        debug_assert!(d.len() <= self.sizes[self.sizes.len() - 1]);
        let class = self.class(d.len());
        if !self.queued.try_charge(self.sizes[class]) {
            return None;
        }
        let spare = self.lock()[class].pop();
        let mut buf = spare.unwrap_or_else(|| Vec::with_capacity(self.sizes[class]));
        buf.extend_from_slice(d);
        if conv_of(d) != Some(conv) {
            set_conv(&mut buf, conv);
        }
        Some(Routed {
            buf,
            class,
            pool: self.clone(),
        })
    }

    fn give_back(&self, mut buf: Vec<u8>, class: usize) {
        let size = self.sizes[class];
        self.queued.release(size);
        buf.clear();
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

/// A datagram routed to a connection's task, charged to the listener's
/// queued bytes until the task drops it (after its engine's `input`); its
/// buffer then goes back to the pool.
#[derive(Debug)]
pub(crate) struct Routed {
    buf: Vec<u8>,
    class: usize,
    pool: Arc<RoutedPool>,
}

impl std::ops::Deref for Routed {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
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
        assert_eq!(pool.sizes, [64, 128, 256, 512, 1024, 1400]);
        let ack = segment(7, Command::Ack as u8, 0, b"");
        let data = segment(0, Command::Push as u8, 0, &[9; 1376]);

        let a = pool.copy(&ack, 7).unwrap();
        let d = pool.copy(&data, 7).unwrap();
        assert_eq!(&a[..], &ack[..]);
        assert_eq!(conv_of(&d), Some(7), "conversation assigned");
        assert_eq!(&d[HEADER_LEN..], &data[HEADER_LEN..]);
        assert_eq!(queued.used(), 1400 + 64, "charged by buffer size");
        assert!(pool.copy(&ack, 7).is_none(), "over the budget");

        let (a_ptr, d_ptr) = (a.as_ptr(), d.as_ptr());
        drop((a, d));
        assert_eq!(queued.used(), 0);
        assert_eq!(pool.spare_bytes(), 1400 + 64);
        // The same buffers come back, whatever the length within a class.
        let d = pool.copy(&data[..1100], 7).unwrap();
        let a = pool.copy(&ack[..], 7).unwrap();
        assert_eq!((a.as_ptr(), d.as_ptr()), (a_ptr, d_ptr));
        assert_eq!(&d[HEADER_LEN..], &data[HEADER_LEN..1100]);
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
