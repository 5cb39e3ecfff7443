//! A congestion controller given through `KcpConfig`: every connection (the
//! client's and the one the listener accepts) gets its own, its hooks run,
//! and the window it sets bounds what is in flight even with congestion
//! control turned off by `nc`. In-memory network, tokio's paused clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kcp::engine::{CongestionControl, Window};
use kcp::runtime::{KcpConfig, KcpListener, KcpStream, LinkConditions, MemoryNetwork};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Seen {
    made: AtomicU32,
    sent: AtomicU32,
    acked: AtomicU32,
    most_in_flight: AtomicU32,
}

/// Holds the window at two segments.
struct TwoSegments(Arc<Seen>);

impl CongestionControl for TwoSegments {
    fn on_tick(&mut self, w: &mut Window) {
        w.cwnd = 2;
    }
    fn on_ack(&mut self, w: &mut Window, _segs: u32, _bytes: u32, _prior: u32) {
        w.cwnd = 2;
    }
    fn on_pkt_sent(
        &mut self,
        _w: &mut Window,
        _sn: u32,
        _ts: u32,
        _len: u32,
        in_flight: u32,
        _x: u32,
    ) {
        self.0.sent.fetch_add(1, Ordering::Relaxed);
        self.0
            .most_in_flight
            .fetch_max(in_flight, Ordering::Relaxed);
    }
    fn on_pkt_acked(&mut self, _w: &mut Window, _sn: u32, _ts: u32, _len: u32, _rtt: i32, _x: u32) {
        self.0.acked.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(start_paused = true)]
async fn each_connection_gets_the_configured_controller() {
    let seen = Arc::new(Seen::default());
    let make = seen.clone();
    let config = KcpConfig::new()
        .nodelay(true, 10, 2, true)
        .window_size(64, 128)
        .stream_mode(true)
        .congestion_control(move || {
            make.made.fetch_add(1, Ordering::Relaxed);
            TwoSegments(make.clone())
        });
    let net = MemoryNetwork::new(LinkConditions {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let listener = KcpListener::with_transport(net.bind(None), config.clone()).unwrap();
    let mut client =
        KcpStream::connect_with_transport(net.bind(None), listener.local_addr(), 77, config)
            .unwrap();
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7) as u8).collect();
    let expect = data.clone();
    let run = async {
        client.write_all(&data).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; expect.len()];
        server.read_exact(&mut got).await.unwrap();
        assert!(got == expect, "content differs");
        // Resolves once the server acknowledged everything.
        client.shutdown().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("transfer timed out");
    assert_eq!(seen.made.load(Ordering::Relaxed), 2, "client and server");
    let sent = seen.sent.load(Ordering::Relaxed);
    // 64 KiB in 1376-byte segments, at least once each.
    assert!(sent >= 48, "on_pkt_sent ran {sent} times");
    assert!(seen.acked.load(Ordering::Relaxed) >= 48);
    assert_eq!(
        seen.most_in_flight.load(Ordering::Relaxed),
        2,
        "the controller's window bounds what is in flight (nc is on)"
    );
}
