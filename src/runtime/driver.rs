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
use super::input_guard::{BytePool, InputGuard};
use super::listener::ClosedByRouter;
use super::observe::{Observer, Role};
use super::outbox::Outbox;
use super::rng::Rng;
use super::routed::Routed;
use super::shared::Shared;
use super::transport::{self, Received, Transport};
use crate::engine::{conv_of, Command, InputError, Kcp, SegmentHeader, HEADER_LEN};

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
/// How long a dropped stream keeps trying to deliver what it wrote.
const LINGER_MAX: Duration = Duration::from_secs(30);

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

/// Sending our end-of-stream signal until the peer acknowledges it.
struct Closing {
    sn: u32,
    gone: bool,
    sent: u32,
    next: Instant,
    gap: Duration,
    acked: bool,
}

/// Transmissions of one end-of-stream signal at most: a raw peer never
/// acknowledges it, and drops each.
const FIN_TRANSMISSIONS: u32 = 8;
/// Longest pause between two of them.
const FIN_GAP_MAX: Duration = Duration::from_millis(500);

/// Announcing that a window we advertised as closed has room again.
///
/// The engine tells the peer once; if that datagram is lost, a sender that
/// saw window 0 waits for its own window probe (seconds). Until new data
/// arrives the announcement is repeated, backing off, a bounded number of
/// times.
struct Reopening {
    rcv_nxt: u32,
    next: Instant,
    gap: Duration,
    sent: u32,
}

/// How many window updates announce one reopened window at most.
const REOPEN_ANNOUNCEMENTS: u32 = 8;

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
                Event::Datagram(Incoming::Data(d)) => {
                    self.on_datagram(&d);
                    drop(d);
                    self.drain_ready();
                    self.heard_now();
                    self.update(true);
                }
                Event::Datagram(Incoming::Own(n)) => {
                    self.on_own_batch(n);
                    self.drain_ready();
                    self.heard_now();
                    self.update(true);
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
        // Whole trains leave during the flush only from a socket of our own:
        // an attempt that finds the socket full leaves a waker that wakes
        // nothing, and tokio keeps one send waker per socket, so on the
        // listener's shared socket it would replace that of another
        // connection waiting to send (which then waits for its next re-ask,
        // `transport::until_sent`). Simulated loss draws each datagram when
        // the outbox is sent.
        let early = matches!(self.source, Source::Own) && self.config.simulated_loss <= 0.0;
        let Driver {
            kcp,
            outbox,
            advertised_wnd: advertised,
            window_reopened: reopened,
            transport,
            peer,
            noop_waker,
            ..
        } = self;
        let mut cx = std::task::Context::from_waker(noop_waker);
        let mut out = |d: &[u8]| {
            // Every segment of one flush carries the same window.
            if let Some(w) = d.get(6..8) {
                let wnd = u16::from_le_bytes([w[0], w[1]]);
                *reopened |= *advertised == 0 && wnd > 0;
                *advertised = wnd;
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

    /// When the next probe is due: a keep-alive, or a question while our
    /// data waits for its acknowledgement.
    fn next_probe(&self) -> Option<Instant> {
        [self.next_keep_alive(), self.next_unacked_probe()]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the next keep-alive probe is due: `keep_alive` after the peer
    /// was last heard, and a third of that after a probe it left unanswered
    /// (so that one lost probe does not let the idle timeout fire).
    fn next_keep_alive(&self) -> Option<Instant> {
        let every = self.config.keep_alive?;
        if self.first_send.is_none() && self.last_heard.is_none() {
            return None;
        }
        let heard = self.last_heard.unwrap_or(self.started);
        if self.last_probe > heard {
            let retry = (every / 3).max(Duration::from_millis(u64::from(self.config.interval)));
            Some(self.last_probe + retry)
        } else {
            Some(heard + every)
        }
    }

    /// While our data waits for its acknowledgement and the peer is silent:
    /// a question a fifth of the dead-peer time into the silence (of the
    /// connect timeout, before the peer was ever heard), repeated every
    /// tenth of it while unanswered. Our retransmissions back off (each
    /// waits 1.5 or 2 times as long as the one before), so on a lossy path
    /// the few that fit in that time can all go unanswered although the
    /// peer is alive; every KCP peer answers the question at once, and its
    /// answer also acknowledges what it received.
    fn next_unacked_probe(&self) -> Option<Instant> {
        let (since, limit) = match (self.dead_peer_clock(), self.last_heard) {
            (Some(since), _) => (since, self.config.dead_peer_timeout?),
            (None, None) => (self.first_send?, self.config.connect_timeout),
            (None, Some(_)) => return None,
        };
        let floor = Duration::from_millis(u64::from(self.config.interval));
        if self.last_probe > since {
            Some(self.last_probe + (limit / 10).max(floor))
        } else {
            Some(since + (limit / 5).max(floor))
        }
    }

    /// A window question: every KCP implementation answers it with its
    /// window, which proves the peer is alive without touching the stream.
    fn send_probe(&mut self) {
        self.send_window_segment(Command::WindowAsk);
        self.keep_alives += 1;
        trace!(conv = self.kcp.conv(), "probe");
    }

    /// The receive window the engine has free, as a segment header carries it.
    fn free_window(&self) -> u16 {
        let (_, rcv_wnd) = self.kcp.window_size();
        rcv_wnd
            .saturating_sub(self.kcp.recv_queue_len() as u32)
            .min(u16::MAX as u32) as u16
    }

    /// Queues a bare window segment (ask or tell) carrying our free window.
    fn send_window_segment(&mut self, cmd: Command) {
        let wnd = self.free_window();
        let hdr = SegmentHeader {
            conv: self.kcp.conv(),
            cmd: cmd as u8,
            frg: 0,
            wnd,
            ts: 0,
            sn: 0,
            una: self.kcp.rcv_nxt(),
            len: 0,
        };
        let mut v = Vec::with_capacity(HEADER_LEN);
        hdr.encode(&mut v);
        self.outbox.push(&v);
        self.advertised_wnd = wnd;
    }

    /// Tells the peer at once when reading reopened a window we last
    /// advertised as closed, and repeats that until its data flows again:
    /// otherwise a sender that saw window 0 stalls until its next probe.
    fn announce_reopened_window(&mut self) {
        let now = Instant::now();
        if let Some(r) = &self.reopening {
            let data_arrived = self.kcp.rcv_nxt() != r.rcv_nxt;
            if data_arrived || r.sent >= REOPEN_ANNOUNCEMENTS || self.advertised_wnd == 0 {
                self.reopening = None;
            }
        }
        // The engine announces a window its reads reopened itself; we do when
        // the application's reads reopened it and the engine stayed quiet.
        let engine_announced = std::mem::take(&mut self.window_reopened);
        if engine_announced || (self.advertised_wnd == 0 && self.free_window() > 0) {
            if !engine_announced {
                self.send_window_segment(Command::WindowTell);
            }
            let gap = Duration::from_millis(u64::from(self.config.interval.max(10)) * 2);
            self.reopening = Some(Reopening {
                rcv_nxt: self.kcp.rcv_nxt(),
                next: now + gap,
                gap,
                sent: 1,
            });
            debug!(conv = self.kcp.conv(), "receive window reopened");
            return;
        }
        if let Some(r) = &mut self.reopening {
            if now >= r.next {
                r.sent += 1;
                r.gap *= 2;
                r.next = now + r.gap;
                self.send_window_segment(Command::WindowTell);
                trace!(conv = self.kcp.conv(), "window update repeated");
            }
        }
    }

    /// Marks the peer heard now if a datagram of the batch just fed was
    /// accepted.
    fn heard_now(&mut self) {
        if std::mem::take(&mut self.heard) {
            self.last_heard = Some(Instant::now());
        }
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
            // The clock is read once per batch (`heard_now`).
            Ok(()) => self.heard = true,
            Err(e) => {
                self.rejected += 1;
                self.last_rejection = Some(e);
                trace!(error = %e, len = d.len(), "datagram rejected");
            }
        }
        self.guard.settle(&self.kcp);
    }

    /// The peer's end-of-stream signal or its acknowledgement of ours.
    fn on_signal(&mut self, signal: Signal) {
        if !self.config.end_of_stream {
            // Switched off: dropped, as a raw peer drops it.
            self.rejected += 1;
            return;
        }
        self.last_heard = Some(Instant::now());
        match signal {
            Signal::Fin { sn, gone } => {
                debug!(conv = self.kcp.conv(), gone, "peer ended its stream");
                self.peer_fin = Some(sn);
                self.peer_gone |= gone;
                // Every copy is answered: the previous answer may be lost.
                let ack = end_of_stream::encode(
                    self.kcp.conv(),
                    Signal::FinAck { sn, gone },
                    self.free_window(),
                    self.kcp.rcv_nxt(),
                );
                self.outbox.push(&ack);
            }
            Signal::FinAck { sn, gone } => {
                if let Some(c) = &mut self.closing {
                    if c.sn == sn && c.gone == gone {
                        c.acked = true;
                    }
                }
            }
        }
    }

    /// Whether an end-of-stream signal is ours to send once the stream is
    /// shut down: the peer knows this connection and still listens.
    fn eof_due(&self) -> bool {
        self.config.end_of_stream
            && (self.first_send.is_some() || self.last_heard.is_some())
            && !self.awaiting_conv
            && !self.peer_gone
    }

    /// After `shutdown`, `close` or the last handle's drop, once everything
    /// written is acknowledged: sends the end-of-stream signal, alone in its
    /// datagram, and repeats it (backing off) until acknowledged.
    fn signal_end_of_stream(&mut self) {
        let mut st = self.shared.lock();
        let drained = st.send_queue.is_empty() && self.kcp.wait_snd() == 0;
        if !(st.write_shutdown || st.handles_gone) || !drained || !self.config.end_of_stream {
            return;
        }
        let gone = st.handles_gone;
        if self.eof_due() {
            let now = Instant::now();
            let sn = self.kcp.snd_nxt();
            if !matches!(&self.closing, Some(c) if c.sn == sn && c.gone == gone) {
                let rto = Duration::from_millis(self.kcp.rto().max(10) as u64);
                let interval = Duration::from_millis(u64::from(self.config.interval) * 2);
                self.closing = Some(Closing {
                    sn,
                    gone,
                    sent: 0,
                    next: now,
                    gap: rto.max(interval).min(FIN_GAP_MAX),
                    acked: false,
                });
            }
            let wnd = self.free_window();
            let una = self.kcp.rcv_nxt();
            let conv = self.kcp.conv();
            let Some(c) = &mut self.closing else { return };
            if !c.acked && c.sent < FIN_TRANSMISSIONS && now >= c.next {
                self.outbox.push(&end_of_stream::encode(
                    conv,
                    Signal::Fin { sn, gone },
                    wnd,
                    una,
                ));
                c.sent += 1;
                c.next = now + c.gap;
                c.gap = (c.gap * 2).min(FIN_GAP_MAX);
                trace!(conv, sent = c.sent, "end of stream signalled");
            }
        }
        if !st.eof_signalled {
            st.eof_signalled = true;
            let w = st.flush_waker.take();
            drop(st);
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    /// Feeds datagrams that are already waiting without sleeping again.
    fn drain_ready(&mut self) {
        for _ in 0..64 {
            match &mut self.source {
                Source::Listener(rx) => match rx.try_recv() {
                    Ok(d) => self.on_datagram(&d),
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

    /// Moves written bytes into the engine and received messages out of it,
    /// and publishes the connection's state to the handles.
    fn pump(&mut self) {
        let mut st = self.shared.lock();
        let (snd_wnd, _) = self.kcp.window_size();
        let engine_limit = (snd_wnd as usize * 2).max(8);
        let mut fed = false;
        while self.kcp.wait_snd() < engine_limit {
            // tokio_kcp servers drop further segments sent before they
            // assigned the conversation: send one, then wait.
            if self.awaiting_conv && self.kcp.snd_nxt() + self.kcp.wait_snd() as u32 > 0 {
                break;
            }
            let Some(mut front) = st.send_queue.pop_front() else {
                break;
            };
            // The engine refuses more than 127 segments per call, in stream
            // mode too; hand long writes over in pieces.
            let piece = self.kcp.mss() * 32;
            if self.shared.stream_mode && front.len() > piece {
                st.send_queue.push_front(front.split_off(piece));
            }
            match self.kcp.send(&front) {
                Ok(n) if n == front.len() => st.send_queued -= n,
                Ok(n) => {
                    st.send_queued -= n;
                    st.send_queue.push_front(front.slice(n..));
                    fed = true;
                    break;
                }
                Err(e) => {
                    // Sizes were checked when written; this is an engine refusal.
                    warn!(error = %e, "engine refused data");
                    st.send_queued -= front.len();
                }
            }
            fed = true;
        }
        if fed && self.first_send.is_none() {
            self.first_send = Some(Instant::now());
        }

        let mut delivered = false;
        // In stream mode every segment is a message to the engine; the
        // segments received together are handed over as one chunk, so the
        // reader pays one queue entry (and no allocation) per batch.
        let mut pending = 0;
        while st.recv_queued + pending < self.shared.recv_limit {
            let Ok(n) = self.kcp.peek_size() else { break };
            if self.recv_buf.free() < n && pending > 0 {
                // Hand over what is gathered before moving to another buffer.
                let chunk = self.recv_buf.current().split().freeze();
                st.recv_queued += chunk.len();
                st.recv_queue.push_back(chunk);
                pending = 0;
            }
            let buf = self.recv_buf.room(n);
            buf.resize(pending + n, 0);
            let got = self.kcp.recv(&mut buf[pending..]);
            let buf = self.recv_buf.current();
            match got {
                Ok(0) if !self.shared.stream_mode => {
                    // An empty message: `recv` returns it, `read` skips it.
                    buf.truncate(pending);
                    delivered = true;
                    st.recv_queue.push_back(bytes::Bytes::new());
                }
                Ok(0) => {
                    // Stream mode has no empty message: nothing to hand over.
                    buf.truncate(pending);
                }
                Ok(m) => {
                    buf.truncate(pending + m);
                    delivered = true;
                    if self.shared.stream_mode {
                        pending += m;
                        continue;
                    }
                    let msg = buf.split().freeze();
                    st.recv_queued += msg.len();
                    st.recv_queue.push_back(msg);
                }
                Err(_) => {
                    buf.truncate(pending);
                    break;
                }
            }
        }
        if pending > 0 {
            let chunk = self.recv_buf.current().split().freeze();
            st.recv_queued += chunk.len();
            st.recv_queue.push_back(chunk);
        }
        if let Some(sn) = self.peer_fin {
            // Everything before the signal is in the queue the reads take from.
            let all_in = self.kcp.rcv_nxt().wrapping_sub(sn) as i32 >= 0;
            if !st.eof && all_in && self.kcp.peek_size().is_err() {
                st.eof = true;
                delivered = true;
            }
        }

        st.unacked = self.kcp.wait_snd();
        st.stats.refresh_engine(&self.kcp);
        st.stats.rejected_datagrams = self.rejected;
        st.stats.simulated_drops = self.simulated_drops;
        st.stats.keep_alives_sent = self.keep_alives;
        self.guard.settle(&self.kcp);
        st.stats.oversized_datagrams = self.guard.counters.oversized_datagrams;
        st.stats.oversized_segments = self.guard.counters.oversized_segments;
        st.stats.out_of_order_dropped = self.guard.counters.out_of_order_dropped;
        st.stats.send_buffer_bytes = st.send_queued;
        st.stats.recv_buffer_bytes = st.recv_queued;
        let send_full = st.send_queued >= self.shared.send_limit;
        let observed = st.stats;
        if st.handles_gone && self.handles_gone_at.is_none() {
            self.handles_gone_at = Some(Instant::now());
        }
        let read_waker = if delivered {
            st.read_waker.take()
        } else {
            None
        };
        let write_waker = if st.send_queued < self.shared.send_limit {
            st.write_waker.take()
        } else {
            None
        };
        let flush_waker = if st.send_queue.is_empty() && st.unacked == 0 {
            st.flush_waker.take()
        } else {
            None
        };
        drop(st);
        self.observer.after_event(&observed, send_full);
        [read_waker, write_waker, flush_waker]
            .into_iter()
            .flatten()
            .for_each(|w| w.wake());
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

    /// Whether the connection is over: `Some(Some(err))` failed,
    /// `Some(None)` finished cleanly, `None` keep going.
    fn verdict(&mut self) -> Option<Option<KcpError>> {
        let now = Instant::now();
        if self.kcp.in_flight() == 0 {
            self.unacked_since = None;
        } else if self.unacked_since.is_none() {
            self.unacked_since = Some(now);
        }
        if let Some(silent_since) = self.dead_peer_clock() {
            let limit = self.config.dead_peer_timeout.unwrap_or(Duration::MAX);
            if now.duration_since(silent_since) >= limit {
                return Some(Some(KcpError::Timeout {
                    timeout: Timeout::DeadPeer,
                    peer: self.peer,
                    after: limit,
                }));
            }
        }
        if self.peer_gone && self.shared.lock().eof {
            // Everything the peer wrote is queued for reading; it reads nothing
            // more, so there is nothing left to do.
            return Some(Some(KcpError::Connection {
                peer: self.peer,
                reason: ConnectionError::PeerClosed,
            }));
        }
        if self.kcp.is_dead() {
            return Some(Some(KcpError::Connection {
                peer: self.peer,
                reason: ConnectionError::DeadLink {
                    transmissions: self.config.dead_link,
                },
            }));
        }
        match (self.last_heard, self.first_send) {
            (Some(heard), _) => {
                if let Some(idle) = self.config.idle_timeout {
                    if now.duration_since(heard) >= idle {
                        return Some(Some(KcpError::Timeout {
                            timeout: Timeout::Idle,
                            peer: self.peer,
                            after: idle,
                        }));
                    }
                }
            }
            (None, _) if !self.connect_clock_runs() => {}
            (None, sent) => {
                let since = sent.unwrap_or(self.started);
                if now.duration_since(since) >= self.config.connect_timeout {
                    if let Some(e) = self.last_rejection {
                        // Someone answers, but not in a way KCP accepts.
                        return Some(Some(KcpError::Protocol {
                            peer: self.peer,
                            what: format!(
                                "{} datagrams rejected and none accepted within the connect timeout of {:?} (last: {e})",
                                self.rejected, self.config.connect_timeout
                            ),
                        }));
                    }
                    return Some(Some(KcpError::Timeout {
                        timeout: Timeout::Connect,
                        peer: self.peer,
                        after: self.config.connect_timeout,
                    }));
                }
            }
        }
        if let Some(gone) = self.handles_gone_at {
            let drained = self.kcp.wait_snd() == 0 && self.shared.lock().send_queue.is_empty();
            let signalled = !self.eof_due()
                || matches!(&self.closing, Some(c) if c.acked || (c.sent >= FIN_TRANSMISSIONS && now >= c.next));
            if (drained && signalled) || now.duration_since(gone) >= LINGER_MAX {
                return Some(None);
            }
        }
        None
    }

    /// Since when the peer has been silent while our data waited for its
    /// acknowledgement; `None` while nothing is in flight or before the peer
    /// was ever heard (the connect timeout covers that).
    fn dead_peer_clock(&self) -> Option<Instant> {
        let unacked = self.unacked_since?;
        Some(self.last_heard?.max(unacked))
    }

    /// Whether the connect timeout runs before anything was heard: from the
    /// first write, and for a client from `connect` even if it never writes.
    fn connect_clock_runs(&self) -> bool {
        self.first_send.is_some() || matches!(self.source, Source::Own)
    }

    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        let mut next = now + Duration::from_secs(3600);
        let busy = self.kcp.wait_snd() > 0 || self.kcp.remote_window() == 0;
        if busy {
            let now_ms = self.now_ms();
            let engine = self
                .kcp
                .check(now_ms)
                .wrapping_sub(now_ms)
                .min(self.timer_interval());
            next = next.min(now + Duration::from_millis(u64::from(engine.max(1))));
        }
        if !busy
            && (self.recv_buf.holds()
                || self.outbox.holds()
                || self.shared.lock().send_chunks.holds())
        {
            // `on_timer` drops them.
            next = next.min(now + KEEP_BUFFERS);
        }
        if let Some(r) = &self.reopening {
            next = next.min(r.next);
        }
        if let Some(c) = &self.closing {
            // The last transmission's deadline matters only to a dropped
            // stream, which then stops.
            if !c.acked && (c.sent < FIN_TRANSMISSIONS || self.handles_gone_at.is_some()) {
                next = next.min(c.next);
            }
        }
        if let Some(at) = self.next_probe() {
            next = next.min(at);
        }
        if let (Some(since), Some(limit)) = (self.dead_peer_clock(), self.config.dead_peer_timeout)
        {
            next = next.min(since + limit);
        }
        match (self.last_heard, self.first_send) {
            (Some(heard), _) => {
                if let Some(idle) = self.config.idle_timeout {
                    next = next.min(heard + idle);
                }
            }
            (None, _) if !self.connect_clock_runs() => {}
            (None, sent) => {
                next = next.min(sent.unwrap_or(self.started) + self.config.connect_timeout)
            }
        }
        if let Some(gone) = self.handles_gone_at {
            next = next.min(gone + LINGER_MAX);
        }
        next.max(now + Duration::from_millis(1))
    }
}

/// Sends one run of datagrams of `segment` bytes (the last may be shorter).
async fn send_run(t: &dyn Transport, peer: SocketAddr, run: &[u8], segment: usize) {
    if let Err(e) = transport::send_segments(t, run, segment, peer).await {
        // Like lost datagrams: the protocol retransmits.
        trace!(error = %e, "send failed");
    }
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
