//! The segment codec target: decoding never panics, and encode/decode are
//! exact inverses on every header.

use kcp::engine::{conv_of, Command, SegmentHeader, HEADER_LEN};

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    // Any prefix decodes or is refused, never panics.
    for cut in [0, 1, 3, 4, 23, 24, data.len()] {
        let d = &data[..cut.min(data.len())];
        let h = SegmentHeader::decode(d);
        assert_eq!(
            h.is_some(),
            d.len() >= HEADER_LEN,
            "decode of {} bytes",
            d.len()
        );
        assert_eq!(conv_of(d).is_some(), d.len() >= 4);
        if let Some(h) = h {
            // decode then encode gives back the same 24 bytes.
            let mut out = Vec::new();
            h.encode(&mut out);
            assert_eq!(&out[..], &d[..HEADER_LEN], "encode(decode(bytes)) != bytes");
            assert_eq!(conv_of(d), Some(h.conv));
            let mut fixed = [0u8; HEADER_LEN];
            h.encode_into(&mut fixed);
            assert_eq!(&fixed[..], &out[..]);
            // Commands round trip through their byte.
            if let Some(c) = Command::from_byte(h.cmd) {
                assert_eq!(c as u8, h.cmd);
            } else {
                assert!(!(81..=84).contains(&h.cmd));
            }
        }
    }
    // Walk the datagram as the engine and the listener do: segment by
    // segment, each length checked against what is left.
    let mut rest = data;
    let mut segments = 0usize;
    while let Some(h) = SegmentHeader::decode(rest) {
        let body = &rest[HEADER_LEN..];
        let Some(next) = body.get(h.len as usize..) else {
            break;
        };
        segments += 1;
        rest = next;
    }
    assert!(segments <= data.len() / HEADER_LEN);
}
