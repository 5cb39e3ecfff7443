//! The optional anti-spoofing handshake ([`KcpConfig::handshake_cookie`]),
//! in the manner of kcp2k's cookie: before a listener opens a connection,
//! the sender proves it receives what is sent to its address.
//!
//! 1. The client sends `HELLO` (13 bytes: magic, kind, 8 zero bytes).
//! 2. The listener answers `CHALLENGE` with a cookie: a keyed hash
//!    (SipHash with the listener's random keys) of the client's address and
//!    the current 30 s epoch. It keeps nothing: an opening from an address
//!    that has not echoed a cookie costs nothing in the table.
//! 3. The client prefixes every datagram with `COOKIED` and the cookie (13
//!    bytes, taken from its MTU). The listener opens a connection only for
//!    a cookie of the sender's address from this epoch or the previous
//!    one, and strips the prefix from every datagram.
//!
//! None of the three is a KCP datagram (their fifth byte is no KCP
//! command), so a listener without the option counts them as malformed.
//! The answer is never larger than the question, so a forged `HELLO`
//! cannot make the listener an amplifier.
//!
//! [`KcpConfig::handshake_cookie`]: super::KcpConfig#structfield.handshake_cookie

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::ReadBuf;
use tokio::time::Instant;

use super::error::{KcpError, Timeout};
use super::transport::{self, Transport};
use super::udp::SocketBuffers;

const MAGIC: [u8; 4] = *b"KCPc";
const HELLO: u8 = 0xC1;
const CHALLENGE: u8 = 0xC2;
const COOKIED: u8 = 0xC3;
/// Length of each handshake message, and of the prefix on every datagram.
pub(crate) const PREFIX_LEN: usize = 13;
/// How long a cookie opens connections: its epoch and the next one.
const EPOCH: Duration = Duration::from_secs(30);
/// The client's first wait for a challenge; doubled up to 1 s per retry.
const FIRST_RETRY: Duration = Duration::from_millis(200);

/// What a datagram is, for a listener with the option on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    Hello,
    Challenge(u64),
    /// A datagram carrying a cookie, and what follows it.
    Cookied(u64, &'a [u8]),
    /// Anything else (a raw KCP datagram, garbage).
    Other,
}

pub(crate) fn parse(d: &[u8]) -> Message<'_> {
    if d.len() < PREFIX_LEN || d[..4] != MAGIC {
        return Message::Other;
    }
    let cookie = u64::from_le_bytes(d[5..PREFIX_LEN].try_into().expect("8 bytes"));
    match d[4] {
        HELLO => Message::Hello,
        CHALLENGE => Message::Challenge(cookie),
        COOKIED => Message::Cookied(cookie, &d[PREFIX_LEN..]),
        _ => Message::Other,
    }
}

fn message(kind: u8, cookie: u64) -> [u8; PREFIX_LEN] {
    let mut m = [0u8; PREFIX_LEN];
    m[..4].copy_from_slice(&MAGIC);
    m[4] = kind;
    m[5..].copy_from_slice(&cookie.to_le_bytes());
    m
}

/// The listener's side: mints and checks cookies, statelessly.
#[derive(Debug)]
pub(crate) struct Minter {
    keys: RandomState,
    start: Instant,
}

impl Minter {
    pub(crate) fn new(now: Instant) -> Self {
        Minter {
            keys: RandomState::new(),
            start: now,
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.start).as_secs() / EPOCH.as_secs()) + 1
    }

    fn cookie_at(&self, peer: SocketAddr, epoch: u64) -> u64 {
        self.keys.hash_one((epoch, peer))
    }

    /// The `CHALLENGE` answering a `HELLO` from `peer`.
    pub(crate) fn challenge(&self, peer: SocketAddr, now: Instant) -> [u8; PREFIX_LEN] {
        message(CHALLENGE, self.cookie_at(peer, self.epoch(now)))
    }

    /// Whether `cookie` was minted for `peer` in this epoch or the last.
    pub(crate) fn valid(&self, peer: SocketAddr, cookie: u64, now: Instant) -> bool {
        let e = self.epoch(now);
        cookie == self.cookie_at(peer, e) || cookie == self.cookie_at(peer, e - 1)
    }
}

/// The client's side: asks `server` for a cookie through `t`, retrying with
/// back-off until `timeout`; other datagrams meanwhile are dropped.
pub(crate) async fn handshake(
    t: &dyn Transport,
    server: SocketAddr,
    timeout: Duration,
) -> Result<u64, KcpError> {
    let deadline = Instant::now() + timeout;
    let hello = message(HELLO, 0);
    let mut wait = FIRST_RETRY;
    let mut buf = [0u8; 64];
    loop {
        transport::send_to(t, &hello, server).await?;
        let retry_at = (Instant::now() + wait).min(deadline);
        loop {
            let got = tokio::time::timeout_at(retry_at, transport::recv_from(t, &mut buf)).await;
            match got {
                Err(_) => break,
                Ok(Ok((n, from))) if from == server => {
                    if let Message::Challenge(c) = parse(&buf[..n]) {
                        return Ok(c);
                    }
                }
                // Strangers, and errors such as ICMP unreachable (the
                // server may not be up yet): keep asking until the deadline.
                Ok(_) => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(KcpError::Timeout {
                timeout: Timeout::Connect,
                peer: server,
                after: timeout,
            });
        }
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}

/// A client's transport after the handshake: every datagram it sends
/// carries the cookie.
#[derive(Debug)]
pub(crate) struct CookieTransport {
    inner: Arc<dyn Transport>,
    prefix: [u8; PREFIX_LEN],
}

impl CookieTransport {
    pub(crate) fn new(inner: Arc<dyn Transport>, cookie: u64) -> Self {
        CookieTransport {
            inner,
            prefix: message(COOKIED, cookie),
        }
    }
}

impl Transport for CookieTransport {
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let mut d = Vec::with_capacity(PREFIX_LEN + buf.len());
        d.extend_from_slice(&self.prefix);
        d.extend_from_slice(buf);
        self.inner
            .poll_send_to(cx, &d, target)
            .map_ok(|n| n.saturating_sub(PREFIX_LEN))
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        self.inner.poll_recv_from(cx, buf)
    }

    // Batches as the inner transport takes them: a GRO train must not be
    // read one datagram at a time.
    fn poll_recv_many(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [super::transport::Received],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv_many(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn socket_buffers(&self) -> Option<SocketBuffers> {
        self.inner.socket_buffers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_back_and_are_not_kcp() {
        let m = message(CHALLENGE, 0x1122_3344_5566_7788);
        assert_eq!(parse(&m), Message::Challenge(0x1122_3344_5566_7788));
        assert_eq!(parse(&message(HELLO, 0)), Message::Hello);
        let mut d = message(COOKIED, 9).to_vec();
        d.extend_from_slice(b"kcp");
        assert_eq!(parse(&d), Message::Cookied(9, b"kcp"));
        assert_eq!(parse(&m[..12]), Message::Other, "too short");
        assert_eq!(
            parse(b"\x01\x00\x00\x00\x51rest-of-a-kcp-datagram"),
            Message::Other
        );
        for kind in [HELLO, CHALLENGE, COOKIED] {
            assert!(crate::engine::Command::from_byte(kind).is_none());
        }
    }

    #[test]
    fn a_cookie_is_bound_to_its_address_and_expires() {
        let t0 = Instant::now();
        let m = Minter::new(t0);
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:5001".parse().unwrap();
        let Message::Challenge(c) = parse(&m.challenge(a, t0)) else {
            panic!("a challenge");
        };
        assert!(m.valid(a, c, t0));
        assert!(!m.valid(b, c, t0), "another port");
        assert!(!m.valid(a, c ^ 1, t0));
        assert!(m.valid(a, c, t0 + EPOCH), "the next epoch still accepts it");
        assert!(
            !m.valid(a, c, t0 + 2 * EPOCH),
            "two epochs later it is stale"
        );
        let other = Minter::new(t0);
        assert!(!other.valid(a, c, t0), "another listener's keys");
    }
}
