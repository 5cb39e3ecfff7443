//! Moving written bytes into the engine and received messages out of it,
//! and publishing the connection's state to its handles.

use super::*;

impl Driver {
    /// Moves written bytes into the engine and received messages out of it,
    /// and publishes the connection's state to the handles.
    pub(super) fn pump(&mut self) {
        let mut st = self.shared.lock();
        let (snd_wnd, _) = self.kcp.window_size();
        // A window in flight and a quarter more queued behind it: enough for
        // the flush after an acknowledgement to send at once (one batch acks
        // far fewer), while the rest waits in the application queue instead
        // of in segment buffers (at two windows, 1.4 MB more memory to fault
        // in at a 1,024 window, and colder copies).
        let window_limit = (snd_wnd as usize * 5 / 4).max(8);
        if self.kcp.wait_snd() == 0 && st.send_queue.is_empty() {
            self.inflight.on_idle(Instant::now());
        }
        let engine_limit = self.inflight.limit(window_limit);
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
        self.app_queue_empty = st.send_queue.is_empty();
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
            // Appended as it leaves the engine: no zeroing beforehand.
            let buf = self.recv_buf.room(n);
            let got = self.kcp.recv_with(|piece| buf.extend_from_slice(piece));
            let buf = self.recv_buf.current();
            match got {
                Ok(0) if !self.shared.stream_mode => {
                    // An empty message: `recv` returns it, `read` skips it.
                    delivered = true;
                    st.recv_queue.push_back(bytes::Bytes::new());
                }
                // Stream mode has no empty message: nothing to hand over.
                Ok(0) => {}
                Ok(m) => {
                    delivered = true;
                    if self.shared.stream_mode {
                        pending += m;
                        continue;
                    }
                    let msg = buf.split().freeze();
                    st.recv_queued += msg.len();
                    st.recv_queue.push_back(msg);
                }
                Err(_) => break,
            }
        }
        if pending > 0 {
            let chunk = self.recv_buf.current().split().freeze();
            st.recv_queued += chunk.len();
            st.recv_queue.push_back(chunk);
        }
        if let Some(sn) = self.peer_fin {
            // Everything before the signal is in the queue the reads take from.
            let all_in = diff(self.kcp.rcv_nxt(), sn) >= 0;
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
        st.stats.inflight_limit_segments = engine_limit;
        st.stats.min_rtt = self.inflight.min_rtt();
        st.stats.delivery_rate = self
            .inflight
            .delivery_rate()
            .map(|segments_per_sec| (segments_per_sec * self.kcp.mss() as f64) as u64);
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
}
