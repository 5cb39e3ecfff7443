//! Storage of segment payloads.
//!
//! The engine is generic over it so that the C ABI can place payloads in
//! memory from the program's `ikcp_allocator` hooks; Rust users get
//! [`SegmentBuf`], which keeps room for the header in front of the data.

use super::codec::HEADER_LEN;
use super::tail::{PlainTail, TailFields};

/// An owned, immutable byte buffer holding one segment's payload.
pub trait Payload: Sized {
    /// Where the engine keeps its fields that follow the public scalars
    /// (see [`TailFields`]); [`PlainTail`] unless the host shows the
    /// engine's state in place.
    type Tail: TailFields;

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

    /// The [`HEADER_LEN`] bytes this buffer keeps in front of the payload
    /// for a segment header, if it keeps any. With them a segment that fills
    /// a datagram alone goes out without being copied.
    fn header_room(&mut self) -> Option<&mut [u8; HEADER_LEN]> {
        None
    }

    /// The header room followed by the payload; only called on buffers whose
    /// [`Payload::header_room`] is `Some`.
    fn framed(&self) -> &[u8] {
        self.as_bytes()
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
    type Tail = PlainTail;

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

/// The Rust API's payload storage: one `Vec<u8>` holding room for a segment
/// header followed by the payload, so that flush can write the header in
/// place and hand a lone data segment to the output without copying it.
#[derive(Debug, Clone, Default)]
pub struct SegmentBuf {
    /// `HEADER_LEN` bytes of header room, then the payload.
    bytes: Vec<u8>,
}

impl Payload for SegmentBuf {
    type Tail = PlainTail;

    #[inline]
    fn concat(parts: &[&[u8]]) -> Option<Self> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut bytes = Vec::with_capacity(HEADER_LEN + total);
        bytes.extend_from_slice(&[0u8; HEADER_LEN]);
        for p in parts {
            bytes.extend_from_slice(p);
        }
        Some(SegmentBuf { bytes })
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    #[inline]
    fn refill(&mut self, parts: &[&[u8]]) -> bool {
        if self.bytes.len() < HEADER_LEN {
            self.bytes.resize(HEADER_LEN, 0);
        }
        self.bytes.truncate(HEADER_LEN);
        for p in parts {
            self.bytes.extend_from_slice(p);
        }
        true
    }

    #[inline]
    fn header_room(&mut self) -> Option<&mut [u8; HEADER_LEN]> {
        self.bytes.first_chunk_mut::<HEADER_LEN>()
    }

    #[inline]
    fn framed(&self) -> &[u8] {
        &self.bytes
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
/// ...and never more than this (the largest window the wire can advertise).
pub(crate) const POOL_MAX: usize = 65_536;

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
