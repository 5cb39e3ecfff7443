//! Whether the connection goes on: keep-alive probes, the dead-peer,
//! idle and connect timeouts, the linger of a dropped stream, and the
//! deadline the task sleeps until.

use super::*;

/// How long a dropped stream keeps trying to deliver what it wrote.
const LINGER_MAX: Duration = Duration::from_secs(30);

impl Driver {
    /// When the next probe is due: a keep-alive, or a question while our
    /// data waits for its acknowledgement.
    pub(super) fn next_probe(&self) -> Option<Instant> {
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
    pub(super) fn send_probe(&mut self) {
        self.send_window_segment(Command::WindowAsk);
        self.keep_alives += 1;
        trace!(conv = self.kcp.conv(), "probe");
    }

    /// Whether the connection is over: `Some(Some(err))` failed,
    /// `Some(None)` finished cleanly, `None` keep going.
    pub(super) fn verdict(&mut self) -> Option<Option<KcpError>> {
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
    pub(super) fn dead_peer_clock(&self) -> Option<Instant> {
        let unacked = self.unacked_since?;
        Some(self.last_heard?.max(unacked))
    }

    /// Whether the connect timeout runs before anything was heard: from the
    /// first write, and for a client from `connect` even if it never writes.
    pub(super) fn connect_clock_runs(&self) -> bool {
        self.first_send.is_some() || matches!(self.source, Source::Own)
    }

    pub(super) fn next_deadline(&self) -> Instant {
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
