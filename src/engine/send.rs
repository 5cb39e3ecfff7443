//! Queueing data for sending: fragmentation into segments of at most `mss`
//! bytes, and stream-mode coalescing into the last queued segment.

use super::constants::*;
use super::error::SendError;
use super::host::{Host, Silent};
use super::kcp::Kcp;
use super::payload::Payload;
use super::send_window::InFlight;
use super::tail::TailFields;

impl<P: Payload> Kcp<P> {
    /// Queues `data` for sending and returns how many bytes were accepted.
    ///
    /// In message mode the whole message is accepted or refused: it may need
    /// at most 127 fragments of `mss` bytes. In stream mode data first fills
    /// the last queued segment, and a partially accepted write returns the
    /// accepted count. Nothing is transmitted until the next
    /// [`flush`](Kcp::flush) / [`update`](Kcp::update).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        let len = i32::try_from(data.len()).map_err(|_| SendError::TooLarge)?;
        match self.send_raw(Some(data), len, &mut Silent) {
            n if n >= 0 => Ok(n as usize),
            _ if self.mss == 0 => Err(SendError::InvalidMss),
            _ if self.fragments_for(len) >= MAX_FRAGMENTS as i32 => Err(SendError::TooLarge),
            _ => Err(SendError::OutOfMemory),
        }
    }

    /// Fragments a message of `len` bytes needs, with the reference's
    /// unsigned arithmetic (which is what decides its -2 for huge lengths).
    pub(super) fn fragments_for(&self, len: i32) -> i32 {
        if len <= self.mss as i32 {
            1
        } else {
            ((len as u32).wrapping_add(self.mss).wrapping_sub(1) / self.mss.max(1)) as i32
        }
    }

    /// `ikcp_send`. `data` is `None` for a NULL buffer (segments are zero-filled).
    pub(crate) fn send_raw<H: Host<P>>(
        &mut self,
        data: Option<&[u8]>,
        len: i32,
        _host: &mut H,
    ) -> i32 {
        if len < 0 {
            return -1;
        }
        if self.mss == 0 {
            return -1;
        }
        let mut len = len;
        let mut offset = 0usize;
        let mut sent = 0i32;
        let mss = self.mss;
        let zeros;
        let source: &[u8] = match data {
            Some(d) => d,
            None => {
                zeros = vec![0u8; len as usize];
                &zeros
            }
        };

        if self.tail.stream() != 0 {
            if let Some(last) = self.snd_buf.last_queued_mut() {
                let old_len = last.data.len() as u32;
                if old_len < mss {
                    let capacity = (mss - old_len) as i32;
                    let extend = len.min(capacity);
                    let extra = &source[..extend as usize];
                    let Some(merged) = self.pool.take(&[last.data.as_bytes(), extra]) else {
                        return -2;
                    };
                    let old = std::mem::replace(&mut last.data, merged);
                    last.frg = 0;
                    self.recycle(old);
                    len -= extend;
                    offset += extend as usize;
                    sent = extend;
                }
            }
            if len <= 0 {
                return sent;
            }
        }

        let mut count = self.fragments_for(len);
        if count >= MAX_FRAGMENTS as i32 {
            if self.tail.stream() != 0 && sent > 0 {
                return sent;
            }
            return -2;
        }
        if count == 0 {
            count = 1;
        }

        for i in 0..count {
            let size = len.min(mss as i32).max(0);
            let chunk = &source[offset..offset + size as usize];
            let Some(payload) = self.pool.take(&[chunk]) else {
                return -2;
            };
            let frg = if self.tail.stream() == 0 {
                (count - i - 1) as u32
            } else {
                0
            };
            self.snd_buf.queue(InFlight::queued(frg, payload));
            offset += size as usize;
            len -= size;
            sent += size;
        }
        sent
    }
}
