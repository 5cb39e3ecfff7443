//! Where datagrams go: UDP by default, or any [`Transport`] you plug in.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::task::{ready, Context, Poll};

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;

use super::udp::SocketBuffers;

/// What one receive buffer of [`Transport::poll_recv_many`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Who sent the datagrams.
    pub addr: SocketAddr,
    /// Bytes in the buffer.
    pub len: usize,
    /// Size of each datagram in the buffer: the buffer holds `len / stride`
    /// datagrams of `stride` bytes, and a shorter last one if `len` is not a
    /// multiple (a transport that receives coalesced datagrams, e.g. with
    /// GRO); equal to `len` for a single datagram.
    pub stride: usize,
}

impl Default for Received {
    fn default() -> Self {
        Received {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            len: 0,
            stride: 0,
        }
    }
}

impl Received {
    /// The datagrams in `buf` (the buffer this describes).
    pub fn datagrams<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        buf[..self.len.min(buf.len())].chunks(self.datagram_size().max(1))
    }

    /// Size of each datagram but the last (the whole length when `stride`
    /// was left 0).
    pub(crate) fn datagram_size(&self) -> usize {
        if self.stride == 0 {
            self.len
        } else {
            self.stride
        }
    }
}

/// An unreliable datagram carrier, shaped like an unconnected UDP socket.
///
/// One task receives from a transport (the listener, or a client
/// connection's driver); any number of tasks may send through it.
/// Implement it to run KCP over something other than UDP; see
/// [`MemoryNetwork`](super::MemoryNetwork) for an example. The batch
/// methods have one-datagram defaults; override them where the carrier
/// can move several datagrams per call.
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Sends one datagram to `target`.
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>>;

    /// Receives one datagram into `buf` and returns its sender.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>>;

    /// The address peers send to.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The kernel buffer sizes, for a transport that is a socket; shown in
    /// [`ConnectionStats`](super::ConnectionStats) and
    /// [`ListenerStats`](super::ListenerStats). `None` by default.
    fn socket_buffers(&self) -> Option<SocketBuffers> {
        None
    }

    /// Sends datagrams to `target`: `contents` holds them back to back,
    /// each `segment` bytes long but the last, which may be shorter.
    /// Returns how many bytes of `contents` went, always whole datagrams
    /// and at least one. The default sends the first datagram alone.
    fn poll_send_segments(
        &self,
        cx: &mut Context<'_>,
        contents: &[u8],
        segment: usize,
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let one = contents.len().min(segment.max(1));
        self.poll_send_to(cx, &contents[..one], target)
    }

    /// Receives into as many of `bufs` as datagrams are waiting (at least
    /// one), describing each filled buffer in `meta`; returns how many
    /// buffers were filled. The default receives one datagram.
    fn poll_recv_many(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> Poll<io::Result<usize>> {
        recv_one(self, cx, bufs, meta)
    }
}

/// One datagram through `poll_recv_from`, in the shape of `poll_recv_many`.
pub(crate) fn recv_one<T: Transport + ?Sized>(
    t: &T,
    cx: &mut Context<'_>,
    bufs: &mut [IoSliceMut<'_>],
    meta: &mut [Received],
) -> Poll<io::Result<usize>> {
    let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else {
        return Poll::Ready(Ok(0));
    };
    let mut rb = ReadBuf::new(buf);
    let addr = ready!(t.poll_recv_from(cx, &mut rb))?;
    let len = rb.filled().len();
    *m = Received {
        addr,
        len,
        stride: len,
    };
    Poll::Ready(Ok(1))
}

impl Transport for UdpSocket {
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        UdpSocket::poll_send_to(self, cx, buf, target)
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        UdpSocket::poll_recv_from(self, cx, buf)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }

    fn socket_buffers(&self) -> Option<SocketBuffers> {
        SocketBuffers::of(self).ok()
    }
}

/// How long a task waiting for room in a socket's send buffer sleeps before
/// it asks again even if nobody woke it. tokio's `UdpSocket` remembers one
/// send waker per socket, so when several tasks wait on one socket (a
/// listener's connections share its socket) each new waiter replaces the
/// previous one's waker, which would otherwise sleep until some unrelated
/// event (or forever).
const SEND_REPOLL: std::time::Duration = std::time::Duration::from_millis(2);

/// Polls a send until it completes, asking again every [`SEND_REPOLL`]
/// while it waits.
async fn until_sent<T>(
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> io::Result<T> {
    // Most sends find room: the first ask sets up no timer (nor reads the
    // clock a timeout needs).
    if let Poll::Ready(done) = std::future::poll_fn(|cx| Poll::Ready(poll(cx))).await {
        return done;
    }
    loop {
        if let Ok(done) = tokio::time::timeout(SEND_REPOLL, std::future::poll_fn(&mut poll)).await {
            return done;
        }
    }
}

/// Sends one datagram through `t`.
pub(crate) async fn send_to(
    t: &dyn Transport,
    buf: &[u8],
    target: SocketAddr,
) -> io::Result<usize> {
    until_sent(|cx| t.poll_send_to(cx, buf, target)).await
}

/// Sends back-to-back datagrams of `segment` bytes (the last may be
/// shorter) through `t`, in as few calls as it takes.
pub(crate) async fn send_segments(
    t: &dyn Transport,
    mut contents: &[u8],
    segment: usize,
    target: SocketAddr,
) -> io::Result<()> {
    while !contents.is_empty() {
        let n = until_sent(|cx| t.poll_send_segments(cx, contents, segment, target)).await?;
        // A transport claiming nothing went would loop forever.
        contents = &contents[n.clamp(1, contents.len())..];
    }
    Ok(())
}

/// Receives one datagram from `t`; returns its length and sender.
pub(crate) async fn recv_from(
    t: &dyn Transport,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    std::future::poll_fn(|cx| {
        let mut rb = ReadBuf::new(buf);
        t.poll_recv_from(cx, &mut rb)
            .map_ok(|addr| (rb.filled().len(), addr))
    })
    .await
}

/// Receives a batch from `t` into `bufs`; returns how many were filled.
pub(crate) async fn recv_many(
    t: &dyn Transport,
    bufs: &mut [Vec<u8>],
    meta: &mut [Received],
) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_recv_many(t, cx, bufs, meta)).await
}

/// One `poll_recv_many` over owned buffers.
pub(crate) fn poll_recv_many(
    t: &dyn Transport,
    cx: &mut Context<'_>,
    bufs: &mut [Vec<u8>],
    meta: &mut [Received],
) -> Poll<io::Result<usize>> {
    // On the stack: this runs for every receive, and must not allocate.
    let mut slices: [IoSliceMut<'_>; MAX_RECV_BATCH] =
        std::array::from_fn(|_| IoSliceMut::new(&mut []));
    let n = bufs.len().min(MAX_RECV_BATCH).min(meta.len());
    for (s, b) in slices.iter_mut().zip(bufs.iter_mut()) {
        *s = IoSliceMut::new(b);
    }
    t.poll_recv_many(cx, &mut slices[..n], &mut meta[..n])
}

/// The most buffers one `poll_recv_many` over owned buffers fills (the
/// listener's batch).
pub(crate) const MAX_RECV_BATCH: usize = 32;
