//! End of stream between two ends running this library: `close`/`shutdown`
//! and drop on one side make the other side's `read` return `Ok(0)` once
//! every byte written before has been delivered. Over the in-memory network
//! with tokio's paused clock (virtual time; lossy links are seeded).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcp::runtime::{
    ConnectionError, KcpConfig, KcpError, KcpListener, KcpStream, LinkConditions, MemoryNetwork,
    Timeout,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

mod support;
use support::hooked::{Hooked, Verdict};
use support::payload;

/// The end-of-stream signal's command byte (README, "End of stream").
const FIN: u8 = 0x5a;
const PUSH: u8 = 81;

fn lossy(loss: f64, seed: u64) -> MemoryNetwork {
    MemoryNetwork::new(LinkConditions {
        loss,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(2),
        seed,
        ..Default::default()
    })
}

fn config() -> KcpConfig {
    KcpConfig::new().fast_mode().stream_mode(true)
}

/// Reads until `Ok(0)`; returns what was read.
async fn read_to_end(s: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = s
            .read(&mut buf)
            .await
            .expect("read failed before the end of stream");
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(start_paused = true)]
async fn close_ends_the_peers_stream_after_every_byte_and_reading_goes_on() {
    for (loss, seed) in [(0.0, 1), (0.1, 2), (0.3, 3)] {
        let net = lossy(loss, seed);
        let listener = KcpListener::with_transport(net.bind(None), config()).unwrap();
        let mut client =
            KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 21, config())
                .unwrap();
        let data = payload(200_000, seed);
        let run = async {
            client.write_all(&data).await.unwrap();
            client.close().await.unwrap();
            let err = KcpError::from(client.write_all(b"late").await.unwrap_err());
            assert!(
                matches!(
                    err,
                    KcpError::Connection {
                        reason: ConnectionError::WriteAfterShutdown,
                        ..
                    }
                ),
                "{err}"
            );
            let (mut server, _) = listener.accept().await.unwrap();
            let got = read_to_end(&mut server).await;
            assert!(
                got == data,
                "loss {loss}: {} of {} bytes",
                got.len(),
                data.len()
            );
            // Still Ok(0) when asked again.
            assert_eq!(server.read(&mut [0u8; 8]).await.unwrap(), 0);
            // Half-closed: the other direction still works, and ends the same way.
            server.write_all(b"bye").await.unwrap();
            server.close().await.unwrap();
            assert_eq!(read_to_end(&mut client).await, b"bye");
        };
        timeout(Duration::from_secs(120), run)
            .await
            .unwrap_or_else(|_| panic!("loss {loss}: timed out"));
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stream_ends_the_peers_stream_and_its_writes() {
    let net = lossy(0.1, 7);
    let message_config = KcpConfig::new().fast_mode();
    let listener = KcpListener::with_transport(net.bind(None), message_config.clone()).unwrap();
    let mut client = KcpStream::connect_with_transport(
        net.bind(None),
        listener.local_addr(),
        22,
        message_config,
    )
    .unwrap();
    let run = async {
        for i in 0..50u32 {
            client.send(&i.to_le_bytes()).await.unwrap();
        }
        drop(client);
        let (mut server, _) = listener.accept().await.unwrap();
        for i in 0..50u32 {
            assert_eq!(&server.recv().await.unwrap()[..], &i.to_le_bytes());
        }
        // The message API's end of stream: an error that is not fatal.
        let end = server.recv().await.unwrap_err();
        assert!(
            matches!(
                end,
                KcpError::Connection {
                    reason: ConnectionError::EndOfStream,
                    ..
                }
            ),
            "{end}"
        );
        assert!(!end.is_fatal());
        assert_eq!(end.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(server.read(&mut [0u8; 8]).await.unwrap(), 0);
        // The peer is gone, not just done writing: writes fail at once.
        let err = server.send(b"anyone?").await.unwrap_err();
        assert!(
            matches!(
                err,
                KcpError::Connection {
                    reason: ConnectionError::PeerClosed,
                    ..
                }
            ),
            "{err}"
        );
        // Closing our side of an ended connection is not an error.
        server.close().await.unwrap();
    };
    timeout(Duration::from_secs(60), run)
        .await
        .expect("timed out");
}

#[tokio::test(start_paused = true)]
async fn the_seed_server_loop_breaks_when_the_client_closes() {
    let net = lossy(0.05, 9);
    let listener = KcpListener::with_transport(net.bind(None), config()).unwrap();
    let addr = listener.local_addr();
    // The loop of examples/quick_start_server.rs, as written there.
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let _ = stream.write_all(&buf[..n]).await;
        }
        "broke out of the loop"
    });
    let mut client = KcpStream::connect_with_transport(net.bind(None), addr, 23, config()).unwrap();
    let data = payload(50_000, 9);
    client.write_all(&data).await.unwrap();
    client.close().await.unwrap();
    // Everything is echoed back, then the server's drop ends our stream too.
    let echoed = timeout(Duration::from_secs(60), read_to_end(&mut client))
        .await
        .expect("timed out");
    assert!(
        echoed == data,
        "{} of {} bytes echoed",
        echoed.len(),
        data.len()
    );
    assert_eq!(server.await.unwrap(), "broke out of the loop");
}

#[tokio::test(start_paused = true)]
async fn close_fails_when_the_peer_vanishes_before_acknowledging() {
    let net = lossy(0.0, 11);
    let listener = KcpListener::with_transport(net.bind(None), config()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 24, config())
            .unwrap();
    client.write_all(b"hello").await.unwrap();
    let (_server, _) = listener.accept().await.unwrap();
    net.set_conditions(LinkConditions {
        loss: 1.0,
        ..Default::default()
    });
    client.write_all(&payload(10_000, 1)).await.unwrap();
    let err = client.close().await.unwrap_err();
    assert!(
        matches!(
            err,
            KcpError::Timeout {
                timeout: Timeout::DeadPeer,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_signal_is_one_bare_header_alone_after_the_data() {
    let net = lossy(0.0, 13);
    let listener = KcpListener::with_transport(net.bind(None), config()).unwrap();
    // Records every datagram the client sends.
    let sent = Arc::new(Mutex::new(Vec::new()));
    let transport = Hooked::new(net.bind(None), {
        let sent = sent.clone();
        move |d, _| {
            sent.lock().unwrap().push(d.to_vec());
            Verdict::Pass
        }
    });
    let mut client =
        KcpStream::connect_with_transport(transport, listener.local_addr(), 0x0102_0304, config())
            .unwrap();
    client.write_all(&payload(30_000, 2)).await.unwrap();
    client.close().await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    assert_eq!(read_to_end(&mut server).await.len(), 30_000);
    let sent = sent.lock().unwrap();
    let fins: Vec<usize> = (0..sent.len())
        .filter(|&i| sent[i].len() >= 5 && sent[i][4] == FIN)
        .collect();
    // Lossless: answered at the first try.
    assert_eq!(fins.len(), 1, "{fins:?}");
    let fin = &sent[fins[0]];
    assert_eq!(fin.len(), 24, "alone in its datagram, no payload");
    assert_eq!(&fin[..4], &0x0102_0304u32.to_le_bytes(), "conversation");
    assert_eq!(fin[5], 0, "frg 0: the sender still reads");
    // Its sn is the sequence number after the last data segment, and no
    // data follows it.
    let last_data_sn = sent[..fins[0]]
        .iter()
        .filter(|d| d[4] == PUSH)
        .map(|d| u32::from_le_bytes([d[12], d[13], d[14], d[15]]))
        .max()
        .unwrap();
    assert_eq!(
        u32::from_le_bytes([fin[12], fin[13], fin[14], fin[15]]),
        last_data_sn + 1
    );
    assert!(sent[fins[0]..].iter().all(|d| d[4] != PUSH));
}

#[tokio::test(start_paused = true)]
async fn switched_off_no_signal_is_sent_or_honoured() {
    for (sender_on, receiver_on) in [(false, true), (true, false)] {
        let net = lossy(0.0, 17);
        let listener =
            KcpListener::with_transport(net.bind(None), config().end_of_stream(receiver_on))
                .unwrap();
        let mut client = KcpStream::connect_with_transport(
            net.bind(None),
            listener.local_addr(),
            25,
            config().end_of_stream(sender_on),
        )
        .unwrap();
        client.write_all(b"data").await.unwrap();
        client.close().await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        // An answer, which establishes the connection at the listener.
        server.write_all(b"ok").await.unwrap();
        client.read_exact(&mut buf[..2]).await.unwrap();
        // No end of stream: the read waits (here until we give up).
        let r = timeout(Duration::from_secs(3), server.read(&mut buf)).await;
        assert!(
            r.is_err(),
            "sender {sender_on}, receiver {receiver_on}: {r:?}"
        );
    }
}

/// In message mode a 0-byte message is a message, as with `ikcp_send` and
/// `ikcp_recv`: `recv` returns it empty and the end of stream still follows;
/// `read` passes over it (its `Ok(0)` would mean end of stream).
#[tokio::test(start_paused = true)]
async fn empty_messages_are_delivered_by_recv_and_skipped_by_read() {
    let net = lossy(0.0, 7);
    let messages = KcpConfig::new().fast_mode().stream_mode(false);
    let listener = KcpListener::with_transport(net.bind(None), messages.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 23, messages)
            .unwrap();
    let run = async {
        client.send(b"first").await.unwrap();
        client.send(&[]).await.unwrap();
        client.send(b"last").await.unwrap();
        client.send(&[]).await.unwrap();
        client.send(b"after").await.unwrap();
        client.close().await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(server.recv().await.unwrap().to_vec());
        }
        assert_eq!(got, vec![b"first".to_vec(), Vec::new(), b"last".to_vec()]);
        // `read` skips the second empty message and ends at the signal.
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"after");
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        let err = server.recv().await.unwrap_err();
        assert!(
            matches!(
                err,
                KcpError::Connection {
                    reason: ConnectionError::EndOfStream,
                    ..
                }
            ),
            "{err:?}"
        );
    };
    timeout(Duration::from_secs(30), run)
        .await
        .expect("empty messages and the end of stream within 30 s");
}
