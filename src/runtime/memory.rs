//! An in-memory datagram network with seeded loss, delay, duplication and
//! reordering, for testing KCP applications without sockets.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::ReadBuf;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::rng::Rng;
use super::transport::Transport;

/// How the simulated link mistreats datagrams. All fractions are 0.0..=1.0.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConditions {
    /// Fraction of datagrams dropped.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra random delay, uniform in `0..=jitter`; it reorders datagrams.
    pub jitter: Duration,
    /// Fraction of datagrams delivered twice.
    pub duplicate: f64,
    /// Bytes per second each endpoint can send, or `None` (the default)
    /// for no limit. Datagrams beyond it wait their turn in an unbounded
    /// queue, as in a router's buffer, before the delay starts.
    pub bandwidth: Option<u64>,
    /// Seed of every random choice, so a failing run can be replayed.
    pub seed: u64,
}

impl Default for LinkConditions {
    fn default() -> Self {
        LinkConditions {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            duplicate: 0.0,
            bandwidth: None,
            seed: 1,
        }
    }
}

#[derive(Debug)]
struct NetInner {
    conditions: LinkConditions,
    rng: Rng,
    endpoints: HashMap<SocketAddr, mpsc::UnboundedSender<(Bytes, SocketAddr)>>,
    /// When each sender's link finishes sending what it queued so far.
    link_free_at: HashMap<SocketAddr, Instant>,
    /// In-order delivery from one endpoint to another, when not immediate.
    links: HashMap<(SocketAddr, SocketAddr), mpsc::UnboundedSender<(Instant, Bytes)>>,
    next_port: u16,
    delivered: u64,
    dropped: u64,
    duplicated: u64,
}

/// A set of in-memory endpoints that can reach each other.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use kcp::runtime::{KcpConfig, KcpListener, KcpStream, LinkConditions, MemoryNetwork};
///
/// let net = MemoryNetwork::new(LinkConditions { loss: 0.1, seed: 7, ..Default::default() });
/// let listener = KcpListener::with_transport(net.bind(None), KcpConfig::testing(0.0))?;
/// let server = listener.local_addr();
/// let mut client = KcpStream::connect_with_transport(net.bind(None), server, 1, KcpConfig::testing(0.0))?;
/// client.send(b"ping").await?;
/// let (mut accepted, _) = listener.accept().await?;
/// assert_eq!(&accepted.recv().await?[..], b"ping");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<NetInner>>,
}

/// Counters of a [`MemoryNetwork`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryNetworkStats {
    /// Datagrams handed to a receiver (duplicates counted twice).
    pub delivered: u64,
    /// Datagrams dropped by simulated loss or sent to nobody.
    pub dropped: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
}

impl MemoryNetwork {
    /// A network whose every link behaves as `conditions` says.
    pub fn new(conditions: LinkConditions) -> Self {
        let rng = Rng::new(conditions.seed);
        MemoryNetwork {
            inner: Arc::new(Mutex::new(NetInner {
                conditions,
                rng,
                endpoints: HashMap::new(),
                link_free_at: HashMap::new(),
                links: HashMap::new(),
                next_port: 1,
                delivered: 0,
                dropped: 0,
                duplicated: 0,
            })),
        }
    }

    /// Changes the link conditions from now on (e.g. to cut the link).
    pub fn set_conditions(&self, conditions: LinkConditions) {
        self.inner.lock().unwrap().conditions = conditions;
    }

    /// What happened to datagrams so far.
    pub fn stats(&self) -> MemoryNetworkStats {
        let n = self.inner.lock().unwrap();
        MemoryNetworkStats {
            delivered: n.delivered,
            dropped: n.dropped,
            duplicated: n.duplicated,
        }
    }

    /// A new endpoint at `addr`, or at a fresh `10.0.0.1:<n>` address
    /// (never touched by a real socket).
    pub fn bind(&self, addr: Option<SocketAddr>) -> Arc<MemoryTransport> {
        let mut n = self.inner.lock().unwrap();
        let addr = addr.unwrap_or_else(|| {
            let port = n.next_port;
            n.next_port = n.next_port.wrapping_add(1).max(1);
            SocketAddr::from(([10, 0, 0, 1], port))
        });
        let (tx, rx) = mpsc::unbounded_channel();
        n.endpoints.insert(addr, tx);
        Arc::new(MemoryTransport {
            net: self.clone(),
            addr,
            rx: Mutex::new(rx),
        })
    }
}

/// A task delivering datagrams from `from` to `to`, each at its time, in
/// the order sent.
fn fifo_link(
    to: mpsc::UnboundedSender<(Bytes, SocketAddr)>,
    from: SocketAddr,
) -> mpsc::UnboundedSender<(Instant, Bytes)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    tokio::spawn(async move {
        while let Some((at, data)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.send((data, from)).is_err() {
                return;
            }
        }
    });
    tx
}

/// One endpoint of a [`MemoryNetwork`].
#[derive(Debug)]
pub struct MemoryTransport {
    net: MemoryNetwork,
    addr: SocketAddr,
    rx: Mutex<mpsc::UnboundedReceiver<(Bytes, SocketAddr)>>,
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        let mut n = self.net.inner.lock().unwrap();
        n.endpoints.remove(&self.addr);
        n.link_free_at.remove(&self.addr);
        let addr = self.addr;
        n.links.retain(|&(from, to), _| from != addr && to != addr);
    }
}

impl Transport for MemoryTransport {
    fn poll_send_to(
        &self,
        _cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let mut n = self.net.inner.lock().unwrap();
        let Some(tx) = n.endpoints.get(&target).cloned() else {
            n.dropped += 1;
            return Poll::Ready(Ok(buf.len()));
        };
        let c = n.conditions.clone();
        if n.rng.chance(c.loss) {
            n.dropped += 1;
            return Poll::Ready(Ok(buf.len()));
        }
        let copies = if n.rng.chance(c.duplicate) { 2 } else { 1 };
        n.duplicated += copies - 1;
        let queued = match c.bandwidth {
            Some(rate) if rate > 0 => {
                let now = Instant::now();
                let free = n
                    .link_free_at
                    .get(&self.addr)
                    .copied()
                    .unwrap_or(now)
                    .max(now);
                let sent = free + Duration::from_secs_f64(buf.len() as f64 / rate as f64);
                n.link_free_at.insert(self.addr, sent);
                sent - now
            }
            _ => Duration::ZERO,
        };
        let data = Bytes::copy_from_slice(buf);
        for _ in 0..copies {
            let jitter = if c.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(n.rng.below(c.jitter.as_micros() as u64 + 1))
            };
            let delay = queued + c.delay + jitter;
            n.delivered += 1;
            let (tx, data, from) = (tx.clone(), data.clone(), self.addr);
            if delay.is_zero() {
                let _ = tx.send((data, from));
            } else if c.jitter.is_zero() {
                // Timers due in the same tick fire in any order; a link
                // without jitter keeps its datagrams in order.
                let link = n
                    .links
                    .entry((from, target))
                    .or_insert_with(|| fifo_link(tx, from));
                let _ = link.send((Instant::now() + delay, data));
            } else {
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send((data, from));
                });
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let mut rx = self.rx.lock().unwrap();
        match rx.poll_recv(cx) {
            Poll::Ready(Some((data, from))) => {
                // Like UDP: a datagram longer than the buffer is truncated.
                let n = data.len().min(buf.remaining());
                buf.put_slice(&data[..n]);
                Poll::Ready(Ok(from))
            }
            Poll::Ready(None) => Poll::Pending,
            Poll::Pending => Poll::Pending,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
