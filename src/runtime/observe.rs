//! What a connection reports as it runs: `tracing` events for the moments
//! worth a log line, and (feature `metrics`) its counters through the
//! `metrics` facade.
//!
//! The connection task calls [`Observer::after_event`] with its fresh stats
//! snapshot after every event and [`Observer::closed`] once at the end; the
//! events are emitted inside the connection's `kcp_conn` span, so they carry
//! its conversation id and peer.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, trace};

use super::error::{ConnectionError, KcpError, Timeout};
use super::stats::ConnectionStats;

/// Retransmissions within [`BURST_WINDOW`] that make a burst, logged at
/// `debug` (each retransmitting event is also logged at `trace`): a burst
/// means a stretch of loss or a timeout, not the odd lost segment.
pub(crate) const RETRANSMISSION_BURST: u64 = 8;
/// How long retransmissions are gathered into one burst.
pub(crate) const BURST_WINDOW: Duration = Duration::from_secs(1);

/// Which side of a connection this is (a `role` label on its metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Opened with `KcpStream::connect*`.
    Client,
    /// Accepted by a listener.
    Server,
}

impl Role {
    /// Mixed into the simulated-loss seed so that the two ends of one
    /// conversation draw different losses.
    pub(crate) fn loss_salt(self) -> u64 {
        match self {
            Role::Client => 0,
            Role::Server => 0x5e72_7e72_0000_0000,
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Observer {
    retransmissions: u64,
    lost: u64,
    /// The burst being gathered: since when, retransmissions, of which by timeout.
    burst: Option<(Instant, u64, u64)>,
    heard: bool,
    peer_window_closed: bool,
    writers_blocked: bool,
    #[cfg(feature = "metrics")]
    metrics: super::metrics::ConnectionMetrics,
}

impl Observer {
    pub(crate) fn new(role: Role) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = role;
        Observer {
            retransmissions: 0,
            lost: 0,
            burst: None,
            heard: false,
            peer_window_closed: false,
            writers_blocked: false,
            #[cfg(feature = "metrics")]
            metrics: super::metrics::ConnectionMetrics::new(role),
        }
    }

    /// Compares `now` with what was last seen and logs what changed.
    /// `send_full`: writers are waiting for buffer space.
    pub(crate) fn after_event(&mut self, now: &ConnectionStats, send_full: bool) {
        if !self.heard && now.datagrams_in > 0 {
            self.heard = true;
            debug!("first datagram from the peer accepted");
        }
        let retransmitted = now.retransmissions - self.retransmissions;
        if retransmitted > 0 {
            let lost = now.lost_segments - self.lost;
            trace!(retransmitted, timed_out = lost, rto = ?now.rto, "retransmitted");
            let at = Instant::now();
            let (since, count, timed_out) = match self.burst {
                Some((since, n, t)) if at.duration_since(since) < BURST_WINDOW => {
                    (since, n + retransmitted, t + lost)
                }
                _ => (at, retransmitted, lost),
            };
            if count >= RETRANSMISSION_BURST {
                debug!(
                    retransmitted = count,
                    timed_out,
                    fast = count - timed_out,
                    within = ?at.duration_since(since),
                    rto = ?now.rto,
                    cwnd = now.cwnd,
                    in_flight = now.in_flight_segments,
                    "retransmission burst"
                );
                self.burst = None;
            } else {
                self.burst = Some((since, count, timed_out));
            }
            self.retransmissions = now.retransmissions;
            self.lost = now.lost_segments;
        }
        let peer_window_closed = now.remote_window == 0 && now.send_queue_segments > 0;
        if peer_window_closed != self.peer_window_closed {
            self.peer_window_closed = peer_window_closed;
            if peer_window_closed {
                debug!(
                    queued = now.send_queue_segments,
                    "send stalled: the peer's receive window is closed"
                );
            } else {
                debug!(
                    remote_window = now.remote_window,
                    "the peer's receive window reopened"
                );
            }
        }
        if send_full != self.writers_blocked {
            self.writers_blocked = send_full;
            // Routine for a bulk sender, so only at trace.
            trace!(
                buffered = now.send_buffer_bytes,
                in_flight = now.in_flight_segments,
                cwnd = now.cwnd,
                "send buffer {}",
                if send_full { "full" } else { "has room" }
            );
        }
        #[cfg(feature = "metrics")]
        self.metrics.publish(now);
    }

    /// The connection ended, for `reason` (`None`: every handle was dropped
    /// and what was written got delivered).
    pub(crate) fn closed(&mut self, last: &ConnectionStats, reason: Option<&KcpError>) {
        let why = close_reason(reason);
        if let Some(
            e @ (KcpError::Timeout {
                timeout: Timeout::DeadPeer,
                ..
            }
            | KcpError::Connection {
                reason: ConnectionError::DeadLink { .. },
                ..
            }),
        ) = reason
        {
            info!(
                error = %e,
                unacked = last.send_queue_segments,
                retransmissions = last.retransmissions,
                "peer declared dead"
            );
        }
        debug!(
            reason = why,
            error = reason.map(tracing::field::display),
            bytes_sent = last.bytes_sent,
            bytes_received = last.bytes_received,
            retransmissions = last.retransmissions,
            "connection closed"
        );
        #[cfg(feature = "metrics")]
        {
            self.metrics.publish(last);
            self.metrics.closed(why);
        }
    }
}

/// A short, fixed name for why a connection ended (a log field and a
/// metrics label, so it must not carry addresses).
pub(crate) fn close_reason(reason: Option<&KcpError>) -> &'static str {
    match reason {
        None => "finished",
        Some(KcpError::Timeout { timeout, .. }) => match timeout {
            Timeout::Connect => "connect_timeout",
            Timeout::Idle => "idle_timeout",
            Timeout::DeadPeer => "dead_peer",
            Timeout::HalfOpen => "half_open_timeout",
            // Future timeouts: `Timeout` is non-exhaustive.
            #[allow(unreachable_patterns)]
            _ => "timeout",
        },
        Some(KcpError::Connection { reason, .. }) => match reason {
            ConnectionError::DeadLink { .. } => "dead_link",
            ConnectionError::PeerClosed => "peer_closed",
            ConnectionError::Closed => "closed",
            ConnectionError::ListenerGone | ConnectionError::ListenerStopped => "listener_gone",
            ConnectionError::HalfOpenEvicted => "half_open_evicted",
            _ => "connection",
        },
        Some(KcpError::Protocol { .. }) => "protocol",
        Some(KcpError::Io(_)) => "io",
        Some(_) => "other",
    }
}
