//! KCP's 24-byte segment header, written independently of both
//! implementations: to forge datagrams (valid, truncated, lying) for the
//! input tests, and to print datagrams readably when two implementations
//! disagree.

use std::fmt::Write;

pub const OVERHEAD: usize = 24;
pub const CMD_PUSH: u8 = 81;
pub const CMD_ACK: u8 = 82;
pub const CMD_WASK: u8 = 83;
pub const CMD_WINS: u8 = 84;

/// One segment as it appears on the wire. `len` is the header field, which a
/// forged segment may set to anything; `data` is what actually follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub conv: u32,
    pub cmd: u8,
    pub frg: u8,
    pub wnd: u16,
    pub ts: u32,
    pub sn: u32,
    pub una: u32,
    pub len: u32,
    pub data: Vec<u8>,
}

impl Segment {
    /// A well-formed segment: the `len` field matches the payload.
    pub fn new(conv: u32, cmd: u8, sn: u32, data: Vec<u8>) -> Segment {
        Segment {
            conv,
            cmd,
            frg: 0,
            wnd: 128,
            ts: 0,
            sn,
            una: 0,
            len: data.len() as u32,
            data,
        }
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.conv.to_le_bytes());
        out.push(self.cmd);
        out.push(self.frg);
        out.extend_from_slice(&self.wnd.to_le_bytes());
        out.extend_from_slice(&self.ts.to_le_bytes());
        out.extend_from_slice(&self.sn.to_le_bytes());
        out.extend_from_slice(&self.una.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.data);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(OVERHEAD + self.data.len());
        self.encode_into(&mut v);
        v
    }
}

/// Reads the header at the start of `b` (which must hold at least 24 bytes).
pub fn header(b: &[u8]) -> Segment {
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    Segment {
        conv: u32_at(0),
        cmd: b[4],
        frg: b[5],
        wnd: u16::from_le_bytes([b[6], b[7]]),
        ts: u32_at(8),
        sn: u32_at(12),
        una: u32_at(16),
        len: u32_at(20),
        data: Vec::new(),
    }
}

/// Splits a datagram into segments the way a lenient reader would; stops at
/// the first header whose length field overruns the datagram. Returns the
/// segments and the number of bytes left unparsed.
pub fn segments(mut b: &[u8]) -> (Vec<Segment>, usize) {
    let mut out = Vec::new();
    while b.len() >= OVERHEAD {
        let mut s = header(b);
        let body = &b[OVERHEAD..];
        if s.len as usize > body.len() {
            break;
        }
        s.data = body[..s.len as usize].to_vec();
        b = &body[s.len as usize..];
        out.push(s);
    }
    (out, b.len())
}

fn cmd_name(cmd: u8) -> String {
    match cmd {
        CMD_PUSH => "PUSH".into(),
        CMD_ACK => "ACK".into(),
        CMD_WASK => "WASK".into(),
        CMD_WINS => "WINS".into(),
        c => format!("cmd{c}"),
    }
}

/// One line per datagram: `[PUSH sn=3 frg=0 una=1 wnd=128 ts=100 len=5] ...`.
pub fn describe(b: &[u8]) -> String {
    let (segs, rest) = segments(b);
    let mut s = format!("{} bytes", b.len());
    for g in &segs {
        let _ = write!(
            s,
            " [{} conv={:#x} sn={} frg={} una={} wnd={} ts={} len={}]",
            cmd_name(g.cmd),
            g.conv,
            g.sn,
            g.frg,
            g.una,
            g.wnd,
            g.ts,
            g.len
        );
    }
    if rest > 0 {
        let _ = write!(s, " +{rest} unparsed bytes");
    }
    s
}

/// Hex dump, 32 bytes per line, cut after `max` bytes.
pub fn hex(b: &[u8], max: usize) -> String {
    let mut s = String::new();
    for (i, chunk) in b[..b.len().min(max)].chunks(32).enumerate() {
        let _ = write!(s, "\n      {:05x}:", i * 32);
        for byte in chunk {
            let _ = write!(s, " {byte:02x}");
        }
    }
    if b.len() > max {
        let _ = write!(s, "\n      ... ({} more bytes)", b.len() - max);
    }
    s
}

/// Short hex for trace lines.
pub fn hex_short(b: &[u8], max: usize) -> String {
    let mut s: String = b.iter().take(max).map(|x| format!("{x:02x}")).collect();
    if b.len() > max {
        s.push_str("..");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse_round_trips() {
        let mut a = Segment::new(7, CMD_PUSH, 3, b"hello".to_vec());
        a.frg = 2;
        a.wnd = 999;
        a.ts = 0xdead_beef;
        a.una = 1;
        let b = Segment::new(7, CMD_ACK, 9, Vec::new());
        let mut dgram = a.encode();
        b.encode_into(&mut dgram);
        dgram.extend_from_slice(&[1, 2, 3]);
        let (segs, rest) = segments(&dgram);
        assert_eq!(segs, vec![a, b]);
        assert_eq!(rest, 3);
        assert!(describe(&dgram).contains("[PUSH conv=0x7 sn=3 frg=2"));
    }
}
