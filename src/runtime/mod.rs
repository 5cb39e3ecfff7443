//! The async layer over tokio (feature `tokio`): [`KcpStream`],
//! [`KcpListener`] and [`KcpConfig`], on the sans-IO [`engine`](crate::engine).
//!
//! Each connection is one tokio task that owns its engine; handles exchange
//! byte queues with it, so no lock is held while the protocol runs. The task
//! sleeps until the engine's `check()` deadline while data is in flight, and
//! otherwise only for keep-alives and timeouts.
//!
//! KCP has no handshake and no close: a connection exists once the first
//! data segment arrives, and ends when the peer stays silent for the
//! dead-peer time while data waits for its acknowledgement (5 s by default),
//! for the idle timeout otherwise (keep-alive probes keep a live idle peer
//! talking), when a client hears nothing within the connect timeout, when a
//! segment goes unacknowledged `dead_link` times, or when every handle is
//! dropped and what was written has been delivered.
//!
//! # Quick start
//!
//! A server echoing what it receives:
//!
//! ```no_run
//! use kcp::runtime::{KcpConfig, KcpListener};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let listener = KcpListener::bind("127.0.0.1:12345".parse()?, KcpConfig::realtime()).await?;
//!     loop {
//!         let (mut stream, peer) = listener.accept().await?;
//!         tokio::spawn(async move {
//!             let mut buf = vec![0u8; 64 * 1024];
//!             while let Ok(n) = stream.read(&mut buf).await {
//!                 if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
//!                     break;
//!                 }
//!             }
//!             println!("{peer} left");
//!         });
//!     }
//! }
//! ```
//!
//! A client:
//!
//! ```no_run
//! use kcp::runtime::{KcpConfig, KcpStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut stream = KcpStream::connect("127.0.0.1:12345".parse()?, KcpConfig::new().fast_mode()).await?;
//!     stream.write_all(b"hello").await?;
//!     let mut buf = [0u8; 5];
//!     stream.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"hello");
//!     Ok(())
//! }
//! ```
//!
//! Both in one process, on an ephemeral port (this one runs as a test):
//!
//! ```
//! use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kcp::runtime::KcpError> {
//! let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::realtime()).await?;
//! let mut client = KcpStream::connect(listener.local_addr(), KcpConfig::new().fast_mode()).await?;
//! client.send(b"ping").await?;
//! let (mut server, _) = listener.accept().await?;
//! let msg = server.recv().await?;
//! server.send(&msg).await?;
//! assert_eq!(&client.recv().await?[..], b"ping");
//! # Ok(())
//! # }
//! ```

mod admission;
mod chunks;
mod config;
mod congestion;
mod cookie;
mod driver;
mod end_of_stream;
mod error;
mod inflight;
mod input_guard;
mod listener;
mod memory;
#[cfg(feature = "metrics")]
pub mod metrics;
mod observe;
mod outbox;
pub mod presets;
mod rng;
mod routed;
mod routing;
mod shared;
mod stats;
mod stream;
mod transport;
mod udp;

pub use config::KcpConfig;
pub use congestion::ControllerFactory;
pub use error::{ConnectionError, KcpError, Result, Timeout};
pub use listener::{KcpListener, ListenerLimits};
pub use memory::{LinkConditions, MemoryNetwork, MemoryNetworkStats, MemoryTransport};
pub use stats::{ConnectionStats, ListenerStats};
pub use stream::{KcpStream, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
pub use transport::{Received, Transport};
pub use udp::SocketBuffers;

/// The listener's routing table and admission policy without I/O, for the
/// `routing` fuzz target (feature `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use super::admission::{Key, Verdict};
    pub use super::routing::{opens_connection, well_formed, Room, Route, Table};
}
