//! What a connection tells its logs, and that its stats are current: the
//! `tracing` events a user with `RUST_LOG=kcp=debug` sees for connect,
//! accept, conversation assignment, retransmission bursts, a stalled window,
//! a dead peer and the close reason, each inside the connection's span.
//! Real UDP on 127.0.0.1.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Every formatted log line, for the test to search.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        // Also shown with --nocapture, like any test's output.
        print!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines that contain every one of `words`.
    fn lines_with(&self, words: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .map(str::to_owned)
            .collect()
    }
}

fn install() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("kcp=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    captured
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_log_their_life_inside_their_span() {
    let logs = install();
    timeout(Duration::from_secs(60), async {
        // Connect, accept, the server-assigned conversation (conv 0), echo.
        let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::fast())
            .await
            .unwrap();
        let addr = listener.local_addr();
        let mut client = KcpStream::connect_with_conv(addr, 0, KcpConfig::fast())
            .await
            .unwrap();
        client.write_all(b"hello").await.unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        let conv = server.conv();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).await.unwrap();
        server.write_all(&buf).await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(client.conv(), conv);

        assert!(!logs
            .lines_with(&["connecting", &addr.to_string()])
            .is_empty());
        assert!(!logs.lines_with(&["accepted", &peer.to_string()]).is_empty());
        assert!(!logs
            .lines_with(&["server assigned the conversation", &format!("conv={conv}")])
            .is_empty());
        // Events from inside the connection task carry its span.
        let span = format!("kcp_conn{{conv={conv} peer={peer}}}");
        assert!(
            !logs
                .lines_with(&[&span, "first datagram from the peer accepted"])
                .is_empty(),
            "no event in span {span}:\n{}",
            logs.text()
        );

        // Retransmission bursts: a bulk transfer over a link losing 30%.
        let lossy = KcpConfig::testing(0.3).stream_mode(true);
        let l2 = KcpListener::bind("127.0.0.1:0".parse().unwrap(), lossy.clone())
            .await
            .unwrap();
        let mut tx = KcpStream::connect(l2.local_addr(), lossy).await.unwrap();
        let data = vec![7u8; 256 * 1024];
        tx.write_all(&data).await.unwrap();
        let (mut rx, _) = l2.accept().await.unwrap();
        let mut got = vec![0u8; data.len()];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(got, data);
        assert!(tx.stats().retransmissions > 0);
        assert!(
            !logs
                .lines_with(&["retransmission burst", "retransmitted="])
                .is_empty(),
            "{} retransmissions, no burst logged",
            tx.stats().retransmissions
        );

        // A stalled window: the reader stops reading, its window closes.
        let small = KcpConfig::fast()
            .stream_mode(true)
            .window_size(32, 32)
            .recv_buffer(4096);
        let l3 = KcpListener::bind("127.0.0.1:0".parse().unwrap(), small.clone())
            .await
            .unwrap();
        let mut tx = KcpStream::connect(l3.local_addr(), small).await.unwrap();
        let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(async move {
            let chunk = vec![1u8; 16 * 1024];
            let _ = tx.write_all(&chunk).await;
            let _ = sent_tx.send(());
            for _ in 0..16 {
                if tx.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            tx
        });
        let _ = sent_rx.await;
        let (mut stalled_reader, _) = l3.accept().await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while logs.lines_with(&["send stalled"]).is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no stall logged:\n{}",
                logs.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Reading reopens it.
        let mut sink = vec![0u8; 64 * 1024];
        while logs.lines_with(&["receive window reopened"]).is_empty() {
            assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(10));
            let _ = timeout(Duration::from_millis(50), stalled_reader.read(&mut sink)).await;
        }
        writer.abort();

        // A dead peer: the server goes away while the client has data in
        // flight, without a word (a dropped stream would otherwise say
        // goodbye with the end-of-stream signal).
        let quick = KcpConfig::fast()
            .dead_peer_timeout(Some(Duration::from_millis(500)))
            .end_of_stream(false);
        let l4 = KcpListener::bind("127.0.0.1:0".parse().unwrap(), quick.clone())
            .await
            .unwrap();
        let mut c = KcpStream::connect(l4.local_addr(), quick).await.unwrap();
        c.write_all(b"are you there").await.unwrap();
        let (s, _) = l4.accept().await.unwrap();
        let mut b = [0u8; 13];
        let mut s = s;
        s.read_exact(&mut b).await.unwrap();
        drop(s);
        drop(l4);
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.write_all(b"hello?").await.unwrap();
        let err = c.read(&mut b).await.unwrap_err();
        let err = kcp::KcpError::from(err);
        assert!(matches!(err, kcp::KcpError::Timeout { .. }), "{err}");
        let dead = logs.lines_with(&["peer declared dead"]);
        assert!(!dead.is_empty(), "{}", logs.text());
        assert!(dead[0].contains("INFO"), "{}", dead[0]);
        assert!(!logs
            .lines_with(&["connection closed", "reason=\"dead_peer\""])
            .is_empty());
    })
    .await
    .expect("scenario timed out");
}

/// The issue saw `recv_buffer_bytes = 176,128` after everything had been
/// read: the buffer figures were those of the task's last event. They are
/// read live now.
#[tokio::test]
async fn stats_buffer_figures_are_current_after_reads_and_writes() {
    timeout(Duration::from_secs(20), async {
        let config = KcpConfig::fast().stream_mode(true);
        let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), config.clone())
            .await
            .unwrap();
        let mut client = KcpStream::connect(listener.local_addr(), config)
            .await
            .unwrap();
        let data = vec![3u8; 176 * 1024];
        client.write_all(&data).await.unwrap();
        client.flush().await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        // Let everything arrive before reading any of it.
        while server.stats().bytes_in < data.len() as u64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(server.stats().recv_buffer_bytes > 0);
        let mut got = vec![0u8; data.len()];
        server.read_exact(&mut got).await.unwrap();
        let st = server.stats();
        assert_eq!(st.bytes_received, data.len() as u64);
        assert_eq!(st.recv_buffer_bytes, 0, "{st:?}");
        assert_eq!(client.stats().send_buffer_bytes, 0);
    })
    .await
    .expect("timed out");
}
