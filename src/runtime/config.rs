//! Connection settings and presets.

use std::time::Duration;

use super::congestion::ControllerFactory;
use super::error::KcpError;
use super::udp::MAX_UDP_PAYLOAD;
use crate::engine::{CongestionControl, HEADER_LEN};

/// Settings of one KCP connection (both ends should agree on `mtu`,
/// `stream_mode` and roughly on the windows; the rest is local).
///
/// Start from a preset (see the [table of presets](super::presets)) and
/// adjust with the builder methods:
///
/// ```
/// use std::time::Duration;
/// use kcp::runtime::KcpConfig;
///
/// let config = KcpConfig::new()
///     .fast_mode()
///     .window_size(256, 256)
///     .idle_timeout(Some(Duration::from_secs(10)));
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KcpConfig {
    /// Bytes per datagram, headers included.
    pub mtu: usize,
    /// Send window (segments).
    pub snd_wnd: u32,
    /// Receive window (segments); the engine raises it to at least 128.
    pub rcv_wnd: u32,
    /// 0 off, 1 on, 2 aggressive RTO back-off (`ikcp_nodelay`'s first argument).
    pub nodelay: i32,
    /// How often the connection's timer runs (ms). Values below the engine's
    /// 10 ms floor are honoured by the runtime, which flushes at this period.
    pub interval: u32,
    /// Duplicate acknowledgements that trigger a fast retransmit (0 = off).
    pub resend: i32,
    /// Congestion control off (`nc` of `ikcp_nodelay`).
    pub no_congestion_control: bool,
    /// Stream mode: a byte stream with no message boundaries.
    pub stream_mode: bool,
    /// Floor of the retransmission timeout; `None` keeps the engine's.
    pub min_rto: Option<Duration>,
    /// Transmissions of one segment after which the peer is declared gone.
    pub dead_link: u32,
    /// How long a new connection may wait for the peer's first datagram.
    /// A client counts from [`connect`](super::KcpStream::connect), whether
    /// or not it wrote: a KCP server learns of a client only from its first
    /// data, so a client that waits to be spoken to hears nothing and fails
    /// here ([`Timeout::Connect`](super::Timeout::Connect)) rather than
    /// waiting forever.
    pub connect_timeout: Duration,
    /// While data is in flight (sent, unacknowledged), a peer that sends
    /// nothing at all for this long is declared gone: reads and writes fail
    /// with [`KcpError::Timeout`] ([`Timeout::DeadPeer`](super::Timeout::DeadPeer),
    /// kind `TimedOut`). Default 5 s: a live peer acknowledges every
    /// retransmission it receives and answers window probes, which the
    /// connection sends from a fifth of this time into the silence, every
    /// tenth of it (retransmissions back off, so on a lossy path the few
    /// that fit would be too few to judge by); 5 s without an answer to
    /// either means the peer or the path is gone. Before the peer was ever
    /// heard, `connect_timeout` applies instead, with probes at the same
    /// fractions of it. [`dead_link`](KcpConfig#structfield.dead_link)
    /// also ends such a connection, but with exponential back-off its 20
    /// transmissions take minutes. `None`: only `dead_link` and the idle
    /// timeout apply. Idle connections are governed by `keep_alive` and
    /// `idle_timeout` instead.
    pub dead_peer_timeout: Option<Duration>,
    /// After this long without a datagram from the peer, send a window
    /// probe (every KCP peer answers it) so that an idle link stays proven.
    /// An unanswered probe is repeated after a third of this.
    pub keep_alive: Option<Duration>,
    /// After this long without any datagram from the peer the connection
    /// fails with [`KcpError::Timeout`] (kind `TimedOut`). Must be at least
    /// twice `keep_alive` (checked by [`validate`](KcpConfig::validate)), so
    /// that a live but idle peer has answered a probe before it fires; the
    /// builders [`keep_alive`](KcpConfig::keep_alive) and
    /// [`idle_timeout`](KcpConfig::idle_timeout) keep the pair apart.
    pub idle_timeout: Option<Duration>,
    /// Signal the end of the stream to the peer: after `shutdown`,
    /// [`close`](super::KcpStream::close) or dropping the stream, once
    /// everything written is acknowledged, one extra datagram tells a peer
    /// running this library to return `Ok(0)` from `read` (see the README's
    /// *End of stream* section for the wire form). Raw KCP peers (C `ikcp`,
    /// kcp-go, tokio_kcp) drop that datagram as an unknown command and are
    /// otherwise unaffected. Default on; when off, nothing is sent and
    /// received signals are ignored.
    pub end_of_stream: bool,
    /// Keep about one and a half bandwidth-delay products in flight instead
    /// of the whole window. Each connection measures its path (the fastest
    /// recent delivery rate and the lowest round-trip time, as BBR does) and
    /// hands the engine only that much written data (plus a quarter queued
    /// behind it), never less than 64 segments and never more than the
    /// window allows; the rest waits in the application queue. On a path whose product is far below the window
    /// (loopback, a LAN) this keeps the queues short: less delay, less
    /// memory touched per byte, more throughput. On a long fat path the
    /// product exceeds the window and nothing changes. Nothing is held back
    /// before the first measurement, nor after a pause. Default on; off
    /// hands the engine up to 1.25 windows, as the window alone allows.
    /// [`ConnectionStats`](super::ConnectionStats) shows the measurements.
    pub adaptive_inflight: bool,
    /// Bytes the application may queue for sending before writes wait.
    pub send_buffer: usize,
    /// Bytes received but not yet read before the engine stops handing
    /// data over (the peer then sees the window close).
    pub recv_buffer: usize,
    /// Bytes of data received out of order that the connection holds while
    /// it waits for a gap to fill, counted as segments times the MSS.
    /// `None` (the default) is the receive window: `rcv_wnd` segments of the
    /// MSS (176,128 bytes for [`new`](KcpConfig::new)), which a peer that
    /// respects the window we advertise never exceeds. Out-of-order segments
    /// beyond it are dropped unacknowledged (the peer retransmits them; set
    /// below the window, a lossy link then costs retransmissions, and a
    /// segment dropped `dead_link` times ends the connection); the next
    /// expected segment is always accepted. Whatever this says, a connection
    /// drops datagrams longer than `mtu` and data segments longer than the
    /// MSS, so one connection never holds more than `rcv_wnd` times the MSS
    /// out of order. A listener's connections also share
    /// [`ListenerLimits::max_out_of_order_total`](super::ListenerLimits#structfield.max_out_of_order_total).
    pub max_out_of_order_bytes: Option<usize>,
    /// Kernel send buffer (`SO_SNDBUF`) of the UDP sockets that
    /// [`KcpListener::bind`](super::KcpListener::bind) and
    /// [`KcpStream::connect`](super::KcpStream::connect) create; `None`
    /// keeps the OS default. Default 4 MiB, as kcp-go deployments set: the
    /// OS default (about 208 KiB on Linux) cannot hold a burst of a large
    /// window, and what it drops is retransmitted. The OS may grant less;
    /// [`ConnectionStats::socket_buffers`](super::ConnectionStats#structfield.socket_buffers)
    /// says what it granted. Not the application queue: see `send_buffer`.
    pub socket_send_buffer: Option<usize>,
    /// Kernel receive buffer (`SO_RCVBUF`) of the sockets the library
    /// creates; as [`socket_send_buffer`](KcpConfig#structfield.socket_send_buffer).
    pub socket_recv_buffer: Option<usize>,
    /// The anti-spoofing handshake (kcp2k-style cookie), off by default so
    /// raw KCP peers (C `ikcp`, kcp-go, tokio_kcp) connect with no handshake.
    ///
    /// On a listener ([`KcpListener::bind`](super::KcpListener::bind)), an
    /// opening is accepted only if its datagram carries a cookie the
    /// listener minted for the sender's address within the last 30 to 60 s;
    /// the cookie is given, statelessly, in answer to a 13-byte request, so
    /// a forged opening costs nothing in the connection table (counted in
    /// [`ListenerStats::openings_without_cookie`](super::ListenerStats#structfield.openings_without_cookie)).
    /// Datagrams of existing connections are routed with or without one.
    /// The rate limits of [`ListenerLimits`](super::ListenerLimits) still
    /// apply to openings that carry a valid cookie.
    ///
    /// On a client ([`KcpStream::connect`](super::KcpStream::connect) and
    /// [`connect_with_conv`](super::KcpStream::connect_with_conv)), the
    /// connection first asks for a cookie (retrying from 200 ms, doubling up
    /// to 1 s, failing with [`KcpError::Timeout`] after `connect_timeout`),
    /// then puts it in front of every datagram: 13 bytes taken from `mtu`,
    /// so the datagrams on the wire stay within `mtu`.
    /// [`KcpStream::connect_with_transport`](super::KcpStream::connect_with_transport)
    /// refuses the option (it cannot wait for the answer). Both ends must
    /// have it on. Default `false`.
    pub handshake_cookie: bool,
    /// Fraction (0.0..1.0) of outgoing datagrams dropped on purpose, to test
    /// applications against loss. Zero outside tests.
    pub simulated_loss: f64,
    /// Seed of the simulated loss. Each connection mixes in its
    /// conversation id and its side (client or accepted), so the two ends
    /// of a conversation lose different datagrams.
    pub loss_seed: u64,
    /// The congestion controller of each connection; `None` (the default)
    /// is the engine's built-in algorithm. See [`KcpConfig::congestion_control`].
    pub congestion_control: Option<ControllerFactory>,
}

/// Default [`KcpConfig::dead_peer_timeout`](KcpConfig#structfield.dead_peer_timeout).
const DEFAULT_DEAD_PEER: Duration = Duration::from_secs(5);

/// Kernel socket buffer size requested by default (4 MiB).
const DEFAULT_SOCKET_BUFFER: usize = 4 << 20;

impl Default for KcpConfig {
    fn default() -> Self {
        KcpConfig::new()
    }
}

impl KcpConfig {
    /// The reference's defaults (MTU 1400, windows 32/128, 100 ms interval,
    /// no fast retransmit, congestion control on), a 10 s connect timeout, a
    /// 5 s dead-peer timeout, a 30 s idle timeout with 5 s keep-alive probes,
    /// and the end-of-stream signal on.
    pub fn new() -> Self {
        KcpConfig {
            mtu: 1400,
            snd_wnd: 32,
            rcv_wnd: 128,
            nodelay: 0,
            interval: 100,
            resend: 0,
            no_congestion_control: false,
            stream_mode: false,
            min_rto: None,
            dead_link: 20,
            connect_timeout: Duration::from_secs(10),
            dead_peer_timeout: Some(DEFAULT_DEAD_PEER),
            keep_alive: Some(Duration::from_secs(5)),
            idle_timeout: Some(Duration::from_secs(30)),
            end_of_stream: true,
            adaptive_inflight: true,
            send_buffer: 1 << 20,
            recv_buffer: 1 << 20,
            max_out_of_order_bytes: None,
            socket_send_buffer: Some(DEFAULT_SOCKET_BUFFER),
            socket_recv_buffer: Some(DEFAULT_SOCKET_BUFFER),
            handshake_cookie: false,
            simulated_loss: 0.0,
            loss_seed: 0x6b63_7000,
            congestion_control: None,
        }
    }

    /// Turns the anti-spoofing handshake on or off (see
    /// [`handshake_cookie`](KcpConfig#structfield.handshake_cookie)).
    pub fn handshake_cookie(mut self, on: bool) -> Self {
        self.handshake_cookie = on;
        self
    }

    /// Gives every connection its own controller made by `make`, in place
    /// of the built-in algorithm (see [`Kcp::set_congestion_control`]: the
    /// hooks of upstream 2.x's `IKCPOPS`, and the window applies even with
    /// congestion control turned off by `nc`).
    ///
    /// [`Kcp::set_congestion_control`]: crate::engine::Kcp::set_congestion_control
    pub fn congestion_control<C: CongestionControl + 'static>(
        mut self,
        make: impl Fn() -> C + Send + Sync + 'static,
    ) -> Self {
        self.congestion_control = Some(ControllerFactory::new(make));
        self
    }

    /// Send and receive windows in segments.
    pub fn window_size(mut self, snd: u32, rcv: u32) -> Self {
        self.snd_wnd = snd;
        self.rcv_wnd = rcv;
        self
    }

    /// Bytes per datagram.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }

    /// The four `ikcp_nodelay` knobs: no-delay, timer interval (ms), fast
    /// retransmit threshold, congestion control off.
    pub fn nodelay(mut self, nodelay: bool, interval: u32, resend: i32, nc: bool) -> Self {
        self.nodelay = nodelay as i32;
        self.interval = interval;
        self.resend = resend;
        self.no_congestion_control = nc;
        self
    }

    /// Byte stream (true) or messages (false).
    pub fn stream_mode(mut self, stream: bool) -> Self {
        self.stream_mode = stream;
        self
    }

    /// See [`KcpConfig::connect_timeout`](KcpConfig#structfield.connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// See [`KcpConfig::keep_alive`](KcpConfig#structfield.keep_alive).
    /// An idle timeout below twice `every` is raised to three times it, so
    /// that `keep_alive(Some(30 s))` on the default 30 s idle timeout keeps
    /// an idle connection alive (idle timeout 90 s); call
    /// [`idle_timeout`](KcpConfig::idle_timeout) afterwards to choose another.
    pub fn keep_alive(mut self, every: Option<Duration>) -> Self {
        self.keep_alive = every;
        if let (Some(every), Some(idle)) = (every, self.idle_timeout) {
            // A zero is left for validate() to name.
            if idle < every * 2 && !every.is_zero() {
                self.idle_timeout = Some(every * 3);
            }
        }
        self
    }

    /// See [`KcpConfig::idle_timeout`](KcpConfig#structfield.idle_timeout).
    /// A keep-alive interval above half of `timeout` is lowered to a third
    /// of it, so that probes keep a live idle peer from timing out.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        if let (Some(idle), Some(every)) = (timeout, self.keep_alive) {
            if idle < every * 2 && !idle.is_zero() {
                self.keep_alive = Some(idle / 3);
            }
        }
        self
    }

    /// See [`KcpConfig::dead_peer_timeout`](KcpConfig#structfield.dead_peer_timeout).
    pub fn dead_peer_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.dead_peer_timeout = timeout;
        self
    }

    /// See [`KcpConfig::end_of_stream`](KcpConfig#structfield.end_of_stream).
    pub fn end_of_stream(mut self, on: bool) -> Self {
        self.end_of_stream = on;
        self
    }

    /// See [`KcpConfig::adaptive_inflight`](KcpConfig#structfield.adaptive_inflight).
    pub fn adaptive_inflight(mut self, on: bool) -> Self {
        self.adaptive_inflight = on;
        self
    }

    /// Floor of the retransmission timeout.
    pub fn min_rto(mut self, rto: Duration) -> Self {
        self.min_rto = Some(rto);
        self
    }

    /// Transmissions of one segment after which the peer is declared gone.
    pub fn dead_link(mut self, transmissions: u32) -> Self {
        self.dead_link = transmissions;
        self
    }

    /// Bytes the application may queue for sending before writes wait.
    pub fn send_buffer(mut self, bytes: usize) -> Self {
        self.send_buffer = bytes;
        self
    }

    /// Bytes received but unread before the receive window closes.
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = bytes;
        self
    }

    /// See [`KcpConfig::max_out_of_order_bytes`](KcpConfig#structfield.max_out_of_order_bytes).
    pub fn max_out_of_order_bytes(mut self, bytes: Option<usize>) -> Self {
        self.max_out_of_order_bytes = bytes;
        self
    }

    /// Kernel send buffer of the UDP sockets the library creates (`None`:
    /// the OS default). See [`KcpConfig::socket_send_buffer`](KcpConfig#structfield.socket_send_buffer).
    pub fn socket_send_buffer(mut self, bytes: Option<usize>) -> Self {
        self.socket_send_buffer = bytes;
        self
    }

    /// Kernel receive buffer of the UDP sockets the library creates (`None`:
    /// the OS default). See [`KcpConfig::socket_recv_buffer`](KcpConfig#structfield.socket_recv_buffer).
    pub fn socket_recv_buffer(mut self, bytes: Option<usize>) -> Self {
        self.socket_recv_buffer = bytes;
        self
    }

    /// Payload bytes per segment.
    pub fn mss(&self) -> usize {
        self.mtu.saturating_sub(HEADER_LEN)
    }

    /// The largest message [`KcpStream::send`](super::KcpStream::send)
    /// accepts in message mode (127 segments).
    pub fn max_message_size(&self) -> usize {
        self.mss() * 127
    }

    /// Checks that the settings can work. The error is a
    /// [`KcpError::Config`] naming the field and the bad value;
    /// [`KcpStream::connect`](super::KcpStream::connect) and
    /// [`KcpListener::bind`](super::KcpListener::bind) call this first.
    pub fn validate(&self) -> Result<(), KcpError> {
        let bad = |field, reason: String| Err(KcpError::config(field, reason));
        if self.mtu < 50 || self.mtu <= HEADER_LEN {
            return bad(
                "mtu",
                format!(
                    "{} is below the minimum of 50 bytes (the header alone is {HEADER_LEN})",
                    self.mtu
                ),
            );
        }
        if self.handshake_cookie && self.mtu < 50 + super::cookie::PREFIX_LEN {
            return bad(
                "mtu",
                format!(
                    "{} leaves less than 50 bytes once the handshake cookie's {} are taken",
                    self.mtu,
                    super::cookie::PREFIX_LEN
                ),
            );
        }
        if self.mtu > MAX_UDP_PAYLOAD {
            return bad(
                "mtu",
                format!(
                    "{} exceeds the largest UDP payload ({MAX_UDP_PAYLOAD})",
                    self.mtu
                ),
            );
        }
        for (field, wnd) in [("snd_wnd", self.snd_wnd), ("rcv_wnd", self.rcv_wnd)] {
            if wnd == 0 {
                return bad(field, "(window size) must be non-zero".into());
            }
            if wnd > 65_535 {
                return bad(
                    field,
                    format!("(window size) {wnd} does not fit the 16-bit wire field"),
                );
            }
        }
        if self.interval == 0 || self.interval > 5000 {
            return bad(
                "interval",
                format!("{} ms is outside 1..=5000", self.interval),
            );
        }
        if !(0..=2).contains(&self.nodelay) {
            return bad("nodelay", format!("{} is not 0, 1 or 2", self.nodelay));
        }
        if self.resend < 0 {
            return bad("resend", format!("{} is negative", self.resend));
        }
        if self.dead_link == 0 {
            return bad("dead_link", "must be at least 1".into());
        }
        for (field, bytes) in [
            ("send_buffer", self.send_buffer),
            ("recv_buffer", self.recv_buffer),
        ] {
            if bytes == 0 {
                return bad(field, "must be non-zero".into());
            }
        }
        for (field, bytes) in [
            ("socket_send_buffer", self.socket_send_buffer),
            ("socket_recv_buffer", self.socket_recv_buffer),
        ] {
            if bytes == Some(0) {
                return bad(field, "is zero; use None for the OS default".into());
            }
        }
        if !(0.0..1.0).contains(&self.simulated_loss) {
            return bad(
                "simulated_loss",
                format!("{} is outside 0.0..1.0", self.simulated_loss),
            );
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout", "is zero".into());
        }
        for (field, d) in [
            ("keep_alive", self.keep_alive),
            ("idle_timeout", self.idle_timeout),
            ("dead_peer_timeout", self.dead_peer_timeout),
        ] {
            if matches!(d, Some(d) if d.is_zero()) {
                return bad(field, "is zero; use None to disable it".into());
            }
        }
        if let (Some(idle), Some(every)) = (self.idle_timeout, self.keep_alive) {
            if idle < every * 2 {
                return bad(
                    "idle_timeout",
                    format!(
                        "{idle:?} is not comfortably above keep_alive {every:?}: an idle but live \
                         peer would time out between probes; use at least twice keep_alive \
                         ({:?}), or set keep_alive with its builder, which raises the idle \
                         timeout to three times it",
                        every * 2
                    ),
                );
            }
        }
        Ok(())
    }

    /// Applies the engine-level settings to a fresh engine.
    pub(crate) fn apply(&self, kcp: &mut crate::engine::Kcp) {
        // validate() ran before, so set_mtu cannot fail.
        let _ = kcp.set_mtu(self.mtu);
        kcp.set_window_size(self.snd_wnd, self.rcv_wnd);
        kcp.set_nodelay(
            self.nodelay,
            self.interval as i32,
            self.resend,
            self.no_congestion_control,
        );
        kcp.set_stream_mode(self.stream_mode);
        if let Some(rto) = self.min_rto {
            kcp.set_min_rto(rto.as_millis().min(u32::MAX as u128) as u32);
        }
        kcp.set_dead_link(self.dead_link);
        if let Some(factory) = &self.congestion_control {
            kcp.set_congestion_control(factory.make());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_values_are_named() {
        let field = |c: KcpConfig| match c.validate() {
            Err(KcpError::Config { field, reason }) => (field, reason),
            other => panic!("expected a config error, got {other:?}"),
        };
        let err = KcpConfig::new().mtu(20).validate().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("`mtu` 20"), "{err}");
        assert_eq!(field(KcpConfig::new().window_size(0, 128)).0, "snd_wnd");
        assert_eq!(field(KcpConfig::new().window_size(64, 70_000)).0, "rcv_wnd");
        assert_eq!(
            field(KcpConfig::new().nodelay(true, 0, 1, true)),
            ("interval", "0 ms is outside 1..=5000".to_string())
        );
        assert_eq!(field(KcpConfig::testing(1.5)).0, "simulated_loss");
        assert_eq!(
            field(KcpConfig::new().idle_timeout(Some(Duration::ZERO))).0,
            "idle_timeout"
        );
        assert_eq!(
            field(KcpConfig::new().dead_peer_timeout(Some(Duration::ZERO))).0,
            "dead_peer_timeout"
        );
    }

    #[test]
    fn idle_timeout_stays_above_keep_alive() {
        let s = Duration::from_secs;
        // The seed's chain: a 30 s keep-alive on the default 30 s idle timeout.
        let c = KcpConfig::new().fast_mode().keep_alive(Some(s(30)));
        assert_eq!((c.keep_alive, c.idle_timeout), (Some(s(30)), Some(s(90))));
        c.validate().unwrap();
        // A short idle timeout brings the probes with it.
        let c = KcpConfig::new().idle_timeout(Some(s(3)));
        assert_eq!(c.keep_alive, Some(s(1)));
        c.validate().unwrap();
        // Pairs already far enough apart are left alone.
        let c = KcpConfig::new().idle_timeout(Some(s(10)));
        assert_eq!(c.keep_alive, Some(s(5)));
        // Fields set directly are checked.
        let mut c = KcpConfig::new();
        c.keep_alive = Some(s(30));
        let err = c.validate().unwrap_err();
        assert!(
            matches!(&err, KcpError::Config { field: "idle_timeout", reason } if reason.contains("keep_alive 30s")),
            "{err}"
        );
        c.idle_timeout = None;
        c.validate().unwrap();
    }
}
