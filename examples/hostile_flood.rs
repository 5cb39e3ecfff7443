//! Attacks a KCP echo server the way a stranger could, and reports what its
//! clients and its memory saw.
//!
//! ```text
//! cargo run --release --example hostile_flood -- [flood|hold] [options]
//!   flood: forged datagrams at --rate per second for --seconds (30% garbage,
//!          30% forged openings, 20% the good clients' conversations from
//!          other addresses, 20% malformed), while --clients good clients
//!          echo; halfway through, a new client connects.
//!   hold:  --conns connections, each sent 125 out-of-order full segments
//!          (and 60,000-byte ones), its data acknowledged and kept alive
//!          with probes every second, then held as long as --seconds.
//! options: --rate N (100000)  --seconds S (60)  --clients K (4)
//!          --conns N (4096)   --sources N (32 source IPs on 127.0.0.0/8)
//!          --target ADDR --pid PID   attack a server already running (e.g.
//!          `perf_test_server 127.0.0.1:4000 gaming`) and read its RSS;
//!          without them the server (gaming preset) runs in this process.
//! ```

#[path = "../tests/hostile_util/mod.rs"]
mod hostile_util;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostile_util::{echo_once, echo_server, flood, percentile, segment, FloodMix};
use kcp::engine::{Command, SegmentHeader};
use kcp::runtime::{KcpConfig, KcpListener, KcpStream};

struct Options {
    mode: String,
    rate: u32,
    seconds: u64,
    clients: u32,
    conns: u32,
    sources: u8,
    target: Option<SocketAddr>,
    pid: Option<u32>,
}

fn options() -> Options {
    let mut o = Options {
        mode: "flood".into(),
        rate: 100_000,
        seconds: 60,
        clients: 4,
        conns: 4096,
        sources: 32,
        target: None,
        pid: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).cloned().unwrap_or_default();
        let bad = |what: &str| -> ! {
            eprintln!("hostile_flood: bad {what}; see the example's documentation");
            std::process::exit(2)
        };
        match args[i].as_str() {
            "flood" | "hold" => {
                o.mode = args[i].clone();
                i += 1;
                continue;
            }
            "--rate" => o.rate = value().parse().unwrap_or_else(|_| bad("--rate")),
            "--seconds" => o.seconds = value().parse().unwrap_or_else(|_| bad("--seconds")),
            "--clients" => o.clients = value().parse().unwrap_or_else(|_| bad("--clients")),
            "--conns" => o.conns = value().parse().unwrap_or_else(|_| bad("--conns")),
            "--sources" => o.sources = value().parse().unwrap_or_else(|_| bad("--sources")),
            "--target" => o.target = Some(value().parse().unwrap_or_else(|_| bad("--target"))),
            "--pid" => o.pid = Some(value().parse().unwrap_or_else(|_| bad("--pid"))),
            other => bad(other),
        }
        i += 2;
    }
    o
}

fn rss_mb(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Keeps one good client echoing until `stop`; returns its round trips and
/// how many rounds failed (a timeout or wrong bytes end the client).
async fn good_client(mut c: KcpStream, id: u32, stop: Arc<AtomicBool>) -> (Vec<Duration>, u32) {
    let mut rtts = Vec::new();
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        let r = tokio::spawn(async move {
            let t = echo_once(&mut c, id, round).await;
            (c, t)
        })
        .await;
        match r {
            Ok((back, t)) => {
                c = back;
                rtts.push(t);
            }
            Err(_) => return (rtts, 1),
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (rtts, 0)
}

#[tokio::main]
async fn main() {
    // Log lines on `RUST_LOG=debug` (e.g. `RUST_LOG=kcp=debug cargo run --example hostile_flood`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let o = options();
    let mut local_server = None;
    let addr = match o.target {
        Some(a) => a,
        None => {
            let config = KcpConfig::gaming().idle_timeout(Some(Duration::from_secs(10)));
            let l = KcpListener::bind("127.0.0.1:0".parse().unwrap(), config)
                .await
                .unwrap();
            let a = l.local_addr();
            local_server = Some(echo_server(l));
            a
        }
    };
    let sources: Vec<Ipv4Addr> = (1..=o.sources)
        .map(|i| Ipv4Addr::new(127, 0, 0, i))
        .collect();
    let listener = local_server.as_ref().map(|(l, _)| l.clone());
    let report = |t: u64| {
        let stats = listener
            .as_ref()
            .map(|l| format!(" {:?}", l.stats()))
            .unwrap_or_default();
        println!("t={t:>3}s rss {:.1} MB{stats}", rss_mb(o.pid));
    };
    println!(
        "hostile_flood {} against {addr}: rss before {:.1} MB",
        o.mode,
        rss_mb(o.pid)
    );
    let stop = Arc::new(AtomicBool::new(false));
    match o.mode.as_str() {
        "hold" => {
            let mss = KcpConfig::gaming().mss();
            let attacker = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
            // The attacker acknowledges what the server sends, so its
            // connections stay established instead of dying as dead peers.
            let acker = tokio::spawn(acknowledge(attacker.clone(), addr, stop.clone()));
            // Small probes every second keep every connection opened so far
            // alive (the server's idle timeout), from the start.
            let opened = Arc::new(AtomicU32::new(0));
            let prober = tokio::spawn(probe(attacker.clone(), addr, opened.clone(), stop.clone()));
            let started = Instant::now();
            for conv in 0..o.conns {
                opened.store(conv + 1, Ordering::Relaxed);
                let conv = 0x4000_0000 + conv;
                for sn in 0..2 {
                    let _ = attacker
                        .send_to(&segment(conv, Command::Push, sn, 1), addr)
                        .await;
                }
                for sn in 3..=127u32 {
                    let len = if sn % 40 == 0 { 60_000 } else { mss };
                    let _ = attacker
                        .send_to(&segment(conv, Command::Push, sn, len), addr)
                        .await;
                    if sn % 25 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            // Openings the rate limits refused are retransmitted, as a
            // KCP sender would, until every connection exists.
            for _ in 0..3 {
                for conv in 0..o.conns {
                    let conv = 0x4000_0000 + conv;
                    for sn in 0..2 {
                        let _ = attacker
                            .send_to(&segment(conv, Command::Push, sn, 1), addr)
                            .await;
                    }
                    if conv % 50 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            println!(
                "{} connections sent their out-of-order segments in {:?}",
                o.conns,
                started.elapsed()
            );
            for t in 0..o.seconds {
                report(t);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            stop.store(true, Ordering::Relaxed);
            prober.await.unwrap();
            println!(
                "the attacker acknowledged {} segments",
                acker.await.unwrap()
            );
        }
        _ => {
            let mut good = Vec::new();
            let mut convs = Vec::new();
            for id in 0..o.clients {
                let mut c = KcpStream::connect(addr, KcpConfig::gaming()).await.unwrap();
                echo_once(&mut c, id, 0).await;
                convs.push(c.conv());
                good.push(tokio::spawn(good_client(c, id, stop.clone())));
            }
            // The forged-conversation share aims at the good clients'
            // conversations, from other addresses.
            let mix = FloodMix {
                openings: 30,
                garbage: 30,
                malformed: 20,
                wrong_conv: 20,
            };
            let flooder = flood(addr, &sources, 4, o.rate, mix, convs, stop.clone());
            let mut newcomer = None;
            for t in 0..o.seconds {
                if t == o.seconds / 2 {
                    let stop = stop.clone();
                    newcomer = Some(tokio::spawn(async move {
                        let started = Instant::now();
                        let mut c = KcpStream::connect(addr, KcpConfig::gaming()).await.unwrap();
                        echo_once(&mut c, 999, 0).await;
                        let first = started.elapsed();
                        let mut round = 1;
                        while !stop.load(Ordering::Relaxed) {
                            echo_once(&mut c, 999, round).await;
                            round += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        first
                    }));
                }
                report(t);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            stop.store(true, Ordering::Relaxed);
            let sent = tokio::task::spawn_blocking(move || flooder.join().unwrap())
                .await
                .unwrap();
            let mut rtts = Vec::new();
            let mut failures = 0;
            for g in good {
                let (r, f) = g.await.unwrap();
                rtts.extend(r);
                failures += f;
            }
            let first = match newcomer {
                Some(n) => format!("{:?}", n.await.unwrap()),
                None => "not run".into(),
            };
            println!(
                "flood: {sent} datagrams in {} s ({:.0}/s); new client's first echo {first}; \
                 good clients: {} verified rounds, {failures} failed, p50 {:?}, p99 {:?}",
                o.seconds,
                sent as f64 / o.seconds as f64,
                rtts.len(),
                percentile(&mut rtts, 50),
                percentile(&mut rtts, 99),
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    println!("rss at the end {:.1} MB", rss_mb(o.pid));
    if let Some(l) = &listener {
        // Connections end on their idle timeout and give their memory back.
        for _ in 0..30 {
            if l.stats().connections_alive == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        println!(
            "after the connections closed: rss {:.1} MB {:?}",
            rss_mb(o.pid),
            l.stats()
        );
    }
}

/// Acknowledges every data segment `server` sends to `socket` until `stop`;
/// returns how many.
async fn acknowledge(
    socket: Arc<tokio::net::UdpSocket>,
    server: SocketAddr,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut buf = vec![0u8; 65_536];
    let mut acked = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await
        else {
            continue;
        };
        if from != server {
            continue;
        }
        let mut rest = &buf[..n];
        while let Some(h) = SegmentHeader::decode(rest) {
            if h.cmd == Command::Push as u8 {
                let mut ack = Vec::with_capacity(24);
                SegmentHeader {
                    conv: h.conv,
                    cmd: Command::Ack as u8,
                    wnd: 128,
                    ts: h.ts,
                    sn: h.sn,
                    una: 2,
                    ..Default::default()
                }
                .encode(&mut ack);
                let _ = socket.send_to(&ack, server).await;
                acked += 1;
            }
            let skip = (24 + h.len as usize).min(rest.len());
            rest = &rest[skip..];
        }
    }
    acked
}

/// Sends a window probe to each of the first `opened` connections every
/// second until `stop`.
async fn probe(
    socket: Arc<tokio::net::UdpSocket>,
    server: SocketAddr,
    opened: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        for conv in 0..opened.load(Ordering::Relaxed) {
            let probe = segment(0x4000_0000 + conv, Command::WindowAsk, 0, 0);
            let _ = socket.send_to(&probe, server).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
