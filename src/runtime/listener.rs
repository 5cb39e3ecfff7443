//! `KcpListener`: many KCP connections over one datagram transport.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use tracing::{debug, trace};

use super::admission::{Key, Verdict};

use super::config::KcpConfig;
use super::cookie::{self, Message, Minter};
use super::driver::{Driver, Source};
use super::error::{ConnectionError, KcpError, Timeout};
use super::input_guard::BytePool;
use super::routed::{Routed, RoutedPool, RUN_MAX};
use super::routing::{well_formed, Room, Route, Table};
use super::shared::Shared;
use super::stats::{ListenerCounters, ListenerStats};
use super::stream::{random_conv, KcpStream};
use super::transport::{self, Received, Transport};
use super::udp;
use crate::engine::{conv_of, HEADER_LEN};

/// Limits of a [`KcpListener`]: who may open a connection, how many may
/// exist, and how much memory they may hold.
///
/// # Admission
///
/// KCP has no handshake, and the source of a datagram may be forged. The
/// first data segment (sequence number 0) of an unknown (address,
/// conversation) pair opens a connection, which starts **half-open**: it
/// becomes **established** once the peer acknowledges data we sent, or
/// sends data past its first segment. A half-open connection is handed to
/// [`KcpListener::accept`] like any other, but it holds nothing out of
/// order, it is closed once its peer has sent nothing for
/// [`half_open_timeout`](ListenerLimits::half_open_timeout) (a forged
/// opening is never followed by more; a real peer whose first answers were
/// lost keeps retransmitting its opening), and at most
/// [`max_half_open`](ListenerLimits::max_half_open) exist: when that many
/// exist, or the table holds `max_connections`, the oldest half-open
/// connection is closed to make room. An established connection is never
/// closed for a new one; with `max_connections` established, openings are
/// refused. An accepted connection closed this way fails with
/// [`KcpError::Timeout`] ([`Timeout::HalfOpen`]) or
/// [`ConnectionError::HalfOpenEvicted`].
///
/// Openings are limited per source IP
/// ([`openings_per_source`](ListenerLimits::openings_per_source)) and in
/// total ([`openings_per_second`](ListenerLimits::openings_per_second)). A
/// refused opening that the same address and conversation send again 10 ms
/// to 10 s later (a KCP sender retransmits it after its RTO; forged one-shot
/// openings never come back) is admitted from a second allowance of
/// `openings_per_second`, whatever its source's count: a real client behind
/// a flood gets in on its first retransmission. A flood that repeats every
/// forged opening competes for that allowance; against it, turn on
/// [`KcpConfig::handshake_cookie`]: then only an opening carrying a cookie
/// minted for its sender's address (which a forger never receives) may
/// open a connection, before any of the rules above, so forged openings
/// cost nothing in the table. It is off by default because raw KCP peers
/// cannot do the handshake.
///
/// # Memory
///
/// A listener's connections together hold at most
/// `max_connections * out_of_order_floor + max_out_of_order_total` bytes out
/// of order and `max_queued_bytes` in datagrams waiting for their tasks; the
/// README's "Limits and memory" section adds up the rest per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// New connections waiting for [`KcpListener::accept`]; openings beyond
    /// it are dropped (the peer retransmits). Default 128.
    pub backlog: usize,
    /// Connections alive at once, accepted or not, half-open or established.
    /// Default 4,096.
    pub max_connections: usize,
    /// Half-open connections at once (see the type's documentation); the
    /// oldest gives way to a new opening. Default 256: at the default
    /// opening rate a half-open connection then lives at least a quarter of
    /// a second under a flood, long enough for a real client to answer, and
    /// forged openings cost the server little CPU.
    pub max_half_open: usize,
    /// How long a half-open connection may go without a datagram from its
    /// peer before it is closed. Default 3 s: more than the gaps between a
    /// KCP sender's first retransmissions of its opening (200 ms, then 1.5
    /// or 2 times longer each time), so a real peer whose first answers are
    /// lost keeps its connection while it retransmits.
    pub half_open_timeout: Duration,
    /// Connections one source IP may open per second (retransmitted
    /// openings aside). Default 64.
    pub openings_per_source: u32,
    /// Connections the listener opens per second in total, and again for
    /// retransmitted openings. Default 1,000.
    pub openings_per_second: u32,
    /// Datagrams queued for one connection's task before more are dropped
    /// (counted in [`ListenerStats::dropped_overload`]); datagrams received
    /// together in one train (GRO) take one place. `None` (the
    /// default) is what a peer that respects the connection's windows can
    /// have on the way at once: a receive window of data segments, a send
    /// window of acknowledgements, and 64 more for window probes and
    /// retransmissions (2,112 for windows 1024/1024). A smaller queue drops
    /// datagrams of a full window whenever the task falls behind (the
    /// earlier fixed 1,024 cost a bulk echo at those windows about 50 fast
    /// retransmissions per 32 MB). Memory stays bounded by
    /// [`max_queued_bytes`](ListenerLimits::max_queued_bytes) either way.
    pub per_connection_queue: Option<usize>,
    /// Bytes of datagrams queued for all connections' tasks together before
    /// more are dropped (counted in [`ListenerStats::dropped_overload`]).
    /// Each datagram counts as the buffer holding it: its length rounded up
    /// to a power of two from 64 bytes, or to the MTU (a full-MTU datagram
    /// counts its length, a 24-byte acknowledgement 64 bytes). Default 16 MiB.
    pub max_queued_bytes: usize,
    /// Bytes held out of order (waiting for a gap to fill) that every
    /// established connection may keep whatever the others hold, counted as
    /// segments times the MSS. Default 32 KiB (23 segments of 1,376 bytes):
    /// enough for a lossy link to recover at the pace of a few segments per
    /// round trip while [`max_out_of_order_total`](ListenerLimits::max_out_of_order_total)
    /// is exhausted. A half-open connection holds nothing out of order.
    pub out_of_order_floor: usize,
    /// Bytes held out of order beyond their floors by all connections
    /// together, counted as segments times the MSS. Beyond it, out-of-order
    /// segments are dropped unacknowledged and the peers retransmit them;
    /// in-order data always gets through. Each connection is also capped by
    /// [`KcpConfig::max_out_of_order_bytes`](super::KcpConfig#structfield.max_out_of_order_bytes).
    /// Default 64 MiB. All the listener's connections together therefore
    /// hold at most `max_connections * out_of_order_floor + max_out_of_order_total`
    /// out of order (192 MiB at the defaults).
    pub max_out_of_order_total: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            backlog: 128,
            max_connections: 4096,
            max_half_open: 256,
            half_open_timeout: Duration::from_secs(3),
            openings_per_source: 64,
            openings_per_second: 1000,
            per_connection_queue: None,
            max_queued_bytes: 16 << 20,
            out_of_order_floor: 32 << 10,
            max_out_of_order_total: 64 << 20,
        }
    }
}

/// Datagrams a connection's queue holds beyond its windows by default
/// ([`ListenerLimits::per_connection_queue`]).
const QUEUE_SLACK: usize = 64;

impl ListenerLimits {
    /// The capacity of each connection's queue under `config`'s windows.
    fn connection_queue(&self, config: &KcpConfig) -> usize {
        self.per_connection_queue.unwrap_or_else(|| {
            // The engine's receive window is never below the reference's default.
            let rcv_wnd = config.rcv_wnd.max(crate::engine::WND_RCV_DEFAULT) as usize;
            rcv_wnd + config.snd_wnd as usize + QUEUE_SLACK
        })
    }
}

/// Receive buffers of the listener's task (64 KiB each): one `recvmmsg`
/// takes up to this many datagrams, or GRO trains, at once.
const RECV_BATCH: usize = 32;
const _: () = assert!(RECV_BATCH <= super::transport::MAX_RECV_BATCH);

/// Accepts KCP connections on one transport and routes datagrams by
/// (peer address, conversation id).
///
/// A connection is created by the first data segment of an unknown
/// (peer, conv) pair, so raw KCP peers (C `ikcp`, kcp-go in plain mode)
/// connect with no handshake. A peer opening with conversation 0 gets a
/// random id assigned in the server's first answer (the `tokio_kcp`
/// convention). Anything else that does not parse or belongs nowhere is
/// dropped and counted in [`stats`](KcpListener::stats).
///
/// Dropping the listener stops new connections; accepted ones keep working.
#[derive(Debug)]
pub struct KcpListener {
    accept_rx: Mutex<mpsc::Receiver<Accepted>>,
    local: SocketAddr,
    counters: Arc<ListenerCounters>,
    queued: Arc<BytePool>,
    out_of_order: Arc<BytePool>,
}

impl KcpListener {
    /// Binds a UDP socket at `addr` and starts accepting.
    /// Fails with [`KcpError::Config`] if `config` is invalid.
    pub async fn bind(addr: SocketAddr, config: KcpConfig) -> Result<KcpListener, KcpError> {
        config.validate()?;
        let (socket, _) = udp::bind(addr, &config)?;
        KcpListener::with_transport(Arc::new(socket), config)
    }

    /// Accepts on your own transport. Must be called within a tokio runtime.
    pub fn with_transport(
        transport: Arc<dyn Transport>,
        config: KcpConfig,
    ) -> Result<KcpListener, KcpError> {
        KcpListener::with_limits(transport, config, ListenerLimits::default())
    }

    /// Like [`with_transport`](KcpListener::with_transport) with explicit limits.
    pub fn with_limits(
        transport: Arc<dyn Transport>,
        config: KcpConfig,
        limits: ListenerLimits,
    ) -> Result<KcpListener, KcpError> {
        config.validate()?;
        for (field, value) in [
            ("backlog", limits.backlog),
            ("max_connections", limits.max_connections),
            (
                "per_connection_queue",
                limits.per_connection_queue.unwrap_or(1),
            ),
            ("max_half_open", limits.max_half_open),
        ] {
            if value == 0 {
                return Err(KcpError::config(
                    field,
                    "of ListenerLimits must be non-zero",
                ));
            }
        }
        if limits.max_queued_bytes < config.mtu {
            return Err(KcpError::config(
                "max_queued_bytes",
                "of ListenerLimits must be at least the mtu",
            ));
        }
        let local = transport.local_addr()?;
        let (accept_tx, accept_rx) = mpsc::channel(limits.backlog);
        let queued = BytePool::new(limits.max_queued_bytes);
        let out_of_order = BytePool::new(limits.max_out_of_order_total);
        let counters = Arc::new(ListenerCounters {
            socket_buffers: transport.socket_buffers(),
            ..ListenerCounters::default()
        });
        let router = Router {
            table: Table::new(&limits, Instant::now()),
            cookies: config.handshake_cookie.then(|| Minter::new(Instant::now())),
            routed: RoutedPool::new(queued.clone(), config.mtu),
            out_of_order: out_of_order.clone(),
            transport,
            config,
            limits,
            local,
            accept_tx,
            counters: counters.clone(),
        };
        tokio::spawn(router.run());
        #[cfg(feature = "metrics")]
        tokio::spawn(super::metrics::publish_listener(
            Arc::downgrade(&counters),
            local.to_string(),
        ));
        Ok(KcpListener {
            accept_rx: Mutex::new(accept_rx),
            local,
            counters,
            queued,
            out_of_order,
        })
    }

    /// Waits for the next connection and returns it with the peer's address.
    /// Fails with [`ConnectionError::ListenerStopped`] (the `peer` of the
    /// error is the listener's own address) if the listener's task ended.
    pub async fn accept(&self) -> Result<(KcpStream, SocketAddr), KcpError> {
        let mut rx = self.accept_rx.lock().await;
        loop {
            let (stream, peer, closed) = rx.recv().await.ok_or(KcpError::Connection {
                peer: self.local,
                reason: ConnectionError::ListenerStopped,
            })?;
            // Half-open connections closed while waiting are not handed out.
            if !closed.is_closed() {
                debug!(local = %self.local, %peer, conv = stream.conv(), "accepted");
                return Ok((stream, peer));
            }
        }
    }

    /// The address peers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Datagram and connection counters.
    pub fn stats(&self) -> ListenerStats {
        let mut s = self.counters.snapshot();
        s.queued_bytes = self.queued.used() as u64;
        s.out_of_order_bytes = self.out_of_order.held() as u64;
        s
    }
}

/// A connection for `accept`, with what the router sets if it closes it
/// (half-open) before it is accepted.
type Accepted = (KcpStream, SocketAddr, Arc<ClosedByRouter>);

/// Why the router closed a half-open connection, set before it drops the
/// connection's route: `accept` skips the connection, and its task, which
/// then sees its datagrams end, reports this rather than
/// [`ConnectionError::ListenerGone`] (the listener is still there).
#[derive(Debug, Default)]
pub(crate) struct ClosedByRouter(OnceLock<KcpError>);

impl ClosedByRouter {
    fn close(&self, why: KcpError) {
        let _ = self.0.set(why);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.0.get().is_some()
    }

    pub(crate) fn reason(&self) -> Option<KcpError> {
        self.0.get().cloned()
    }
}

/// What connection tasks tell the router.
enum Event {
    Established(Key, u64),
    Gone(Key, u64),
}

/// What the router keeps for a live connection.
struct Entry {
    tx: mpsc::Sender<Routed>,
    /// Set when the router closes it, so `accept` skips it.
    closed: Arc<ClosedByRouter>,
}

struct Router {
    table: Table<Entry>,
    /// With [`KcpConfig::handshake_cookie`] on.
    cookies: Option<Minter>,
    transport: Arc<dyn Transport>,
    config: KcpConfig,
    limits: ListenerLimits,
    local: SocketAddr,
    accept_tx: mpsc::Sender<Accepted>,
    counters: Arc<ListenerCounters>,
    /// Buffers of routed datagrams, charged to the queued bytes.
    routed: Arc<RoutedPool>,
    /// Out-of-order bytes of all connections (see `InputGuard`).
    out_of_order: Arc<BytePool>,
}

impl Router {
    async fn run(mut self) {
        let span = tracing::debug_span!("kcp_listener", local = %self.local);
        debug!(parent: &span, "listener started");
        let (gone_tx, mut gone_rx) = mpsc::unbounded_channel::<Event>();
        // One batch per wake-up: up to RECV_BATCH buffers of datagrams (each
        // large enough for a GRO train), routed before the next receive.
        let mut bufs = vec![vec![0u8; RUN_MAX]; RECV_BATCH];
        let mut meta = vec![Received::default(); RECV_BATCH];
        let mut accepting = true;
        let mut recv_errors = 0u32;
        loop {
            if !accepting && self.table.is_empty() {
                break;
            }
            let expiry = self.table.next_expiry();
            tokio::select! {
                _ = sleep_until_some(expiry) => self.expire_half_open(),
                r = transport::recv_many(&*self.transport, &mut bufs, &mut meta) => match r {
                    Ok(n) => {
                        recv_errors = 0;
                        for (buf, m) in bufs.iter_mut().zip(&meta[..n]) {
                            self.route_received(buf, m, accepting, &gone_tx);
                        }
                    }
                    Err(e) => {
                        // E.g. ICMP port unreachable surfacing on Windows; never fatal.
                        ListenerCounters::bump(&self.counters.transport_errors);
                        trace!(parent: &span, error = %e, "receive error");
                        recv_errors += 1;
                        if recv_errors > 100 {
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        }
                    }
                },
                Some(event) = gone_rx.recv() => self.on_event(event),
                _ = self.accept_tx.closed(), if accepting => {
                    debug!(parent: &span, "listener dropped; serving remaining connections");
                    accepting = false;
                }
            }
        }
        debug!(parent: &span, "listener stopped");
    }

    fn route(
        &mut self,
        d: &[u8],
        peer: SocketAddr,
        accepting: bool,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        // With the handshake on: answer requests, strip the cookie, and
        // remember it for an opening (checked only then).
        let mut cookie = None;
        let d = match &self.cookies {
            None => d,
            Some(minter) => match cookie::parse(d) {
                Message::Hello => {
                    self.answer_hello(minter, peer);
                    return;
                }
                Message::Challenge(_) => {
                    ListenerCounters::bump(&self.counters.dropped_malformed);
                    return;
                }
                Message::Cookied(c, rest) => {
                    cookie = Some(c);
                    rest
                }
                Message::Other => d,
            },
        };
        if d.len() > self.config.mtu {
            ListenerCounters::bump(&self.counters.dropped_oversized);
            return;
        }
        if !well_formed(d) {
            ListenerCounters::bump(&self.counters.dropped_malformed);
            return;
        }
        let wire_conv = match self.table.route(d, peer) {
            Route::Known {
                conv,
                value,
                half_open,
            } => {
                let Some(data) = self.routed.copy(d, conv) else {
                    ListenerCounters::bump(&self.counters.dropped_overload);
                    return;
                };
                Self::deliver(&value.tx, data, &self.counters);
                if half_open {
                    self.table.heard((peer, conv), Instant::now());
                }
                return;
            }
            Route::Opening { wire_conv } if accepting => {
                if let Some(minter) = &self.cookies {
                    if !cookie.is_some_and(|c| minter.valid(peer, c, Instant::now())) {
                        ListenerCounters::bump(&self.counters.openings_without_cookie);
                        return;
                    }
                }
                wire_conv
            }
            Route::Opening { .. } | Route::Unknown => {
                ListenerCounters::bump(&self.counters.dropped_unknown);
                return;
            }
        };
        self.open(d, peer, wire_conv, events);
    }

    /// Sends the cookie for `peer`, if the socket takes it now (the
    /// router never waits on a stranger).
    fn answer_hello(&self, minter: &Minter, peer: SocketAddr) {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = std::task::Waker::from(Arc::new(Noop));
        let mut cx = std::task::Context::from_waker(&waker);
        let reply = minter.challenge(peer, Instant::now());
        if let std::task::Poll::Ready(Ok(_)) = self.transport.poll_send_to(&mut cx, &reply, peer) {
            ListenerCounters::bump(&self.counters.cookies_sent);
        }
    }

    /// Routes what one receive put in `buf`. In a train (several datagrams
    /// received together, GRO) the consecutive datagrams for one connection
    /// go as one run: one message for them all, and one copy, or none when
    /// the whole train is one long run (the buffer itself goes, and the
    /// pool puts a spare in its place).
    fn route_received(
        &mut self,
        buf: &mut Vec<u8>,
        m: &Received,
        accepting: bool,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let stride = m.datagram_size();
        if m.len <= stride || self.cookies.is_some() {
            // One datagram, or cookies to strip: datagram by datagram.
            for d in m.datagrams(buf) {
                ListenerCounters::bump(&self.counters.datagrams);
                self.route(d, m.addr, accepting, events);
            }
            return;
        }
        ListenerCounters::add(&self.counters.datagrams, m.len.div_ceil(stride) as u64);
        // The run being gathered: its conversation and byte range in `buf`.
        let mut run: Option<(u32, usize, usize)> = None;
        // The latest known route: (conversation on the wire, conversation).
        // The datagrams of a train share their sender, so one lookup serves
        // every datagram that carries the same conversation.
        let mut last_route: Option<(u32, u32)> = None;
        let mut at = 0;
        for d in m.datagrams(buf) {
            let start = at;
            at += d.len();
            let known = if d.len() <= self.config.mtu && well_formed(d) {
                let wire = conv_of(d).unwrap_or(0);
                match last_route {
                    Some((w, conv)) if w == wire => Some(conv),
                    _ => match self.table.route(d, m.addr) {
                        Route::Known { conv, .. } => {
                            last_route = Some((wire, conv));
                            Some(conv)
                        }
                        _ => None,
                    },
                }
            } else {
                None
            };
            match (known, &mut run) {
                (Some(conv), Some((c, _, end))) if *c == conv => *end = at,
                (Some(conv), _) => {
                    if let Some((c, s, e)) = run.replace((conv, start, at)) {
                        self.deliver_run(&buf[s..e], stride, c, m.addr);
                    }
                }
                (None, _) => {
                    if let Some((c, s, e)) = run.take() {
                        self.deliver_run(&buf[s..e], stride, c, m.addr);
                    }
                    // Counted and dealt with (opening, drop) one by one.
                    self.route(d, m.addr, accepting, events);
                }
            }
        }
        match run {
            Some((c, 0, e)) if e == m.len && RoutedPool::adopts(e) && buf.len() == RUN_MAX => {
                self.deliver_train(buf, e, stride, c, m.addr)
            }
            Some((c, s, e)) => self.deliver_run(&buf[s..e], stride, c, m.addr),
            None => {}
        }
    }

    /// Copies a run of datagrams for the connection (`peer`, `conv`) and
    /// hands it over.
    fn deliver_run(&mut self, run: &[u8], stride: usize, conv: u32, peer: SocketAddr) {
        let head = &run[..stride.min(run.len())];
        self.hand_over(head, run.len(), stride, conv, peer, |pool| {
            pool.copy_run(run, stride, conv)
        });
    }

    /// Hands the first `len` bytes of the receive buffer `buf`, a run of
    /// datagrams for the connection (`peer`, `conv`), over as they are.
    fn deliver_train(
        &mut self,
        buf: &mut Vec<u8>,
        len: usize,
        stride: usize,
        conv: u32,
        peer: SocketAddr,
    ) {
        // The route needs the first header only; `buf` itself goes.
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&buf[..HEADER_LEN]);
        self.hand_over(&head, len, stride, conv, peer, |pool| {
            pool.adopt(buf, len, stride, conv)
        });
    }

    /// Queues the run of `len` bytes that `routed` makes for the connection
    /// routed by its first datagram (or its header) `head`.
    fn hand_over(
        &mut self,
        head: &[u8],
        len: usize,
        stride: usize,
        conv: u32,
        peer: SocketAddr,
        routed: impl FnOnce(&Arc<RoutedPool>) -> Option<Routed>,
    ) {
        let count = len.div_ceil(stride) as u64;
        let Route::Known {
            value, half_open, ..
        } = self.table.route(head, peer)
        else {
            return;
        };
        let Some(data) = routed(&self.routed) else {
            ListenerCounters::add(&self.counters.dropped_overload, count);
            return;
        };
        Self::deliver_counted(&value.tx, data, count, &self.counters);
        if half_open {
            self.table.heard((peer, conv), Instant::now());
        }
    }

    fn deliver(tx: &mpsc::Sender<Routed>, data: Routed, counters: &ListenerCounters) {
        Self::deliver_counted(tx, data, 1, counters)
    }

    /// Queues `data` (`count` datagrams) for its connection's task.
    fn deliver_counted(
        tx: &mpsc::Sender<Routed>,
        data: Routed,
        count: u64,
        counters: &ListenerCounters,
    ) {
        match tx.try_send(data) {
            Ok(()) => ListenerCounters::add(&counters.routed, count),
            Err(mpsc::error::TrySendError::Full(_)) => {
                ListenerCounters::add(&counters.dropped_overload, count)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                ListenerCounters::add(&counters.dropped_unknown, count);
            }
        }
    }

    /// An opening from an unknown (peer, conversation): admission, room, and
    /// a new half-open connection.
    fn open(
        &mut self,
        d: &[u8],
        peer: SocketAddr,
        wire_conv: u32,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let now = Instant::now();
        if self.table.admit(peer, wire_conv, now) != Verdict::Admit {
            ListenerCounters::bump(&self.counters.openings_rate_limited);
            return;
        }
        // The router is the only sender: room seen here stays.
        if self.accept_tx.capacity() == 0 {
            ListenerCounters::bump(&self.counters.dropped_capacity);
            return;
        }
        // Room comes from the oldest half-open connection, never from an
        // established one.
        match self.table.make_room() {
            Room::Free => {}
            Room::Evicted((evicted_peer, evicted_conv), evicted) => {
                debug!(conv = evicted_conv, peer = %evicted_peer, "half-open connection gave way to a new opening");
                evicted.closed.close(KcpError::Connection {
                    peer: evicted_peer,
                    reason: ConnectionError::HalfOpenEvicted,
                });
                ListenerCounters::bump(&self.counters.half_open_evicted);
            }
            Room::Full => {
                ListenerCounters::bump(&self.counters.dropped_capacity);
                self.publish_counts();
                return;
            }
        }
        let conv = self.table.conv_for(peer, wire_conv, random_conv);
        let Some(data) = self.routed.copy(d, conv) else {
            ListenerCounters::bump(&self.counters.dropped_overload);
            self.publish_counts();
            return;
        };
        let Ok(permit) = self.accept_tx.try_reserve() else {
            ListenerCounters::bump(&self.counters.dropped_capacity);
            return;
        };
        let key = (peer, conv);
        let id = self.table.next_id();
        let (tx, rx) = mpsc::channel(self.limits.connection_queue(&self.config));
        let shared = Arc::new(Shared::new(conv, peer, self.local, &self.config));
        shared.lock().stats.socket_buffers = self.counters.socket_buffers;
        let gone = events.clone();
        let on_exit: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = gone.send(Event::Gone(key, id));
        });
        let established = events.clone();
        let on_established: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = established.send(Event::Established(key, id));
        });
        let closed = Arc::new(ClosedByRouter::default());
        let mut driver = Driver::new(
            conv,
            self.config.clone(),
            shared.clone(),
            self.transport.clone(),
            peer,
            Source::Listener(rx),
            Some(on_exit),
        );
        driver.join_listener(
            self.out_of_order.clone(),
            self.limits.out_of_order_floor,
            on_established,
            closed.clone(),
        );
        let _ = tx.try_send(data);
        tokio::spawn(driver.run());
        let inserted = self.table.insert(
            key,
            wire_conv,
            Entry {
                tx,
                closed: closed.clone(),
            },
            now,
        );
        debug_assert_eq!(inserted, id);
        ListenerCounters::bump(&self.counters.connections_created);
        self.publish_counts();
        debug!(conv, %peer, "new connection (half-open)");
        permit.send((KcpStream::from_shared(shared), peer, closed));
    }

    fn expire_half_open(&mut self) {
        for (key, entry) in self.table.expire(Instant::now()) {
            debug!(conv = key.1, peer = %key.0, "half-open connection expired");
            // Its task sees its source gone, and says why.
            entry.closed.close(KcpError::Timeout {
                timeout: Timeout::HalfOpen,
                peer: key.0,
                after: self.limits.half_open_timeout,
            });
            ListenerCounters::bump(&self.counters.half_open_expired);
        }
        self.publish_counts();
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Established(key, id) => self.table.established(key, id),
            Event::Gone(key, id) => {
                self.table.remove(key, id);
            }
        }
        self.publish_counts();
    }

    fn publish_counts(&self) {
        let c = &self.counters;
        c.connections_alive
            .store(self.table.len() as u64, Ordering::Relaxed);
        c.half_open
            .store(self.table.half_open_len() as u64, Ordering::Relaxed);
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_queue_holds_what_its_windows_let_a_peer_send() {
        let limits = ListenerLimits::default();
        let bulk = KcpConfig::new().window_size(1024, 1024);
        assert_eq!(limits.connection_queue(&bulk), 1024 + 1024 + QUEUE_SLACK);
        // The engine never receives into less than the reference's default.
        let small = KcpConfig::new().window_size(32, 32);
        assert_eq!(limits.connection_queue(&small), 128 + 32 + QUEUE_SLACK);
        let fixed = ListenerLimits {
            per_connection_queue: Some(10),
            ..limits
        };
        assert_eq!(fixed.connection_queue(&bulk), 10);
    }
}
