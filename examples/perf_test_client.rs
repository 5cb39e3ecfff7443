//! Measures throughput and round-trip times against `perf_test_server`.
//!
//! `cargo run --release --example perf_test_client -- 127.0.0.1:4000 --preset fast --size 1024 --duration 10`
//!
//! Options: `--preset P` (must match the server's), `--size BYTES` per
//! message, `--window N` messages in flight, `--duration SECONDS`.

use std::time::{Duration, Instant};

use kcp::runtime::{KcpConfig, KcpStream};

fn preset(name: &str) -> Option<KcpConfig> {
    Some(match name {
        "normal" => KcpConfig::normal(),
        "fast" => KcpConfig::new().fast_mode(),
        "turbo" => KcpConfig::turbo(),
        "gaming" => KcpConfig::gaming(),
        "realtime" => KcpConfig::realtime(),
        "file" => KcpConfig::file_transfer(),
        _ => return None,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Log lines on `RUST_LOG=debug` (e.g. `RUST_LOG=kcp=debug cargo run --example perf_test_client`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let mut args = std::env::args().skip(1);
    let Some(addr) = args.next() else {
        eprintln!("usage: perf_test_client <addr> [--preset P] [--size BYTES] [--window N] [--duration SECONDS]");
        std::process::exit(2);
    };
    let (mut name, mut size, mut window, mut secs) =
        ("fast".to_string(), 1024usize, 32usize, 10u64);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--preset" => name = value,
            "--size" => size = value.parse()?,
            "--window" => window = value.parse()?,
            "--duration" => secs = value.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    let config = preset(&name)
        .ok_or(format!("unknown preset {name:?}"))?
        .stream_mode(false);
    // Each message carries its send time (µs since start) in the first 8 bytes.
    let size = size.clamp(8, config.max_message_size());
    let mut client = KcpStream::connect(addr.parse()?, config).await?;
    println!("perf_test_client: {name} preset, {size}-byte messages, {window} in flight, {secs} s -> {addr}");

    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut msg = vec![0x5au8; size];
    let (mut in_flight, mut received, mut bytes) = (0usize, 0u64, 0u64);
    let mut rtts = Vec::new();
    let mut next_report = start + Duration::from_secs(1);
    let (mut last_bytes, mut last_at) = (0u64, start);
    loop {
        let now = Instant::now();
        while in_flight < window && now < end {
            msg[..8].copy_from_slice(&(start.elapsed().as_micros() as u64).to_le_bytes());
            client.send(&msg).await?;
            in_flight += 1;
        }
        if in_flight == 0 {
            break;
        }
        let echo = match tokio::time::timeout(Duration::from_secs(5), client.recv()).await {
            Ok(r) => r?,
            Err(_) => {
                return Err("no echo for 5 s; is the server running with the same preset?".into())
            }
        };
        let sent = u64::from_le_bytes(echo[..8].try_into()?);
        rtts.push(start.elapsed().saturating_sub(Duration::from_micros(sent)));
        in_flight -= 1;
        received += 1;
        bytes += echo.len() as u64;
        if Instant::now() >= next_report {
            let rate = (bytes - last_bytes) as f64 / last_at.elapsed().as_secs_f64();
            let st = client.stats();
            println!(
                "[{:>4.1}s] {received} echoes, {:.2} MB/s, srtt {:?}, cwnd {}, retransmissions {}",
                start.elapsed().as_secs_f64(),
                rate / 1e6,
                st.srtt,
                st.cwnd,
                st.retransmissions
            );
            (last_bytes, last_at) = (bytes, Instant::now());
            next_report += Duration::from_secs(1);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    rtts.sort();
    let st = client.stats();
    println!("--- summary ---");
    println!(
        "echoes: {received}, {bytes} bytes each way in {elapsed:.2} s = {:.2} MB/s",
        bytes as f64 / elapsed / 1e6
    );
    println!(
        "rtt: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.9),
        percentile(&rtts, 0.99),
        rtts.last().copied().unwrap_or_default()
    );
    println!(
        "datagrams out {}, in {}; retransmissions {} (fast {}), lost {}",
        st.datagrams_out,
        st.datagrams_in,
        st.retransmissions,
        st.fast_retransmissions,
        st.lost_segments
    );
    Ok(())
}
