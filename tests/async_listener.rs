//! One listener, many peers, hostile datagrams (real UDP on 127.0.0.1).

mod support;

use std::time::Duration;

use kcp::engine::{Command, SegmentHeader};
use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use tokio::net::UdpSocket;
use tokio::time::timeout;

async fn echo_server(listener: KcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            while let Ok(m) = s.recv().await {
                if s.send(&m).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn chat(addr: std::net::SocketAddr, id: u32, rounds: u32) -> usize {
    let mut c = KcpStream::connect(addr, KcpConfig::testing(0.0))
        .await
        .unwrap();
    let mut bytes = 0;
    for r in 0..rounds {
        let msg = format!(
            "client {id} round {r} {}",
            "x".repeat((id * 13 + r) as usize % 3000)
        );
        c.send(msg.as_bytes()).await.unwrap();
        let back = c.recv().await.unwrap();
        assert_eq!(&back[..], msg.as_bytes(), "client {id} round {r}");
        bytes += back.len();
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_connections_on_one_socket() {
    support::init_tracing();
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::testing(0.0))
        .await
        .unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(echo_server(listener));
    let run = async {
        let clients: Vec<_> = (0..100).map(|id| tokio::spawn(chat(addr, id, 5))).collect();
        let mut total = 0;
        for c in clients {
            total += c.await.unwrap();
        }
        total
    };
    let total = timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    println!("100 concurrent connections on one listener: {total} bytes echoed and verified");
    server.abort();
}

fn segment(conv: u32, cmd: u8, sn: u32, len_field: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    SegmentHeader {
        conv,
        cmd,
        sn,
        len: len_field,
        ..Default::default()
    }
    .encode(&mut v);
    v.extend_from_slice(payload);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_does_not_disturb_good_clients() {
    support::init_tracing();
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::testing(0.0))
        .await
        .unwrap();
    let addr = listener.local_addr();
    let (stats_tx, stats_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let l = std::sync::Arc::new(listener);
        let l2 = l.clone();
        let serve = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l2.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    while let Ok(m) = s.recv().await {
                        let _ = s.send(&m).await;
                    }
                });
            }
        });
        let _ = stats_rx.await;
        let st = l.stats();
        serve.abort();
        st
    });
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed = 0x9a4bu64;
    let attack = async {
        let mut sent = 0;
        for i in 0..400u32 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let junk: Vec<u8> = (0..(seed >> 56) as usize)
                .map(|k| (seed >> (k % 56)) as u8)
                .collect();
            let d = match i % 6 {
                0 => junk,                                               // random bytes
                1 => vec![1, 2, 3],                                      // too short
                2 => segment(7, Command::Push as u8, 0, 1000, b"short"), // truncated payload
                3 => segment(7, 99, 0, 0, b""),                          // unknown command
                4 => segment(i + 1000, Command::Ack as u8, 5, 0, b""),   // ack for no connection
                _ => segment(0, Command::Push as u8, 3, 0, b""), // conv 0 that opens nothing
            };
            attacker.send_to(&d, addr).await.unwrap();
            sent += 1;
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        sent
    };
    let good = async {
        let clients: Vec<_> = (0..10).map(|id| tokio::spawn(chat(addr, id, 10))).collect();
        let mut total = 0;
        for c in clients {
            total += c.await.unwrap();
        }
        total
    };
    let (sent, total) = timeout(Duration::from_secs(30), async {
        tokio::join!(attack, good)
    })
    .await
    .expect("timed out");
    stats_tx.send(()).unwrap();
    let st = server.await.unwrap();
    println!("listener under attack: {sent} hostile datagrams, {total} good bytes verified; stats {st:?}");
    assert_eq!(
        st.connections_created, 10,
        "hostile datagrams created connections: {st:?}"
    );
    assert!(st.dropped_malformed > 0 && st.dropped_unknown > 0, "{st:?}");
    // Loopback UDP may itself drop a datagram under load, hence no equality.
    let dropped = st.dropped_malformed + st.dropped_unknown;
    assert!(dropped <= sent && dropped > sent / 2, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_and_connection_limits_hold() {
    support::init_tracing();
    use kcp::runtime::ListenerLimits;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let limits = ListenerLimits {
        backlog: 3,
        max_connections: 5,
        per_connection_queue: Some(64),
        ..ListenerLimits::default()
    };
    let listener =
        KcpListener::with_limits(std::sync::Arc::new(socket), KcpConfig::testing(0.0), limits)
            .unwrap();
    let addr = listener.local_addr();
    let run = async {
        let mut clients = Vec::new();
        for i in 0..8u32 {
            let mut c = KcpStream::connect(addr, KcpConfig::testing(0.0))
                .await
                .unwrap();
            c.send(&i.to_le_bytes()).await.unwrap();
            clients.push(c);
        }
        // Let the openings (and their retransmissions) arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let st = listener.stats();
        assert_eq!(
            st.connections_created, 3,
            "backlog of 3 not honoured: {st:?}"
        );
        assert!(st.dropped_capacity > 0, "{st:?}");
        // Accepting frees backlog slots. The accepted connections answer, so
        // they become established; the other openings then take turns in the
        // two slots left, and never displace an established connection.
        let mut accepted = Vec::new();
        for _ in 0..3 {
            let (mut s, peer) = listener.accept().await.unwrap();
            let m = s.recv().await.unwrap();
            s.send(&m).await.unwrap();
            accepted.push((s, peer));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let st = listener.stats();
        assert!(
            st.connections_alive <= 5,
            "connection cap of 5 not honoured: {st:?}"
        );
        assert!(st.half_open_evicted > 0, "{st:?}");
        let mut answered = 0;
        for (i, c) in clients.iter_mut().enumerate() {
            if let Ok(m) = timeout(Duration::from_millis(200), c.recv()).await {
                assert_eq!(&m.unwrap()[..], &(i as u32).to_le_bytes());
                answered += 1;
            }
        }
        assert_eq!(
            answered, 3,
            "an established connection was displaced: {st:?}"
        );
        println!("limits: backlog 3 / max 5 held with 8 clients: {st:?}");
        (clients, accepted)
    };
    timeout(Duration::from_secs(20), run)
        .await
        .expect("timed out");
}
