//! Echo over real UDP on 127.0.0.1, in stream and message mode, for every preset.

mod support;

use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

fn presets() -> Vec<(&'static str, KcpConfig)> {
    vec![
        ("new", KcpConfig::new()),
        ("normal", KcpConfig::normal()),
        ("fast_mode", KcpConfig::new().fast_mode()),
        ("turbo_mode", KcpConfig::turbo()),
        ("gaming", KcpConfig::gaming()),
        ("realtime", KcpConfig::realtime()),
        ("file_transfer", KcpConfig::file_transfer()),
        ("testing(0.0)", KcpConfig::testing(0.0)),
    ]
}

/// Deterministic payload: byte `i` of message `m`.
fn payload(m: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + m * 7) as u8).collect()
}

async fn message_echo(name: &str, config: KcpConfig) -> usize {
    let config = config.stream_mode(false);
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), config.clone())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        while let Ok(m) = s.recv().await {
            s.send(&m).await.unwrap();
        }
    });
    let mut client = KcpStream::connect(addr, config.clone()).await.unwrap();
    // Sizes from empty-ish to several fragments, up to the largest message.
    let max = config.max_message_size();
    let sizes: Vec<usize> = vec![1, 100, config.mss(), config.mss() + 1, 5000, max / 2, max];
    let mut total = 0;
    for (m, &len) in sizes.iter().enumerate() {
        client.send(&payload(m, len)).await.unwrap();
    }
    for (m, &len) in sizes.iter().enumerate() {
        let got = client.recv().await.unwrap();
        assert_eq!(got.len(), len, "{name}: message {m} length");
        assert!(
            got[..] == payload(m, len)[..],
            "{name}: message {m} content"
        );
        total += len;
    }
    client.flush().await.unwrap();
    let st = client.stats();
    assert_eq!(st.bytes_sent, total as u64);
    assert_eq!(st.bytes_received, total as u64);
    assert!(client.conv() != 0);
    drop(client);
    server.abort();
    total
}

async fn stream_echo(name: &str, config: KcpConfig) -> usize {
    let config = config.stream_mode(true);
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), config.clone())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => w.write_all(&buf[..n]).await.unwrap(),
            }
        }
    });
    let client = KcpStream::connect(addr, config).await.unwrap();
    let (mut r, mut w) = client.into_split();
    let data = payload(1, 150_000);
    let expect = data.clone();
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(7_777) {
            w.write_all(chunk).await.unwrap();
        }
        w.flush().await.unwrap();
        w
    });
    let mut got = vec![0u8; expect.len()];
    r.read_exact(&mut got).await.unwrap();
    assert!(got == expect, "{name}: stream content differs");
    let _w = writer.await.unwrap();
    server.abort();
    expect.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_every_preset_in_both_modes() {
    support::init_tracing();
    let mut tasks = Vec::new();
    for (name, config) in presets() {
        let c = config.clone();
        tasks.push(tokio::spawn(async move {
            (name, "message", message_echo(name, c).await)
        }));
        tasks.push(tokio::spawn(async move {
            (name, "stream", stream_echo(name, config).await)
        }));
    }
    let all = async {
        for t in tasks {
            let (name, mode, bytes) = t.await.unwrap();
            println!("echo {name:>14} {mode:>7}: {bytes} bytes verified");
        }
    };
    timeout(Duration::from_secs(40), all)
        .await
        .expect("echo tests timed out");
}

#[tokio::test]
async fn invalid_config_is_refused_with_a_clear_error() {
    support::init_tracing();
    let err = KcpStream::connect("127.0.0.1:9".parse().unwrap(), KcpConfig::new().mtu(10))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("mtu"), "{err}");
    let err = KcpListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        KcpConfig::new().window_size(0, 0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn oversized_message_is_refused() {
    support::init_tracing();
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::testing(0.0))
        .await
        .unwrap();
    let config = KcpConfig::testing(0.0);
    let mut c = KcpStream::connect(listener.local_addr(), config.clone())
        .await
        .unwrap();
    let err = c
        .send(&vec![0u8; config.max_message_size() + 1])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("exceeds"), "{err}");
}
