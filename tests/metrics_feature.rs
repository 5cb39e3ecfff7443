//! Feature `metrics`: connection and listener counters reach a `metrics`
//! recorder (here metrics-util's `DebuggingRecorder`, installed for this
//! binary). `cargo test --features metrics --test metrics_feature`.

use std::collections::HashMap;
use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Everything recorded so far. The debugging recorder hands out each
/// value once (a snapshot resets counters and gauges to zero), so the test
/// adds the snapshots up.
#[derive(Default)]
struct Totals(HashMap<CompositeKey, f64>);

impl Totals {
    fn update(&mut self, s: &Snapshotter) {
        for (k, _, _, v) in s.snapshot().into_vec() {
            let v = match v {
                DebugValue::Counter(c) => c as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => continue,
            };
            *self.0.entry(k).or_default() += v;
        }
    }

    /// The sum of `name` over the series whose labels include all of `labels`.
    fn sum(&self, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| k.kind() == kind && k.key().name() == name)
            .filter(|(k, _)| {
                labels
                    .iter()
                    .all(|(lk, lv)| k.key().labels().any(|l| l.key() == *lk && l.value() == *lv))
            })
            .map(|(_, v)| *v)
            .sum()
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.sum(MetricKind::Counter, name, labels) as u64
    }

    fn gauge(&self, name: &str) -> f64 {
        self.sum(MetricKind::Gauge, name, &[])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_and_listener_counters_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    tokio::time::timeout(Duration::from_secs(30), async {
        let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::fast())
            .await
            .unwrap();
        let local = listener.local_addr().to_string();
        let mut client = KcpStream::connect(listener.local_addr(), KcpConfig::fast())
            .await
            .unwrap();
        let data = vec![9u8; 100_000];
        client.write_all(&data).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; data.len()];
        server.read_exact(&mut got).await.unwrap();
        client.flush().await.unwrap();
        // The listener publishes every 500 ms.
        tokio::time::sleep(Duration::from_millis(1200)).await;

        let mut totals = Totals::default();
        totals.update(&snapshotter);
        let snap = &totals;
        let sent = snap.counter("kcp_bytes_sent_total", &[("role", "client")]);
        assert_eq!(sent, data.len() as u64);
        let received = snap.counter("kcp_bytes_received_total", &[("role", "server")]);
        assert_eq!(received, data.len() as u64);
        let client_stats = client.stats();
        assert_eq!(
            snap.counter("kcp_datagrams_out_total", &[("role", "client")]),
            client_stats.datagrams_out
        );
        assert!(snap.counter("kcp_segments_in_total", &[("role", "server")]) > 0);
        assert_eq!(snap.counter("kcp_connections_opened_total", &[]), 2);
        assert_eq!(snap.gauge("kcp_connections_open"), 2.0);

        let ls = listener.stats();
        let routed = snap.counter("kcp_listener_datagrams_total", &[("local", &local)]);
        assert!(routed > 0 && routed <= ls.datagrams, "{routed} vs {ls:?}");
        assert_eq!(
            snap.counter(
                "kcp_listener_connections_created_total",
                &[("local", &local)]
            ),
            1
        );
        assert_eq!(snap.gauge("kcp_listener_connections_alive"), 1.0);

        // Closing: the gauge goes down, the reason is counted.
        drop(server);
        drop(client);
        drop(listener);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            totals.update(&snapshotter);
            if totals.gauge("kcp_connections_open") == 0.0 {
                // A snapshot reads one series after another, so the one
                // that showed the gauge fall may have read the counters
                // before the last reason was counted; a connection counts
                // its reason before it lowers the gauge, so the next
                // snapshot has it.
                totals.update(&snapshotter);
                // Both ends counted: a dropped stream says goodbye with the
                // end-of-stream signal, so its peer may end as peer_closed.
                assert_eq!(
                    totals.counter("kcp_connections_closed_total", &[("reason", "finished")])
                        + totals
                            .counter("kcp_connections_closed_total", &[("reason", "peer_closed")]),
                    2
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "connections never closed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("timed out");
}
