//! The task that owns one connection's engine.
//!
//! It sleeps until the earliest of: a datagram, a nudge from a handle, the
//! engine's `check()` deadline (only while data is in flight), a keep-alive
//! or a timeout. An idle connection therefore wakes only for keep-alives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, trace, warn, Instrument};

use super::chunks::Chunks;
use super::config::KcpConfig;
use super::end_of_stream::{self, Signal};
use super::error::{ConnectionError, KcpError, Timeout};
use super::inflight::InflightLimit;
use super::input_guard::{BytePool, InputGuard};
use super::listener::ClosedByRouter;
use super::observe::{Observer, Role};
use super::outbox::Outbox;
use super::rng::Rng;
use super::routed::Routed;
use super::shared::Shared;
use super::transport::{self, Received, Transport};
use crate::engine::{conv_of, diff, segments, Command, InputError, Kcp, SegmentHeader, HEADER_LEN};

mod closing;
mod liveness;
mod pump;
mod window;

use closing::{Closing, FIN_TRANSMISSIONS};
use window::Reopening;

/// Where a connection's datagrams come from.
pub(crate) enum Source {
    /// Routed by a listener that owns the transport's receive side.
    Listener(mpsc::Receiver<Routed>),
    /// A client connection receiving from its own transport.
    Own,
}

/// Receive buffers of a client connection (a datagram or a GRO train each).
const RECV_BUF: usize = 65_536;
/// How many of them one receive call fills at most.
const RECV_BATCH: usize = 4;
/// Room reserved at a time for received data handed to the reader.
const RECV_CHUNK: usize = 64 * 1024;
/// How long a connection with nothing in flight keeps the buffers of its
/// application queues and its outbox for reuse.
const KEEP_BUFFERS: Duration = Duration::from_secs(1);

pub(crate) struct Driver {
    kcp: Kcp,
    config: KcpConfig,
    shared: Arc<Shared>,
    transport: Arc<dyn Transport>,
    peer: SocketAddr,
    source: Source,
    epoch: Instant,
    started: Instant,
    /// Waiting for a server to assign the conversation (tokio_kcp style).
    awaiting_conv: bool,
    last_heard: Option<Instant>,
    /// A datagram of the batch being fed was accepted: `last_heard` is now.
    heard: bool,
    last_probe: Instant,
    /// Since when data has been in flight without a pause (the dead-peer clock).
    unacked_since: Option<Instant>,
    first_send: Option<Instant>,
    handles_gone_at: Option<Instant>,
    /// Datagrams produced by the engine, waiting to be sent.
    outbox: Outbox,
    /// Received bytes on their way to the reader.
    recv_buf: Chunks,
    /// A client's receive buffers and what the last receive put in them.
    rx_bufs: Vec<Vec<u8>>,
    rx_meta: Vec<Received>,
    loss: Rng,
    rejected: u64,
    /// Why the engine refused the peer's latest bad datagram: if nothing it
    /// sent was ever accepted, the connect verdict says so.
    last_rejection: Option<InputError>,
    simulated_drops: u64,
    keep_alives: u64,
    on_exit: Option<Box<dyn FnOnce() + Send>>,
    /// A listener's connection: why the listener closed it, if it did.
    closed_by_router: Option<Arc<ClosedByRouter>>,
    /// The receive window our latest datagram advertised.
    advertised_wnd: u16,
    /// Our datagrams went from advertising a closed window to an open one.
    window_reopened: bool,
    /// A reopened window being announced, until the peer sends data again.
    reopening: Option<Reopening>,
    /// Screens datagrams before the engine sees them (memory bounds).
    guard: InputGuard,
    /// How much written data the engine may hold, from path measurements.
    inflight: InflightLimit,
    /// The application's send queue was empty after the latest `pump`.
    app_queue_empty: bool,
    /// Log events (and metrics) from the stats after each event.
    observer: Observer,
    /// Wakes nothing: polls the transport without registering interest.
    noop_waker: std::task::Waker,
    /// Our end-of-stream signal, once due.
    closing: Option<Closing>,
    /// The peer's stream ends before this sequence number.
    peer_fin: Option<u32>,
    /// The peer dropped its stream: it reads nothing more.
    peer_gone: bool,
}

impl Driver {
    pub(crate) fn new(
        conv: u32,
        config: KcpConfig,
        shared: Arc<Shared>,
        transport: Arc<dyn Transport>,
        peer: SocketAddr,
        source: Source,
        on_exit: Option<Box<dyn FnOnce() + Send>>,
    ) -> Self {
        let mut kcp = Kcp::new(conv);
        config.apply(&mut kcp);
        let now = Instant::now();
        let role = match source {
            Source::Own => Role::Client,
            Source::Listener(_) => Role::Server,
        };
        #[cfg(feature = "metrics")]
        let _ = shared
            .app_metrics
            .set(super::metrics::AppMetrics::new(role));
        let rx_count = if matches!(source, Source::Own) {
            RECV_BATCH
        } else {
            0
        };
        let recv_buf = Chunks::for_queue(RECV_CHUNK, config.recv_buffer);
        Driver {
            guard: InputGuard::new(config.mtu, config.max_out_of_order_bytes),
            inflight: InflightLimit::new(config.adaptive_inflight),
            app_queue_empty: true,
            kcp,
            // Each end draws its own losses. With one seed for both, the
            // listener's first answers were lost exactly where its client's
            // first datagrams had been, so an opening that lost its first
            // tries also lost its first answers.
            loss: Rng::new(config.loss_seed ^ u64::from(conv) ^ role.loss_salt()),
            config,
            shared,
            transport,
            peer,
            source,
            epoch: now,
            started: now,
            awaiting_conv: conv == 0,
            last_heard: None,
            heard: false,
            last_probe: now,
            unacked_since: None,
            first_send: None,
            handles_gone_at: None,
            outbox: Outbox::default(),
            recv_buf,
            rx_bufs: vec![vec![0; RECV_BUF]; rx_count],
            rx_meta: vec![Received::default(); rx_count],
            rejected: 0,
            last_rejection: None,
            simulated_drops: 0,
            keep_alives: 0,
            on_exit,
            closed_by_router: None,
            advertised_wnd: u16::MAX,
            window_reopened: false,
            reopening: None,
            observer: Observer::new(role),
            noop_waker: std::task::Waker::from(Arc::new(NoopWake)),
            closing: None,
            peer_fin: None,
            peer_gone: false,
        }
    }

    /// A listener's connection: half-open until the peer proves itself,
    /// sharing the listener's out-of-order pool, and told by `closed` why
    /// the listener closed it if it does.
    pub(crate) fn join_listener(
        &mut self,
        pool: Arc<BytePool>,
        floor: usize,
        on_established: Box<dyn FnOnce() + Send>,
        closed: Arc<ClosedByRouter>,
    ) {
        self.guard.join_listener(pool, floor, on_established);
        self.closed_by_router = Some(closed);
    }

    /// The preset's interval; a half-open connection (maybe a forged
    /// opening) makes do with the engine's, which is never below 10 ms.
    fn timer_interval(&self) -> u32 {
        if self.guard.is_half_open() {
            self.kcp.interval().max(self.config.interval)
        } else {
            self.config.interval
        }
    }

    fn now_ms(&self) -> u32 {
        // The engine's clock wraps at 2^32 ms; it handles that.
        self.epoch.elapsed().as_millis() as u32
    }

    /// Runs the connection until it fails or is dropped and drained.
    pub(crate) async fn run(self) {
        // Every event of the connection, in the task or below, carries these.
        let span = tracing::debug_span!("kcp_conn", conv = self.kcp.conv(), peer = %self.peer);
        self.run_in_span().instrument(span).await
    }

    async fn run_in_span(mut self) {
        debug!(local = %self.shared.local, "connection task started");
        self.update(true);
        let end = loop {
            self.pump();
            self.announce_reopened_window();
            self.signal_end_of_stream();
            self.transmit().await;
            if let Some(end) = self.verdict() {
                break end;
            }
            let deadline = self.next_deadline();
            let event = {
                let Driver {
                    source,
                    transport,
                    rx_bufs,
                    rx_meta,
                    shared,
                    ..
                } = &mut self;
                tokio::select! {
                    biased;
                    d = next_datagram(source, &**transport, rx_bufs, rx_meta) => Event::Datagram(d),
                    _ = shared.task.notified() => Event::App,
                    _ = tokio::time::sleep_until(deadline) => Event::Timer,
                }
            };
            match event {
                Event::Datagram(Incoming::Data(routed)) => {
                    for d in routed.datagrams() {
                        self.on_datagram(d);
                    }
                    drop(routed);
                    self.drain_ready();
                    self.after_batch();
                }
                Event::Datagram(Incoming::Own(n)) => {
                    self.on_own_batch(n);
                    self.drain_ready();
                    self.after_batch();
                }
                Event::Datagram(Incoming::Nothing) => {}
                Event::Datagram(Incoming::SourceGone) => {
                    // The listener closes a half-open connection by dropping
                    // its route; otherwise its task is gone.
                    let closed = self.closed_by_router.as_ref().and_then(|c| c.reason());
                    break Some(closed.unwrap_or(KcpError::Connection {
                        peer: self.peer,
                        reason: ConnectionError::ListenerGone,
                    }));
                }
                Event::App => {
                    // Data moved into the engine by pump() goes out now
                    // rather than at the next interval.
                    self.pump();
                    self.update(true);
                }
                Event::Timer => self.on_timer(),
            }
        };
        self.transmit().await;
        self.publish_close(end);
        if let Some(f) = self.on_exit.take() {
            f();
        }
    }

    fn publish_close(&mut self, end: Option<KcpError>) {
        let end_was_error = end.is_some();
        let mut st = self.shared.lock();
        st.closed = Some(end.unwrap_or(KcpError::Connection {
            peer: self.peer,
            reason: ConnectionError::Closed,
        }));
        st.unacked = self.kcp.wait_snd();
        st.stats.refresh_engine(&self.kcp);
        let last = Shared::current(&st);
        let reason = st.closed.clone().filter(|_| end_was_error);
        let wakers = [
            st.read_waker.take(),
            st.write_waker.take(),
            st.flush_waker.take(),
        ];
        drop(st);
        // Logged outside the lock: handles never wait for a log line.
        self.observer.closed(&last, reason.as_ref());
        wakers.into_iter().flatten().for_each(|w| w.wake());
    }

    /// Runs the engine's clock; with `flush` also transmits acknowledgements
    /// and new data right away.
    fn update(&mut self, flush: bool) {
        let now = self.now_ms();
        // Whole trains leave during the flush, so the outbox stays a train
        // long instead of growing to the whole flush (1.4 MB at a 1,024
        // window). On a listener's shared socket an attempt that finds it
        // full leaves a waker that wakes nothing in place of another
        // connection's (tokio keeps one send waker per socket); that
        // connection then sends at its next re-ask, within 2 ms
        // (`transport::until_sent`). Simulated loss draws each datagram when
        // the outbox is sent.
        let early = self.config.simulated_loss <= 0.0;
        let Driver {
            kcp,
            outbox,
            advertised_wnd: advertised,
            window_reopened: reopened,
            transport,
            peer,
            noop_waker,
            inflight,
            app_queue_empty,
            ..
        } = self;
        let mut cx = std::task::Context::from_waker(noop_waker);
        let sent_at = Instant::now();
        let una = kcp.snd_una();
        // Everything written is in the engine, or the peer's window is full.
        inflight.set_held_back(*app_queue_empty || kcp.remote_window() as usize <= kcp.wait_snd());
        let mut out = |d: &[u8]| {
            // Every segment of one flush carries the same window.
            if let Some(w) = d.get(6..8) {
                let wnd = u16::from_le_bytes([w[0], w[1]]);
                *reopened |= *advertised == 0 && wnd > 0;
                *advertised = wnd;
            }
            for sn in data_segments(d) {
                inflight.on_data_sent(sn, una, sent_at);
            }
            outbox.push(d);
            if early {
                // Whole trains leave now; the rest with `transmit`.
                outbox.send_trains(&**transport, *peer, &mut cx);
            }
        };
        kcp.update(now, &mut out);
        if flush {
            kcp.flush(&mut out);
        }
        inflight.on_flushed(sent_at);
    }

    fn on_timer(&mut self) {
        // The engine will not flush more often than every 10 ms; presets
        // with shorter intervals get their extra flushes here.
        let fast = self.timer_interval() < self.kcp.interval();
        self.update(fast);
        if self.kcp.wait_snd() == 0 {
            // Quiet (a busy connection's timer is its engine's, and a
            // receiver's is pre-empted by data): buffers kept for reuse go.
            self.recv_buf.release();
            self.outbox.release();
            self.shared.lock().send_chunks.release();
        }
        let now = Instant::now();
        if matches!(self.next_probe(), Some(at) if now >= at) {
            self.send_probe();
            self.last_probe = now;
        }
    }

    /// After a batch of datagrams: marks the peer heard if one was
    /// accepted, times what they acknowledged, hands the engine what the
    /// acknowledgements made room for, and flushes it with the replies.
    ///
    /// The whole `pump` runs before the flush, not only its feeding half:
    /// what it delivers to the reader leaves the engine's receive queue, so
    /// the replies advertise that room (with feeding alone, a 100 ms path
    /// kept 960 segments in flight instead of its 1,024-segment window,
    /// `tests/async_inflight.rs`). The loop's `pump` then publishes the
    /// state after the flush.
    fn after_batch(&mut self) {
        let now = Instant::now();
        if std::mem::take(&mut self.heard) {
            self.last_heard = Some(now);
        }
        self.inflight.on_acked(self.kcp.snd_una(), now);
        self.pump();
        self.update(true);
    }

    /// The first `n` receive buffers, filled by the client's own transport.
    fn on_own_batch(&mut self, n: usize) {
        let bufs = std::mem::take(&mut self.rx_bufs);
        let meta = std::mem::take(&mut self.rx_meta);
        for (buf, m) in bufs.iter().zip(&meta[..n]) {
            for d in m.datagrams(buf) {
                if m.addr == self.peer {
                    self.on_datagram(d);
                } else {
                    self.rejected += 1;
                }
            }
        }
        self.rx_bufs = bufs;
        self.rx_meta = meta;
    }

    fn on_datagram(&mut self, d: &[u8]) {
        if !self.awaiting_conv {
            if let Some(signal) = end_of_stream::parse(d, self.kcp.conv()) {
                self.on_signal(signal);
                return;
            }
        }
        if self.awaiting_conv {
            match conv_of(d) {
                Some(conv) if conv != 0 && d.len() >= HEADER_LEN => {
                    debug!(conv, "server assigned the conversation");
                    self.kcp.set_conv(conv);
                    self.shared.lock().conv = conv;
                    self.awaiting_conv = false;
                }
                _ => {
                    self.rejected += 1;
                    return;
                }
            }
        }
        let Some(d) = self.guard.screen(&self.kcp, d) else {
            self.rejected += 1;
            return;
        };
        match self.kcp.input(d) {
            // The clock is read once per batch (`after_batch`).
            Ok(()) => self.heard = true,
            Err(e) => {
                self.rejected += 1;
                self.last_rejection = Some(e);
                trace!(error = %e, len = d.len(), "datagram rejected");
            }
        }
        self.guard.settle(&self.kcp);
    }

    /// Feeds datagrams that are already waiting without sleeping again.
    fn drain_ready(&mut self) {
        for _ in 0..64 {
            match &mut self.source {
                Source::Listener(rx) => match rx.try_recv() {
                    Ok(routed) => {
                        for d in routed.datagrams() {
                            self.on_datagram(d);
                        }
                    }
                    Err(_) => return,
                },
                Source::Own => {
                    let mut waker_cx = std::task::Context::from_waker(&self.noop_waker);
                    let polled = transport::poll_recv_many(
                        &*self.transport,
                        &mut waker_cx,
                        &mut self.rx_bufs,
                        &mut self.rx_meta,
                    );
                    match polled {
                        std::task::Poll::Ready(Ok(n)) => {
                            self.on_own_batch(n);
                        }
                        _ => return,
                    }
                }
            }
        }
    }

    /// Sends the outbox: each run of equal-sized datagrams (a full-MTU
    /// burst, the last possibly shorter) in one call of a batching
    /// transport (GSO).
    async fn transmit(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        if self.config.simulated_loss > 0.0 {
            // Tests only: each datagram drawn against the loss rate.
            for d in self.outbox.datagrams() {
                if self.loss.chance(self.config.simulated_loss) {
                    self.simulated_drops += 1;
                    continue;
                }
                send_run(&*self.transport, self.peer, d, d.len()).await;
            }
        } else {
            for (run, segment) in self.outbox.runs() {
                send_run(&*self.transport, self.peer, run, segment).await;
            }
        }
        self.outbox.clear();
    }
}

/// Sends one run of datagrams of `segment` bytes (the last may be shorter).
async fn send_run(t: &dyn Transport, peer: SocketAddr, run: &[u8], segment: usize) {
    if let Err(e) = transport::send_segments(t, run, segment, peer).await {
        // Like lost datagrams: the protocol retransmits.
        trace!(error = %e, "send failed");
    }
}

/// Sequence numbers of the data segments in an outgoing datagram.
fn data_segments(d: &[u8]) -> impl Iterator<Item = u32> + '_ {
    segments(d)
        .filter(|(_, h)| h.cmd == Command::Push as u8)
        .map(|(_, h)| h.sn)
}

struct NoopWake;

impl std::task::Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

enum Event {
    Datagram(Incoming),
    App,
    Timer,
}

enum Incoming {
    Data(Routed),
    /// How many of the receive buffers were filled.
    Own(usize),
    Nothing,
    SourceGone,
}

async fn next_datagram(
    source: &mut Source,
    t: &dyn Transport,
    bufs: &mut [Vec<u8>],
    meta: &mut [Received],
) -> Incoming {
    match source {
        Source::Listener(rx) => match rx.recv().await {
            Some(d) => Incoming::Data(d),
            None => Incoming::SourceGone,
        },
        Source::Own => match transport::recv_many(t, bufs, meta).await {
            Ok(n) => Incoming::Own(n),
            // ICMP errors and the like: the protocol copes with loss.
            Err(_) => Incoming::Nothing,
        },
    }
}
