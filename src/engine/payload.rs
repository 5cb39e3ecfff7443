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
}
