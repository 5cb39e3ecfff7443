//! The async layer on real loopback sockets (127.0.0.1 only), next to its
//! peers: our `KcpStream`, the `tokio_kcp` crate, and tokio's `TcpStream`.
//!
//! - bulk: one client sends `BULK_BYTES` in 8 KB messages, the server checks
//!   every byte and answers one byte at the end; MB/s from first send to
//!   that answer;
//! - rtt: 64-byte request, 64-byte echo, `RTT_SAMPLES` round trips after a
//!   warm-up; p50 / p99 / mean;
//! - idle: `IDLE_CONNECTIONS` connections on one listener (both ends in this
//!   process), each after one exchange, then `IDLE_SECS` of nothing; the
//!   process CPU time spent meanwhile (getrusage).
//!
//! Every KCP implementation uses the same settings (see `SETTINGS`); tokio_kcp
//! runs twice, as configured and with its flush-on-write options, and so does
//! kcp-go (plain mode, a Go program run as a child process) when it has been
//! built, as configured and with its ACK-no-delay option. Prints a
//! table and writes `target/bench-async.json` for `scripts/bench-report.py`.
//! Run: `cargo bench -p ikcp-bench --profile bench-noabi --bench async_loopback`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const BULK_BYTES: usize = 32 << 20;
const MESSAGE: usize = 8 * 1024;
const RTT_WARMUP: usize = 200;
const RTT_SAMPLES: usize = 3000;
const IDLE_CONNECTIONS: usize = 1000;
const IDLE_SECS: u64 = 10;
/// Upper bound for any one measurement, so the bench always ends.
const LIMIT: Duration = Duration::from_secs(120);

const SETTINGS: &str = "message mode, MTU 1400, send/receive windows 1024/1024, \
nodelay 1, interval 10 ms, fast resend 2, congestion window off; TCP with TCP_NODELAY";

fn ours_config() -> KcpConfig {
    KcpConfig::new()
        .nodelay(true, 10, 2, true)
        .window_size(1024, 1024)
        .mtu(1400)
        .stream_mode(false)
}

fn their_config() -> tokio_kcp::KcpConfig {
    tokio_kcp::KcpConfig {
        mtu: 1400,
        nodelay: tokio_kcp::KcpNoDelayConfig::fastest(),
        wnd_size: (1024, 1024),
        stream: false,
        ..Default::default()
    }
}

/// tokio_kcp's own low-latency options on top: flush on every write and
/// after every input (by default it waits for its next 10 ms tick).
fn their_eager_config() -> tokio_kcp::KcpConfig {
    tokio_kcp::KcpConfig {
        flush_write: true,
        flush_acks_input: true,
        ..their_config()
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Byte `i` of the bulk stream, so the receiver can check every byte.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

fn chunk(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len).map(pattern).collect()
}

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {LIMIT:?}"))
}

#[derive(Clone, Copy, Debug)]
struct Bulk {
    bytes: usize,
    secs: f64,
}

#[derive(Clone, Debug)]
struct Rtt {
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    samples: usize,
}

fn rtt_stats(mut samples: Vec<Duration>) -> Rtt {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| us(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    Rtt {
        p50_us: at(0.50),
        p99_us: at(0.99),
        mean_us: samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64,
        samples: samples.len(),
    }
}

// ------------------------------------------------------------------ ours

async fn ours_bulk() -> Bulk {
    let listener = KcpListener::bind(any_port(), ours_config()).await.unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = 0;
        while got < BULK_BYTES {
            let m = s.recv().await.unwrap();
            assert!(
                m.iter().enumerate().all(|(i, b)| *b == pattern(got + i)),
                "corrupt data"
            );
            got += m.len();
        }
        s.send(b"!").await.unwrap();
        // Keep the connection until the client has the answer.
        let _ = s.recv().await;
    });
    let mut c = KcpStream::connect(addr, ours_config()).await.unwrap();
    let start = Instant::now();
    for offset in (0..BULK_BYTES).step_by(MESSAGE) {
        c.send(&chunk(offset, MESSAGE)).await.unwrap();
    }
    assert_eq!(&c.recv().await.unwrap()[..], b"!");
    let secs = start.elapsed().as_secs_f64();
    server.abort();
    Bulk {
        bytes: BULK_BYTES,
        secs,
    }
}

async fn ours_rtt() -> Rtt {
    let listener = KcpListener::bind(any_port(), ours_config()).await.unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        while let Ok(m) = s.recv().await {
            if s.send(&m).await.is_err() {
                break;
            }
        }
    });
    let mut c = KcpStream::connect(addr, ours_config()).await.unwrap();
    let request = [7u8; 64];
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for i in 0..RTT_WARMUP + RTT_SAMPLES {
        let t = Instant::now();
        c.send(&request).await.unwrap();
        let echo = c.recv().await.unwrap();
        assert_eq!(echo.len(), request.len());
        if i >= RTT_WARMUP {
            samples.push(t.elapsed());
        }
    }
    server.abort();
    rtt_stats(samples)
}

async fn ours_idle() -> (usize, f64) {
    let listener = KcpListener::bind(any_port(), ours_config()).await.unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            if let Ok(m) = s.recv().await {
                let _ = s.send(&m).await;
            }
            held.push(s);
        }
    });
    let mut clients = Vec::with_capacity(IDLE_CONNECTIONS);
    for _ in 0..IDLE_CONNECTIONS {
        let mut c = KcpStream::connect(addr, ours_config()).await.unwrap();
        c.send(b"hello").await.unwrap();
        assert_eq!(&c.recv().await.unwrap()[..], b"hello");
        clients.push(c);
    }
    let cpu = idle_cpu().await;
    drop(clients);
    server.abort();
    (IDLE_CONNECTIONS, cpu)
}

// ------------------------------------------------------------------ tokio_kcp

async fn theirs_bulk(config: tokio_kcp::KcpConfig) -> Bulk {
    let mut listener = tokio_kcp::KcpListener::bind(config, any_port())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < BULK_BYTES {
            let n = s.recv(&mut buf).await.unwrap();
            assert!(
                buf[..n]
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern(got + i)),
                "corrupt data"
            );
            got += n;
        }
        s.send(b"!").await.unwrap();
        let _ = s.recv(&mut buf).await;
    });
    let mut c = tokio_kcp::KcpStream::connect(&config, addr).await.unwrap();
    let start = Instant::now();
    for offset in (0..BULK_BYTES).step_by(MESSAGE) {
        c.send(&chunk(offset, MESSAGE)).await.unwrap();
    }
    let mut answer = [0u8; 16];
    let n = c.recv(&mut answer).await.unwrap();
    assert_eq!(&answer[..n], b"!");
    let secs = start.elapsed().as_secs_f64();
    server.abort();
    Bulk {
        bytes: BULK_BYTES,
        secs,
    }
}

async fn theirs_rtt(config: tokio_kcp::KcpConfig) -> Rtt {
    let mut listener = tokio_kcp::KcpListener::bind(config, any_port())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = s.recv(&mut buf).await {
            if s.send(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut c = tokio_kcp::KcpStream::connect(&config, addr).await.unwrap();
    let request = [7u8; 64];
    let mut echo = [0u8; 4096];
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for i in 0..RTT_WARMUP + RTT_SAMPLES {
        let t = Instant::now();
        c.send(&request).await.unwrap();
        let n = c.recv(&mut echo).await.unwrap();
        assert_eq!(n, request.len());
        if i >= RTT_WARMUP {
            samples.push(t.elapsed());
        }
    }
    server.abort();
    rtt_stats(samples)
}

async fn theirs_idle() -> (usize, f64) {
    let mut listener = tokio_kcp::KcpListener::bind(their_config(), any_port())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut buf = vec![0u8; 4096];
        while let Ok((mut s, _)) = listener.accept().await {
            if let Ok(n) = s.recv(&mut buf).await {
                let _ = s.send(&buf[..n]).await;
            }
            held.push(s);
        }
    });
    let mut clients = Vec::with_capacity(IDLE_CONNECTIONS);
    let mut buf = [0u8; 64];
    for _ in 0..IDLE_CONNECTIONS {
        let mut c = tokio_kcp::KcpStream::connect(&their_config(), addr)
            .await
            .unwrap();
        c.send(b"hello").await.unwrap();
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        clients.push(c);
    }
    let cpu = idle_cpu().await;
    drop(clients);
    server.abort();
    (IDLE_CONNECTIONS, cpu)
}

// ------------------------------------------------------------------ TCP

async fn tcp_bulk() -> Bulk {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < BULK_BYTES {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "TCP stream ended early");
            assert!(
                buf[..n]
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern(got + i)),
                "corrupt data"
            );
            got += n;
        }
        s.write_all(b"!").await.unwrap();
    });
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.set_nodelay(true).unwrap();
    let start = Instant::now();
    for offset in (0..BULK_BYTES).step_by(MESSAGE) {
        c.write_all(&chunk(offset, MESSAGE)).await.unwrap();
    }
    let mut answer = [0u8; 1];
    c.read_exact(&mut answer).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    server.await.unwrap();
    Bulk {
        bytes: BULK_BYTES,
        secs,
    }
}

async fn tcp_rtt() -> Rtt {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        while s.read_exact(&mut buf).await.is_ok() {
            if s.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.set_nodelay(true).unwrap();
    let request = [7u8; 64];
    let mut echo = [0u8; 64];
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for i in 0..RTT_WARMUP + RTT_SAMPLES {
        let t = Instant::now();
        c.write_all(&request).await.unwrap();
        c.read_exact(&mut echo).await.unwrap();
        if i >= RTT_WARMUP {
            samples.push(t.elapsed());
        }
    }
    drop(c);
    let _ = server.await;
    rtt_stats(samples)
}

// ------------------------------------------------------------------ kcp-go

/// The kcp-go program (`benches/go/kcpgo_bench.go`), if it has been built
/// (`scripts/bench-report.sh` does when Go and kcp-go can be installed).
fn kcp_go_binary() -> Option<PathBuf> {
    let path = target_dir().join("kcpgo-bench");
    path.exists().then_some(path)
}

/// The number after `"key": ` in a flat JSON line.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &json[at..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// Runs the kcp-go program (`eager`: with its ACK-no-delay option), bounded
/// in time; `None` with a note when it is missing or fails.
fn kcp_go(eager: bool) -> Option<(Bulk, Rtt)> {
    let binary = kcp_go_binary()?;
    let mut cmd = std::process::Command::new("timeout");
    cmd.arg(LIMIT.as_secs().to_string()).arg(&binary);
    if eager {
        cmd.arg("eager");
    }
    let out = match cmd.output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            eprintln!(
                "kcp-go bench failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Err(e) => {
            eprintln!("kcp-go bench did not start: {e}");
            return None;
        }
    };
    let n = |key| json_number(&out, key);
    Some((
        Bulk {
            bytes: n("bytes")? as usize,
            secs: n("secs")?,
        },
        Rtt {
            p50_us: n("p50_us")?,
            p99_us: n("p99_us")?,
            mean_us: n("mean_us")?,
            samples: n("samples")? as usize,
        },
    ))
}

// ------------------------------------------------------------------ plumbing

/// Process CPU time (user + system), in seconds.
fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds this process spends during `IDLE_SECS` of doing nothing.
async fn idle_cpu() -> f64 {
    // Let connection set-up traffic settle first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = process_cpu_secs();
    tokio::time::sleep(Duration::from_secs(IDLE_SECS)).await;
    process_cpu_secs() - before
}

/// Two sockets per connection (client and listener side share one socket on
/// the listener): raise the soft descriptor limit to the hard one.
fn raise_fd_limit() {
    // SAFETY: reading and setting this process's own limit.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn output_path() -> PathBuf {
    target_dir().join("bench-async.json")
}

fn bulk_json(b: Bulk) -> String {
    format!(
        "{{\"mb_per_s\": {:.3}, \"bytes\": {}, \"secs\": {:.4}}}",
        b.bytes as f64 / b.secs / 1e6,
        b.bytes,
        b.secs
    )
}

fn rtt_json(r: &Rtt) -> String {
    format!(
        "{{\"p50_us\": {:.1}, \"p99_us\": {:.1}, \"mean_us\": {:.1}, \"samples\": {}}}",
        r.p50_us, r.p99_us, r.mean_us, r.samples
    )
}

fn idle_json((connections, cpu): (usize, f64)) -> String {
    format!(
        "{{\"connections\": {connections}, \"secs\": {IDLE_SECS}, \"cpu_secs\": {cpu:.4}, \"cpu_percent\": {:.3}}}",
        cpu / IDLE_SECS as f64 * 100.0
    )
}

fn main() {
    // `cargo bench` passes harness flags; a filter argument skips the run
    // when it names another bench.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"async_loopback".contains(&a))
    {
        return;
    }
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut bulk = vec![
            ("ours", bounded("ours bulk", ours_bulk()).await),
            ("tokio_kcp", bounded("tokio_kcp bulk", theirs_bulk(their_config())).await),
            (
                "tokio_kcp_eager",
                bounded("tokio_kcp eager bulk", theirs_bulk(their_eager_config())).await,
            ),
            ("tcp", bounded("tcp bulk", tcp_bulk()).await),
        ];
        let mut rtt = vec![
            ("ours", bounded("ours rtt", ours_rtt()).await),
            ("tokio_kcp", bounded("tokio_kcp rtt", theirs_rtt(their_config())).await),
            (
                "tokio_kcp_eager",
                bounded("tokio_kcp eager rtt", theirs_rtt(their_eager_config())).await,
            ),
            ("tcp", bounded("tcp rtt", tcp_rtt()).await),
        ];
        for (name, eager) in [("kcp_go", false), ("kcp_go_eager", true)] {
            match kcp_go(eager) {
                Some((b, r)) => {
                    bulk.push((name, b));
                    rtt.push((name, r));
                }
                None => println!("{name}: not measured (build benches/go/kcpgo_bench.go first)"),
            }
        }
        let idle = [
            ("ours", bounded("ours idle", ours_idle()).await),
            ("tokio_kcp", bounded("tokio_kcp idle", theirs_idle()).await),
        ];

        println!("async loopback ({SETTINGS})");
        println!("{:<16} {:>10} {:>10} {:>10} {:>10}", "", "MB/s", "p50 µs", "p99 µs", "mean µs");
        for ((name, b), (_, r)) in bulk.iter().zip(&rtt) {
            println!(
                "{name:<16} {:>10.1} {:>10.0} {:>10.0} {:>10.0}",
                b.bytes as f64 / b.secs / 1e6,
                r.p50_us,
                r.p99_us,
                r.mean_us
            );
        }
        for (name, (n, cpu)) in &idle {
            println!(
                "{name:<16} {n} idle connections, {IDLE_SECS} s: {cpu:.3} CPU s ({:.2}% of one core)",
                cpu / IDLE_SECS as f64 * 100.0
            );
        }

        let section = |items: Vec<(&str, String)>| {
            items
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let json = format!(
            "{{\"bulk\": {{{}}}, \"rtt\": {{{}}}, \"idle\": {{{}}}, \"settings\": \"{SETTINGS}\"}}\n",
            section(bulk.iter().map(|(k, b)| (*k, bulk_json(*b))).collect()),
            section(rtt.iter().map(|(k, r)| (*k, rtt_json(r))).collect()),
            section(idle.iter().map(|(k, i)| (*k, idle_json(*i))).collect()),
        );
        let path = output_path();
        std::fs::write(&path, json).unwrap();
        println!("wrote {}", path.display());
    });
}
