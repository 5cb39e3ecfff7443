//! The end-of-stream signal between two ends running this library.
//!
//! KCP has no FIN. Ours is one bare KCP segment header (24 bytes, no
//! payload) with a command byte outside KCP's four, always alone in its
//! datagram and sent only once everything written was acknowledged:
//!
//! * `FIN` (0x5A): "my stream ends before sequence number `sn`"; `frg` is 1
//!   when the sender is gone altogether (dropped: it reads no more), else 0.
//! * `FIN_ACK` (0x5B): "I saw your `FIN` for `sn`", `frg` echoing its.
//!
//! Raw KCP implementations refuse an unknown command before touching any
//! state (`ikcp_input` returns -3, kcp-go likewise, the `kcp` crate an
//! error) and drop the rest of the datagram, which is why the signal never
//! shares one. The values stay clear of kcp-go's FEC markers (0xF1/0xF2 in
//! the same bytes), which its listener checks first.

use bytes::Bytes;

use crate::engine::{SegmentHeader, HEADER_LEN};

/// Command byte of the end-of-stream signal.
pub(crate) const FIN: u8 = 0x5a;
/// Command byte of its acknowledgement.
pub(crate) const FIN_ACK: u8 = 0x5b;

/// A decoded signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// The peer's stream ends before `sn`; `gone`: it will not read either.
    Fin { sn: u32, gone: bool },
    /// The peer saw our `Fin` for `sn` (and `gone`).
    FinAck { sn: u32, gone: bool },
}

/// Whether `d` is a signal datagram (of any conversation).
pub(crate) fn is_signal(d: &[u8]) -> bool {
    d.len() == HEADER_LEN
        && matches!(SegmentHeader::decode(d), Some(h) if (h.cmd == FIN || h.cmd == FIN_ACK) && h.len == 0)
}

/// The signal `d` carries for conversation `conv`, if it is one.
pub(crate) fn parse(d: &[u8], conv: u32) -> Option<Signal> {
    if !is_signal(d) {
        return None;
    }
    let h = SegmentHeader::decode(d)?;
    if h.conv != conv {
        return None;
    }
    Some(match h.cmd {
        FIN => Signal::Fin {
            sn: h.sn,
            gone: h.frg == 1,
        },
        _ => Signal::FinAck {
            sn: h.sn,
            gone: h.frg == 1,
        },
    })
}

/// One signal datagram; `wnd` and `una` as any segment of ours carries them.
pub(crate) fn encode(conv: u32, signal: Signal, wnd: u16, una: u32) -> Bytes {
    let (cmd, frg, sn) = match signal {
        Signal::Fin { sn, gone } => (FIN, u8::from(gone), sn),
        Signal::FinAck { sn, gone } => (FIN_ACK, u8::from(gone), sn),
    };
    let hdr = SegmentHeader {
        conv,
        cmd,
        frg,
        wnd,
        ts: 0,
        sn,
        una,
        len: 0,
    };
    let mut v = Vec::with_capacity(HEADER_LEN);
    hdr.encode(&mut v);
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Kcp;

    #[test]
    fn signals_round_trip_and_name_their_conversation() {
        for s in [
            Signal::Fin { sn: 7, gone: false },
            Signal::Fin {
                sn: u32::MAX,
                gone: true,
            },
            Signal::FinAck { sn: 3, gone: true },
        ] {
            let d = encode(42, s, 128, 9);
            assert_eq!(d.len(), HEADER_LEN);
            assert!(is_signal(&d));
            assert_eq!(parse(&d, 42), Some(s));
            assert_eq!(parse(&d, 43), None);
        }
        let mut longer = encode(42, Signal::FinAck { sn: 3, gone: false }, 128, 9).to_vec();
        longer.push(0);
        assert!(!is_signal(&longer));
    }

    #[test]
    fn a_raw_engine_drops_the_signal_and_keeps_its_state() {
        let mut kcp = Kcp::new(42);
        let before = (kcp.rcv_nxt(), kcp.remote_window(), kcp.snd_una());
        let d = encode(42, Signal::Fin { sn: 5, gone: true }, 0, 77);
        assert!(kcp.input(&d).is_err());
        assert_eq!(before, (kcp.rcv_nxt(), kcp.remote_window(), kcp.snd_una()));
    }
}
