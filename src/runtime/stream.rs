//! `KcpStream`: one KCP connection as an async byte stream or message pipe.

use std::future::poll_fn;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::config::KcpConfig;
use super::cookie;
use super::driver::{Driver, Source};
use super::error::KcpError;
use super::shared::Shared;
use super::stats::ConnectionStats;
use super::transport::Transport;
use super::udp;

/// Tells the connection task when the last handle is gone, so that it can
/// deliver what was written and then stop.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().handles_gone = true;
        self.shared.task.notify_one();
    }
}

/// One KCP connection.
///
/// * [`AsyncRead`]/[`AsyncWrite`]: in stream mode a byte stream; in message
///   mode every `write` is one message and a `read` returns (part of) one.
/// * [`send`](KcpStream::send)/[`recv`](KcpStream::recv): whole messages.
/// * `flush` resolves once the peer acknowledged everything written.
/// * [`close`](KcpStream::close) (or `AsyncWriteExt::shutdown`) ends this
///   side's stream: further writes fail, and once everything written is
///   acknowledged an end-of-stream signal tells the peer, whose `read`
///   then returns `Ok(0)` (and `recv` a [`ConnectionError::EndOfStream`](super::ConnectionError::EndOfStream)
///   error) after the last byte. Dropping the stream does the same in the background. Reading
///   goes on after `close` until the peer ends its side. KCP itself has no
///   such signal: a raw KCP peer (C `ikcp`, kcp-go, tokio_kcp) drops it and
///   sees only silence (see
///   [`KcpConfig::end_of_stream`](super::KcpConfig#structfield.end_of_stream)).
/// * When the peer is gone (silent for the dead-peer time while data is
///   unacknowledged, dead link, idle timeout, no answer within the connect
///   timeout) every call fails with the [`KcpError`] that says which
///   ([`KcpError::Timeout`], [`KcpError::Connection`]); through
///   `AsyncRead`/`AsyncWrite` as an [`io::Error`] of kind `TimedOut` or
///   `ConnectionAborted` carrying it (`KcpError::from(io_err)` recovers it).
///
/// A task spawned on the current tokio runtime owns the protocol engine;
/// dropping every handle lets it deliver queued data (for a bounded time)
/// and stop.
#[derive(Debug)]
pub struct KcpStream {
    handle: Arc<Handle>,
}

/// A random non-zero conversation id.
pub(crate) fn random_conv() -> u32 {
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        let v = h.finish();
        let conv = (v ^ (v >> 32)) as u32;
        if conv != 0 {
            return conv;
        }
    }
}

impl KcpStream {
    /// Opens a connection to `addr` over a new UDP socket with a random
    /// conversation id. KCP has no handshake: this returns at once, and the
    /// peer learns of the connection from the first data written.
    ///
    /// Fails with [`KcpError::Config`] if `config` is invalid.
    pub async fn connect(addr: SocketAddr, config: KcpConfig) -> Result<KcpStream, KcpError> {
        KcpStream::connect_with_conv(addr, random_conv(), config).await
    }

    /// Like [`connect`](KcpStream::connect) with a chosen conversation id.
    /// With `conv == 0` the server assigns the id in its first answer (the
    /// `tokio_kcp` convention, also understood by [`KcpListener`](super::KcpListener));
    /// until then only the first segment is sent.
    pub async fn connect_with_conv(
        addr: SocketAddr,
        conv: u32,
        config: KcpConfig,
    ) -> Result<KcpStream, KcpError> {
        config.validate()?;
        // Loopback peers get a loopback socket: nothing listens on other interfaces.
        let local_ip = match (addr.ip().is_loopback(), addr) {
            (true, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            (true, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            (false, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (false, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let (socket, _) = udp::bind(SocketAddr::new(local_ip, 0), &config)?;
        let transport: Arc<dyn Transport> = Arc::new(socket);
        if !config.handshake_cookie {
            return KcpStream::connect_with_transport(transport, addr, conv, config);
        }
        let cookie = cookie::handshake(&*transport, addr, config.connect_timeout).await?;
        let mut config = config;
        config.mtu -= cookie::PREFIX_LEN;
        config.handshake_cookie = false;
        let transport = Arc::new(cookie::CookieTransport::new(transport, cookie));
        KcpStream::connect_with_transport(transport, addr, conv, config)
    }

    /// Opens a connection over your own transport, which this connection
    /// then receives from exclusively. Must be called within a tokio runtime.
    pub fn connect_with_transport(
        transport: Arc<dyn Transport>,
        addr: SocketAddr,
        conv: u32,
        config: KcpConfig,
    ) -> Result<KcpStream, KcpError> {
        config.validate()?;
        if config.handshake_cookie {
            return Err(KcpError::config(
                "handshake_cookie",
                "needs KcpStream::connect or connect_with_conv, which wait for the cookie",
            ));
        }
        let local = transport.local_addr()?;
        tracing::debug!(peer = %addr, %local, conv, "connecting");
        let shared = Arc::new(Shared::new(conv, addr, local, &config));
        shared.lock().stats.socket_buffers = transport.socket_buffers();
        let driver = Driver::new(
            conv,
            config,
            shared.clone(),
            transport,
            addr,
            Source::Own,
            None,
        );
        tokio::spawn(driver.run());
        Ok(KcpStream::from_shared(shared))
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> KcpStream {
        KcpStream {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Sends one message (message mode) or a chunk of the stream (stream
    /// mode), waiting for buffer space. Fails with [`KcpError::Buffer`] if a
    /// message exceeds [`KcpConfig::max_message_size`].
    pub async fn send(&mut self, data: &[u8]) -> Result<(), KcpError> {
        send_all(self.shared(), data).await
    }

    /// Receives the next message (message mode) or the next received chunk
    /// (stream mode). Once the peer ended its stream and everything before
    /// was received, fails with [`ConnectionError::EndOfStream`](super::ConnectionError::EndOfStream)
    /// (where `read` returns `Ok(0)`), so `while let Ok(m) = s.recv().await`
    /// ends; writing may still work. In message mode an empty message is
    /// sent and received as one (as `ikcp_send`/`ikcp_recv` do); in stream
    /// mode there is none.
    pub async fn recv(&mut self) -> Result<Bytes, KcpError> {
        poll_fn(|cx| self.shared().poll_recv(cx)).await
    }

    /// Ends this side's stream, gracefully: refuses further writes, waits
    /// until the peer acknowledged everything written, then sends the
    /// end-of-stream signal (a peer running this library reads `Ok(0)`
    /// after the last byte). Reads still work until the peer closes too.
    ///
    /// Fails with the connection's [`KcpError`] if it ends first (dead peer,
    /// timeouts): then not everything written was delivered. The same as
    /// `AsyncWriteExt::shutdown`, with a `KcpError`.
    pub async fn close(&mut self) -> Result<(), KcpError> {
        poll_fn(|cx| self.shared().poll_shutdown(cx)).await
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared().peer
    }

    /// The local address datagrams leave from.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared().local
    }

    /// The conversation id (0 while a server has yet to assign one).
    pub fn conv(&self) -> u32 {
        self.shared().lock().conv
    }

    /// Counters and protocol state: the protocol figures as of the connection
    /// task's last event, the buffer figures as of now.
    pub fn stats(&self) -> ConnectionStats {
        self.shared().stats()
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<KcpError> {
        self.shared().lock().closed.clone()
    }

    /// Borrowed read and write halves, usable concurrently.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (
            ReadHalf {
                shared: self.shared(),
            },
            WriteHalf {
                shared: self.shared(),
            },
        )
    }

    /// Owned read and write halves; the connection lives until both drop.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                handle: self.handle.clone(),
            },
            OwnedWriteHalf {
                handle: self.handle,
            },
        )
    }
}

async fn send_all(shared: &Shared, mut data: &[u8]) -> Result<(), KcpError> {
    if !shared.stream_mode {
        poll_fn(|cx| shared.poll_send_message(cx, data)).await?;
        return Ok(());
    }
    while !data.is_empty() {
        let n = poll_fn(|cx| shared.poll_write(cx, data)).await?;
        data = &data[n..];
    }
    Ok(())
}

impl AsyncRead for KcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.handle
            .shared
            .poll_read(cx, buf)
            .map_err(io::Error::from)
    }
}

/// Borrowed read half of a [`KcpStream`].
#[derive(Debug)]
pub struct ReadHalf<'a> {
    shared: &'a Shared,
}

/// Borrowed write half of a [`KcpStream`].
#[derive(Debug)]
pub struct WriteHalf<'a> {
    shared: &'a Shared,
}

/// Owned read half of a [`KcpStream`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    handle: Arc<Handle>,
}

/// Owned write half of a [`KcpStream`].
#[derive(Debug)]
pub struct OwnedWriteHalf {
    handle: Arc<Handle>,
}

impl AsyncRead for ReadHalf<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.shared.poll_read(cx, buf).map_err(io::Error::from)
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.handle
            .shared
            .poll_read(cx, buf)
            .map_err(io::Error::from)
    }
}

macro_rules! write_half {
    ($ty:ty, |$s:ident| $get:expr) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                if buf.is_empty() {
                    return Poll::Ready(Ok(0));
                }
                let $s = &*self;
                $get.poll_write(cx, buf).map_err(io::Error::from)
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = &*self;
                $get.poll_flush(cx).map_err(io::Error::from)
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = &*self;
                $get.poll_shutdown(cx).map_err(io::Error::from)
            }
        }
    };
}

write_half!(KcpStream, |s| s.handle.shared);
write_half!(WriteHalf<'_>, |s| s.shared);
write_half!(OwnedWriteHalf, |s| s.handle.shared);

impl OwnedReadHalf {
    /// See [`KcpStream::stats`].
    pub fn stats(&self) -> ConnectionStats {
        self.handle.shared.stats()
    }

    /// Receives the next message (see [`KcpStream::recv`]).
    pub async fn recv(&mut self) -> Result<Bytes, KcpError> {
        poll_fn(|cx| self.handle.shared.poll_recv(cx)).await
    }
}

impl OwnedWriteHalf {
    /// See [`KcpStream::stats`].
    pub fn stats(&self) -> ConnectionStats {
        self.handle.shared.stats()
    }

    /// Sends one message (see [`KcpStream::send`]).
    pub async fn send(&mut self, data: &[u8]) -> Result<(), KcpError> {
        send_all(&self.handle.shared, data).await
    }

    /// Ends this side's stream (see [`KcpStream::close`]).
    pub async fn close(&mut self) -> Result<(), KcpError> {
        poll_fn(|cx| self.handle.shared.poll_shutdown(cx)).await
    }
}
