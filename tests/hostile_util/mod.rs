//! Shared by the `hostile_*` tests: an echo server whose listener stays
//! observable, verified echo clients, forged segments and the process RSS.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kcp::engine::{Command, SegmentHeader};
use kcp::runtime::{KcpConfig, KcpListener, KcpStream};

/// Serves `listener` with an echo handler per connection; returns the
/// listener (for its stats) and the serving task.
pub fn echo_server(listener: KcpListener) -> (Arc<KcpListener>, tokio::task::JoinHandle<()>) {
    let l = Arc::new(listener);
    let l2 = l.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l2.accept().await {
            tokio::spawn(async move {
                while let Ok(m) = s.recv().await {
                    if s.send(&m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (l, task)
}

/// [`echo_server`] on 127.0.0.1 (a port of the OS's choosing) with the
/// test configuration; also returns its address.
pub async fn loopback_echo_server() -> (Arc<KcpListener>, SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::testing(0.0))
        .await
        .unwrap();
    let addr = listener.local_addr();
    let (listener, task) = echo_server(listener);
    (listener, addr, task)
}

/// `n` clients of `server` (ids `0..n`), each past one checked echo.
pub async fn connected_clients(server: SocketAddr, n: u32) -> Vec<KcpStream> {
    let mut clients = Vec::new();
    for id in 0..n {
        let mut c = KcpStream::connect(server, KcpConfig::testing(0.0))
            .await
            .unwrap();
        echo_once(&mut c, id, 0).await;
        clients.push(c);
    }
    clients
}

/// A message whose bytes say who sent it and when.
pub fn message(id: u32, round: u32) -> Vec<u8> {
    let len = 16 + (id as usize * 131 + round as usize * 7) % 1500;
    (0..len)
        .map(|i| (i as u32 ^ id.wrapping_mul(31) ^ round.wrapping_mul(7)) as u8)
        .collect()
}

/// One echo round trip, checked byte for byte; returns its duration.
pub async fn echo_once(c: &mut KcpStream, id: u32, round: u32) -> Duration {
    let m = message(id, round);
    let start = Instant::now();
    c.send(&m).await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(5), c.recv())
        .await
        .unwrap_or_else(|_| panic!("client {id} round {round}: no echo within 5 s"))
        .unwrap();
    assert_eq!(&back[..], &m[..], "client {id} round {round}: wrong echo");
    start.elapsed()
}

/// Connects from `local` (an address on 127.0.0.0/8) and echoes `rounds`
/// times; returns the round-trip times.
pub async fn echo_client(server: SocketAddr, id: u32, rounds: u32) -> Vec<Duration> {
    let mut c = KcpStream::connect(server, KcpConfig::testing(0.0))
        .await
        .unwrap();
    let mut rtts = Vec::new();
    for r in 0..rounds {
        rtts.push(echo_once(&mut c, id, r).await);
    }
    rtts
}

/// One segment, with `payload_len` bytes of payload (the length field says
/// the same).
pub fn segment(conv: u32, cmd: Command, sn: u32, payload_len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + payload_len);
    SegmentHeader {
        conv,
        cmd: cmd as u8,
        sn,
        wnd: 128,
        len: payload_len as u32,
        ..Default::default()
    }
    .encode(&mut v);
    v.resize(24 + payload_len, 0x5a);
    v
}

/// Resident memory of this process, where the platform says (Linux).
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The p-th percentile (0..=100) of `v`.
pub fn percentile(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[(v.len() * p / 100).min(v.len() - 1)]
}

/// What a flood thread sends.
#[derive(Debug, Clone, Copy)]
pub struct FloodMix {
    /// Data segments with sequence number 0 and a fresh conversation: each
    /// looks like a new client.
    pub openings: u32,
    /// Random bytes.
    pub garbage: u32,
    /// Segments that do not parse: truncated payload, unknown command.
    pub malformed: u32,
    /// Well-formed segments (sn > 0, ACKs) for conversations that exist
    /// elsewhere or nowhere.
    pub wrong_conv: u32,
}

impl FloodMix {
    /// Forged openings only.
    pub const OPENINGS: FloodMix = FloodMix {
        openings: 1,
        garbage: 0,
        malformed: 0,
        wrong_conv: 0,
    };
}

/// A flood of forged datagrams from sockets on several 127.0.0.0/8
/// addresses (each address a different "source IP"), sent by a plain thread
/// at `rate` datagrams per second until `stop` is set. Returns the count sent.
pub fn flood(
    target: SocketAddr,
    sources: &[std::net::Ipv4Addr],
    sockets_per_source: usize,
    rate: u32,
    mix: FloodMix,
    target_convs: Vec<u32>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let sockets: Vec<std::net::UdpSocket> = sources
        .iter()
        .flat_map(|ip| {
            (0..sockets_per_source).map(move |_| std::net::UdpSocket::bind((*ip, 0)).unwrap())
        })
        .collect();
    std::thread::spawn(move || {
        let mut seed = 0x243f_6a88_85a3_08d3u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let total = mix.openings + mix.garbage + mix.malformed + mix.wrong_conv;
        let per_ms = (rate / 1000).max(1);
        let start = Instant::now();
        let mut sent = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for _ in 0..per_ms {
                let r = next();
                let pick = (r % u64::from(total)) as u32;
                let conv = (r >> 32) as u32 | 1;
                let d = if pick < mix.openings {
                    segment(conv, Command::Push, 0, (r >> 8) as usize % 64)
                } else if pick < mix.openings + mix.garbage {
                    (0..1 + (r >> 16) as usize % 200)
                        .map(|i| (r >> (i % 57)) as u8)
                        .collect()
                } else if pick < mix.openings + mix.garbage + mix.malformed {
                    let mut d = segment(conv, Command::Push, 0, 100);
                    if r & 1 == 0 {
                        d.truncate(60);
                    } else {
                        d[4] = 99;
                    }
                    d
                } else {
                    let conv = if target_convs.is_empty() || r & 1 == 0 {
                        conv
                    } else {
                        target_convs[(r >> 1) as usize % target_convs.len()]
                    };
                    let cmd = if r & 2 == 0 {
                        Command::Push
                    } else {
                        Command::Ack
                    };
                    segment(conv, cmd, 1 + (r >> 40) as u32 % 100, 16)
                };
                let s = &sockets[(r >> 24) as usize % sockets.len()];
                let _ = s.send_to(&d, target);
                sent += 1;
            }
            // Paced by the clock, not by sleeps that a busy machine stretches.
            let due = start + Duration::from_micros(sent * 1_000_000 / u64::from(rate));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        sent
    })
}
