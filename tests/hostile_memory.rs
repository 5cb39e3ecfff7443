//! A peer cannot make a listener hold unbounded memory: out-of-order and
//! oversized segments on many connections (real UDP on 127.0.0.1).

mod hostile_util;

use std::time::{Duration, Instant};

use hostile_util::{echo_client, echo_server, rss_bytes, segment};
use kcp::engine::Command;
use kcp::runtime::{KcpConfig, KcpListener, ListenerLimits};
use tokio::net::UdpSocket;

const MSS: usize = 1376;

/// Opens `conv` (segments 0 and 1, so it is established), then sends
/// segments 3..=127 (the gap at 2 never fills) of a full MSS each, and a
/// few 60,000-byte ones.
async fn hold_out_of_order(attacker: &UdpSocket, server: std::net::SocketAddr, conv: u32) {
    for sn in 0..2 {
        attacker
            .send_to(&segment(conv, Command::Push, sn, 1), server)
            .await
            .unwrap();
    }
    for sn in 3..=127u32 {
        let len = if sn % 40 == 0 { 60_000 } else { MSS };
        attacker
            .send_to(&segment(conv, Command::Push, sn, len), server)
            .await
            .unwrap();
        if sn % 25 == 0 {
            // Paced so that loopback does not drop what the bound is about.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_and_oversized_segments_stay_under_the_bounds() {
    let per_connection = 32 * MSS;
    let pool = 1 << 20;
    let floor = 8 * MSS;
    let config = KcpConfig::testing(0.0)
        .idle_timeout(Some(Duration::from_secs(2)))
        .max_out_of_order_bytes(Some(per_connection));
    let limits = ListenerLimits {
        out_of_order_floor: floor,
        max_out_of_order_total: pool,
        ..ListenerLimits::default()
    };
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let listener = KcpListener::with_limits(std::sync::Arc::new(socket), config, limits).unwrap();
    let addr = listener.local_addr();
    let (listener, server) = echo_server(listener);
    let rss_before = rss_bytes();
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let run = async {
        // Eight connections: each stops at its own cap.
        for conv in 1000..1008 {
            hold_out_of_order(&attacker, addr, conv).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let st = listener.stats();
        println!("8 connections, cap {per_connection} B each: {st:?}");
        assert_eq!(st.connections_created, 8, "{st:?}");
        assert!(
            st.out_of_order_bytes > 0,
            "the attack buffered nothing: {st:?}"
        );
        assert!(
            st.out_of_order_bytes <= 8 * per_connection as u64,
            "per-connection cap exceeded: {st:?}"
        );
        assert!(
            st.dropped_oversized > 0,
            "60,000-byte datagrams not dropped: {st:?}"
        );

        // Sixty-four: their floors and the listener's pool stop them all.
        for conv in 1008..1064 {
            hold_out_of_order(&attacker, addr, conv).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let st = listener.stats();
        println!("64 connections, pool {pool} B: {st:?}");
        assert_eq!(st.connections_created, 64, "{st:?}");
        assert!(
            st.out_of_order_bytes <= (64 * floor + pool + 2 * MSS) as u64,
            "listener bound exceeded: {st:?}"
        );
        assert!(
            st.out_of_order_bytes >= (pool / 2 + 56 * floor) as u64,
            "the attack did not reach the pool: {st:?}"
        );
        if let (Some(before), Some(now)) = (rss_before, rss_bytes()) {
            // Unbounded, these 64 connections would hold about 490 MB.
            println!("RSS {} -> {} MB", before >> 20, now >> 20);
            assert!(now < before + (64 << 20), "RSS grew from {before} to {now}");
        }

        // A good client still connects and echoes.
        let rtts = echo_client(addr, 1, 20).await;
        assert_eq!(rtts.len(), 20);

        // Connections close on their idle timeout and give everything back.
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let st = listener.stats();
            if st.connections_alive == 0 {
                assert_eq!(st.out_of_order_bytes, 0, "{st:?}");
                assert_eq!(st.queued_bytes, 0, "{st:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "connections never closed: {st:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    server.abort();
}
