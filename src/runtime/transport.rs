//! Where datagrams go: UDP by default, or any [`Transport`] you plug in.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;

use super::udp::SocketBuffers;

/// An unreliable datagram carrier, shaped like an unconnected UDP socket.
///
/// One task receives from a transport (the listener, or a client
/// connection's driver); any number of tasks may send through it.
/// Implement it to run KCP over something other than UDP; see
/// [`MemoryNetwork`](super::MemoryNetwork) for an example.
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

/// Sends one datagram through `t`.
pub(crate) async fn send_to(
    t: &dyn Transport,
    buf: &[u8],
    target: SocketAddr,
) -> io::Result<usize> {
    std::future::poll_fn(|cx| t.poll_send_to(cx, buf, target)).await
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
