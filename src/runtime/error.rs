//! [`KcpError`]: what can go wrong on a KCP connection, and how it maps onto
//! [`io::Error`].
//!
//! The message API ([`KcpStream::send`](super::KcpStream::send) /
//! [`recv`](super::KcpStream::recv)), the constructors and
//! [`KcpConfig::validate`](super::KcpConfig::validate) return [`KcpError`];
//! `AsyncRead`/`AsyncWrite` must return [`io::Error`], and carry the
//! `KcpError` inside it. Both directions are lossless:
//!
//! ```
//! use std::io;
//! use kcp::runtime::{KcpConfig, KcpError};
//!
//! let err = KcpConfig::new().mtu(20).validate().unwrap_err();
//! assert!(matches!(err, KcpError::Config { field: "mtu", .. }));
//! assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
//!
//! // Through io::Error (as AsyncRead/AsyncWrite report it) and back.
//! let io_err = io::Error::from(err);
//! assert_eq!(io_err.kind(), io::ErrorKind::InvalidInput);
//! let back = KcpError::from(io_err);
//! assert!(matches!(back, KcpError::Config { field: "mtu", .. }));
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// `Result` with [`KcpError`].
pub type Result<T, E = KcpError> = std::result::Result<T, E>;

/// An error of the KCP async layer.
///
/// [`kind`](KcpError::kind) gives the [`io::ErrorKind`] the error has when
/// converted into an [`io::Error`], so code written against TCP-like errors
/// keeps working.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KcpError {
    /// The transport (socket) failed. Kind: the underlying error's.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),

    /// The peer answers, but not in KCP this connection accepts: datagrams
    /// came back within the connect timeout and the engine rejected every
    /// one (wrong conversation, malformed). Kind: `InvalidData`.
    #[error("KCP protocol error from {peer}: {what}")]
    Protocol {
        /// The peer that sent it.
        peer: SocketAddr,
        /// What the peer did.
        what: String,
    },

    /// The connection is over (or never was). Kind: see
    /// [`ConnectionError::kind`].
    #[error("KCP connection with {peer}: {reason}")]
    Connection {
        /// The peer of the connection.
        peer: SocketAddr,
        /// Why it ended.
        reason: ConnectionError,
    },

    /// A [`KcpConfig`](super::KcpConfig) (or listener limit) value that
    /// cannot work. Kind: `InvalidInput`.
    #[error("invalid KCP configuration: `{field}` {reason}")]
    Config {
        /// The field's name, as in the struct.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },

    /// Data that does not fit. Kind: `InvalidInput`.
    #[error("KCP buffer error: message of {len} bytes exceeds the largest KCP message ({max} bytes = 127 segments)")]
    Buffer {
        /// Bytes the caller tried to send as one message.
        len: usize,
        /// The largest message this connection accepts
        /// ([`KcpConfig::max_message_size`](super::KcpConfig::max_message_size)).
        max: usize,
    },

    /// The peer stayed silent too long. Kind: `TimedOut`.
    #[error("KCP peer {peer} timed out: {timeout} after {after:?}")]
    Timeout {
        /// Which timeout fired.
        timeout: Timeout,
        /// The silent peer.
        peer: SocketAddr,
        /// The configured duration that elapsed.
        after: Duration,
    },
}

/// Which of a connection's timeouts fired ([`KcpError::Timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// The peer never answered within
    /// [`KcpConfig::connect_timeout`](super::KcpConfig#structfield.connect_timeout).
    Connect,
    /// Nothing arrived for
    /// [`KcpConfig::idle_timeout`](super::KcpConfig#structfield.idle_timeout).
    Idle,
    /// Nothing arrived for
    /// [`KcpConfig::dead_peer_timeout`](super::KcpConfig#structfield.dead_peer_timeout)
    /// while sent data waited for its acknowledgement.
    DeadPeer,
    /// A listener's connection whose peer had not proved itself yet heard
    /// nothing from it for
    /// [`ListenerLimits::half_open_timeout`](super::ListenerLimits#structfield.half_open_timeout),
    /// and the listener closed it (see [`ListenerLimits`](super::ListenerLimits)).
    HalfOpen,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Timeout::Connect => "no answer within the connect timeout",
            Timeout::Idle => "nothing received (idle timeout)",
            Timeout::DeadPeer => {
                "sent data went unacknowledged and nothing was received (dead-peer timeout)"
            }
            Timeout::HalfOpen => {
                "nothing received before the connection was established (half-open timeout)"
            }
        })
    }
}

/// Why a connection ended ([`KcpError::Connection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// A segment was transmitted `transmissions` times without an
    /// acknowledgement ([`KcpConfig::dead_link`](super::KcpConfig#structfield.dead_link)).
    /// Kind: `ConnectionAborted`.
    DeadLink {
        /// The configured limit that was reached.
        transmissions: u32,
    },
    /// The peer closed the connection. Kind: `ConnectionReset`.
    PeerClosed,
    /// The peer ended its stream and everything it sent was received:
    /// what [`recv`](super::KcpStream::recv) returns where `read` returns
    /// `Ok(0)`. Writing may still work (the peer may only have shut down
    /// its writing side), so [`KcpError::is_fatal`] is false.
    /// Kind: `UnexpectedEof`.
    EndOfStream,
    /// This side closed the connection (or its task finished). Kind: `NotConnected`.
    Closed,
    /// A write after `shutdown`/`close` of this side. Kind: `BrokenPipe`.
    WriteAfterShutdown,
    /// The listener that routed this connection's datagrams is gone.
    /// Kind: `ConnectionAborted`.
    ListenerGone,
    /// The listener closed this connection before its peer proved itself,
    /// to make room for a newer one: it held
    /// [`max_half_open`](super::ListenerLimits#structfield.max_half_open)
    /// half-open connections or
    /// [`max_connections`](super::ListenerLimits#structfield.max_connections)
    /// in all (see [`ListenerLimits`](super::ListenerLimits)).
    /// Kind: `ConnectionAborted`.
    HalfOpenEvicted,
    /// The listener's task stopped; no more connections will be accepted.
    /// Kind: `NotConnected`.
    ListenerStopped,
}

impl ConnectionError {
    /// The [`io::ErrorKind`] of this reason.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            ConnectionError::DeadLink { .. }
            | ConnectionError::ListenerGone
            | ConnectionError::HalfOpenEvicted => io::ErrorKind::ConnectionAborted,
            ConnectionError::PeerClosed => io::ErrorKind::ConnectionReset,
            ConnectionError::EndOfStream => io::ErrorKind::UnexpectedEof,
            ConnectionError::Closed | ConnectionError::ListenerStopped => {
                io::ErrorKind::NotConnected
            }
            ConnectionError::WriteAfterShutdown => io::ErrorKind::BrokenPipe,
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::DeadLink { transmissions } => write!(
                f,
                "peer is gone: a segment was sent {transmissions} times without acknowledgement (dead link)"
            ),
            ConnectionError::PeerClosed => f.write_str("closed by the peer"),
            ConnectionError::EndOfStream => f.write_str("the peer ended its stream"),
            ConnectionError::Closed => f.write_str("connection closed"),
            ConnectionError::WriteAfterShutdown => {
                f.write_str("write after shutdown of this KCP stream")
            }
            ConnectionError::ListenerGone => {
                f.write_str("the KCP listener serving this connection is gone")
            }
            ConnectionError::HalfOpenEvicted => f.write_str(
                "closed by the listener before the peer proved itself, to make room for a newer connection (half-open limit)",
            ),
            ConnectionError::ListenerStopped => f.write_str("the KCP listener task stopped"),
        }
    }
}

impl KcpError {
    /// The [`io::ErrorKind`] this error has as an [`io::Error`].
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            KcpError::Io(e) => e.kind(),
            KcpError::Protocol { .. } => io::ErrorKind::InvalidData,
            KcpError::Connection { reason, .. } => reason.kind(),
            KcpError::Config { .. } | KcpError::Buffer { .. } => io::ErrorKind::InvalidInput,
            KcpError::Timeout { .. } => io::ErrorKind::TimedOut,
        }
    }

    /// A configuration error naming `field`.
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> KcpError {
        KcpError::Config {
            field,
            reason: reason.into(),
        }
    }

    /// Whether the connection this error came from is over for good
    /// (every later call fails the same way).
    pub fn is_fatal(&self) -> bool {
        match self {
            KcpError::Connection {
                reason: ConnectionError::EndOfStream,
                ..
            } => false,
            KcpError::Connection { .. } | KcpError::Timeout { .. } | KcpError::Protocol { .. } => {
                true
            }
            _ => false,
        }
    }
}

/// A copy of the error. `io::Error` is not `Clone`; an [`KcpError::Io`] is
/// copied as its kind and message. Every later call on a closed connection
/// reports its close reason through such a copy.
impl Clone for KcpError {
    fn clone(&self) -> Self {
        match self {
            KcpError::Io(e) => KcpError::Io(io::Error::new(e.kind(), e.to_string())),
            KcpError::Protocol { peer, what } => KcpError::Protocol {
                peer: *peer,
                what: what.clone(),
            },
            KcpError::Connection { peer, reason } => KcpError::Connection {
                peer: *peer,
                reason: reason.clone(),
            },
            KcpError::Config { field, reason } => KcpError::Config {
                field,
                reason: reason.clone(),
            },
            KcpError::Buffer { len, max } => KcpError::Buffer {
                len: *len,
                max: *max,
            },
            KcpError::Timeout {
                timeout,
                peer,
                after,
            } => KcpError::Timeout {
                timeout: *timeout,
                peer: *peer,
                after: *after,
            },
        }
    }
}

/// Unwraps a `KcpError` carried inside the `io::Error` (as `AsyncRead` /
/// `AsyncWrite` return them); any other `io::Error` becomes [`KcpError::Io`].
impl From<io::Error> for KcpError {
    fn from(e: io::Error) -> Self {
        match e.downcast::<KcpError>() {
            Ok(k) => k,
            Err(e) => KcpError::Io(e),
        }
    }
}

/// An [`io::Error`] of kind [`KcpError::kind`] carrying the `KcpError`
/// (an [`KcpError::Io`] is unwrapped instead).
impl From<KcpError> for io::Error {
    fn from(e: KcpError) -> Self {
        match e {
            KcpError::Io(e) => e,
            other => io::Error::new(other.kind(), other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn every_variant_keeps_its_kind_through_io_error() {
        let errors = [
            KcpError::Io(io::Error::new(io::ErrorKind::AddrInUse, "taken")),
            KcpError::Protocol {
                peer: peer(),
                what: "bad".into(),
            },
            KcpError::Connection {
                peer: peer(),
                reason: ConnectionError::DeadLink { transmissions: 20 },
            },
            KcpError::Connection {
                peer: peer(),
                reason: ConnectionError::PeerClosed,
            },
            KcpError::config("mtu", "is 20"),
            KcpError::Buffer { len: 10, max: 5 },
            KcpError::Timeout {
                timeout: Timeout::Idle,
                peer: peer(),
                after: Duration::from_secs(3),
            },
            KcpError::Timeout {
                timeout: Timeout::HalfOpen,
                peer: peer(),
                after: Duration::from_secs(3),
            },
            KcpError::Connection {
                peer: peer(),
                reason: ConnectionError::HalfOpenEvicted,
            },
        ];
        for e in errors {
            let (kind, text) = (e.kind(), e.to_string());
            let io_err = io::Error::from(e.clone());
            assert_eq!(io_err.kind(), kind, "{text}");
            if !matches!(e, KcpError::Io(_)) {
                // An Io error is unwrapped, so it reads as the original.
                assert_eq!(io_err.to_string(), text);
            }
            let back = KcpError::from(io_err);
            assert_eq!(back.kind(), kind);
            assert_eq!(back.to_string(), text);
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&e),
                "{text}"
            );
        }
    }

    #[test]
    fn messages_name_the_cause() {
        let t = KcpError::Timeout {
            timeout: Timeout::Connect,
            peer: peer(),
            after: Duration::from_secs(1),
        };
        assert!(t.to_string().contains("connect timeout"), "{t}");
        let d = KcpError::Connection {
            peer: peer(),
            reason: ConnectionError::DeadLink { transmissions: 7 },
        };
        assert!(d.to_string().contains("7 times"), "{d}");
        assert!(d.to_string().contains("dead link"), "{d}");
        let c = KcpError::config("interval", "0 ms is outside 1..=5000");
        assert!(c.to_string().contains("`interval` 0 ms"), "{c}");
    }
}
