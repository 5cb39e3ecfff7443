//! Storage of segment payloads.
//!
//! The engine is generic over it so that the C ABI can place payloads in
//! memory from the program's `ikcp_allocator` hooks; Rust users get `Vec<u8>`.

/// An owned, immutable byte buffer holding one segment's payload.
pub trait Payload: Sized {
    /// Copies `parts`, one after another, into a new buffer.
    /// Returns `None` when memory cannot be obtained.
    fn concat(parts: &[&[u8]]) -> Option<Self>;

    /// The bytes.
    fn as_bytes(&self) -> &[u8];

    /// Overwrites this buffer with `parts`, reusing its memory. Returns false
    /// (leaving the buffer unusable for this purpose) when it cannot, in
    /// which case the engine allocates a new one with [`Payload::concat`].
    fn refill(&mut self, _parts: &[&[u8]]) -> bool {
        false
    }

    /// Length in bytes.
    #[inline]
    fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Payload for Vec<u8> {
    #[inline]
    fn concat(parts: &[&[u8]]) -> Option<Self> {
        let total = parts.iter().map(|p| p.len()).sum();
        let mut v = Vec::with_capacity(total);
        for p in parts {
            v.extend_from_slice(p);
        }
        Some(v)
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        self
    }

    #[inline]
    fn refill(&mut self, parts: &[&[u8]]) -> bool {
        self.clear();
        for p in parts {
            self.extend_from_slice(p);
        }
        true
    }
}

/// Spare payload buffers kept for reuse while traffic flows, so a steady
/// transfer allocates (almost) nothing per segment. The engine empties it
/// once the connection has been quiet for a while, so idle connections hold
/// no spare memory.
#[derive(Debug)]
pub(crate) struct PayloadPool<P> {
    spare: Vec<P>,
}

/// Bounds on the spare buffers kept: the engine keeps up to a window's worth
/// (a bulk sender frees a window of buffers per round trip and needs as many
/// again for the next one), never fewer than this...
pub(crate) const POOL_MIN: usize = 32;
/// ...and never more than this (about 5.6 MB at the default MSS, while busy).
pub(crate) const POOL_MAX: usize = 4096;

impl<P: Payload> PayloadPool<P> {
    pub fn new() -> Self {
        PayloadPool { spare: Vec::new() }
    }

    /// A payload holding `parts`, reusing a spare buffer when possible.
    #[inline]
    pub fn take(&mut self, parts: &[&[u8]]) -> Option<P> {
        while let Some(mut buf) = self.spare.pop() {
            if buf.refill(parts) {
                return Some(buf);
            }
        }
        P::concat(parts)
    }

    /// Spare buffers held.
    #[cfg(test)]
    pub fn spares(&self) -> usize {
        self.spare.len()
    }

    /// Frees every spare buffer.
    pub fn clear(&mut self) {
        self.spare = Vec::new();
    }

    /// Keeps `buf` for reuse (or drops it when `limit` buffers are kept).
    #[inline]
    pub fn give(&mut self, buf: P, limit: usize) {
        if self.spare.len() < limit {
            self.spare.push(buf);
        }
    }
}
