//! A reader that falls behind closes the receive window. Reading must reopen
//! it promptly with a window update, also when that update is lost, instead
//! of leaving the sender to discover it with its next window probe (seconds
//! later). Runs over the in-memory network with tokio's paused clock, so the
//! durations below are virtual time and the runs are reproducible.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kcp::engine::{segments, Command};
use kcp::runtime::{KcpConfig, KcpListener, KcpStream, LinkConditions, MemoryNetwork};
use support::hooked::{Hooked, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Counts the window probes (WASK) in the datagrams a sender transmits.
fn count_probes(
    probes: Arc<AtomicUsize>,
) -> impl Fn(&[u8], &mut std::task::Context<'_>) -> Verdict {
    move |d, _| {
        let asks = segments(d).filter(|(_, h)| h.cmd == Command::WindowAsk as u8);
        probes.fetch_add(asks.count(), Ordering::Relaxed);
        Verdict::Pass
    }
}

struct SlowReaderRun {
    longest_read_wait: Duration,
    sender_probes: usize,
}

/// A writer pushing `total` bytes as fast as it can, kcp-go's deployment
/// settings, and a reader that naps `nap` after every `every` bytes.
async fn slow_reader(
    loss: f64,
    seed: u64,
    total: usize,
    every: usize,
    nap: Duration,
) -> SlowReaderRun {
    let net = MemoryNetwork::new(LinkConditions {
        loss,
        delay: Duration::from_millis(5),
        seed,
        ..Default::default()
    });
    let config = KcpConfig::new()
        .nodelay(true, 10, 2, true)
        .window_size(1024, 1024)
        .stream_mode(true);
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let probes = Arc::new(AtomicUsize::new(0));
    let client_transport = Hooked::new(net.bind(None), count_probes(probes.clone()));
    let client =
        KcpStream::connect_with_transport(client_transport, listener.local_addr(), 7, config)
            .unwrap();
    let (_keep_read_half, mut writer) = client.into_split();
    tokio::spawn(async move {
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        while sent < total {
            writer.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        writer.flush().await.unwrap();
        std::future::pending::<()>().await;
    });

    let (mut server, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut got, mut since_nap) = (0usize, 0usize);
    let mut longest_read_wait = Duration::ZERO;
    while got < total {
        let asked = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(120), server.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: no data for 120 s after {got} bytes"))
            .unwrap();
        assert!(n > 0, "seed {seed}: end of stream after {got} bytes");
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(
                *b,
                ((got + i) % (64 * 1024) % 251) as u8,
                "seed {seed}: corrupt byte at {}",
                got + i
            );
        }
        longest_read_wait = longest_read_wait.max(asked.elapsed());
        got += n;
        since_nap += n;
        if since_nap >= every {
            since_nap = 0;
            tokio::time::sleep(nap).await;
        }
    }
    SlowReaderRun {
        longest_read_wait,
        sender_probes: probes.load(Ordering::Relaxed),
    }
}

#[tokio::test(start_paused = true)]
async fn reading_reopens_a_closed_window_without_the_senders_probe() {
    support::init_tracing();
    // Without loss the engine's own window update is enough, once a flush
    // waiting for acknowledgements no longer spins with the connection task
    // (it did, and virtual time stood still).
    for seed in [1, 2] {
        let run = slow_reader(0.0, seed, 8 << 20, 300 * 1024, Duration::from_millis(50)).await;
        assert_eq!(
            run.sender_probes, 0,
            "seed {seed}: the sender had to probe for the window"
        );
        assert!(
            run.longest_read_wait < Duration::from_millis(500),
            "seed {seed}: a read waited {:?} for data",
            run.longest_read_wait
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_window_update_is_repeated() {
    support::init_tracing();
    // With loss the single update the engine sends can be lost; the
    // receiver repeats it until data flows again.
    for (seed, loss, every) in [
        (3, 0.01, 64),
        (4, 0.01, 64),
        (5, 0.01, 300),
        (6, 0.05, 64),
        (7, 0.05, 300),
    ] {
        let run = slow_reader(loss, seed, 8 << 20, every * 1024, Duration::from_millis(20)).await;
        eprintln!(
            "seed {seed}, loss {loss}: longest read wait {:?}",
            run.longest_read_wait
        );
        assert_eq!(
            run.sender_probes, 0,
            "seed {seed}: the sender had to probe for the window"
        );
        assert!(
            run.longest_read_wait < Duration::from_millis(1000),
            "seed {seed}: a read waited {:?} for data",
            run.longest_read_wait
        );
    }
}
