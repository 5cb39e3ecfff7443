//! The end-of-stream signal: sending ours once everything written is
//! acknowledged (repeated until the peer acknowledges it) and answering
//! the peer's.

use super::*;

/// Sending our end-of-stream signal until the peer acknowledges it.
pub(super) struct Closing {
    pub(super) sn: u32,
    pub(super) gone: bool,
    pub(super) sent: u32,
    pub(super) next: Instant,
    pub(super) gap: Duration,
    pub(super) acked: bool,
}

/// Transmissions of one end-of-stream signal at most: a raw peer never
/// acknowledges it, and drops each.
pub(super) const FIN_TRANSMISSIONS: u32 = 8;
/// Longest pause between two of them.
const FIN_GAP_MAX: Duration = Duration::from_millis(500);

impl Driver {
    /// The peer's end-of-stream signal or its acknowledgement of ours.
    pub(super) fn on_signal(&mut self, signal: Signal) {
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
    pub(super) fn eof_due(&self) -> bool {
        self.config.end_of_stream
            && (self.first_send.is_some() || self.last_heard.is_some())
            && !self.awaiting_conv
            && !self.peer_gone
    }

    /// After `shutdown`, `close` or the last handle's drop, once everything
    /// written is acknowledged: sends the end-of-stream signal, alone in its
    /// datagram, and repeats it (backing off) until acknowledged.
    pub(super) fn signal_end_of_stream(&mut self) {
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
}
