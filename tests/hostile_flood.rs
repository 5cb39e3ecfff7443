//! Floods a listener cannot be locked by (real UDP on 127.0.0.1, other
//! 127.0.0.0/8 addresses standing in for forged source IPs): forged
//! openings while a new client connects, and garbage and wrong-conversation
//! datagrams while good clients echo. Rates are sized for a 2-core machine.

mod hostile_util;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostile_util::{
    connected_clients, echo_once, flood, loopback_echo_server, percentile, FloodMix,
};
use kcp::runtime::{KcpConfig, KcpStream};

fn sources(n: u8) -> Vec<Ipv4Addr> {
    // 127.0.0.1 too: the new client shares its IP with part of the flood.
    (1..=n).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect()
}

/// Echo rounds on an already connected client until `stop`; returns the
/// round-trip times.
async fn keep_echoing(mut c: KcpStream, id: u32, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let mut rtts = Vec::new();
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        rtts.push(echo_once(&mut c, id, round).await);
        round += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rtts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_openings_do_not_lock_out_a_new_client() {
    let (listener, addr, server) = loopback_echo_server().await;
    let run = async {
        // Two clients established before the flood.
        let before = connected_clients(addr, 2).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mix = FloodMix::OPENINGS;
        let flooder = flood(addr, &sources(16), 4, 20_000, mix, Vec::new(), stop.clone());
        let echoing: Vec<_> = before
            .into_iter()
            .enumerate()
            .map(|(id, c)| tokio::spawn(keep_echoing(c, 100 + id as u32, stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(700)).await;

        // A new client during the flood: it gets in and echoes.
        let started = Instant::now();
        let mut c = KcpStream::connect(addr, KcpConfig::testing(0.0))
            .await
            .unwrap();
        echo_once(&mut c, 7, 0).await;
        let first_echo = started.elapsed();
        let mut rtts = Vec::new();
        for round in 1..50 {
            rtts.push(echo_once(&mut c, 7, round).await);
        }
        let during = listener.stats();
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let sent = tokio::task::spawn_blocking(move || flooder.join().unwrap())
            .await
            .unwrap();
        let mut old_rtts: Vec<Duration> = Vec::new();
        for e in echoing {
            let r = e.await.unwrap();
            assert!(!r.is_empty());
            old_rtts.extend(r);
        }
        let st = listener.stats();
        println!(
            "forged openings: {sent} sent; new client's first echo after {first_echo:?}, \
             its p99 {:?}; established clients: {} rounds, p99 {:?}; stats {st:?}",
            percentile(&mut rtts, 99),
            old_rtts.len(),
            percentile(&mut old_rtts, 99),
        );
        assert!(
            st.openings_rate_limited > 0,
            "the flood never reached the limits: {st:?}"
        );
        let limits = kcp::runtime::ListenerLimits::default();
        assert!(
            during.half_open <= limits.max_half_open as u64,
            "{during:?}"
        );
        assert!(
            during.connections_alive <= limits.max_connections as u64,
            "{during:?}"
        );
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_wrong_conversations_do_not_disturb_good_clients() {
    let (listener, addr, server) = loopback_echo_server().await;
    let run = async {
        let clients = connected_clients(addr, 4).await;
        let convs = clients.iter().map(|c| c.conv()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let mix = FloodMix {
            openings: 0,
            garbage: 3,
            malformed: 3,
            wrong_conv: 4,
        };
        let flooder = flood(addr, &sources(8), 2, 20_000, mix, convs, stop.clone());
        let echoing: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(id, c)| tokio::spawn(keep_echoing(c, id as u32, stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        let sent = tokio::task::spawn_blocking(move || flooder.join().unwrap())
            .await
            .unwrap();
        let mut rtts: Vec<Duration> = Vec::new();
        for e in echoing {
            let r = e.await.unwrap();
            assert!(
                r.len() > 10,
                "a good client barely got through: {} rounds",
                r.len()
            );
            rtts.extend(r);
        }
        let st = listener.stats();
        println!(
            "garbage/wrong-conv flood: {sent} sent; good clients {} verified rounds, p99 {:?}; stats {st:?}",
            rtts.len(),
            percentile(&mut rtts, 99)
        );
        assert_eq!(
            st.connections_created, 4,
            "the flood opened connections: {st:?}"
        );
        assert!(
            st.dropped_malformed + st.dropped_unknown > sent / 4,
            "{st:?}"
        );
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    server.abort();
}
