//! The UDP sockets the library creates get the kernel buffers `KcpConfig`
//! asks for, and the stats report what the OS granted (real UDP on 127.0.0.1).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream, MemoryNetwork, SocketBuffers, Transport};
use tokio::time::timeout;

/// What a socket gets when nobody asks.
fn os_default() -> SocketBuffers {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = socket2::SockRef::from(&s);
    SocketBuffers {
        send: r.send_buffer_size().unwrap(),
        recv: r.recv_buffer_size().unwrap(),
    }
}

/// The most an unprivileged request can get on Linux (the kernel reports
/// twice what it accounts for), if the limit is readable.
fn linux_limit(name: &str) -> Option<usize> {
    let v = std::fs::read_to_string(format!("/proc/sys/net/core/{name}")).ok()?;
    v.trim().parse::<usize>().ok().map(|v| v * 2)
}

/// Granted buffers are at least the OS default and, where the limit allows
/// it, at least the 4 MiB asked for.
fn assert_granted(got: Option<SocketBuffers>, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no socket buffers reported"));
    let def = os_default();
    assert!(
        got.send >= def.send,
        "{what}: send {got:?} below OS default {def:?}"
    );
    assert!(
        got.recv >= def.recv,
        "{what}: recv {got:?} below OS default {def:?}"
    );
    let asked = 4 << 20;
    if linux_limit("wmem_max").is_some_and(|max| max >= 2 * asked) {
        assert!(got.send >= asked, "{what}: send {got:?}, asked {asked}");
    }
    if linux_limit("rmem_max").is_some_and(|max| max >= 2 * asked) {
        assert!(got.recv >= asked, "{what}: recv {got:?}, asked {asked}");
    }
}

#[tokio::test]
async fn listener_and_client_apply_and_report_socket_buffers() {
    support::init_tracing();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = KcpConfig::fast();
    assert_eq!(config.socket_recv_buffer, Some(4 << 20));
    let listener = KcpListener::bind(any, config.clone()).await.unwrap();
    assert_granted(listener.stats().socket_buffers, "listener");

    let mut client = KcpStream::connect(listener.local_addr(), config)
        .await
        .unwrap();
    assert_granted(client.stats().socket_buffers, "client");
    client.send(b"hi").await.unwrap();
    let (server, _) = timeout(Duration::from_secs(5), listener.accept())
        .await
        .unwrap()
        .unwrap();
    // An accepted connection shares the listener's socket.
    assert_eq!(
        server.stats().socket_buffers,
        listener.stats().socket_buffers
    );
}

#[tokio::test]
async fn none_keeps_the_os_default() {
    support::init_tracing();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = KcpConfig::fast()
        .socket_send_buffer(None)
        .socket_recv_buffer(None);
    let listener = KcpListener::bind(any, config.clone()).await.unwrap();
    assert_eq!(listener.stats().socket_buffers, Some(os_default()));
    let client = KcpStream::connect(listener.local_addr(), config)
        .await
        .unwrap();
    assert_eq!(client.stats().socket_buffers, Some(os_default()));
}

#[tokio::test]
async fn zero_is_refused_and_other_transports_report_none() {
    support::init_tracing();
    let err = KcpConfig::new()
        .socket_recv_buffer(Some(0))
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("socket_recv_buffer"), "{err}");

    let net = MemoryNetwork::new(Default::default());
    let t = net.bind(None);
    assert_eq!(t.socket_buffers(), None);
    let listener = KcpListener::with_transport(t, KcpConfig::fast()).unwrap();
    assert_eq!(listener.stats().socket_buffers, None);
}
