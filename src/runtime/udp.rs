//! The UDP sockets the listener and the client create: kernel buffer sizes
//! from [`KcpConfig`], what the kernel actually granted, and batched I/O.
//!
//! With the OS default (about 208 KiB on Linux) a burst of a 1024-segment
//! window (1.4 MB) overflows the receive buffer, and every dropped datagram
//! costs a retransmission; KCP deployments (kcp-go, kcptun) set 4 MiB.
//!
//! One system call per datagram is most of the cost of a bulk transfer, so
//! where the OS offers it (Linux) datagrams move in batches, with the
//! `quinn-udp` crate: `recvmmsg` and GRO on receive, GSO on send (one
//! `sendmsg` for a run of equal-sized datagrams to one peer). The datagrams
//! on the wire are the same; peers without GRO get them one by one.
//! Elsewhere, or if the kernel refuses an offload, one datagram per call.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::task::{ready, Context, Poll};
#[cfg(test)]
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::{Interest, ReadBuf};
use tokio::net::UdpSocket;
use tracing::debug;

use super::config::KcpConfig;
use super::transport::{Received, Transport};

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

/// Largest UDP payload: a GSO send carries at most this much in total.
pub(super) const MAX_UDP_PAYLOAD: usize = 65_507;

/// A UDP socket of our own, with batched I/O where the OS has it.
#[derive(Debug)]
pub(crate) struct UdpTransport {
    io: UdpSocket,
    /// `None` where `quinn-udp` could not set the socket up: plain calls.
    batch: Option<quinn_udp::UdpSocketState>,
}

impl UdpTransport {
    /// Datagrams one GSO send may carry (1: no GSO).
    fn max_segments(&self) -> usize {
        self.batch
            .as_ref()
            .map_or(1, quinn_udp::UdpSocketState::max_gso_segments)
    }
}

/// A non-blocking UDP socket bound to `addr`, with the kernel buffers
/// `config` asks for. Must be called within a tokio runtime.
pub(crate) fn bind(
    addr: SocketAddr,
    config: &KcpConfig,
) -> io::Result<(UdpTransport, SocketBuffers)> {
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
    let io = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
    let batch = batched(&io);
    let granted = SocketBuffers::of(&io)?;
    let transport = UdpTransport { io, batch };
    debug!(
        local = %transport.io.local_addr()?,
        requested_send = config.socket_send_buffer,
        requested_recv = config.socket_recv_buffer,
        granted_send = granted.send,
        granted_recv = granted.recv,
        gso_segments = transport.max_segments(),
        gro_segments = transport.batch.as_ref().map_or(1, |b| b.gro_segments()),
        "UDP socket"
    );
    Ok((transport, granted))
}

/// Sets `io` up for batched I/O, keeping its fragmentation policy.
fn batched(io: &UdpSocket) -> Option<quinn_udp::UdpSocketState> {
    // quinn-udp forbids IP fragmentation (QUIC needs that); KCP users keep
    // the OS default, so a datagram above the path MTU is fragmented, not
    // dropped, as before.
    let policy = pmtu::get(io);
    let state = match quinn_udp::UdpSocketState::new(io.into()) {
        Ok(state) => state,
        Err(e) => {
            debug!(error = %e, "batched UDP I/O unavailable; one datagram per call");
            return None;
        }
    };
    if let Some(policy) = policy {
        pmtu::set(io, policy);
    }
    Some(state)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod pmtu {
    //! `IP_MTU_DISCOVER` / `IPV6_MTU_DISCOVER`, which socket2 does not expose.
    use std::os::fd::AsRawFd;

    use tokio::net::UdpSocket;

    fn level_and_name(io: &UdpSocket) -> Option<(libc::c_int, libc::c_int)> {
        match io.local_addr().ok()? {
            std::net::SocketAddr::V4(_) => Some((libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)),
            std::net::SocketAddr::V6(_) => Some((libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)),
        }
    }

    /// Both options, for a dual-stack socket's IPv4 side too.
    fn options(io: &UdpSocket) -> Vec<(libc::c_int, libc::c_int)> {
        let mut v: Vec<_> = level_and_name(io).into_iter().collect();
        if v.first().is_some_and(|&(l, _)| l == libc::IPPROTO_IPV6) {
            v.push((libc::IPPROTO_IP, libc::IP_MTU_DISCOVER));
        }
        v
    }

    pub(super) fn get(io: &UdpSocket) -> Option<Vec<(libc::c_int, libc::c_int, libc::c_int)>> {
        let mut out = Vec::new();
        for (level, name) in options(io) {
            let mut value: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: the fd is an open socket owned by `io`; `value` and
            // `len` are valid for writes and sized for the c_int the option is.
            let rc = unsafe {
                libc::getsockopt(
                    io.as_raw_fd(),
                    level,
                    name,
                    (&mut value as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            if rc == 0 {
                out.push((level, name, value));
            }
        }
        Some(out)
    }

    pub(super) fn set(io: &UdpSocket, saved: Vec<(libc::c_int, libc::c_int, libc::c_int)>) {
        for (level, name, value) in saved {
            // SAFETY: as in `get`; the kernel only reads the c_int.
            unsafe {
                libc::setsockopt(
                    io.as_raw_fd(),
                    level,
                    name,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod pmtu {
    //! quinn-udp changes no fragmentation policy here that we restore.
    use tokio::net::UdpSocket;

    pub(super) fn get(_: &UdpSocket) -> Option<()> {
        None
    }

    pub(super) fn set(_: &UdpSocket, _: ()) {}
}

impl Transport for UdpTransport {
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io.poll_send_to(cx, buf, target)
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        // GRO may hand over several datagrams at once: receive a batch of
        // one and keep its first datagram. The crate's own receive paths
        // use `poll_recv_many`, which keeps them all.
        let mut meta = [Received::default()];
        let mut slice = [IoSliceMut::new(buf.initialize_unfilled())];
        let n = ready!(self.poll_recv_many(cx, &mut slice, &mut meta))?;
        debug_assert_eq!(n, 1);
        let len = meta[0].len.min(meta[0].stride.max(1));
        buf.advance(len);
        Poll::Ready(Ok(meta[0].addr))
    }

    fn poll_send_segments(
        &self,
        cx: &mut Context<'_>,
        contents: &[u8],
        segment: usize,
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let segment = segment.max(1);
        let max = self.max_segments().min(MAX_UDP_PAYLOAD / segment).max(1);
        let len = contents.len().min(segment * max);
        let Some(state) = self.batch.as_ref().filter(|_| len > segment) else {
            let one = contents.len().min(segment);
            return self.io.poll_send_to(cx, &contents[..one], target);
        };
        let transmit = quinn_udp::Transmit {
            destination: target,
            ecn: None,
            contents: &contents[..len],
            segment_size: Some(segment),
            src_ip: None,
        };
        loop {
            ready!(self.io.poll_send_ready(cx))?;
            match self.io.try_io(Interest::WRITABLE, || {
                state.try_send((&self.io).into(), &transmit)
            }) {
                Ok(()) => return Poll::Ready(Ok(len)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                // The kernel refused the offload (quinn-udp then stops
                // using it): this datagram goes alone, the rest next call.
                Err(e) if self.max_segments() == 1 => {
                    debug!(error = %e, "UDP segmentation offload refused; sending datagrams one by one");
                    let one = contents.len().min(segment);
                    return self.io.poll_send_to(cx, &contents[..one], target);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_recv_many(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> Poll<io::Result<usize>> {
        let Some(state) = &self.batch else {
            return super::transport::recv_one(self, cx, bufs, meta);
        };
        let mut quinn_meta = [quinn_udp::RecvMeta::default(); quinn_udp::BATCH_SIZE];
        let count = bufs.len().min(meta.len()).min(quinn_meta.len());
        if count == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            let got = self.io.try_io(Interest::READABLE, || {
                state.recv(
                    (&self.io).into(),
                    &mut bufs[..count],
                    &mut quinn_meta[..count],
                )
            });
            match got {
                Ok(n) => {
                    for (m, q) in meta.iter_mut().zip(&quinn_meta[..n]) {
                        *m = Received {
                            addr: q.addr,
                            len: q.len,
                            stride: q.stride,
                        };
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn socket_buffers(&self) -> Option<SocketBuffers> {
        SocketBuffers::of(&self.io).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::transport;

    fn datagram(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|k| (i * 7 + k) as u8).collect()
    }

    /// A run of equal-sized datagrams and a shorter last one, back to back.
    fn run(count: usize, segment: usize, last: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut each: Vec<Vec<u8>> = (0..count).map(|i| datagram(i, segment)).collect();
        each.push(datagram(count, last));
        (each.concat(), each)
    }

    #[tokio::test]
    async fn a_run_arrives_as_the_same_datagrams_at_batched_and_plain_sockets() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let config = KcpConfig::default();
        let (sender, _) = bind(any, &config).unwrap();
        let (batched, _) = bind(any, &config).unwrap();
        let plain = UdpSocket::bind(any).await.unwrap();
        let (contents, want) = run(40, 1400, 300);

        for target in [batched.local_addr().unwrap(), plain.local_addr().unwrap()] {
            tokio::time::timeout(
                Duration::from_secs(5),
                transport::send_segments(&sender, &contents, 1400, target),
            )
            .await
            .unwrap()
            .unwrap();
        }

        // The plain socket (no GRO, like C ikcp or kcp-go) sees every
        // datagram on its own, with its own boundaries.
        let mut buf = vec![0u8; 65_536];
        for w in &want {
            let (n, from) = plain.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, sender.local_addr().unwrap());
            assert_eq!(&buf[..n], &w[..]);
        }

        // The batched socket may get them coalesced; split by stride, they
        // are the same datagrams.
        let mut bufs = vec![vec![0u8; 65_536]; 4];
        let mut meta = vec![Received::default(); 4];
        let mut got: Vec<Vec<u8>> = Vec::new();
        while got.len() < want.len() {
            let n = tokio::time::timeout(
                Duration::from_secs(5),
                transport::recv_many(&batched, &mut bufs, &mut meta),
            )
            .await
            .unwrap()
            .unwrap();
            for (b, m) in bufs.iter().zip(&meta[..n]) {
                assert_eq!(m.addr, sender.local_addr().unwrap());
                got.extend(m.datagrams(b).map(<[u8]>::to_vec));
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn received_splits_by_stride() {
        let buf: Vec<u8> = (0..10).collect();
        let m = Received {
            addr: "127.0.0.1:1".parse().unwrap(),
            len: 10,
            stride: 4,
        };
        let parts: Vec<&[u8]> = m.datagrams(&buf).collect();
        assert_eq!(parts, vec![&buf[..4], &buf[4..8], &buf[8..10]]);
        let single = Received { stride: 10, ..m };
        assert_eq!(single.datagrams(&buf).count(), 1);
    }
}
