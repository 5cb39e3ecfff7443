//! Counters kept for Rust users (the C struct has no room for them).

/// Lifetime counters of one engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to the output.
    pub datagrams_out: u64,
    /// Bytes handed to the output.
    pub bytes_out: u64,
    /// Datagrams accepted by `input` (including ones that failed midway).
    pub datagrams_in: u64,
    /// Bytes passed to `input`.
    pub bytes_in: u64,
    /// Data segments transmitted, first transmissions and retransmissions.
    pub segments_out: u64,
    /// Data segments received (including duplicates).
    pub segments_in: u64,
    /// Retransmissions after an RTO expired (segments judged lost).
    pub timeout_retransmits: u64,
    /// Retransmissions triggered by duplicate acknowledgements.
    pub fast_retransmits: u64,
    /// Data segments received that were duplicates or outside the window.
    pub duplicate_segments: u64,
}
