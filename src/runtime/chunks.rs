//! Buffers that bytes are gathered in and handed out of in pieces
//! (`split().freeze()`), and taken back for the next bytes once every piece
//! handed out of them was dropped.
//!
//! Written bytes on their way to the connection task and received bytes on
//! their way to the reader travel in such pieces. A fresh allocation for
//! each 64 KiB of a bulk transfer costs fresh pages from the kernel (the
//! allocator gives freed memory back and takes it again): page faults were
//! most of the cost of those copies. A few buffers that go round instead
//! stay mapped, and in cache.

use std::collections::VecDeque;

use bytes::BytesMut;

/// Earlier buffers waited for at most (4 MiB of 64 KiB buffers); beyond,
/// a buffer is freed with its last piece.
const KEEP_MAX: usize = 64;

/// Buffers handed out in pieces, reused once their pieces are gone.
#[derive(Debug)]
pub(crate) struct Chunks {
    /// Where the next bytes go.
    current: BytesMut,
    /// `current` is a buffer of ours to keep (not empty, not larger than a
    /// chunk: one large message is not kept). Its capacity tells nothing
    /// once it is full.
    current_kept: bool,
    /// Earlier buffers whose pieces may still be out, oldest first.
    retired: VecDeque<BytesMut>,
    /// Size of each buffer.
    chunk: usize,
    /// Retired buffers kept at most.
    keep: usize,
}

impl Chunks {
    /// Buffers of `chunk` bytes (or one message, if larger) for a queue of
    /// at most `limit` bytes: as many earlier buffers as the queue can keep
    /// busy are waited for (at most [`KEEP_MAX`]), so a full queue that
    /// drains gives its buffers back for the next bytes.
    pub(crate) fn for_queue(chunk: usize, limit: usize) -> Chunks {
        Chunks::new(chunk, (limit.div_ceil(chunk) + 3).min(KEEP_MAX))
    }

    /// Buffers of `chunk` bytes (or one message, if larger); up to `keep`
    /// earlier ones are waited for.
    pub(crate) fn new(chunk: usize, keep: usize) -> Chunks {
        Chunks {
            current: BytesMut::new(),
            current_kept: false,
            retired: VecDeque::new(),
            chunk,
            keep,
        }
    }

    /// The buffer bytes are appended to and pieces split off.
    pub(crate) fn current(&mut self) -> &mut BytesMut {
        &mut self.current
    }

    /// Bytes that fit in the current buffer without moving on.
    pub(crate) fn free(&self) -> usize {
        self.current.capacity() - self.current.len()
    }

    /// The buffer to append to, with room for `n` more bytes after what it
    /// holds. Only with an empty buffer does it move on to another one:
    /// one whose pieces are all gone, or a new one.
    pub(crate) fn room(&mut self, n: usize) -> &mut BytesMut {
        let free = self.current.capacity() - self.current.len();
        if free >= n || !self.current.is_empty() {
            if free < n {
                self.current.reserve(n);
            }
            return &mut self.current;
        }
        let want = n.max(self.chunk);
        // The current buffer itself, if every piece of it is gone.
        if self.current_kept && want <= self.chunk && self.current.try_reclaim(want) {
            return &mut self.current;
        }
        let reclaimed = self
            .retired
            .iter_mut()
            .position(|b| b.try_reclaim(want))
            .and_then(|i| self.retired.remove(i));
        let next = reclaimed.unwrap_or_else(|| BytesMut::with_capacity(want));
        let old = std::mem::replace(&mut self.current, next);
        if self.current_kept {
            self.retired.push_back(old);
            if self.retired.len() > self.keep {
                // Its pieces keep its memory alive; it is freed with them.
                self.retired.pop_front();
            }
        }
        self.current_kept = want <= self.chunk;
        &mut self.current
    }

    /// Whether it holds memory [`release`](Chunks::release) would drop.
    pub(crate) fn holds(&self) -> bool {
        !self.retired.is_empty() || self.current_kept
    }

    /// Drops every buffer kept for reuse (an idle connection keeps none);
    /// pieces already handed out keep their memory until they are dropped.
    pub(crate) fn release(&mut self) {
        self.retired.clear();
        if self.current.is_empty() {
            self.current = BytesMut::new();
            self.current_kept = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_once_their_pieces_are_dropped() {
        let mut c = Chunks::new(1024, 2);
        let b = c.room(1000);
        b.extend_from_slice(&[1; 1000]);
        let first = b.split().freeze();
        let first_ptr = first.as_ptr();
        // Not enough room left, the first piece is out: another buffer.
        let b = c.room(1000);
        b.extend_from_slice(&[2; 1000]);
        let second = b.split().freeze();
        assert_ne!(second.as_ptr(), first_ptr);
        drop(first);
        // The first buffer's piece is gone: it comes back.
        let b = c.room(1000);
        assert_eq!(b.as_ptr(), first_ptr);
        b.extend_from_slice(&[3; 1000]);
        let third = b.split().freeze();
        assert_eq!(&third[..], &[3; 1000][..]);
        assert_eq!(&second[..], &[2; 1000][..]);

        // A large message gets a buffer of its own, not kept.
        let b = c.room(5000);
        assert!(b.capacity() >= 5000);
        b.extend_from_slice(&[4; 5000]);
        let large = b.split().freeze();
        let _ = c.room(10);
        assert!(c.retired.iter().all(|r| r.capacity() <= 1024));
        drop(large);

        assert!(c.holds());
        c.release();
        assert!(c.retired.is_empty());
        assert!(!c.holds());
    }

    #[test]
    fn a_buffer_filled_to_the_brim_comes_back_too() {
        let mut c = Chunks::new(1024, 4);
        let b = c.room(1024);
        let first_ptr = b.as_ptr();
        b.extend_from_slice(&[1; 1024]);
        let first = b.split().freeze();
        let b = c.room(1024);
        b.extend_from_slice(&[2; 1024]);
        let _second = b.split().freeze();
        drop(first);
        assert_eq!(c.room(1024).as_ptr(), first_ptr);
    }

    #[test]
    fn retired_buffers_are_bounded() {
        let mut c = Chunks::new(100, 2);
        let mut held = Vec::new();
        for _ in 0..10 {
            let b = c.room(100);
            b.extend_from_slice(&[0; 100]);
            held.push(b.split().freeze());
        }
        assert!(c.retired.len() <= 2);
    }
}
