//! `--record FILE`: the datagrams of a run as a pcap capture (Ethernet, IPv4,
//! UDP on 127.0.0.0/8), which `decode`, tcpdump and Wireshark all read.

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

/// Writes UDP datagrams into a pcap file.
pub struct Recorder {
    out: PcapWriter<BufWriter<File>>,
    frame: Vec<u8>,
    pub written: u64,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Recorder, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ..PcapHeader::default()
        };
        let out = PcapWriter::with_header(BufWriter::new(file), header)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Recorder {
            out,
            frame: Vec::new(),
            written: 0,
        })
    }

    /// Appends one datagram from `src` to `dst`, stamped `at` after the epoch
    /// (relative times are fine: only differences matter when reading).
    pub fn datagram(
        &mut self,
        at: Duration,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> Result<(), String> {
        // Loopback captures carry zero MAC addresses too.
        let builder = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(src.ip().octets(), dst.ip().octets(), 64)
            .udp(src.port(), dst.port());
        self.frame.clear();
        builder
            .write(&mut self.frame, payload)
            .map_err(|e| format!("cannot frame a datagram of {} bytes: {e}", payload.len()))?;
        let packet = PcapPacket::new(at, self.frame.len() as u32, &self.frame);
        self.out
            .write_packet(&packet)
            .map_err(|e| format!("cannot write the capture: {e}"))?;
        self.written += 1;
        Ok(())
    }
}
