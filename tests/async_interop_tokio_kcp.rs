//! Interop with the `tokio_kcp` crate over real UDP on 127.0.0.1, both ways,
//! including its conversation-assignment convention (client opens with 0).
//! Our side is `tests/support/interop.rs`; tokio_kcp's is below.

use std::net::SocketAddr;
use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpStream};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::timeout;

mod support;
use support::interop::{
    assert_no_end_of_stream, expect_echoes, listener_on_loopback, send_all, spawn_echo_server,
    spawn_echo_then_close,
};

fn their_config() -> tokio_kcp::KcpConfig {
    tokio_kcp::KcpConfig {
        nodelay: tokio_kcp::KcpNoDelayConfig::fastest(),
        ..Default::default()
    }
}

fn message(i: usize) -> Vec<u8> {
    // The first message of a conv-0 opening must fit one segment.
    let len = if i == 0 { 100 } else { 1 + (i * 577) % 6000 };
    (0..len).map(|k| (k * 3 + i) as u8).collect()
}

const MESSAGES: usize = 40;

/// A tokio_kcp echo server on 127.0.0.1: its address, and the task echoing
/// until its peer goes away.
async fn their_echo_server() -> (SocketAddr, JoinHandle<()>) {
    let mut listener = tokio_kcp::KcpListener::bind(their_config(), "127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = s.recv(&mut buf).await {
            if s.send(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    (addr, server)
}

/// Our client of `addr`, opening with `conv`.
async fn our_client(addr: SocketAddr, conv: u32) -> KcpStream {
    KcpStream::connect_with_conv(addr, conv, KcpConfig::new().fast_mode())
        .await
        .unwrap()
}

/// A tokio_kcp client of `addr` opening with `conv`, bound to loopback
/// explicitly (tokio_kcp's `connect` binds 0.0.0.0).
async fn their_client(conv: u32, addr: SocketAddr) -> tokio_kcp::KcpStream {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    tokio_kcp::KcpStream::connect_with_socket_conv(&their_config(), conv, udp, addr)
        .await
        .unwrap()
}

/// Sends each message on `client` and checks its echo before the next
/// (`what` is added to the failure); returns the bytes echoed.
async fn their_ping_pong(client: &mut tokio_kcp::KcpStream, what: &str) -> usize {
    let mut bytes = 0;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..MESSAGES {
        client.send(&message(i)).await.unwrap();
        let n = client.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &message(i)[..], "message {i}{what}");
        bytes += n;
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_stream_talks_to_a_tokio_kcp_server() {
    for conv in [0x5eed_u32, 0] {
        let (addr, server) = their_echo_server().await;
        let mut client = our_client(addr, conv).await;
        let run = async {
            send_all(&mut client, MESSAGES, message).await;
            let what = format!(" (conv {conv})");
            expect_echoes(&mut client, MESSAGES, message, &what).await
        };
        let bytes = timeout(Duration::from_secs(20), run)
            .await
            .expect("timed out");
        assert_ne!(client.conv(), 0, "server never assigned a conversation");
        println!(
            "KcpStream (conv {conv:#x} -> {:#x}) -> tokio_kcp server: {MESSAGES} messages, {bytes} bytes verified",
            client.conv()
        );
        server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_kcp_client_talks_to_our_listener() {
    for conv in [0x7a11_u32, 0] {
        let listener = listener_on_loopback(KcpConfig::new().fast_mode()).await;
        let addr = listener.local_addr();
        let server = spawn_echo_server(listener);
        let mut client = their_client(conv, addr).await;
        let what = format!(" (conv {conv})");
        let run = their_ping_pong(&mut client, &what);
        let bytes = timeout(Duration::from_secs(20), run)
            .await
            .expect("timed out");
        println!("tokio_kcp client (conv {conv:#x}) -> KcpListener: {MESSAGES} messages, {bytes} bytes verified");
        server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_our_stream_towards_a_tokio_kcp_server_leaves_it_working() {
    for conv in [0x5eed_u32, 0] {
        let (addr, server) = their_echo_server().await;
        let mut client = our_client(addr, conv).await;
        let run = async {
            send_all(&mut client, MESSAGES, message).await;
            // Everything acknowledged, then the signal tokio_kcp does not know.
            client.close().await.unwrap();
            let what = format!(" (conv {conv})");
            expect_echoes(&mut client, MESSAGES, message, &what).await;
            // tokio_kcp never signals the end: no end of stream here.
            assert_no_end_of_stream(&mut client).await;
        };
        timeout(Duration::from_secs(20), run)
            .await
            .expect("timed out");
        assert!(!server.is_finished(), "the tokio_kcp server gave up");
        println!("KcpStream close() -> tokio_kcp server (conv {conv:#x}): every echo after close");
        server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_kcp_client_keeps_working_when_our_server_closes() {
    let listener = listener_on_loopback(KcpConfig::new().fast_mode()).await;
    let addr = listener.local_addr();
    let server = spawn_echo_then_close(listener, MESSAGES);
    let mut client = their_client(0x7a12, addr).await;
    let run = async {
        their_ping_pong(&mut client, "").await;
        // Let the signal arrive (and be refused), then keep talking.
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.send(b"still here").await.unwrap();
        // Half-closed: what the client sends after our signal still arrives.
        let mut s = server.await.unwrap();
        s.recv().await.unwrap()
    };
    let last = timeout(Duration::from_secs(20), run)
        .await
        .expect("timed out");
    assert_eq!(&last[..], b"still here");
    println!(
        "tokio_kcp client <- KcpListener close(): every echo, then a message after our signal"
    );
}
