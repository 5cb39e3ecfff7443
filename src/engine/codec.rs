//! The 24-byte segment header, little-endian on the wire.
//!
//! ```text
//! 0      4     5     6       8      12     16     20     24
//! | conv | cmd | frg | wnd   | ts   | sn   | una  | len  | data...
//! ```

/// Bytes in a segment header.
pub const HEADER_LEN: usize = 24;

/// Segment commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Command {
    /// Data.
    Push = 81,
    /// Acknowledgement of one sequence number.
    Ack = 82,
    /// "What is your window?" — sent while the peer advertises zero.
    WindowAsk = 83,
    /// "My window is `wnd`."
    WindowTell = 84,
}

impl Command {
    /// The command for a wire byte, if it is one.
    #[inline]
    pub fn from_byte(byte: u8) -> Option<Command> {
        match byte {
            81 => Some(Command::Push),
            82 => Some(Command::Ack),
            83 => Some(Command::WindowAsk),
            84 => Some(Command::WindowTell),
            _ => None,
        }
    }
}

/// A decoded segment header. `cmd` is kept as the raw byte so that callers can
/// report unknown commands the way they choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentHeader {
    /// Conversation id.
    pub conv: u32,
    /// Raw command byte (see [`Command`]).
    pub cmd: u8,
    /// Fragments that follow this one in the same message (0 = last).
    pub frg: u8,
    /// Sender's free receive window, in segments.
    pub wnd: u16,
    /// Sender's timestamp (ms).
    pub ts: u32,
    /// Sequence number.
    pub sn: u32,
    /// Sender's next expected sequence number.
    pub una: u32,
    /// Payload length that follows the header.
    pub len: u32,
}

impl SegmentHeader {
    /// Appends the encoded header to `out`.
    #[inline]
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut bytes = [0u8; HEADER_LEN];
        self.encode_into(&mut bytes);
        out.extend_from_slice(&bytes);
    }

    /// Writes the encoded header into `bytes`.
    #[inline]
    pub fn encode_into(&self, bytes: &mut [u8; HEADER_LEN]) {
        bytes[0..4].copy_from_slice(&self.conv.to_le_bytes());
        bytes[4] = self.cmd;
        bytes[5] = self.frg;
        bytes[6..8].copy_from_slice(&self.wnd.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.ts.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.sn.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.una.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.len.to_le_bytes());
    }

    /// Decodes a header from the first 24 bytes of `bytes`; `None` if shorter.
    #[inline]
    pub fn decode(bytes: &[u8]) -> Option<SegmentHeader> {
        let b: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(SegmentHeader {
            conv: u32_at(0),
            cmd: b[4],
            frg: b[5],
            wnd: u16::from_le_bytes([b[6], b[7]]),
            ts: u32_at(8),
            sn: u32_at(12),
            una: u32_at(16),
            len: u32_at(20),
        })
    }
}

/// The whole segments of a datagram in order, each with its offset. The
/// walk ends at trailing bytes shorter than a header, or at a segment whose
/// payload runs past the end of the datagram (not yielded).
pub fn segments(datagram: &[u8]) -> impl Iterator<Item = (usize, SegmentHeader)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let h = SegmentHeader::decode(datagram.get(at..)?)?;
        let start = at;
        let end = start.checked_add(HEADER_LEN)?.checked_add(h.len as usize)?;
        if end > datagram.len() {
            return None;
        }
        at = end;
        Some((start, h))
    })
}

/// Reads the conversation id of a datagram (its first four bytes).
pub fn conv_of(datagram: &[u8]) -> Option<u32> {
    let b = datagram.get(..4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_walks_whole_segments_and_stops_at_a_short_or_overlong_one() {
        let mut d = Vec::new();
        for (sn, len) in [(1u32, 3u32), (2, 0)] {
            SegmentHeader {
                sn,
                len,
                ..Default::default()
            }
            .encode(&mut d);
            d.extend(std::iter::repeat_n(7u8, len as usize));
        }
        let walked: Vec<_> = segments(&d).map(|(at, h)| (at, h.sn)).collect();
        assert_eq!(walked, [(0, 1), (27, 2)]);
        // Fewer trailing bytes than a header: ignored.
        d.extend_from_slice(&[0; HEADER_LEN - 1]);
        assert_eq!(segments(&d).count(), 2);
        // A segment claiming more payload than there is: the walk ends there.
        d.truncate(51);
        SegmentHeader {
            sn: 3,
            len: 100,
            ..Default::default()
        }
        .encode(&mut d);
        d.extend_from_slice(&[0; 99]);
        assert_eq!(segments(&d).map(|(_, h)| h.sn).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(segments(&[]).count(), 0);
    }

    #[test]
    fn header_round_trips_little_endian() {
        let h = SegmentHeader {
            conv: 0x0102_0304,
            cmd: 81,
            frg: 3,
            wnd: 0xabcd,
            ts: 0xdead_beef,
            sn: 7,
            una: 6,
            len: 1376,
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(&out[..4], &[4, 3, 2, 1]);
        assert_eq!(&out[6..8], &[0xcd, 0xab]);
        assert_eq!(SegmentHeader::decode(&out), Some(h));
    }

    #[test]
    fn truncated_header_is_rejected() {
        assert_eq!(SegmentHeader::decode(&[0u8; 23]), None);
        assert_eq!(conv_of(&[1, 2, 3]), None);
    }

    #[test]
    fn unknown_command_bytes_are_not_commands() {
        assert_eq!(Command::from_byte(80), None);
        assert_eq!(Command::from_byte(85), None);
        assert_eq!(Command::from_byte(82), Some(Command::Ack));
    }
}
