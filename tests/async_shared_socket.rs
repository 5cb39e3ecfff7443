//! A listener's connections share its socket, and tokio's `UdpSocket`
//! remembers one send waker per socket: when several connections wait for
//! room in the send buffer, each new waiter replaces the previous one's
//! waker. This test's socket behaves the same way (one waker slot, a send
//! buffer that is "full" on demand) and checks that every waiting
//! connection gets going again once there is room, not only the last one
//! that asked.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use support::hooked::{Hooked, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

/// A send buffer that can be "full" on demand, remembering only the waker
/// of the latest waiting send (as tokio's socket does).
#[derive(Debug, Default)]
struct OneSendWaker {
    full: AtomicBool,
    waiting: Mutex<Option<Waker>>,
    refused: AtomicUsize,
}

impl OneSendWaker {
    /// Holds the send while full.
    fn verdict(&self, cx: &mut Context<'_>) -> Verdict {
        if !self.full.load(Ordering::SeqCst) {
            return Verdict::Pass;
        }
        *self.waiting.lock().unwrap() = Some(cx.waker().clone());
        self.refused.fetch_add(1, Ordering::SeqCst);
        Verdict::Wait
    }

    /// Makes room and wakes the one waker remembered.
    fn make_room(&self) {
        self.full.store(false, Ordering::SeqCst);
        if let Some(w) = self.waiting.lock().unwrap().take() {
            w.wake();
        }
    }
}

#[tokio::test]
async fn every_connection_waiting_on_a_full_shared_socket_sends_again() {
    support::init_tracing();
    let socket = Arc::new(OneSendWaker::default());
    let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let held = Hooked::new(udp, {
        let socket = socket.clone();
        move |_, cx| socket.verdict(cx)
    });
    let config = KcpConfig::fast().stream_mode(true);
    let listener = KcpListener::with_transport(held, config.clone()).unwrap();
    let addr = listener.local_addr();

    // Two clients, each echoed by its own server connection.
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut c = KcpStream::connect(addr, config.clone()).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).await.unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        clients.push(c);
    }

    // The socket is full while both server connections want to send (the
    // acknowledgement and the echo of each client's next message).
    socket.full.store(true, Ordering::SeqCst);
    for c in &mut clients {
        c.write_all(b"ping!").await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while socket.refused.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no send was held");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let both try a few times more, each replacing the other's waker.
    tokio::time::sleep(Duration::from_millis(100)).await;
    socket.make_room();

    for (i, c) in clients.iter_mut().enumerate() {
        let mut echo = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(3), c.read_exact(&mut echo))
            .await
            .unwrap_or_else(|_| panic!("client {i}: no echo after the socket had room again"))
            .unwrap();
        assert_eq!(&echo, b"ping!");
    }
    println!(
        "{} sends held while full; both connections echoed once there was room",
        socket.refused.load(Ordering::SeqCst)
    );
}
