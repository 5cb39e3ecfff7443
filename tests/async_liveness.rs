//! Liveness: a peer that goes silent while data waits for its
//! acknowledgement is declared gone within the dead-peer time, on reads and
//! writes, but one whose answers are lost for a while is probed until it
//! answers; an idle peer is kept by keep-alive probes; a client whose server
//! never answers fails after the connect timeout even if it never wrote.
//!
//! The scenarios run over the in-memory network with tokio's paused clock
//! (durations are virtual and exact); one runs a server in a second process
//! over real UDP on 127.0.0.1 and kills it mid-stream.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcp::runtime::{
    KcpConfig, KcpError, KcpListener, KcpStream, LinkConditions, MemoryNetwork, Timeout,
};
use support::hooked::{Hooked, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

fn link() -> LinkConditions {
    LinkConditions {
        delay: Duration::from_millis(5),
        ..Default::default()
    }
}

fn gone() -> LinkConditions {
    LinkConditions {
        loss: 1.0,
        ..Default::default()
    }
}

fn timeout_of(err: &KcpError) -> Option<Timeout> {
    match err {
        KcpError::Timeout { timeout, .. } => Some(*timeout),
        _ => None,
    }
}

/// A connected client/server pair over `net` that has exchanged one message.
async fn pair(net: &MemoryNetwork, config: KcpConfig) -> (KcpStream, KcpStream) {
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 11, config)
            .unwrap();
    client.write_all(b"hello").await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).await.unwrap();
    server.write_all(b"world").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"world");
    (client, server)
}

#[tokio::test(start_paused = true)]
async fn a_peer_silent_while_data_is_unacknowledged_fails_reads_and_writes_in_the_dead_peer_time() {
    let net = MemoryNetwork::new(link());
    let config = KcpConfig::new().fast_mode().stream_mode(true);
    let limit = config.dead_peer_timeout.unwrap();
    assert_eq!(limit, Duration::from_secs(5), "the documented default");
    let (client, _server) = pair(&net, config).await;
    let (mut r, mut w) = client.into_split();
    net.set_conditions(gone());
    let t0 = Instant::now();
    w.write_all(&[7u8; 4000]).await.unwrap();
    let mut buf = [0u8; 64];
    let err = KcpError::from(r.read(&mut buf).await.unwrap_err());
    let noticed = t0.elapsed();
    println!("in-memory, paused clock: silent peer noticed after {noticed:?}: {err}");
    assert_eq!(timeout_of(&err), Some(Timeout::DeadPeer), "{err}");
    assert!(err.to_string().contains("dead-peer timeout"), "{err}");
    assert!(err.to_string().contains("5s"), "{err}");
    assert!(
        noticed >= limit && noticed < limit + Duration::from_millis(100),
        "noticed after {noticed:?}"
    );
    let err = KcpError::from(w.write_all(b"more").await.unwrap_err());
    assert_eq!(timeout_of(&err), Some(Timeout::DeadPeer), "{err}");
    let err = KcpError::from(w.flush().await.unwrap_err());
    assert_eq!(timeout_of(&err), Some(Timeout::DeadPeer), "{err}");
}

/// The observability test's 256 KiB transfer over a link losing 30% each
/// way failed about once in 25 runs with the dead-peer timeout: with one
/// segment in flight, ten or so tries in a row (a retransmission lost, or
/// its acknowledgement) went unanswered, and as retransmissions back off
/// (each waits 1.5 times as long as the one before) the last try before
/// the 5 s verdict came 3.4 s into the silence and the next one after it.
/// Here the server's answers are lost for the first 3.6 s of a silence:
/// the retransmissions alone find the path again only after the verdict;
/// the client's probes, every half second from 1 s on, find it at 4 s.
#[tokio::test(start_paused = true)]
async fn a_peer_whose_answers_are_lost_for_a_while_is_not_declared_dead() {
    let net = MemoryNetwork::new(link());
    // The server's side of the link loses everything it sends until then.
    let muted_until = Arc::new(Mutex::new(Instant::now()));
    let server = Hooked::new(net.bind(None), {
        let until = muted_until.clone();
        move |_, _| {
            if Instant::now() < *until.lock().unwrap() {
                Verdict::Lose
            } else {
                Verdict::Pass
            }
        }
    });
    let config = KcpConfig::new().fast_mode().stream_mode(true);
    let limit = config.dead_peer_timeout.unwrap();
    let listener = KcpListener::with_transport(server.clone(), config.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 12, config)
            .unwrap();
    client.write_all(b"hello").await.unwrap();
    let (mut accepted, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 5];
    accepted.read_exact(&mut buf).await.unwrap();
    accepted.write_all(b"world").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();

    let t0 = Instant::now();
    *muted_until.lock().unwrap() = t0 + Duration::from_millis(3600);
    client.write_all(&[7u8; 4000]).await.unwrap();
    let flushed = tokio::time::timeout(Duration::from_secs(30), client.flush())
        .await
        .expect("flush never returned")
        .map_err(KcpError::from);
    let took = t0.elapsed();
    assert!(flushed.is_ok(), "after {took:?}: {flushed:?}");
    assert!(took < limit, "acknowledged after {took:?}");
    let mut got = vec![0u8; 4000];
    accepted.read_exact(&mut got).await.unwrap();
    let st = client.stats();
    assert!(st.keep_alives_sent > 0, "{st:?}");
    println!(
        "answers lost for 3.6 s: acknowledged after {took:?}, {} probes, {} retransmissions",
        st.keep_alives_sent, st.retransmissions
    );
}

#[tokio::test(start_paused = true)]
async fn without_the_dead_peer_time_only_the_idle_timeout_notices() {
    // What the library did before: a vanished peer was noticed by the idle
    // timeout only, after many retransmissions.
    let net = MemoryNetwork::new(link());
    let config = KcpConfig::new()
        .fast_mode()
        .stream_mode(true)
        .dead_peer_timeout(None);
    let (mut client, _server) = pair(&net, config).await;
    net.set_conditions(gone());
    let t0 = Instant::now();
    client.write_all(&[7u8; 4000]).await.unwrap();
    let mut buf = [0u8; 64];
    let err = KcpError::from(client.read(&mut buf).await.unwrap_err());
    assert_eq!(timeout_of(&err), Some(Timeout::Idle), "{err}");
    assert!(
        t0.elapsed() >= Duration::from_secs(25),
        "{:?}",
        t0.elapsed()
    );
    println!(
        "dead-peer timeout off: noticed after {:?} and {} retransmissions",
        t0.elapsed(),
        client.stats().retransmissions
    );
}

#[tokio::test(start_paused = true)]
async fn keep_alive_probes_keep_an_idle_connection_alive() {
    let s = Duration::from_secs;
    // The default (5 s probes, 30 s idle timeout) and the seed's chain, a
    // 30 s keep-alive, which raises the idle timeout to 90 s.
    let seed_chain = KcpConfig::new()
        .fast_mode()
        .window_size(128, 128)
        .mtu(1400)
        .connect_timeout(s(10))
        .keep_alive(Some(s(30)))
        .stream_mode(true);
    for (name, config, idle) in [
        ("default", KcpConfig::new().stream_mode(true), s(30)),
        ("seed chain", seed_chain, s(90)),
    ] {
        assert_eq!(config.idle_timeout, Some(idle), "{name}");
        let net = MemoryNetwork::new(link());
        let (mut client, mut server) = pair(&net, config).await;
        tokio::time::sleep(s(300)).await;
        assert!(
            client.close_reason().is_none(),
            "{name}: {:?}",
            client.close_reason()
        );
        assert!(
            server.close_reason().is_none(),
            "{name}: {:?}",
            server.close_reason()
        );
        assert!(client.stats().keep_alives_sent > 0, "{name}");
        // Still usable after five idle minutes.
        client.write_all(b"again").await.unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"again");
        // Once the peer is gone, the idle timeout notices.
        net.set_conditions(gone());
        let t0 = Instant::now();
        let err = KcpError::from(client.read(&mut buf).await.unwrap_err());
        assert_eq!(timeout_of(&err), Some(Timeout::Idle), "{name}: {err}");
        assert!(
            t0.elapsed() <= idle + Duration::from_millis(100),
            "{name}: {:?}",
            t0.elapsed()
        );
        println!(
            "{name}: idle for 300 s kept alive; vanished peer noticed after {:?}",
            t0.elapsed()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_keep_alive_is_repeated_before_the_idle_timeout() {
    // Idle timeout only twice the probe interval: the probe due 1 s after
    // the last exchange is lost, its repetition a third of a second later
    // is answered. (Probing again only at 2 s would meet the idle timeout.)
    let net = MemoryNetwork::new(link());
    let config = KcpConfig::new()
        .keep_alive(Some(Duration::from_secs(1)))
        .idle_timeout(Some(Duration::from_secs(2)));
    config.validate().unwrap();
    let (client, server) = pair(&net, config).await;
    net.set_conditions(gone());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    net.set_conditions(link());
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        client.close_reason().is_none(),
        "{:?}",
        client.close_reason()
    );
    assert!(
        server.close_reason().is_none(),
        "{:?}",
        server.close_reason()
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_writes_to_a_silent_server_fails_after_the_connect_timeout() {
    let net = MemoryNetwork::new(link());
    let server = "10.0.0.2:1".parse().unwrap();
    let _silent = net.bind(Some(server));
    let config = KcpConfig::new().connect_timeout(Duration::from_secs(3));
    let mut client = KcpStream::connect_with_transport(net.bind(None), server, 5, config).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 8];
    let err = KcpError::from(client.read(&mut buf).await.unwrap_err());
    assert_eq!(timeout_of(&err), Some(Timeout::Connect), "{err}");
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    let err = KcpError::from(client.write_all(b"late").await.unwrap_err());
    assert_eq!(timeout_of(&err), Some(Timeout::Connect), "{err}");
}

/// Set in the child process that plays the server.
const ROLE: &str = "KCP_LIVENESS_SERVER";

fn bulk_config() -> KcpConfig {
    // kcp-go deployments' settings.
    KcpConfig::new()
        .nodelay(true, 10, 2, true)
        .window_size(1024, 1024)
        .stream_mode(true)
}

/// In the child: an echo server that prints its port and serves until killed
/// (or for 60 s at most).
async fn echo_server_process() {
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), bulk_config())
        .await
        .unwrap();
    println!("PORT {}", listener.local_addr().port());
    let serve = async {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_process_killed_mid_stream_is_noticed_in_the_dead_peer_time() {
    if std::env::var_os(ROLE).is_some() {
        echo_server_process().await;
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_server_process_killed_mid_stream_is_noticed_in_the_dead_peer_time",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("server exited").unwrap();
        // The test harness prints the test's name on the same line.
        if let Some(at) = line.find("PORT ") {
            break line[at + 5..].trim().parse().unwrap();
        }
    };
    let config = bulk_config();
    let limit = config.dead_peer_timeout.unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let client = KcpStream::connect(addr, config).await.unwrap();
    let (mut r, mut w) = client.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5au8; 16 * 1024];
        loop {
            if let Err(e) = w.write_all(&chunk).await {
                return (std::time::Instant::now(), KcpError::from(e));
            }
        }
    });
    // Mid-stream: a megabyte echoed, then the server process dies.
    let mut buf = vec![0u8; 64 * 1024];
    let mut echoed = 0;
    while echoed < 1 << 20 {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0);
        echoed += n;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = std::time::Instant::now();
    let read_err = loop {
        match r.read(&mut buf).await {
            Ok(n) => assert!(n > 0, "end of stream from a killed server"),
            Err(e) => break KcpError::from(e),
        }
    };
    let read_after = killed.elapsed();
    let (write_at, write_err) = tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .expect("the writer was not told")
        .unwrap();
    let write_after = write_at.saturating_duration_since(killed);
    println!(
        "two processes, real UDP: server killed after {echoed} bytes echoed; read failed after \
         {read_after:?}, write after {write_after:?}: {read_err}"
    );
    assert_eq!(timeout_of(&read_err), Some(Timeout::DeadPeer), "{read_err}");
    assert_eq!(
        timeout_of(&write_err),
        Some(Timeout::DeadPeer),
        "{write_err}"
    );
    // The clock starts at the last datagram heard, just before the kill.
    assert!(
        read_after <= limit + Duration::from_secs(1),
        "{read_after:?}"
    );
    assert!(
        read_after >= limit - Duration::from_millis(500),
        "{read_after:?}"
    );
}
