//! Receiving: data segments enter the receive window, move to the receive
//! queue once in order, and leave it as whole messages through `recv`.

use super::constants::*;
use super::error::RecvError;
use super::host::{Host, Silent};
use super::kcp::Kcp;
use super::output::LogMask;
use super::payload::Payload;
use super::recv_window::Fragment;

impl<P: Payload> Kcp<P> {
    /// Moves the next complete message into `buf` and returns its length.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_into(buf, false)
    }

    /// Like [`recv`](Kcp::recv) but leaves the message queued.
    pub fn peek(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_into(buf, true)
    }

    /// Moves the next complete message out, handing its bytes to `sink` in
    /// order (one call per fragment), and returns its length. No buffer has
    /// to be sized, or zeroed, beforehand: a sink can append to a growing
    /// buffer.
    ///
    /// ```
    /// # use kcp::engine::Kcp;
    /// let (mut a, mut b) = (Kcp::new(1), Kcp::new(1));
    /// a.set_nodelay(1, 10, 2, true);
    /// a.send(&[7u8; 3000]).unwrap();
    /// a.update(0, &mut |d: &[u8]| b.input(d).unwrap());
    /// let mut got = Vec::new();
    /// assert_eq!(b.recv_with(|piece| got.extend_from_slice(piece)), Ok(3000));
    /// assert_eq!(got, [7u8; 3000]);
    /// ```
    pub fn recv_with(&mut self, mut sink: impl FnMut(&[u8])) -> Result<usize, RecvError> {
        match self.recv_raw(&mut sink, i32::MAX, &mut Silent) {
            n if n >= 0 => Ok(n as usize),
            -1 => Err(RecvError::Empty),
            _ => Err(RecvError::Incomplete),
        }
    }

    fn recv_into(&mut self, buf: &mut [u8], peek: bool) -> Result<usize, RecvError> {
        let cap = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        // The raw call peeks on a negative length, and there is no negative
        // zero: an empty buffer is asked for as one byte, so refuse here any
        // message that would not fit in zero bytes.
        if peek && cap == 0 && !self.rcv_queue.is_empty() {
            let needed = self.peek_size_raw();
            if needed > 0 {
                return Err(RecvError::BufferTooSmall {
                    needed: needed as usize,
                });
            }
        }
        let len = if peek { -cap.max(1) } else { cap };
        match self.recv_raw(&mut copy_into(Some(buf)), len, &mut Silent) {
            n if n >= 0 => Ok(n as usize),
            -1 => Err(RecvError::Empty),
            -2 => Err(RecvError::Incomplete),
            _ => Err(RecvError::BufferTooSmall {
                needed: self.peek_size_raw().max(0) as usize,
            }),
        }
    }

    /// Size of the next complete message.
    pub fn peek_size(&self) -> Result<usize, RecvError> {
        if self.rcv_queue.is_empty() {
            return Err(RecvError::Empty);
        }
        match self.peek_size_raw() {
            n if n >= 0 => Ok(n as usize),
            _ => Err(RecvError::Incomplete),
        }
    }

    /// `ikcp_peeksize`.
    pub(crate) fn peek_size_raw(&self) -> i32 {
        let Some(first) = self.rcv_queue.front() else {
            return -1;
        };
        if first.frg == 0 {
            return first.data.len() as i32;
        }
        if self.nrcv_que() < first.frg.wrapping_add(1) {
            return -1;
        }
        let mut length = 0i32;
        for frag in &self.rcv_queue {
            length = length.wrapping_add(frag.data.len() as i32);
            if frag.frg == 0 {
                break;
            }
        }
        length
    }

    /// `ikcp_recv`: the message's bytes go to `sink` (see [`copy_into`]).
    /// A negative `len` peeks (`-len` bytes of buffer).
    pub(crate) fn recv_raw<H: Host<P>>(
        &mut self,
        sink: &mut impl FnMut(&[u8]),
        len: i32,
        host: &mut H,
    ) -> i32 {
        if self.rcv_queue.is_empty() {
            return -1;
        }
        let peek = len < 0;
        let len = len.wrapping_abs();
        let peeksize = self.peek_size_raw();
        if peeksize < 0 {
            return -2;
        }
        if peeksize > len {
            return -3;
        }
        let recover = self.nrcv_que() >= self.rcv_wnd;

        let mut total = 0i32;
        let mut index = 0usize;
        let mut copy_out = |bytes: &[u8]| {
            sink(bytes);
            total = total.wrapping_add(bytes.len() as i32);
        };
        loop {
            let (sn, frg) = if peek {
                let Some(frag) = self.rcv_queue.get(index) else {
                    break;
                };
                copy_out(frag.data.as_bytes());
                index += 1;
                (frag.sn, frag.frg)
            } else {
                let Some(frag) = self.rcv_queue.pop_front() else {
                    break;
                };
                copy_out(frag.data.as_bytes());
                self.recycle(frag.data);
                (frag.sn, frag.frg)
            };
            self.log(host, LogMask::RECV, format_args!("recv sn={sn}"));
            if frg == 0 {
                break;
            }
        }

        self.drain_in_order();

        if self.nrcv_que() < self.rcv_wnd && recover {
            self.probe |= ASK_TELL;
        }
        total
    }

    /// Moves segments that are now in order from the receive window to the
    /// receive queue, while the queue has room.
    #[inline]
    pub(super) fn drain_in_order(&mut self) {
        if self.rcv_buf.len() == 0 {
            return;
        }
        while self.nrcv_que() < self.rcv_wnd {
            let Some(frag) = self.rcv_buf.pop_next(self.rcv_nxt) else {
                break;
            };
            self.rcv_queue.push_back(frag);
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        }
    }

    pub(super) fn parse_data(&mut self, frag: Fragment<P>) {
        let sn = frag.sn;
        if diff(sn, self.rcv_nxt.wrapping_add(self.rcv_wnd)) >= 0 || diff(sn, self.rcv_nxt) < 0 {
            self.stats.duplicate_segments += 1;
            return;
        }
        if sn == self.rcv_nxt && self.rcv_buf.len() == 0 && self.nrcv_que() < self.rcv_wnd {
            // In order with nothing waiting: straight to the queue, which is
            // where inserting and draining would put it.
            self.rcv_queue.push_back(frag);
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            return;
        }
        if let Err(duplicate) = self.rcv_buf.insert(self.rcv_nxt, frag) {
            self.stats.duplicate_segments += 1;
            self.recycle(duplicate.data);
        }
        self.drain_in_order();
    }
}

/// A `recv_raw` sink that copies into `buf` (none: the bytes are dropped,
/// as `ikcp_recv` does with a null buffer). `recv_raw` checks the message
/// fits; the copy stays in bounds regardless.
pub(crate) fn copy_into(mut buf: Option<&mut [u8]>) -> impl FnMut(&[u8]) + '_ {
    let mut copied = 0usize;
    move |bytes: &[u8]| {
        if let Some(out) = buf.as_deref_mut() {
            let room = out.len().saturating_sub(copied).min(bytes.len());
            out[copied..copied + room].copy_from_slice(&bytes[..room]);
            copied += room;
        }
    }
}
