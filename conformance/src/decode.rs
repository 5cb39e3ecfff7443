//! `decode`: KCP datagrams from a pcap capture of UDP traffic, one line per
//! segment, like tcpdump output.

use std::fs::File;
use std::io::BufReader;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use ffi_tests::wire::{self, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS};
use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;
use serde::Serialize;

use crate::report;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// A pcap file (tcpdump -w, or `--record` of `abi` / `peer`).
    pub file: PathBuf,
    /// Only datagrams from or to this UDP port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Only segments of this conversation id (decimal or 0x hex).
    #[arg(long, value_parser = parse_u32)]
    pub conv: Option<u32>,
    /// Also print each segment's payload in hex (first 64 bytes).
    #[arg(long)]
    pub hex: bool,
    /// Write the decoded datagrams as JSON to this file ("-" for stdout,
    /// instead of the text).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Parses `123` or `0x7b`.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

/// Parses `123` or `0x7b`.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

/// One KCP segment header.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SegmentHeader {
    pub conv: u32,
    pub cmd: String,
    pub frg: u8,
    pub wnd: u16,
    pub ts: u32,
    pub sn: u32,
    pub una: u32,
    pub len: u32,
}

/// One UDP datagram of the capture, decoded.
#[derive(Clone, Debug, Serialize)]
pub struct Datagram {
    /// Seconds since the first packet of the capture.
    pub time: f64,
    pub src: String,
    pub dst: String,
    pub bytes: usize,
    pub segments: Vec<SegmentHeader>,
    /// Bytes after the last whole segment (not KCP, or a cut datagram).
    pub unparsed: usize,
    /// Each segment's payload.
    #[serde(skip)]
    pub payloads: Vec<Vec<u8>>,
}

/// The UDP part of a captured frame.
struct Udp<'a> {
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &'a [u8],
}

pub fn cmd_name(cmd: u8) -> String {
    match cmd {
        CMD_PUSH => "PUSH".into(),
        CMD_ACK => "ACK".into(),
        CMD_WASK => "WASK".into(),
        CMD_WINS => "WINS".into(),
        c => format!("cmd{c}"),
    }
}

/// The UDP endpoints and payload of one captured frame, if it is UDP over IPv4.
fn udp_of(link: DataLink, frame: &[u8]) -> Option<Udp<'_>> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(frame),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(frame),
        DataLink::RAW | DataLink::IPV4 => SlicedPacket::from_ip(frame),
        // BSD loopback: a 4-byte address family, then the IP packet.
        DataLink::NULL | DataLink::LOOP if frame.len() > 4 => SlicedPacket::from_ip(&frame[4..]),
        _ => return None,
    }
    .ok()?;
    let (src, dst) = match sliced.net? {
        NetSlice::Ipv4(ip) => (ip.header().source_addr(), ip.header().destination_addr()),
        NetSlice::Ipv6(_) => return None,
    };
    match sliced.transport? {
        TransportSlice::Udp(udp) => Some(Udp {
            src: (src, udp.source_port()),
            dst: (dst, udp.destination_port()),
            payload: udp.payload(),
        }),
        _ => None,
    }
}

/// Decodes every UDP datagram of the capture at `path`.
pub fn read_capture(path: &PathBuf) -> Result<Vec<Datagram>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = PcapReader::new(BufReader::new(file))
        .map_err(|e| format!("{} is not a pcap file: {e}", path.display()))?;
    let link = reader.header().datalink;
    let mut out = Vec::new();
    let mut t0: Option<Duration> = None;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(Udp { src, dst, payload }) = udp_of(link, &packet.data) else {
            continue;
        };
        let t0 = *t0.get_or_insert(packet.timestamp);
        let (segs, unparsed) = wire::segments(payload);
        let datagram = Datagram {
            time: packet.timestamp.saturating_sub(t0).as_secs_f64(),
            src: format!("{}:{}", src.0, src.1),
            dst: format!("{}:{}", dst.0, dst.1),
            bytes: payload.len(),
            segments: segs
                .iter()
                .map(|s| SegmentHeader {
                    conv: s.conv,
                    cmd: cmd_name(s.cmd),
                    frg: s.frg,
                    wnd: s.wnd,
                    ts: s.ts,
                    sn: s.sn,
                    una: s.una,
                    len: s.len,
                })
                .collect(),
            unparsed,
            payloads: Vec::new(),
        };
        out.push(Datagram {
            payloads: segs.into_iter().map(|s| s.data).collect(),
            ..datagram
        });
    }
    Ok(out)
}

pub fn run(args: &Args) -> Result<bool, String> {
    let mut datagrams = read_capture(&args.file)?;
    if let Some(p) = args.port {
        let port = |a: &str| a.rsplit(':').next().and_then(|x| x.parse::<u16>().ok());
        datagrams.retain(|d| port(&d.src) == Some(p) || port(&d.dst) == Some(p));
    }
    if let Some(conv) = args.conv {
        for d in &mut datagrams {
            let keep: Vec<bool> = d.segments.iter().map(|s| s.conv == conv).collect();
            let mut k = keep.iter();
            d.segments.retain(|_| *k.next().unwrap());
            let mut k = keep.iter();
            d.payloads.retain(|_| *k.next().unwrap());
        }
        datagrams.retain(|d| !d.segments.is_empty());
    }
    if !report::json_to_stdout(&args.json) {
        for d in &datagrams {
            report::emit(&format_datagram(d, args.hex));
        }
        let segments: usize = datagrams.iter().map(|d| d.segments.len()).sum();
        report::emit(&format!(
            "{} datagrams, {} KCP segments\n",
            datagrams.len(),
            segments
        ));
    }
    report::write_json(&args.json, &datagrams)?;
    Ok(true)
}

/// tcpdump-like text: one line per datagram, one indented line per segment.
pub fn format_datagram(d: &Datagram, hex: bool) -> String {
    let mut s = format!(
        "{:10.6} {} > {}: UDP {} bytes, {} segment(s){}\n",
        d.time,
        d.src,
        d.dst,
        d.bytes,
        d.segments.len(),
        if d.unparsed > 0 {
            format!(", {} bytes not KCP", d.unparsed)
        } else {
            String::new()
        }
    );
    for (g, data) in d.segments.iter().zip(&d.payloads) {
        s.push_str(&format!(
            "    conv={:#010x} cmd={:<4} frg={:<3} wnd={:<5} ts={:<10} sn={:<6} una={:<6} len={}\n",
            g.conv, g.cmd, g.frg, g.wnd, g.ts, g.sn, g.una, g.len
        ));
        if hex && !data.is_empty() {
            s.push_str(&format!("      {}\n", wire::hex_short(data, 64)));
        }
    }
    s
}
