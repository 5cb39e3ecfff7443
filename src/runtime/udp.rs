//! The UDP sockets the listener and the client create: kernel buffer sizes
//! from [`KcpConfig`], and what the kernel actually granted.
//!
//! With the OS default (about 208 KiB on Linux) a burst of a 1024-segment
//! window (1.4 MB) overflows the receive buffer, and every dropped datagram
//! costs a retransmission; KCP deployments (kcp-go, kcptun) set 4 MiB.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::UdpSocket;
use tracing::debug;

use super::config::KcpConfig;

/// Kernel buffer sizes of a UDP socket as the OS reports them
/// (`getsockopt(SO_SNDBUF / SO_RCVBUF)`).
///
/// Linux reports twice the size it accounts for payload (the other half is
/// its bookkeeping allowance), and grants at most `net.core.wmem_max` /
/// `net.core.rmem_max` to an unprivileged request; so a 4 MiB request reads
/// back as 8 MiB when the limit allows it, and as twice the limit when not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketBuffers {
    /// `SO_SNDBUF` as read back.
    pub send: usize,
    /// `SO_RCVBUF` as read back.
    pub recv: usize,
}

impl SocketBuffers {
    /// What `socket` has now.
    pub(crate) fn of(socket: &UdpSocket) -> io::Result<SocketBuffers> {
        let s = SockRef::from(socket);
        Ok(SocketBuffers {
            send: s.send_buffer_size()?,
            recv: s.recv_buffer_size()?,
        })
    }
}

/// A non-blocking UDP socket bound to `addr`, with the kernel buffers
/// `config` asks for. Must be called within a tokio runtime.
pub(crate) fn bind(addr: SocketAddr, config: &KcpConfig) -> io::Result<(UdpSocket, SocketBuffers)> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    // Sizes above the OS limit are capped, not refused; only a broken
    // socket fails here, so the error is worth returning.
    if let Some(bytes) = config.socket_send_buffer {
        socket.set_send_buffer_size(bytes)?;
    }
    if let Some(bytes) = config.socket_recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(&addr.into())?;
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
    let granted = SocketBuffers::of(&socket)?;
    debug!(
        local = %socket.local_addr()?,
        requested_send = config.socket_send_buffer,
        requested_recv = config.socket_recv_buffer,
        granted_send = granted.send,
        granted_recv = granted.recv,
        "UDP socket buffers"
    );
    Ok((socket, granted))
}
