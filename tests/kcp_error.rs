//! `KcpError`: each variant comes from the situation it names, carries what
//! happened, and survives the trip through `io::Error` (`AsyncRead` /
//! `AsyncWrite`) with a meaningful `kind()`.

mod support;

use std::io::{self, ErrorKind};
use std::time::Duration;

use kcp::runtime::{
    ConnectionError, KcpConfig, KcpError, KcpListener, KcpStream, LinkConditions, MemoryNetwork,
    Timeout,
};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::time::timeout;

#[tokio::test]
async fn invalid_config_names_the_field() {
    support::init_tracing();
    let err = KcpStream::connect("127.0.0.1:9".parse().unwrap(), KcpConfig::new().mtu(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KcpError::Config { field: "mtu", reason } if reason.contains("10")),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = KcpListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        KcpConfig::new().window_size(64, 0),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            KcpError::Config {
                field: "rcv_wnd",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_message_is_a_buffer_error_with_both_sizes() {
    support::init_tracing();
    let net = MemoryNetwork::new(LinkConditions::default());
    let config = KcpConfig::testing(0.0);
    let max = config.max_message_size();
    let mut c =
        KcpStream::connect_with_transport(net.bind(None), "10.0.0.1:1".parse().unwrap(), 1, config)
            .unwrap();
    let err = c.send(&vec![0u8; max + 1]).await.unwrap_err();
    assert!(
        matches!(err, KcpError::Buffer { len, max: m } if len == max + 1 && m == max),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_after_shutdown_keeps_its_kcp_error_inside_io_error() {
    support::init_tracing();
    let net = MemoryNetwork::new(LinkConditions::default());
    let config = KcpConfig::testing(0.0);
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 7, config)
            .unwrap();
    let run = async {
        client.write_all(b"last words").await.unwrap();
        client.shutdown().await.unwrap();
        // AsyncWrite speaks io::Error ...
        let io_err: io::Error = client.write_all(b"late").await.unwrap_err();
        assert_eq!(io_err.kind(), ErrorKind::BrokenPipe);
        // ... which carries the KcpError, readable in place ...
        let inner = io_err
            .get_ref()
            .and_then(|e| e.downcast_ref::<KcpError>())
            .expect("a KcpError inside");
        assert!(
            matches!(
                inner,
                KcpError::Connection {
                    reason: ConnectionError::WriteAfterShutdown,
                    ..
                }
            ),
            "{inner:?}"
        );
        // ... or taken back out whole.
        let back = KcpError::from(io_err);
        assert!(
            matches!(
                back,
                KcpError::Connection { peer, reason: ConnectionError::WriteAfterShutdown }
                    if peer == listener.local_addr()
            ),
            "{back:?}"
        );
    };
    timeout(Duration::from_secs(10), run)
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_a_connect_timeout_naming_the_duration() {
    support::init_tracing();
    let net = MemoryNetwork::new(LinkConditions::default());
    let after = Duration::from_millis(300);
    let peer = "10.0.0.2:1".parse().unwrap();
    let _silent = net.bind(Some(peer));
    let config = KcpConfig::testing(0.0).connect_timeout(after);
    let mut client = KcpStream::connect_with_transport(net.bind(None), peer, 3, config).unwrap();
    let run = async {
        client.send(b"hello?").await.unwrap();
        let err = client.recv().await.unwrap_err();
        assert!(
            matches!(
                err,
                KcpError::Timeout { timeout: Timeout::Connect, peer: p, after: a } if p == peer && a == after
            ),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(err.is_fatal());
        // The reason stays: every later call reports the same error.
        assert_eq!(
            client.close_reason().map(|e| e.to_string()),
            Some(err.to_string())
        );
    };
    timeout(Duration::from_secs(10), run)
        .await
        .expect("timed out");
}

/// A peer that answers every datagram with a copy under another
/// conversation id: present, but not speaking this connection's KCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_answering_garbage_is_a_protocol_error() {
    support::init_tracing();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer = socket.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            buf[0] ^= 0xff; // the conversation id's first byte
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    let config = KcpConfig::testing(0.0).connect_timeout(Duration::from_millis(400));
    let mut client = KcpStream::connect(peer, config).await.unwrap();
    let run = async {
        client.send(b"hello?").await.unwrap();
        let err = client.recv().await.unwrap_err();
        match &err {
            KcpError::Protocol { peer: p, what } => {
                assert_eq!(*p, peer);
                assert!(what.contains("none accepted"), "{what}");
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(client.stats().rejected_datagrams > 0);
    };
    timeout(Duration::from_secs(10), run)
        .await
        .expect("timed out");
    echo.abort();
}
