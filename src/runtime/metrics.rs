//! Counters published through the [`metrics`] facade (feature `metrics`):
//! install any recorder (a Prometheus exporter, ...) and the connections and
//! listeners of this process report into it.
//!
//! Connections publish the counters of their
//! [`ConnectionStats`](super::ConnectionStats) as deltas after every event
//! of their task (application bytes as each read and write happens),
//! summed over connections (a per-connection label would grow without bound),
//! labelled `role` = `client` or `server`. Listeners publish their
//! [`ListenerStats`](super::ListenerStats) every [`LISTENER_PUBLISH_EVERY`],
//! labelled `local` = the bound address.
//!
//! | metric | kind | from |
//! |---|---|---|
//! | `kcp_connections_opened_total` | counter | connections started |
//! | `kcp_connections_closed_total{reason}` | counter | connections ended, `reason` as in the `connection closed` log line |
//! | `kcp_connections_open` | gauge | connections running now |
//! | `kcp_bytes_sent_total`, `kcp_bytes_received_total` | counter | application bytes |
//! | `kcp_datagrams_out_total`, `kcp_datagrams_in_total` | counter | datagrams to / from the transport |
//! | `kcp_wire_bytes_out_total`, `kcp_wire_bytes_in_total` | counter | their bytes |
//! | `kcp_segments_out_total`, `kcp_segments_in_total` | counter | data segments |
//! | `kcp_retransmissions_total`, `kcp_fast_retransmissions_total`, `kcp_lost_segments_total` | counter | retransmissions (all / fast / by timeout) |
//! | `kcp_duplicate_segments_total`, `kcp_rejected_datagrams_total` | counter | input the engine discarded |
//! | `kcp_keep_alives_sent_total` | counter | window probes to a silent peer (keep-alives, and while data waits) |
//! | `kcp_oversized_datagrams_total`, `kcp_oversized_segments_total`, `kcp_out_of_order_dropped_total` | counter | input the memory bounds dropped |
//! | `kcp_simulated_drops_total` | counter | [`KcpConfig::simulated_loss`](super::KcpConfig#structfield.simulated_loss) drops |
//! | `kcp_listener_*_total` | counter | each `u64` counter of `ListenerStats`, same names |
//! | `kcp_listener_connections_alive`, `kcp_listener_half_open` | gauge | connections of the listener now |

use std::sync::{Arc, Weak};
use std::time::Duration;

use metrics::{counter, gauge, Counter, Gauge};

use super::observe::Role;
use super::stats::{ConnectionStats, ListenerCounters, ListenerStats};

/// How often a listener publishes its counters.
pub const LISTENER_PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// Declares the counters published from a stats struct: one registered
/// handle per field, incremented by the field's growth since last time.
macro_rules! delta_counters {
    ($name:ident, $stats:ty, { $($field:ident => $metric:literal),* $(,)? }) => {
        #[derive(Debug)]
        struct $name {
            $($field: Counter,)*
        }

        impl $name {
            fn register(labels: &[(&'static str, String)]) -> Self {
                $name {
                    $($field: counter!($metric, labels),)*
                }
            }

            fn publish(&self, last: &$stats, now: &$stats) {
                $(
                    let d = now.$field.saturating_sub(last.$field);
                    if d > 0 {
                        self.$field.increment(d);
                    }
                )*
            }
        }
    };
}

delta_counters!(ConnectionCounters, ConnectionStats, {
    datagrams_out => "kcp_datagrams_out_total",
    bytes_out => "kcp_wire_bytes_out_total",
    datagrams_in => "kcp_datagrams_in_total",
    bytes_in => "kcp_wire_bytes_in_total",
    segments_out => "kcp_segments_out_total",
    segments_in => "kcp_segments_in_total",
    retransmissions => "kcp_retransmissions_total",
    fast_retransmissions => "kcp_fast_retransmissions_total",
    lost_segments => "kcp_lost_segments_total",
    duplicate_segments => "kcp_duplicate_segments_total",
    rejected_datagrams => "kcp_rejected_datagrams_total",
    simulated_drops => "kcp_simulated_drops_total",
    keep_alives_sent => "kcp_keep_alives_sent_total",
    oversized_datagrams => "kcp_oversized_datagrams_total",
    oversized_segments => "kcp_oversized_segments_total",
    out_of_order_dropped => "kcp_out_of_order_dropped_total",
});

delta_counters!(ListenerCounterHandles, ListenerStats, {
    datagrams => "kcp_listener_datagrams_total",
    routed => "kcp_listener_routed_total",
    connections_created => "kcp_listener_connections_created_total",
    dropped_malformed => "kcp_listener_dropped_malformed_total",
    dropped_unknown => "kcp_listener_dropped_unknown_total",
    dropped_capacity => "kcp_listener_dropped_capacity_total",
    dropped_overload => "kcp_listener_dropped_overload_total",
    dropped_oversized => "kcp_listener_dropped_oversized_total",
    openings_rate_limited => "kcp_listener_openings_rate_limited_total",
    cookies_sent => "kcp_listener_cookies_sent_total",
    openings_without_cookie => "kcp_listener_openings_without_cookie_total",
    half_open_evicted => "kcp_listener_half_open_evicted_total",
    half_open_expired => "kcp_listener_half_open_expired_total",
    transport_errors => "kcp_listener_transport_errors_total",
});

/// Application bytes, counted by the handles as reads and writes happen
/// (the task would only see them at its next event).
#[derive(Debug)]
pub(crate) struct AppMetrics {
    pub sent: Counter,
    pub received: Counter,
}

impl AppMetrics {
    pub(crate) fn new(role: Role) -> Self {
        let labels = [("role", role.as_str().to_string())];
        AppMetrics {
            sent: counter!("kcp_bytes_sent_total", &labels),
            received: counter!("kcp_bytes_received_total", &labels),
        }
    }
}

/// One connection's publisher: what it published so far.
#[derive(Debug)]
pub(crate) struct ConnectionMetrics {
    role: Role,
    last: ConnectionStats,
    counters: ConnectionCounters,
    open: Gauge,
}

impl ConnectionMetrics {
    pub(crate) fn new(role: Role) -> Self {
        let labels = [("role", role.as_str().to_string())];
        counter!("kcp_connections_opened_total", &labels).increment(1);
        let open = gauge!("kcp_connections_open", &labels);
        open.increment(1.0);
        ConnectionMetrics {
            role,
            last: ConnectionStats::default(),
            counters: ConnectionCounters::register(&labels),
            open,
        }
    }

    pub(crate) fn publish(&mut self, now: &ConnectionStats) {
        self.counters.publish(&self.last, now);
        self.last = *now;
    }

    pub(crate) fn closed(&mut self, reason: &'static str) {
        // The reason first: whoever sees the open gauge fall also sees why.
        // (A new series takes the registry's lock, which a recorder's
        // snapshot may hold; with the gauge first, a snapshot taken in
        // between showed the connection gone with no reason counted.)
        counter!(
            "kcp_connections_closed_total",
            "role" => self.role.as_str(),
            "reason" => reason
        )
        .increment(1);
        self.open.decrement(1.0);
    }
}

/// Publishes a listener's counters until the listener and its task are gone.
pub(crate) async fn publish_listener(counters: Weak<ListenerCounters>, local: String) {
    let labels = [("local", local)];
    let handles = ListenerCounterHandles::register(&labels);
    let alive = gauge!("kcp_listener_connections_alive", &labels);
    let half_open = gauge!("kcp_listener_half_open", &labels);
    let mut last = ListenerStats::default();
    let mut tick = tokio::time::interval(LISTENER_PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(c) = counters.upgrade() else {
            break;
        };
        let now = c.snapshot();
        drop::<Arc<_>>(c);
        handles.publish(&last, &now);
        alive.set(now.connections_alive as f64);
        half_open.set(now.half_open as f64);
        last = now;
    }
    alive.set(0.0);
    half_open.set(0.0);
}
