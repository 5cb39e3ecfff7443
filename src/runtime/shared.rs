//! The hand-over point between a connection's handles and its task.
//!
//! The engine itself is owned by the connection task alone. Handles and task
//! exchange only byte queues, wakers and a stats snapshot through this
//! state; each side holds the lock for a queue push or pop, never while the
//! engine works or I/O happens.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use tokio::io::ReadBuf;
use tokio::sync::Notify;

use super::chunks::Chunks;
use super::error::{ConnectionError, KcpError};
use super::stats::ConnectionStats;

/// Room of a buffer written bytes are copied into (many small writes share
/// one; the connection task drops each piece once the engine has it).
const SEND_CHUNK: usize = 64 << 10;

#[derive(Debug)]
pub(crate) struct State {
    // Application -> task.
    pub send_queue: VecDeque<Bytes>,
    pub send_queued: usize,
    /// Where written bytes are copied to before they join `send_queue`.
    pub send_chunks: Chunks,
    pub write_shutdown: bool,
    pub write_waker: Option<Waker>,
    /// A `flush`/`shutdown` waiting for everything to be acknowledged. Kept
    /// apart from `write_waker` so that free buffer space does not wake it:
    /// it would ask the task to look again, be told "not yet", and spin.
    pub flush_waker: Option<Waker>,
    /// Segments the engine still holds (queued or unacknowledged).
    pub unacked: usize,
    // Task -> application.
    pub recv_queue: VecDeque<Bytes>,
    pub recv_queued: usize,
    pub read_waker: Option<Waker>,
    /// The peer ended its stream and everything it wrote before is in
    /// `recv_queue`: once that is read, reads return end of stream.
    pub eof: bool,
    /// After `shutdown`/`close`: everything written was acknowledged and the
    /// end-of-stream signal went out (or none was due).
    pub eof_signalled: bool,
    /// Why the connection ended; every later call reports a copy.
    pub closed: Option<KcpError>,
    pub handles_gone: bool,
    pub conv: u32,
    pub stats: ConnectionStats,
}

#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the connection task after the application changed something.
    pub task: Notify,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub stream_mode: bool,
    /// [`KcpConfig::end_of_stream`](super::KcpConfig#structfield.end_of_stream).
    pub end_of_stream: bool,
    pub max_message: usize,
    pub send_limit: usize,
    pub recv_limit: usize,
    /// Application bytes in and out, published as the handles move them
    /// (set by the connection task, which knows the connection's role).
    #[cfg(feature = "metrics")]
    pub app_metrics: std::sync::OnceLock<super::metrics::AppMetrics>,
}

impl Shared {
    pub(crate) fn new(
        conv: u32,
        peer: SocketAddr,
        local: SocketAddr,
        config: &super::KcpConfig,
    ) -> Self {
        Shared {
            state: Mutex::new(State {
                conv,
                send_queue: VecDeque::new(),
                send_queued: 0,
                send_chunks: Chunks::for_queue(SEND_CHUNK, config.send_buffer),
                write_shutdown: false,
                write_waker: None,
                flush_waker: None,
                unacked: 0,
                recv_queue: VecDeque::new(),
                recv_queued: 0,
                read_waker: None,
                eof: false,
                eof_signalled: false,
                closed: None,
                handles_gone: false,
                stats: ConnectionStats::default(),
            }),
            task: Notify::new(),
            peer,
            local,
            stream_mode: config.stream_mode,
            end_of_stream: config.end_of_stream,
            max_message: config.max_message_size(),
            send_limit: config.send_buffer,
            recv_limit: config.recv_buffer,
            #[cfg(feature = "metrics")]
            app_metrics: std::sync::OnceLock::new(),
        }
    }

    /// The stats snapshot with the buffer figures the handles change
    /// themselves (reads and writes happen between the task's events) as
    /// they are now, not as the task last saw them.
    pub(crate) fn stats(&self) -> ConnectionStats {
        Shared::current(&self.lock())
    }

    /// [`Shared::stats`] for a caller already holding the lock.
    pub(crate) fn current(st: &State) -> ConnectionStats {
        let mut stats = st.stats;
        stats.send_buffer_bytes = st.send_queued;
        stats.recv_buffer_bytes = st.recv_queued;
        stats
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain queues behind; carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `buf` for sending (`AsyncWrite`). Stream mode may accept a
    /// prefix; message mode takes the whole message or fails. An empty
    /// write sends nothing: `read` could not tell it from end of stream.
    pub(crate) fn poll_write(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<Result<usize, KcpError>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.poll_queue(cx, buf)
    }

    /// Queues one whole message (`send` in message mode), empty ones
    /// included: as with `ikcp_send`, a 0-byte message is a segment of its
    /// own that the peer's `recv` returns as an empty message.
    pub(crate) fn poll_send_message(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<Result<usize, KcpError>> {
        self.poll_queue(cx, buf)
    }

    fn poll_queue(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, KcpError>> {
        if !self.stream_mode && buf.len() > self.max_message {
            return Poll::Ready(Err(KcpError::Buffer {
                len: buf.len(),
                max: self.max_message,
            }));
        }
        let mut st = self.lock();
        if let Some(c) = &st.closed {
            return Poll::Ready(Err(c.clone()));
        }
        if st.write_shutdown {
            return Poll::Ready(Err(KcpError::Connection {
                peer: self.peer,
                reason: ConnectionError::WriteAfterShutdown,
            }));
        }
        // A message larger than the whole buffer is still let through alone.
        if st.send_queued >= self.send_limit
            || (!self.stream_mode
                && st.send_queued > 0
                && st.send_queued + buf.len() > self.send_limit)
        {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = if self.stream_mode {
            buf.len().min(self.send_limit - st.send_queued)
        } else {
            buf.len()
        };
        if self.stream_mode {
            // The stream fills each buffer to the brim (a write may span
            // two), so the queue holds its bytes in as few buffers as can.
            let mut data = &buf[..n];
            while !data.is_empty() {
                let free = st.send_chunks.free();
                let k = data.len().min(if free > 0 { free } else { SEND_CHUNK });
                let chunk = st.send_chunks.room(k);
                chunk.extend_from_slice(&data[..k]);
                let piece = chunk.split().freeze();
                st.send_queue.push_back(piece);
                data = &data[k..];
            }
        } else {
            // A message is one piece: the task hands it to the engine whole.
            let chunk = st.send_chunks.room(n);
            chunk.extend_from_slice(&buf[..n]);
            let piece = chunk.split().freeze();
            st.send_queue.push_back(piece);
        }
        st.send_queued += n;
        st.stats.bytes_sent += n as u64;
        drop(st);
        #[cfg(feature = "metrics")]
        if let Some(m) = self.app_metrics.get() {
            m.sent.increment(n as u64);
        }
        self.task.notify_one();
        Poll::Ready(Ok(n))
    }

    /// Ready once everything written was acknowledged by the peer.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<(), KcpError>> {
        let mut st = self.lock();
        if st.send_queue.is_empty() && st.unacked == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(c) = &st.closed {
            return Poll::Ready(Err(c.clone()));
        }
        st.flush_waker = Some(cx.waker().clone());
        drop(st);
        // The task may be asleep until its next timer; make it look now.
        self.task.notify_one();
        Poll::Pending
    }

    /// Refuses further writes; ready once everything written was
    /// acknowledged and the end-of-stream signal was sent.
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<Result<(), KcpError>> {
        let mut st = self.lock();
        if !st.write_shutdown {
            st.write_shutdown = true;
            // The task may be asleep until its next timer; make it look now.
            self.task.notify_one();
        }
        let delivered = st.send_queue.is_empty() && st.unacked == 0;
        if delivered && (!self.end_of_stream || st.eof_signalled) {
            return Poll::Ready(Ok(()));
        }
        match &st.closed {
            // The peer dropped its end after we delivered everything: no
            // signal is due, the stream ended cleanly.
            Some(KcpError::Connection {
                reason: ConnectionError::PeerClosed,
                ..
            }) if delivered => return Poll::Ready(Ok(())),
            Some(c) => return Poll::Ready(Err(c.clone())),
            None => {}
        }
        st.flush_waker = Some(cx.waker().clone());
        drop(st);
        self.task.notify_one();
        Poll::Pending
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn count_received(&self, n: usize) {
        #[cfg(feature = "metrics")]
        if let Some(m) = self.app_metrics.get() {
            m.received.increment(n as u64);
        }
    }

    fn take_front(&self, st: &mut State) -> Option<Bytes> {
        let front = st.recv_queue.pop_front()?;
        let was_full = st.recv_queued >= self.recv_limit;
        st.recv_queued -= front.len();
        st.stats.bytes_received += front.len() as u64;
        if was_full {
            // The task stopped draining the engine; room again.
            self.task.notify_one();
        }
        Some(front)
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<Result<(), KcpError>> {
        let mut st = self.lock();
        // An empty message (message mode) has no byte to read: `Ok(0)`
        // would mean end of stream, so `read` passes over it.
        while st.recv_queue.front().is_some_and(|m| m.is_empty()) {
            st.recv_queue.pop_front();
        }
        if let Some(mut front) = self.take_front(&mut st) {
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if !front.is_empty() {
                st.recv_queued += front.len();
                st.stats.bytes_received -= front.len() as u64;
                st.recv_queue.push_front(front);
            }
            drop(st);
            self.count_received(n);
            return Poll::Ready(Ok(()));
        }
        if st.eof {
            return Poll::Ready(Ok(()));
        }
        if let Some(c) = &st.closed {
            return Poll::Ready(Err(c.clone()));
        }
        st.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// At the end of the stream, where `read` gives `Ok(0)`, an
    /// [`ConnectionError::EndOfStream`] error: an empty message would make
    /// the usual `while let Ok(m) = s.recv().await` loop spin.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Bytes, KcpError>> {
        let mut st = self.lock();
        if let Some(front) = self.take_front(&mut st) {
            drop(st);
            self.count_received(front.len());
            return Poll::Ready(Ok(front));
        }
        if st.eof {
            return Poll::Ready(Err(KcpError::Connection {
                peer: self.peer,
                reason: ConnectionError::EndOfStream,
            }));
        }
        if let Some(c) = &st.closed {
            return Poll::Ready(Err(c.clone()));
        }
        st.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
