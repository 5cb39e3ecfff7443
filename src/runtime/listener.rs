//! `KcpListener`: many KCP connections over one datagram transport.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, Mutex};
use tracing::{debug, trace};

use super::config::KcpConfig;
use super::driver::{Driver, Source};
use super::error::{ConnectionError, KcpError};
use super::input_guard::BytePool;
use super::shared::Shared;
use super::stats::{ListenerCounters, ListenerStats};
use super::stream::{random_conv, KcpStream};
use super::transport::{self, Transport};
use super::udp;
use crate::engine::{conv_of, Command, SegmentHeader, HEADER_LEN};

/// Limits of a [`KcpListener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// New connections waiting for [`KcpListener::accept`]; openings beyond
    /// it are dropped (the peer retransmits).
    pub backlog: usize,
    /// Connections alive at once, accepted or not.
    pub max_connections: usize,
    /// Datagrams queued for one connection's task before more are dropped.
    pub per_connection_queue: usize,
    /// Bytes of datagrams queued for all connections' tasks together before
    /// more are dropped (counted in [`ListenerStats::dropped_overload`]).
    /// Default 16 MiB.
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
            per_connection_queue: 1024,
            max_queued_bytes: 16 << 20,
            out_of_order_floor: 32 << 10,
            max_out_of_order_total: 64 << 20,
        }
    }
}

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
    accept_rx: Mutex<mpsc::Receiver<(KcpStream, SocketAddr)>>,
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
            ("per_connection_queue", limits.per_connection_queue),
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
            queued: queued.clone(),
            out_of_order: out_of_order.clone(),
            transport,
            config,
            limits,
            local,
            accept_tx,
            counters: counters.clone(),
            table: HashMap::new(),
            assigned: HashMap::new(),
        };
        tokio::spawn(router.run());
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
        self.accept_rx
            .lock()
            .await
            .recv()
            .await
            .ok_or(KcpError::Connection {
                peer: self.local,
                reason: ConnectionError::ListenerStopped,
            })
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

/// A datagram on its way from the listener to a connection's task, counted
/// in the listener's queued bytes until the task is done with it.
pub(crate) struct Routed {
    data: Bytes,
    pool: Arc<BytePool>,
}

impl std::ops::Deref for Routed {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Routed {
    fn drop(&mut self) {
        self.pool.release(self.data.len());
    }
}

type Key = (SocketAddr, u32);

struct Router {
    transport: Arc<dyn Transport>,
    config: KcpConfig,
    limits: ListenerLimits,
    local: SocketAddr,
    accept_tx: mpsc::Sender<(KcpStream, SocketAddr)>,
    counters: Arc<ListenerCounters>,
    /// Bytes routed and not yet consumed (see [`Routed`]).
    queued: Arc<BytePool>,
    /// Out-of-order bytes of all connections (see `InputGuard`).
    out_of_order: Arc<BytePool>,
    table: HashMap<Key, mpsc::Sender<Routed>>,
    /// Peers that opened with conversation 0, and the id we gave them.
    assigned: HashMap<SocketAddr, u32>,
}

/// Whether a datagram can be KCP: every segment has a known command and a
/// length that fits. Fewer than 24 trailing bytes are ignored, as the
/// engine (and the reference) ignore them.
fn well_formed(d: &[u8]) -> bool {
    let mut rest = d;
    if rest.len() < HEADER_LEN {
        return false;
    }
    while rest.len() >= HEADER_LEN {
        let Some(h) = SegmentHeader::decode(rest) else {
            return false;
        };
        if Command::from_byte(h.cmd).is_none() {
            return false;
        }
        let len = h.len as usize;
        if rest.len() - HEADER_LEN < len {
            return false;
        }
        rest = &rest[HEADER_LEN + len..];
    }
    true
}

/// Rewrites the conversation id of every segment (a peer that opened with 0
/// keeps using 0 until it hears the assigned id).
fn set_conv(d: &mut [u8], conv: u32) {
    let mut at = 0;
    while at + HEADER_LEN <= d.len() {
        d[at..at + 4].copy_from_slice(&conv.to_le_bytes());
        let len = u32::from_le_bytes([d[at + 20], d[at + 21], d[at + 22], d[at + 23]]) as usize;
        at += HEADER_LEN + len;
    }
}

/// Whether a datagram may open a connection: its first segment is data
/// with sequence number 0, which every KCP sender emits first.
fn opens_connection(d: &[u8]) -> bool {
    matches!(SegmentHeader::decode(d), Some(h) if h.cmd == Command::Push as u8 && h.sn == 0)
}

impl Router {
    async fn run(mut self) {
        let span = tracing::debug_span!("kcp_listener", local = %self.local);
        debug!(parent: &span, "listener started");
        let (gone_tx, mut gone_rx) = mpsc::unbounded_channel::<Key>();
        let mut buf = vec![0u8; 65_536];
        let mut accepting = true;
        let mut recv_errors = 0u32;
        loop {
            if !accepting && self.table.is_empty() {
                break;
            }
            tokio::select! {
                r = transport::recv_from(&*self.transport, &mut buf) => match r {
                    Ok((n, peer)) => {
                        recv_errors = 0;
                        ListenerCounters::bump(&self.counters.datagrams);
                        self.route(&buf[..n], peer, accepting, &gone_tx);
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
                Some(key) = gone_rx.recv() => {
                    self.table.remove(&key);
                    if self.assigned.get(&key.0) == Some(&key.1) {
                        self.assigned.remove(&key.0);
                    }
                    self.counters.connections_alive.store(self.table.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
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
        gone_tx: &mpsc::UnboundedSender<Key>,
    ) {
        if d.len() > self.config.mtu {
            ListenerCounters::bump(&self.counters.dropped_oversized);
            return;
        }
        if !well_formed(d) {
            ListenerCounters::bump(&self.counters.dropped_malformed);
            return;
        }
        let mut conv = conv_of(d).unwrap_or(0);
        let mut data = BytesMut::from(d);
        if conv == 0 {
            conv = match self.assigned.get(&peer) {
                Some(&c) => c,
                None if opens_connection(d) => {
                    let mut c = random_conv();
                    while self.table.contains_key(&(peer, c)) {
                        c = random_conv();
                    }
                    c
                }
                None => {
                    ListenerCounters::bump(&self.counters.dropped_unknown);
                    return;
                }
            };
            set_conv(&mut data, conv);
        }
        let key = (peer, conv);
        if !self.queued.try_charge(data.len()) {
            ListenerCounters::bump(&self.counters.dropped_overload);
            return;
        }
        let data = Routed {
            data: data.freeze(),
            pool: self.queued.clone(),
        };
        if let Some(tx) = self.table.get(&key) {
            match tx.try_send(data) {
                Ok(()) => ListenerCounters::bump(&self.counters.routed),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    ListenerCounters::bump(&self.counters.dropped_overload)
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    ListenerCounters::bump(&self.counters.dropped_unknown);
                }
            }
            return;
        }
        if !accepting || !opens_connection(&data) {
            ListenerCounters::bump(&self.counters.dropped_unknown);
            return;
        }
        if self.table.len() >= self.limits.max_connections {
            ListenerCounters::bump(&self.counters.dropped_capacity);
            return;
        }
        let Ok(permit) = self.accept_tx.try_reserve() else {
            ListenerCounters::bump(&self.counters.dropped_capacity);
            return;
        };
        let (tx, rx) = mpsc::channel(self.limits.per_connection_queue);
        let shared = Arc::new(Shared::new(conv, peer, self.local, &self.config));
        shared.lock().stats.socket_buffers = self.counters.socket_buffers;
        let gone_tx = gone_tx.clone();
        let on_exit: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = gone_tx.send(key);
        });
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
            Box::new(|| {}),
        );
        let _ = tx.try_send(data);
        tokio::spawn(driver.run());
        if conv_of(d) == Some(0) {
            self.assigned.insert(peer, conv);
        }
        self.table.insert(key, tx);
        ListenerCounters::bump(&self.counters.connections_created);
        self.counters.connections_alive.store(
            self.table.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        debug!(conv, %peer, "new connection");
        permit.send((KcpStream::from_shared(shared), peer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(conv: u32, cmd: u8, sn: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        SegmentHeader {
            conv,
            cmd,
            sn,
            len: payload.len() as u32,
            ..Default::default()
        }
        .encode(&mut v);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn malformed_datagrams_are_recognised() {
        let good = segment(5, Command::Push as u8, 0, b"abc");
        assert!(well_formed(&good));
        assert!(!well_formed(&good[..good.len() - 1]), "truncated payload");
        assert!(!well_formed(&good[..10]), "truncated header");
        assert!(!well_formed(&segment(5, 99, 0, b"")), "unknown command");
        let mut two = good.clone();
        two.extend_from_slice(&segment(5, Command::Ack as u8, 0, b""));
        assert!(well_formed(&two));
        two.extend_from_slice(&[0; 30]);
        assert!(!well_formed(&two), "trailing garbage as long as a header");
    }

    #[test]
    fn conv_rewrite_touches_every_segment() {
        let mut d = segment(0, Command::Push as u8, 0, b"xy");
        d.extend_from_slice(&segment(0, Command::Push as u8, 1, b"z"));
        set_conv(&mut d, 0xaabbccdd);
        assert_eq!(conv_of(&d), Some(0xaabbccdd));
        assert_eq!(conv_of(&d[HEADER_LEN + 2..]), Some(0xaabbccdd));
        assert!(opens_connection(&d));
        assert!(!opens_connection(&segment(1, Command::Push as u8, 3, b"")));
        assert!(!opens_connection(&segment(1, Command::Ack as u8, 0, b"")));
    }
}
