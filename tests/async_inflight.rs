//! The adaptive in-flight limit (`KcpConfig::adaptive_inflight`): on a path
//! whose bandwidth-delay product is far below the window, a bulk sender
//! keeps about one and a half products in flight instead of filling the window into
//! the path's queue, at the same throughput; on a long fat path it keeps
//! its whole window. Runs over the in-memory network with tokio's paused
//! clock: the times below are virtual, and every run is the same.

mod support;

use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream, LinkConditions, MemoryNetwork};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// No congestion window and windows of 1,024, so that only the window
/// limits a sender; KCP's normal retransmission timer (at least 100 ms).
fn config(adaptive: bool) -> KcpConfig {
    KcpConfig::new()
        .nodelay(false, 10, 2, true)
        .window_size(1024, 1024)
        .stream_mode(true)
        .adaptive_inflight(adaptive)
}

/// What one bulk transfer did.
#[derive(Debug)]
struct Transfer {
    /// Virtual time from the first write to the last byte read.
    took: Duration,
    /// Most segments in flight after the first second.
    peak_in_flight: usize,
    /// The sender's smoothed round-trip time at the end (queueing included).
    srtt: Duration,
    min_rtt: Option<Duration>,
    retransmissions: u64,
}

/// Sends `bytes` from a client to a reading server over `link`.
async fn transfer(link: LinkConditions, adaptive: bool, bytes: usize) -> Transfer {
    transfer_over(MemoryNetwork::new(link), adaptive, bytes).await
}

/// Sends `bytes` from a client to a reading server over `net`.
async fn transfer_over(net: MemoryNetwork, adaptive: bool, bytes: usize) -> Transfer {
    transfer_to_reader(net, adaptive, bytes, 0).await
}

/// As `transfer_over`, with a reader that takes 16 KB every 40 ms until it
/// has `slow_until` bytes (400 KB/s), then reads as fast as it can;
/// `took` then counts from the first fast read.
async fn transfer_to_reader(
    net: MemoryNetwork,
    adaptive: bool,
    bytes: usize,
    slow_until: usize,
) -> Transfer {
    support::init_tracing();
    let listener = KcpListener::with_transport(net.bind(None), config(adaptive)).unwrap();
    let server = listener.local_addr();
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        let mut fast_since = None;
        while got < bytes {
            let slow = got < slow_until;
            let want = if slow { 16 * 1024 } else { buf.len() };
            let n = s.read(&mut buf[..want]).await.unwrap();
            assert!(n > 0, "stream ended early at {got}");
            got += n;
            if slow {
                tokio::time::sleep(Duration::from_millis(40)).await;
            } else {
                fast_since.get_or_insert_with(Instant::now);
            }
        }
        (Instant::now(), fast_since)
    });
    let client =
        KcpStream::connect_with_transport(net.bind(None), server, 7, config(adaptive)).unwrap();
    let (watch, mut w) = client.into_split();
    let start = Instant::now();
    let watcher = tokio::spawn(async move {
        let mut peak = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let s = watch.stats();
            if start.elapsed() > Duration::from_millis(500) {
                peak = peak.max(s.in_flight_segments);
            }
            if s.bytes_sent as usize >= bytes && s.send_queue_segments == 0 {
                return (peak, s);
            }
        }
    });
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0;
    while sent < bytes {
        let n = (bytes - sent).min(chunk.len());
        w.write_all(&chunk[..n]).await.unwrap();
        sent += n;
    }
    let (done, fast_since) = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("transfer finished")
        .unwrap();
    let start = if slow_until > 0 {
        fast_since.expect("read fast")
    } else {
        start
    };
    let (peak_in_flight, last) = watcher.await.unwrap();
    Transfer {
        took: done - start,
        peak_in_flight,
        srtt: last.srtt,
        min_rtt: last.min_rtt,
        retransmissions: last.retransmissions,
    }
}

/// 10 MB/s each way, 5 ms each way: a product of 100 KB (about 73
/// segments) against a window of 1,024.
fn slow_link() -> LinkConditions {
    LinkConditions {
        delay: Duration::from_millis(5),
        bandwidth: Some(10_000_000),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_link_gets_its_throughput_without_a_full_window_in_its_queue() {
    let bytes = 12_000_000;
    let adaptive = transfer(slow_link(), true, bytes).await;
    let window = transfer(slow_link(), false, bytes).await;
    println!("adaptive: {adaptive:?}\nwindow only: {window:?}");

    // The link is the bottleneck either way: 1.2 s of sending.
    let floor = Duration::from_millis(1200);
    assert!(adaptive.took >= floor && window.took >= floor);
    assert!(
        adaptive.took <= window.took,
        "adaptive {adaptive:?} against {window:?}"
    );
    // Filling the window puts 1,024 segments (140 ms at 10 MB/s) in the
    // link's queue; the limit keeps about one and a half products (and resends).
    assert!(window.peak_in_flight > 900, "{window:?}");
    assert!(adaptive.peak_in_flight <= 350, "{adaptive:?}");
    // Which the round-trip time shows, and the resends the queue's delay
    // causes once it exceeds the retransmission timer.
    assert!(window.srtt >= Duration::from_millis(100), "{window:?}");
    assert!(adaptive.srtt <= Duration::from_millis(50), "{adaptive:?}");
    assert!(
        adaptive.retransmissions < window.retransmissions / 2,
        "{adaptive:?} {window:?}"
    );
    let min_rtt = adaptive.min_rtt.expect("measured");
    assert!(
        min_rtt >= Duration::from_millis(10) && min_rtt <= Duration::from_millis(20),
        "{min_rtt:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_path_that_gets_faster_is_followed() {
    // 5 MB/s for the first second, then 50 MB/s: the measured rate, and
    // with it the limit, must grow with the path.
    let slow = LinkConditions {
        delay: Duration::from_millis(5),
        bandwidth: Some(5_000_000),
        ..Default::default()
    };
    let fast = LinkConditions {
        bandwidth: Some(50_000_000),
        ..slow.clone()
    };
    let run = |adaptive| {
        let (slow, fast) = (slow.clone(), fast.clone());
        async move {
            let net = MemoryNetwork::new(slow);
            let speed_up = {
                let net = net.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    net.set_conditions(fast);
                })
            };
            let t = transfer_over(net, adaptive, 20_000_000).await;
            speed_up.await.unwrap();
            t
        }
    };
    let adaptive = run(true).await;
    let window = run(false).await;
    println!("adaptive: {adaptive:?}\nwindow only: {window:?}");
    // 5 MB in the first second, 15 MB at 50 MB/s: 1.3 s at best.
    assert!(adaptive.took >= Duration::from_millis(1300));
    assert!(
        adaptive.took <= window.took + window.took / 10,
        "adaptive {:?} against {:?}",
        adaptive.took,
        window.took
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_does_not_cost_the_limit_once_it_speeds_up() {
    // 4 MB/s and 100 ms round trips: a product of 400 KB (290 segments).
    // For the first 2 MB the reader takes 400 KB/s, so the sender is held
    // back by the reader's window; the delivery rates it sees then are the
    // reader's. When the reader speeds up, the limit must still be the
    // path's, not the floor that the reader's rate would give.
    let link = LinkConditions {
        delay: Duration::from_millis(50),
        bandwidth: Some(4_000_000),
        ..Default::default()
    };
    let bytes = 8_000_000;
    let slow_until = 2_000_000;
    let adaptive =
        transfer_to_reader(MemoryNetwork::new(link.clone()), true, bytes, slow_until).await;
    let window = transfer_to_reader(MemoryNetwork::new(link), false, bytes, slow_until).await;
    println!("adaptive: {adaptive:?}\nwindow only: {window:?}");
    // At most 6 MB are left when the reader speeds up, less what its
    // queue (1 MiB) and the window already hold: under 1.5 s at 4 MB/s.
    // Had the reader's rates replaced the path's, the limit would start
    // from its floor and grow by half per round trip: 1.57 s.
    assert!(adaptive.took < Duration::from_millis(1400), "{adaptive:?}");
    assert!(
        adaptive.took < window.took,
        "adaptive {adaptive:?} against {window:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_fat_path_keeps_its_whole_window() {
    // 100 ms round trips and no bandwidth limit: the window is the limit
    // (1,024 segments per round trip), and the product is far above it.
    let link = LinkConditions {
        delay: Duration::from_millis(50),
        ..Default::default()
    };
    let bytes = 8_000_000;
    let adaptive = transfer(link.clone(), true, bytes).await;
    let window = transfer(link, false, bytes).await;
    println!("adaptive: {adaptive:?}\nwindow only: {window:?}");
    assert!(adaptive.peak_in_flight >= 1000, "{adaptive:?}");
    assert!(
        adaptive.took <= window.took + window.took / 20,
        "adaptive {:?} against {:?}",
        adaptive.took,
        window.took
    );
}
