//! The anti-spoofing handshake (`KcpConfig::handshake_cookie`) on real UDP
//! (127.0.0.1): clients that ask for a cookie connect and echo; openings
//! without one, with a wrong one, or with another address's cookie cost no
//! connection; a flood of forged openings leaves the table to the real
//! client; with the option off (the default) raw KCP still connects.

mod hostile_util;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hostile_util::{echo_once, echo_server, flood, segment, FloodMix};
use kcp::engine::Command;
use kcp::runtime::{KcpConfig, KcpError, KcpListener, KcpStream, LinkConditions, MemoryNetwork};
use tokio::net::UdpSocket;

fn cookie_config() -> KcpConfig {
    KcpConfig::testing(0.0).handshake_cookie(true)
}

async fn cookie_listener() -> (Arc<KcpListener>, SocketAddr) {
    let l = KcpListener::bind("127.0.0.1:0".parse().unwrap(), cookie_config())
        .await
        .unwrap();
    let addr = l.local_addr();
    let (l, _server) = echo_server(l);
    (l, addr)
}

/// Asks `server` for a cookie from `socket`, as the client does.
async fn ask_cookie(socket: &UdpSocket, server: SocketAddr) -> [u8; 8] {
    let mut hello = [0u8; 13];
    hello[..4].copy_from_slice(b"KCPc");
    hello[4] = 0xC1;
    socket.send_to(&hello, server).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .expect("a challenge within 2 s")
        .unwrap();
    assert_eq!((n, from), (13, server));
    assert_eq!(&buf[..5], b"KCPc\xC2");
    buf[5..13].try_into().unwrap()
}

fn cookied(cookie: [u8; 8], datagram: &[u8]) -> Vec<u8> {
    let mut d = b"KCPc\xC3".to_vec();
    d.extend_from_slice(&cookie);
    d.extend_from_slice(datagram);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_with_the_handshake_connect_and_echo() {
    let (listener, addr) = cookie_listener().await;
    for id in 0..3 {
        let mut c = KcpStream::connect(addr, cookie_config()).await.unwrap();
        for round in 0..20 {
            echo_once(&mut c, id, round).await;
        }
    }
    let s = listener.stats();
    assert_eq!(s.connections_created, 3);
    assert!(s.cookies_sent >= 3, "{s:?}");
    assert_eq!(s.openings_without_cookie, 0);
    assert_eq!(
        s.dropped_oversized, 0,
        "prefixed datagrams stay within the mtu"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openings_without_a_valid_cookie_cost_no_connection() {
    let (listener, addr) = cookie_listener().await;
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let opening = segment(0x1234, Command::Push, 0, 100);
    // Raw KCP, a made-up cookie, and a's cookie replayed from b.
    a.send_to(&opening, addr).await.unwrap();
    a.send_to(&cookied([7; 8], &opening), addr).await.unwrap();
    let cookie = ask_cookie(&a, addr).await;
    b.send_to(&cookied(cookie, &opening), addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = listener.stats();
    assert_eq!(s.connections_created, 0, "{s:?}");
    assert_eq!(s.half_open, 0);
    assert_eq!(s.openings_without_cookie, 3);
    // The cookie opens from the address it was minted for.
    a.send_to(&cookied(cookie, &opening), addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = listener.stats();
    assert_eq!(s.connections_created, 1, "{s:?}");
    // A raw KCP client does not get in.
    let raw = KcpStream::connect(
        addr,
        KcpConfig::testing(0.0).connect_timeout(Duration::from_millis(600)),
    )
    .await
    .unwrap();
    let mut raw = raw;
    let r = raw.send(b"hello").await;
    let echoed = tokio::time::timeout(Duration::from_secs(2), raw.recv()).await;
    assert!(
        r.is_err() || !matches!(echoed, Ok(Ok(_))),
        "a raw client got an echo"
    );
    assert_eq!(listener.stats().connections_created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_openings_leave_the_table_to_the_real_client() {
    let (listener, addr) = cookie_listener().await;
    let stop = Arc::new(AtomicBool::new(false));
    let mix = FloodMix::OPENINGS;
    let sources = [std::net::Ipv4Addr::new(127, 0, 0, 1)];
    let flooder = flood(addr, &sources, 4, 10_000, mix, Vec::new(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = KcpStream::connect(addr, cookie_config()).await.unwrap();
    for round in 0..20 {
        echo_once(&mut c, 9, round).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = listener.stats();
    stop.store(true, Ordering::Relaxed);
    let sent = tokio::task::spawn_blocking(move || flooder.join().unwrap())
        .await
        .unwrap();
    assert!(sent > 1_000, "the flood sent {sent}");
    assert_eq!(s.connections_created, 1, "{s:?}");
    assert_eq!(s.half_open, 0, "{s:?}");
    assert!(s.openings_without_cookie > 1_000, "{s:?}");
}

#[tokio::test]
async fn the_option_is_checked_where_it_cannot_work() {
    let err = KcpConfig::testing(0.0)
        .mtu(60)
        .handshake_cookie(true)
        .validate();
    assert!(
        matches!(err, Err(KcpError::Config { field: "mtu", .. })),
        "{err:?}"
    );
    assert!(KcpConfig::testing(0.0)
        .mtu(63)
        .handshake_cookie(true)
        .validate()
        .is_ok());
    let net = MemoryNetwork::new(LinkConditions::default());
    let t = net.bind(None);
    let err =
        KcpStream::connect_with_transport(t, "10.0.0.2:1".parse().unwrap(), 1, cookie_config());
    assert!(
        matches!(
            err,
            Err(KcpError::Config {
                field: "handshake_cookie",
                ..
            })
        ),
        "{err:?}"
    );
    assert!(!KcpConfig::default().handshake_cookie, "off by default");
}

#[tokio::test]
async fn a_client_without_an_answer_times_out() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let config = cookie_config().connect_timeout(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let err = KcpStream::connect(addr, config).await.unwrap_err();
    assert!(matches!(err, KcpError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // It asked more than once.
    let mut buf = [0u8; 64];
    let mut hellos = 0;
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(50), silent.recv_from(&mut buf)).await
    {
        assert_eq!(&buf[..n.min(5)], b"KCPc\xC1");
        hellos += 1;
    }
    assert!(hellos >= 2, "{hellos} requests");
}
