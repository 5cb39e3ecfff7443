//! Segments sent and not yet acknowledged, in a ring indexed by `sn - base`.
//!
//! Sequence numbers in flight are contiguous (`base .. base + len`); an
//! acknowledged segment leaves a hole (`None`) until everything before it is
//! acknowledged too, so acknowledging any segment is O(1).

use std::collections::VecDeque;

use super::constants::diff;

/// One data segment in flight, with its retransmission state.
#[derive(Debug)]
pub(crate) struct InFlight<P> {
    pub conv: u32,
    pub frg: u32,
    pub wnd: u32,
    pub ts: u32,
    pub sn: u32,
    pub una: u32,
    pub resendts: u32,
    pub rto: u32,
    pub fastack: u32,
    pub xmit: u32,
    pub data: P,
}

#[derive(Debug)]
pub(crate) struct SendWindow<P> {
    slots: VecDeque<Option<InFlight<P>>>,
    /// Sequence number of `slots[0]`.
    base: u32,
    /// Segments present (not holes).
    live: usize,
}

impl<P> SendWindow<P> {
    pub fn new() -> Self {
        SendWindow {
            slots: VecDeque::new(),
            base: 0,
            live: 0,
        }
    }

    /// Number of unacknowledged segments.
    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Sequence number of the oldest unacknowledged segment.
    #[inline]
    pub fn first_sn(&self) -> Option<u32> {
        if self.live == 0 {
            None
        } else {
            Some(self.base)
        }
    }

    /// Appends a freshly numbered segment; its `sn` must follow the last one.
    pub fn push(&mut self, seg: InFlight<P>) {
        if self.slots.is_empty() {
            self.base = seg.sn;
        }
        debug_assert_eq!(seg.sn, self.base.wrapping_add(self.slots.len() as u32));
        self.slots.push_back(Some(seg));
        self.live += 1;
    }

    fn offset(&self, sn: u32) -> Option<usize> {
        let off = sn.wrapping_sub(self.base) as usize;
        (off < self.slots.len()).then_some(off)
    }

    /// The segment with sequence number `sn`, if still unacknowledged.
    #[inline]
    pub fn get(&self, sn: u32) -> Option<&InFlight<P>> {
        let off = self.offset(sn)?;
        self.slots[off].as_ref()
    }

    /// The segment with sequence number `sn`, if still unacknowledged.
    #[inline]
    pub fn get_mut(&mut self, sn: u32) -> Option<&mut InFlight<P>> {
        let off = self.offset(sn)?;
        self.slots[off].as_mut()
    }

    /// Takes out the segment `sn` (an ACK for it arrived), if it was there.
    pub fn remove(&mut self, sn: u32) -> Option<InFlight<P>> {
        let off = self.offset(sn)?;
        let seg = self.slots[off].take()?;
        self.live -= 1;
        self.trim_front();
        Some(seg)
    }

    /// Takes out every segment with `sn` before `una` (cumulative
    /// acknowledgement), handing each to `removed`.
    pub fn remove_before(&mut self, una: u32, mut removed: impl FnMut(InFlight<P>)) {
        while !self.slots.is_empty() && diff(una, self.base) > 0 {
            if let Some(seg) = self.slots.pop_front().flatten() {
                self.live -= 1;
                removed(seg);
            }
            self.base = self.base.wrapping_add(1);
        }
        self.trim_front();
    }

    fn trim_front(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }

    /// The first segment at or after `sn`, in send order, for which `due`
    /// holds; `None` when there is none. The scan runs over the ring's
    /// memory directly, as flush calls it for every segment in flight.
    #[inline]
    pub fn next_due(&self, sn: u32, mut due: impl FnMut(&InFlight<P>) -> bool) -> Option<u32> {
        let start = if diff(sn, self.base) < 0 {
            0
        } else {
            sn.wrapping_sub(self.base) as usize
        };
        if start >= self.slots.len() {
            return None;
        }
        fn hit<P>(
            slots: &[Option<InFlight<P>>],
            due: &mut impl FnMut(&InFlight<P>) -> bool,
        ) -> Option<usize> {
            slots
                .iter()
                .position(|slot| matches!(slot, Some(seg) if due(seg)))
        }
        let (front, back) = self.slots.as_slices();
        let offset = if start < front.len() {
            match hit(&front[start..], &mut due) {
                Some(i) => Some(start + i),
                None => hit(back, &mut due).map(|i| front.len() + i),
            }
        } else {
            let from = start - front.len();
            hit(&back[from..], &mut due).map(|i| front.len() + from + i)
        };
        offset.map(|i| self.base.wrapping_add(i as u32))
    }

    /// Segments in send order.
    pub fn iter(&self) -> impl Iterator<Item = &InFlight<P>> {
        self.slots.iter().flatten()
    }

    /// Segments with `sn` up to and including `last`, in send order.
    pub fn iter_mut_through(&mut self, last: u32) -> impl Iterator<Item = &mut InFlight<P>> {
        let end = match diff(last, self.base) {
            d if d < 0 => 0,
            d => (d as usize + 1).min(self.slots.len()),
        };
        self.slots.range_mut(..end).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(sn: u32) -> InFlight<()> {
        InFlight {
            conv: 0,
            frg: 0,
            wnd: 0,
            ts: 0,
            sn,
            una: 0,
            resendts: 0,
            rto: 0,
            fastack: 0,
            xmit: 0,
            data: (),
        }
    }

    #[test]
    fn holes_are_trimmed_once_the_front_is_acked() {
        let mut w = SendWindow::new();
        for sn in 10..15 {
            w.push(seg(sn));
        }
        assert!(w.remove(12).is_some());
        assert!(w.remove(12).is_none());
        assert_eq!(w.first_sn(), Some(10));
        assert!(w.remove(10).is_some());
        assert!(w.remove(11).is_some());
        assert_eq!(w.first_sn(), Some(13));
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn cumulative_ack_across_wrap() {
        let mut w = SendWindow::new();
        for i in 0..6u32 {
            w.push(seg((u32::MAX - 2).wrapping_add(i)));
        }
        w.remove_before(1, drop);
        assert_eq!(w.first_sn(), Some(1));
        assert_eq!(w.len(), 2);
        w.remove_before(u32::MAX - 10, drop);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn walking_skips_holes() {
        let mut w = SendWindow::new();
        for sn in 0..5 {
            w.push(seg(sn));
        }
        w.remove(1);
        w.remove(2);
        assert_eq!(w.next_due(1, |_| true), Some(3));
        assert_eq!(w.next_due(0, |seg| seg.sn > 3), Some(4));
        assert_eq!(w.next_due(5, |_| true), None);
        assert_eq!(w.iter_mut_through(3).count(), 2);
    }
}
