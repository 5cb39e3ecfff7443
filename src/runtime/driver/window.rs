//! Announcing a receive window that reading reopened, so a sender that
//! saw it closed resumes at once instead of at its next window probe.

use super::*;

/// Announcing that a window we advertised as closed has room again.
///
/// The engine tells the peer once; if that datagram is lost, a sender that
/// saw window 0 waits for its own window probe (seconds). Until new data
/// arrives the announcement is repeated, backing off, a bounded number of
/// times.
pub(super) struct Reopening {
    pub(super) rcv_nxt: u32,
    pub(super) next: Instant,
    pub(super) gap: Duration,
    pub(super) sent: u32,
}

/// How many window updates announce one reopened window at most.
const REOPEN_ANNOUNCEMENTS: u32 = 8;

impl Driver {
    /// The receive window the engine has free, as a segment header carries it.
    pub(super) fn free_window(&self) -> u16 {
        let (_, rcv_wnd) = self.kcp.window_size();
        rcv_wnd
            .saturating_sub(self.kcp.recv_queue_len() as u32)
            .min(u16::MAX as u32) as u16
    }

    /// Queues a bare window segment (ask or tell) carrying our free window.
    pub(super) fn send_window_segment(&mut self, cmd: Command) {
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
    pub(super) fn announce_reopened_window(&mut self) {
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
}
