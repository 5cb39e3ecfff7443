//! Our side of the interop tests (`tests/async_interop_*.rs`): a listener
//! on loopback, an echo server on it, and the checks a client of ours runs
//! on what a foreign peer echoes. Each test file keeps its own messages
//! (`message(i)`) and the foreign peer's side.

use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Our listener on 127.0.0.1 (a port of the OS's choosing) with `config`.
pub async fn listener_on_loopback(config: KcpConfig) -> KcpListener {
    KcpListener::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// Accepts one connection on `listener` and echoes every message until the
/// peer goes away; the task returns the conversation it accepted.
pub fn spawn_echo_server(listener: KcpListener) -> JoinHandle<u32> {
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let conv = s.conv();
        while let Ok(m) = s.recv().await {
            if s.send(&m).await.is_err() {
                break;
            }
        }
        conv
    })
}

/// Accepts one connection on `listener`, echoes `messages` messages, then
/// closes its sending side (our end-of-stream signal); the task returns the
/// half-closed stream.
pub fn spawn_echo_then_close(listener: KcpListener, messages: usize) -> JoinHandle<KcpStream> {
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        for _ in 0..messages {
            let m = s.recv().await.unwrap();
            s.send(&m).await.unwrap();
        }
        s.close().await.unwrap();
        s
    })
}

/// Sends `message(0..count)` on `client`.
pub async fn send_all(client: &mut KcpStream, count: usize, message: fn(usize) -> Vec<u8>) {
    for i in 0..count {
        client.send(&message(i)).await.unwrap();
    }
}

/// Receives `count` messages on `client` and checks each is `message(i)`
/// (`what` is added to the failure, such as " (conv 0x5eed)"); returns
/// the bytes received.
pub async fn expect_echoes(
    client: &mut KcpStream,
    count: usize,
    message: fn(usize) -> Vec<u8>,
    what: &str,
) -> usize {
    let mut bytes = 0;
    for i in 0..count {
        let m = client.recv().await.unwrap();
        assert_eq!(&m[..], &message(i)[..], "message {i}{what}");
        bytes += m.len();
    }
    bytes
}

/// A foreign peer never signals the end of the stream: nothing more
/// arrives on `client`, and no end of stream, for 300 ms.
pub async fn assert_no_end_of_stream(client: &mut KcpStream) {
    let more = timeout(Duration::from_millis(300), client.recv()).await;
    assert!(more.is_err(), "{more:?}");
}
