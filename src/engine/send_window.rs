//! Every segment not yet acknowledged: first those in flight, then those
//! queued by `send` and not yet given a sequence number, in one ring indexed
//! by `sn - base`.
//!
//! Sequence numbers in flight are contiguous (`base .. base + sent`); an
//! acknowledged segment leaves a hole (`None`) until everything before it is
//! acknowledged too, so acknowledging any segment is O(1). Queued segments
//! follow in the order they will be numbered, so starting one moves nothing.

use std::collections::VecDeque;

use super::constants::diff;

/// One data segment, in flight or queued, with its retransmission state.
/// Fields other than `frg` and `data` are set when the segment starts.
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

impl<P> InFlight<P> {
    /// A queued fragment: `frg` fragments of its message follow it.
    pub fn queued(frg: u32, data: P) -> Self {
        InFlight {
            conv: 0,
            frg,
            wnd: 0,
            ts: 0,
            sn: 0,
            una: 0,
            resendts: 0,
            rto: 0,
            fastack: 0,
            xmit: 0,
            data,
        }
    }
}

#[derive(Debug)]
pub(crate) struct SendWindow<P> {
    /// `slots[..sent]` are in flight (holes acknowledged), `slots[sent..]`
    /// are queued (never holes).
    slots: VecDeque<Option<InFlight<P>>>,
    /// Sequence number of `slots[0]`; `base + sent` is always `snd_nxt`.
    base: u32,
    /// Slots in the in-flight region.
    sent: usize,
    /// Segments in flight (not holes).
    live: usize,
    /// One past the highest sequence number acknowledged one by one (never
    /// behind `base`): every segment before it that is still in flight was
    /// skipped by an acknowledgement, i.e. is probably lost.
    ack_frontier: u32,
    /// Those skipped segments' numbers, ascending (some may since have been
    /// acknowledged). Fast-retransmit counting visits only these, not the
    /// acknowledged holes between them.
    skipped: VecDeque<u32>,
}

impl<P> SendWindow<P> {
    pub fn new() -> Self {
        SendWindow {
            slots: VecDeque::new(),
            base: 0,
            sent: 0,
            live: 0,
            ack_frontier: 0,
            skipped: VecDeque::new(),
        }
    }

    /// Number of unacknowledged segments in flight.
    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Number of queued segments.
    #[inline]
    pub fn queued(&self) -> usize {
        self.slots.len() - self.sent
    }

    /// Sequence number of the oldest unacknowledged segment in flight.
    #[inline]
    pub fn first_sn(&self) -> Option<u32> {
        if self.live == 0 {
            None
        } else {
            Some(self.base)
        }
    }

    /// Queues a segment behind every other.
    #[inline]
    pub fn queue(&mut self, seg: InFlight<P>) {
        self.slots.push_back(Some(seg));
    }

    /// The last queued segment, if any is queued.
    #[inline]
    pub fn last_queued_mut(&mut self) -> Option<&mut InFlight<P>> {
        if self.queued() == 0 {
            return None;
        }
        self.slots.back_mut()?.as_mut()
    }

    /// Moves the first queued segment into flight, with sequence number
    /// `base + sent` (the caller's `snd_nxt`), and returns it for the caller
    /// to fill in; `None` when nothing is queued.
    #[inline]
    pub fn start_next(&mut self) -> Option<&mut InFlight<P>> {
        let seg = self.slots.get_mut(self.sent)?.as_mut()?;
        self.sent += 1;
        self.live += 1;
        Some(seg)
    }

    #[inline]
    fn offset(&self, sn: u32) -> Option<usize> {
        let off = sn.wrapping_sub(self.base) as usize;
        (off < self.sent).then_some(off)
    }

    /// The segment in flight with sequence number `sn`, if unacknowledged.
    #[inline]
    pub fn get(&self, sn: u32) -> Option<&InFlight<P>> {
        let off = self.offset(sn)?;
        self.slots[off].as_ref()
    }

    /// The segment in flight with sequence number `sn`, if unacknowledged.
    #[inline]
    pub fn get_mut(&mut self, sn: u32) -> Option<&mut InFlight<P>> {
        let off = self.offset(sn)?;
        self.slots[off].as_mut()
    }

    /// Takes out the segment `sn` (an ACK for it arrived), if it was in flight.
    #[inline]
    pub fn remove(&mut self, sn: u32) -> Option<InFlight<P>> {
        let off = self.offset(sn)?;
        let seg = self.slots[off].take()?;
        self.live -= 1;
        let frontier = self.frontier_offset();
        if off >= frontier {
            if off > frontier {
                self.skip_range(frontier, off);
            }
            self.ack_frontier = sn.wrapping_add(1);
        }
        self.trim_front();
        Some(seg)
    }

    /// Takes out every segment in flight with `sn` before `una` (cumulative
    /// acknowledgement), handing each to `removed`.
    pub fn remove_before(&mut self, una: u32, mut removed: impl FnMut(InFlight<P>)) {
        while self.sent > 0 && diff(una, self.base) > 0 {
            if let Some(seg) = self.slots.pop_front().flatten() {
                self.live -= 1;
                removed(seg);
            }
            self.sent -= 1;
            self.base = self.base.wrapping_add(1);
        }
        self.trim_front();
    }

    /// Records the segments still in flight at offsets `from..to` as skipped
    /// by an acknowledgement. Each slot is passed at most once.
    fn skip_range(&mut self, from: usize, to: usize) {
        for (i, slot) in self.slots.range(from..to).enumerate() {
            if slot.is_some() {
                let skipped = self.base.wrapping_add((from + i) as u32);
                self.skipped.push_back(skipped);
            }
        }
    }

    #[inline]
    fn trim_front(&mut self) {
        while self.sent > 0 {
            match self.slots.front() {
                Some(None) => {
                    self.slots.pop_front();
                    self.sent -= 1;
                    self.base = self.base.wrapping_add(1);
                }
                _ => break,
            }
        }
        if diff(self.ack_frontier, self.base) < 0 {
            self.ack_frontier = self.base;
        }
        if !self.skipped.is_empty() {
            self.forget_skipped_before_base();
        }
    }

    fn forget_skipped_before_base(&mut self) {
        while let Some(&first) = self.skipped.front() {
            if diff(first, self.base) >= 0 {
                break;
            }
            self.skipped.pop_front();
        }
    }

    /// Offset of the acknowledgement frontier from `base` (0 when behind).
    #[inline]
    fn frontier_offset(&self) -> usize {
        match diff(self.ack_frontier, self.base) {
            d if d <= 0 => 0,
            d => (d as usize).min(self.sent),
        }
    }

    /// The first segment in flight at or after `sn`, in send order, for which
    /// `due` holds; `None` when there is none. The scan runs over the ring's
    /// memory directly, as flush calls it for every segment in flight.
    #[inline]
    pub fn next_due(&self, sn: u32, mut due: impl FnMut(&InFlight<P>) -> bool) -> Option<u32> {
        let start = if diff(sn, self.base) < 0 {
            0
        } else {
            sn.wrapping_sub(self.base) as usize
        };
        if start >= self.sent {
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
        let end = self.sent;
        let offset = if start < front.len() {
            let first = &front[start..end.min(front.len())];
            match hit(first, &mut due) {
                Some(i) => Some(start + i),
                None if end > front.len() => {
                    hit(&back[..end - front.len()], &mut due).map(|i| front.len() + i)
                }
                None => None,
            }
        } else {
            let from = start - front.len();
            hit(&back[from..end - front.len()], &mut due).map(|i| front.len() + from + i)
        };
        offset.map(|i| self.base.wrapping_add(i as u32))
    }

    /// Segments in flight, in send order.
    pub fn iter(&self) -> impl Iterator<Item = &InFlight<P>> {
        self.slots.range(..self.sent).flatten()
    }

    /// Calls `f` with every segment in flight whose `sn` is at most `last`,
    /// in send order. Behind the acknowledgement frontier only the skipped
    /// segments are visited, so acknowledged holes cost nothing.
    pub fn for_each_through(&mut self, last: u32, mut f: impl FnMut(&mut InFlight<P>)) {
        if self.live == 0 || diff(last, self.base) < 0 {
            return;
        }
        let end = (diff(last, self.base) as usize + 1).min(self.sent);
        let frontier = self.frontier_offset().min(end);
        let (slots, base) = (&mut self.slots, self.base);
        // Skipped numbers since acknowledged are dropped on the way.
        self.skipped.retain(|&sn| {
            let off = sn.wrapping_sub(base) as usize;
            match slots.get_mut(off) {
                Some(Some(seg)) if off < frontier => {
                    f(seg);
                    true
                }
                Some(Some(_)) => true,
                _ => false,
            }
        });
        for seg in slots.range_mut(frontier..end).flatten() {
            f(seg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window whose `base` starts at `first`, with `count` segments sent.
    fn window(first: u32, count: u32) -> SendWindow<()> {
        let mut w = SendWindow::new();
        w.base = first;
        w.ack_frontier = first;
        for i in 0..count {
            w.queue(InFlight::queued(0, ()));
            w.start_next().unwrap().sn = first.wrapping_add(i);
        }
        w
    }

    #[test]
    fn holes_are_trimmed_once_the_front_is_acked() {
        let mut w = window(10, 5);
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
        let mut w = window(u32::MAX - 2, 6);
        w.remove_before(1, drop);
        assert_eq!(w.first_sn(), Some(1));
        assert_eq!(w.len(), 2);
        w.remove_before(u32::MAX - 10, drop);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn walking_skips_holes() {
        let mut w = window(0, 5);
        w.remove(1);
        w.remove(2);
        assert_eq!(w.next_due(1, |_| true), Some(3));
        assert_eq!(w.next_due(0, |seg| seg.sn > 3), Some(4));
        assert_eq!(w.next_due(5, |_| true), None);
        let mut seen = Vec::new();
        w.for_each_through(3, |seg| seen.push(seg.sn));
        assert_eq!(seen, [0, 3]);
    }

    fn visited_through(w: &mut SendWindow<()>, last: u32) -> Vec<u32> {
        let mut seen = Vec::new();
        w.for_each_through(last, |seg| seen.push(seg.sn));
        seen
    }

    #[test]
    fn fast_ack_walk_visits_every_segment_in_flight_and_no_hole() {
        let mut w = window(0, 10);
        w.remove(3);
        w.remove(1);
        w.remove(7);
        assert_eq!(visited_through(&mut w, 8), [0, 2, 4, 5, 6, 8]);
        assert_eq!(visited_through(&mut w, 4), [0, 2, 4]);
        // An older ACK arriving late does not move the frontier back.
        w.remove(5);
        assert_eq!(visited_through(&mut w, 9), [0, 2, 4, 6, 8, 9]);
        w.remove_before(4, drop);
        assert_eq!(visited_through(&mut w, 9), [4, 6, 8, 9]);
        w.remove_before(9, drop);
        assert_eq!(visited_through(&mut w, 20), [9]);
    }

    #[test]
    fn fast_ack_walk_across_sequence_wrap() {
        let mut w = window(u32::MAX - 3, 8);
        w.remove(1);
        assert_eq!(
            visited_through(&mut w, 2),
            [u32::MAX - 3, u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 2]
        );
    }

    #[test]
    fn queued_segments_are_invisible_to_acks_and_walks() {
        let mut w = window(100, 2);
        w.queue(InFlight::queued(1, ()));
        w.queue(InFlight::queued(0, ()));
        assert_eq!((w.len(), w.queued()), (2, 2));
        // An ACK or una beyond what was sent touches only what is in flight.
        assert!(w.remove(102).is_none());
        w.remove_before(110, drop);
        assert_eq!((w.len(), w.queued(), w.first_sn()), (0, 2, None));
        assert_eq!(w.next_due(0, |_| true), None);
        assert_eq!(w.iter().count(), 0);
        assert_eq!(w.last_queued_mut().map(|s| s.frg), Some(0));
        // The queue starts where the acknowledged ones ended.
        assert_eq!(w.base, 102);
        assert_eq!(w.start_next().map(|s| s.frg), Some(1));
        assert_eq!((w.len(), w.queued()), (1, 1));
        assert_eq!(w.get(102).map(|s| s.frg), Some(1));
    }
}
