//! Per-connection and per-listener statistics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::udp::SocketBuffers;
use crate::engine::Kcp;

/// A snapshot of one connection, refreshed by its task after every event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Application bytes accepted for sending.
    pub bytes_sent: u64,
    /// Application bytes delivered to the reader.
    pub bytes_received: u64,
    /// Datagrams handed to the transport.
    pub datagrams_out: u64,
    /// Bytes handed to the transport.
    pub bytes_out: u64,
    /// Datagrams fed to the engine.
    pub datagrams_in: u64,
    /// Bytes fed to the engine.
    pub bytes_in: u64,
    /// Data segments transmitted (first transmissions and retransmissions).
    pub segments_out: u64,
    /// Data segments received (duplicates included).
    pub segments_in: u64,
    /// All retransmissions: timeouts plus fast retransmits.
    pub retransmissions: u64,
    /// Retransmissions triggered by duplicate acknowledgements.
    pub fast_retransmissions: u64,
    /// Segments judged lost because their retransmission timer expired.
    pub lost_segments: u64,
    /// Data segments received twice or outside the window.
    pub duplicate_segments: u64,
    /// Datagrams the engine rejected (wrong conversation, malformed).
    pub rejected_datagrams: u64,
    /// Outgoing datagrams dropped by [`KcpConfig::simulated_loss`](super::KcpConfig#structfield.simulated_loss).
    pub simulated_drops: u64,
    /// Window probes sent to hear from a silent peer: keep-alives, and
    /// questions while our data waits for its acknowledgement (see
    /// [`KcpConfig::dead_peer_timeout`](super::KcpConfig#structfield.dead_peer_timeout)).
    pub keep_alives_sent: u64,
    /// Datagrams dropped for being longer than the MTU.
    pub oversized_datagrams: u64,
    /// Data segments dropped for being longer than the MSS.
    pub oversized_segments: u64,
    /// Out-of-order data segments dropped, unacknowledged, because the
    /// out-of-order byte cap (or the listener's pool) was reached.
    pub out_of_order_dropped: u64,
    /// Smoothed round-trip time.
    pub srtt: Duration,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// Congestion window (segments).
    pub cwnd: u32,
    /// The peer's advertised receive window (segments).
    pub remote_window: u32,
    /// Segments queued in the engine or in flight.
    pub send_queue_segments: usize,
    /// Segments in flight, not yet acknowledged.
    pub in_flight_segments: usize,
    /// Segments the engine may hold now, queued or in flight: what the
    /// window allows or, with [`KcpConfig::adaptive_inflight`](super::KcpConfig#structfield.adaptive_inflight),
    /// what the path measurements allow if that is less.
    pub inflight_limit_segments: usize,
    /// The lowest round-trip time measured (microsecond precision, unlike
    /// `srtt`), from the first send after a pause; `None` before the first
    /// measurement or with `adaptive_inflight` off.
    pub min_rtt: Option<Duration>,
    /// The fastest recent delivery rate of our data, in bytes per second
    /// (acknowledged segments times the MSS); `None` as for `min_rtt`.
    pub delivery_rate: Option<u64>,
    /// Bytes written by the application, not yet handed to the engine.
    pub send_buffer_bytes: usize,
    /// Bytes received, not yet read by the application.
    pub recv_buffer_bytes: usize,
    /// Kernel buffers of the UDP socket the connection uses, as the OS
    /// granted them (see [`KcpConfig::socket_recv_buffer`](super::KcpConfig#structfield.socket_recv_buffer));
    /// `None` for a transport that is not a socket.
    pub socket_buffers: Option<SocketBuffers>,
}

impl ConnectionStats {
    pub(crate) fn refresh_engine(&mut self, kcp: &Kcp) {
        let s = kcp.stats();
        self.datagrams_out = s.datagrams_out;
        self.bytes_out = s.bytes_out;
        self.datagrams_in = s.datagrams_in;
        self.bytes_in = s.bytes_in;
        self.segments_out = s.segments_out;
        self.segments_in = s.segments_in;
        self.retransmissions = s.timeout_retransmits + s.fast_retransmits;
        self.fast_retransmissions = s.fast_retransmits;
        self.lost_segments = s.timeout_retransmits;
        self.duplicate_segments = s.duplicate_segments;
        self.srtt = Duration::from_millis(kcp.srtt().max(0) as u64);
        self.rto = Duration::from_millis(kcp.rto().max(0) as u64);
        self.cwnd = kcp.cwnd();
        self.remote_window = kcp.remote_window();
        self.send_queue_segments = kcp.wait_snd();
        self.in_flight_segments = kcp.in_flight();
    }
}

/// Counters of a [`KcpListener`](super::KcpListener).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Datagrams received on the listener's transport.
    pub datagrams: u64,
    /// Datagrams routed to an existing connection.
    pub routed: u64,
    /// Connections created (queued for `accept`).
    pub connections_created: u64,
    /// Connections currently alive.
    pub connections_alive: u64,
    /// Dropped: shorter than a header, or a segment that does not parse.
    pub dropped_malformed: u64,
    /// Dropped: for no known connection and not the opening of a new one.
    pub dropped_unknown: u64,
    /// Dropped: the connection limit or the accept backlog was full.
    pub dropped_capacity: u64,
    /// Dropped: the connection's input queue was full, or the listener's
    /// queued bytes reached [`ListenerLimits::max_queued_bytes`](super::ListenerLimits#structfield.max_queued_bytes).
    pub dropped_overload: u64,
    /// Dropped: longer than the MTU.
    pub dropped_oversized: u64,
    /// Openings refused by the per-source or total rate limit
    /// ([`ListenerLimits`](super::ListenerLimits)).
    pub openings_rate_limited: u64,
    /// Connections currently half-open (not yet established).
    pub half_open: u64,
    /// Handshake cookies sent in answer to requests
    /// ([`KcpConfig::handshake_cookie`](super::KcpConfig#structfield.handshake_cookie)).
    pub cookies_sent: u64,
    /// Openings dropped because they carried no valid cookie (with
    /// [`KcpConfig::handshake_cookie`](super::KcpConfig#structfield.handshake_cookie) on).
    pub openings_without_cookie: u64,
    /// Half-open connections closed to make room for a new opening.
    pub half_open_evicted: u64,
    /// Half-open connections closed by their timeout.
    pub half_open_expired: u64,
    /// Bytes of datagrams routed but not yet taken by their connections,
    /// counted as [`ListenerLimits::max_queued_bytes`](super::ListenerLimits#structfield.max_queued_bytes) counts them.
    pub queued_bytes: u64,
    /// Bytes the listener's connections hold out of order, counted as
    /// segments times the MSS, floors included (see [`ListenerLimits::max_out_of_order_total`](super::ListenerLimits#structfield.max_out_of_order_total)).
    pub out_of_order_bytes: u64,
    /// Errors returned by the transport's receive.
    pub transport_errors: u64,
    /// Kernel buffers of the listener's UDP socket as the OS granted them;
    /// `None` for a transport that is not a socket.
    pub socket_buffers: Option<SocketBuffers>,
}

#[derive(Debug, Default)]
pub(crate) struct ListenerCounters {
    pub datagrams: AtomicU64,
    pub routed: AtomicU64,
    pub connections_created: AtomicU64,
    pub connections_alive: AtomicU64,
    pub dropped_malformed: AtomicU64,
    pub dropped_unknown: AtomicU64,
    pub dropped_capacity: AtomicU64,
    pub dropped_overload: AtomicU64,
    pub dropped_oversized: AtomicU64,
    pub openings_rate_limited: AtomicU64,
    pub half_open: AtomicU64,
    pub cookies_sent: AtomicU64,
    pub openings_without_cookie: AtomicU64,
    pub half_open_evicted: AtomicU64,
    pub half_open_expired: AtomicU64,
    pub transport_errors: AtomicU64,
    /// Set once when the listener starts.
    pub socket_buffers: Option<SocketBuffers>,
}

impl ListenerCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ListenerStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerStats {
            datagrams: g(&self.datagrams),
            routed: g(&self.routed),
            connections_created: g(&self.connections_created),
            connections_alive: g(&self.connections_alive),
            dropped_malformed: g(&self.dropped_malformed),
            dropped_unknown: g(&self.dropped_unknown),
            dropped_capacity: g(&self.dropped_capacity),
            dropped_overload: g(&self.dropped_overload),
            dropped_oversized: g(&self.dropped_oversized),
            openings_rate_limited: g(&self.openings_rate_limited),
            half_open: g(&self.half_open),
            cookies_sent: g(&self.cookies_sent),
            openings_without_cookie: g(&self.openings_without_cookie),
            half_open_evicted: g(&self.half_open_evicted),
            half_open_expired: g(&self.half_open_expired),
            queued_bytes: 0,
            out_of_order_bytes: 0,
            transport_errors: g(&self.transport_errors),
            socket_buffers: self.socket_buffers,
        }
    }
}
