//! Interop with the `tokio_kcp` crate over real UDP on 127.0.0.1, both ways,
//! including its conversation-assignment convention (client opens with 0).

use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use tokio::net::UdpSocket;
use tokio::time::timeout;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_stream_talks_to_a_tokio_kcp_server() {
    for conv in [0x5eed_u32, 0] {
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
        let mut client = KcpStream::connect_with_conv(addr, conv, KcpConfig::new().fast_mode())
            .await
            .unwrap();
        let run = async {
            let mut bytes = 0;
            for i in 0..MESSAGES {
                client.send(&message(i)).await.unwrap();
            }
            for i in 0..MESSAGES {
                let m = client.recv().await.unwrap();
                assert_eq!(&m[..], &message(i)[..], "message {i} (conv {conv})");
                bytes += m.len();
            }
            bytes
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
        let listener =
            KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::new().fast_mode())
                .await
                .unwrap();
        let addr = listener.local_addr();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let assigned = s.conv();
            while let Ok(m) = s.recv().await {
                if s.send(&m).await.is_err() {
                    break;
                }
            }
            assigned
        });
        // Bound to loopback explicitly (tokio_kcp's `connect` binds 0.0.0.0).
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut client =
            tokio_kcp::KcpStream::connect_with_socket_conv(&their_config(), conv, udp, addr)
                .await
                .unwrap();
        let run = async {
            let mut bytes = 0;
            let mut buf = vec![0u8; 1 << 20];
            for i in 0..MESSAGES {
                client.send(&message(i)).await.unwrap();
                let n = client.recv(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], &message(i)[..], "message {i} (conv {conv})");
                bytes += n;
            }
            bytes
        };
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
        let mut client = KcpStream::connect_with_conv(addr, conv, KcpConfig::new().fast_mode())
            .await
            .unwrap();
        let run = async {
            for i in 0..MESSAGES {
                client.send(&message(i)).await.unwrap();
            }
            // Everything acknowledged, then the signal tokio_kcp does not know.
            client.close().await.unwrap();
            for i in 0..MESSAGES {
                let m = client.recv().await.unwrap();
                assert_eq!(&m[..], &message(i)[..], "message {i} (conv {conv})");
            }
            // tokio_kcp never signals the end: no end of stream here.
            let more = timeout(Duration::from_millis(300), client.recv()).await;
            assert!(more.is_err(), "{more:?}");
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
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::new().fast_mode())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        for _ in 0..MESSAGES {
            let m = s.recv().await.unwrap();
            s.send(&m).await.unwrap();
        }
        s.close().await.unwrap();
        // Half-closed: what the client sends after our signal still arrives.
        s.recv().await.unwrap()
    });
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut client =
        tokio_kcp::KcpStream::connect_with_socket_conv(&their_config(), 0x7a12, udp, addr)
            .await
            .unwrap();
    let run = async {
        let mut buf = vec![0u8; 1 << 20];
        for i in 0..MESSAGES {
            client.send(&message(i)).await.unwrap();
            let n = client.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &message(i)[..], "message {i}");
        }
        // Let the signal arrive (and be refused), then keep talking.
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.send(b"still here").await.unwrap();
        server.await.unwrap()
    };
    let last = timeout(Duration::from_secs(20), run)
        .await
        .expect("timed out");
    assert_eq!(&last[..], b"still here");
    println!(
        "tokio_kcp client <- KcpListener close(): every echo, then a message after our signal"
    );
}
