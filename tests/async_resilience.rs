//! Bad networks (in-memory, seeded), vanished peers and graceful shutdown.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream, LinkConditions, MemoryNetwork};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use support::payload;

/// Sends `len` bytes in stream mode across `net` and checks they arrive
/// intact; returns the client's stats.
async fn stream_transfer(
    net: &MemoryNetwork,
    config: KcpConfig,
    len: usize,
    seed: u64,
) -> kcp::runtime::ConnectionStats {
    let config = config.stream_mode(true);
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 42, config)
            .unwrap();
    let data = payload(len, seed);
    let expect = data.clone();
    let (_r, mut w) = client.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        // Resolves once the peer acknowledged everything.
        w.shutdown().await.unwrap();
        w
    });
    let (mut server, _) = listener.accept().await.unwrap();
    let mut got = vec![0u8; len];
    server.read_exact(&mut got).await.unwrap();
    assert!(got == expect, "content differs (seed {seed})");
    let w = writer.await.unwrap();
    w.stats()
}

async fn lossy(loss: f64, jitter_ms: u64, duplicate: f64, seed: u64, len: usize) {
    let net = MemoryNetwork::new(LinkConditions {
        loss,
        delay: Duration::from_millis(2),
        jitter: Duration::from_millis(jitter_ms),
        duplicate,
        seed,
        ..Default::default()
    });
    let config = KcpConfig::new().fast_mode().window_size(128, 128);
    let st = timeout(
        Duration::from_secs(30),
        stream_transfer(&net, config, len, seed),
    )
    .await
    .unwrap_or_else(|_| panic!("transfer timed out (loss {loss}, seed {seed})"));
    let n = net.stats();
    println!(
        "loss {:>4.0}% jitter {jitter_ms} ms dup {:>3.0}% seed {seed}: {len} bytes verified; \
         network dropped {} / delivered {} (dup {}); client retransmitted {} (fast {}), rtt {:?}",
        loss * 100.0,
        duplicate * 100.0,
        n.dropped,
        n.delivered,
        n.duplicated,
        st.retransmissions,
        st.fast_retransmissions,
        st.srtt
    );
    if loss > 0.0 {
        assert!(n.dropped > 0, "the link dropped nothing (seed {seed})");
        assert!(
            st.retransmissions > 0,
            "no retransmission under loss (seed {seed})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_ten_percent_loss() {
    support::init_tracing();
    lossy(0.10, 0, 0.0, 0x10, 300_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_thirty_percent_loss() {
    support::init_tracing();
    lossy(0.30, 0, 0.0, 0x30, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_reordering_and_duplication() {
    support::init_tracing();
    lossy(0.05, 15, 0.2, 0xd0, 200_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_survive_loss_with_boundaries_intact() {
    support::init_tracing();
    let seed = 0x3e55;
    let net = MemoryNetwork::new(LinkConditions {
        loss: 0.2,
        jitter: Duration::from_millis(5),
        seed,
        ..Default::default()
    });
    let config = KcpConfig::new().fast_mode();
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 9, config.clone())
            .unwrap();
    let run = async {
        let sizes: Vec<usize> = (0..60)
            .map(|i| 1 + (i * 997) % (config.mss() * 4))
            .collect();
        for (i, &n) in sizes.iter().enumerate() {
            client.send(&payload(n, i as u64)).await.unwrap();
        }
        let (mut server, _) = listener.accept().await.unwrap();
        for (i, &n) in sizes.iter().enumerate() {
            let m = server.recv().await.unwrap();
            assert_eq!(
                &m[..],
                &payload(n, i as u64)[..],
                "message {i} (seed {seed})"
            );
        }
        sizes.len()
    };
    let n = timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    println!("20% loss, seed {seed}: {n} messages verified with boundaries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_loses_nothing() {
    support::init_tracing();
    let seed = 0x5d;
    let net = MemoryNetwork::new(LinkConditions {
        loss: 0.1,
        seed,
        ..Default::default()
    });
    let config = KcpConfig::new().fast_mode().stream_mode(true);
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 5, config)
            .unwrap();
    let data = payload(200_000, seed);
    let run = async {
        client.write_all(&data).await.unwrap();
        client.shutdown().await.unwrap();
        // Everything is acknowledged once shutdown returns.
        let st = client.stats();
        assert_eq!(st.send_queue_segments, 0);
        assert_eq!(st.send_buffer_bytes, 0);
        let err = client.write_all(b"late").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        drop(client);
        let (mut server, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; data.len()];
        server.read_exact(&mut got).await.unwrap();
        assert!(got == data, "seed {seed}");
    };
    timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    println!(
        "graceful shutdown over 10% loss: {} bytes acknowledged before shutdown returned",
        data.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_stream_still_delivers_what_it_wrote() {
    support::init_tracing();
    let net = MemoryNetwork::new(LinkConditions {
        loss: 0.1,
        seed: 77,
        ..Default::default()
    });
    let config = KcpConfig::new().fast_mode();
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 6, config)
            .unwrap();
    let run = async {
        for i in 0..50u32 {
            client.send(&i.to_le_bytes()).await.unwrap();
        }
        drop(client);
        let (mut server, _) = listener.accept().await.unwrap();
        for i in 0..50u32 {
            assert_eq!(&server.recv().await.unwrap()[..], &i.to_le_bytes());
        }
    };
    timeout(Duration::from_secs(20), run)
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_peer_ends_in_idle_timeout() {
    support::init_tracing();
    let net = MemoryNetwork::new(LinkConditions::default());
    let config = KcpConfig::new()
        .fast_mode()
        .keep_alive(Some(Duration::from_millis(100)))
        .idle_timeout(Some(Duration::from_millis(800)));
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 8, config)
            .unwrap();
    let run = async {
        client.send(b"hi").await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert_eq!(&server.recv().await.unwrap()[..], b"hi");
        // Keep-alives keep an idle but present peer connected.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(
            client.close_reason().is_none(),
            "keep-alive failed: {:?}",
            client.close_reason()
        );
        assert!(client.stats().keep_alives_sent > 0);
        // Now the peer vanishes.
        net.set_conditions(LinkConditions {
            loss: 1.0,
            ..Default::default()
        });
        let started = std::time::Instant::now();
        let err = client.recv().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("idle timeout"), "{err}");
        println!(
            "vanished peer detected after {:?}: {err}",
            started.elapsed()
        );
        let err = server.recv().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    };
    timeout(Duration::from_secs(20), run)
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_data_ends_in_dead_link() {
    support::init_tracing();
    let net = MemoryNetwork::new(LinkConditions {
        loss: 1.0,
        ..Default::default()
    });
    let config = KcpConfig::new()
        .fast_mode()
        .dead_link(4)
        .idle_timeout(None)
        .connect_timeout(Duration::from_secs(60));
    // Nobody listens: every segment goes unanswered.
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), "10.9.9.9:9".parse().unwrap(), 3, config)
            .unwrap();
    let run = async {
        client.send(b"anyone?").await.unwrap();
        let err = client.flush().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionAborted, "{err}");
        assert!(err.to_string().contains("dead link"), "{err}");
        println!("dead link reported: {err}");
    };
    timeout(Duration::from_secs(20), run)
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_ends_in_connect_timeout() {
    support::init_tracing();
    let net = MemoryNetwork::new(LinkConditions::default());
    let config = KcpConfig::new()
        .fast_mode()
        .connect_timeout(Duration::from_millis(500));
    let _silent = net.bind(Some("10.0.0.2:1".parse().unwrap()));
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), "10.0.0.2:1".parse().unwrap(), 3, config)
            .unwrap();
    let run = async {
        client.send(b"hello?").await.unwrap();
        let err = client.recv().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("connect timeout"), "{err}");
    };
    timeout(Duration::from_secs(10), run)
        .await
        .expect("timed out");
}
