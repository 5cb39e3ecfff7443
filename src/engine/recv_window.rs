//! Segments received out of order, waiting for the gap before them to fill.
//!
//! A ring indexed by `sn - rcv_nxt` makes insertion O(1). The ring is capped:
//! a program may configure an enormous receive window, and a hostile peer
//! could then make one datagram allocate the whole ring; segments that far
//! ahead go to a small sorted side list instead.

use std::collections::VecDeque;

/// A received data segment (or message fragment).
#[derive(Debug)]
pub(crate) struct Fragment<P> {
    pub sn: u32,
    pub frg: u32,
    pub data: P,
}

/// Ring slots beyond this offset are not allocated eagerly.
const RING_LIMIT: usize = 1 << 15;

#[derive(Debug)]
pub(crate) struct RecvWindow<P> {
    /// `slots[i]` holds sequence number `next + i`.
    slots: VecDeque<Option<Fragment<P>>>,
    /// Segments at offset >= RING_LIMIT, sorted by sequence number.
    far: Vec<Fragment<P>>,
    live: usize,
}

impl<P> RecvWindow<P> {
    pub fn new() -> Self {
        RecvWindow {
            slots: VecDeque::new(),
            far: Vec::new(),
            live: 0,
        }
    }

    /// Segments held.
    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Stores `frag`, whose offset from `next` (the next expected sequence
    /// number) the caller has checked to be inside the window. Returns the
    /// fragment back if that sequence number is already held.
    pub fn insert(&mut self, next: u32, frag: Fragment<P>) -> Result<(), Fragment<P>> {
        let off = frag.sn.wrapping_sub(next) as usize;
        if off >= RING_LIMIT {
            let key = |f: &Fragment<P>| f.sn.wrapping_sub(next);
            return match self.far.binary_search_by_key(&key(&frag), key) {
                Ok(_) => Err(frag),
                Err(at) => {
                    self.far.insert(at, frag);
                    self.live += 1;
                    Ok(())
                }
            };
        }
        if off == self.slots.len() {
            // The usual case, an in-order arrival: no gap to pad.
            self.slots.push_back(Some(frag));
            self.live += 1;
            return Ok(());
        }
        if off > self.slots.len() {
            self.slots.resize_with(off + 1, || None);
        }
        let slot = &mut self.slots[off];
        if slot.is_some() {
            return Err(frag);
        }
        *slot = Some(frag);
        self.live += 1;
        Ok(())
    }

    /// Takes the segment with sequence number `next`, if present; the window
    /// then starts at `next + 1`.
    #[inline]
    pub fn pop_next(&mut self, next: u32) -> Option<Fragment<P>> {
        let frag = match self.slots.front() {
            Some(Some(_)) => self.slots.pop_front().flatten()?,
            _ => return None,
        };
        self.live -= 1;
        if !self.far.is_empty() {
            self.pull_far_into_ring(next.wrapping_add(1));
        }
        Some(frag)
    }

    /// The ring moved: far segments that now fit move into it.
    fn pull_far_into_ring(&mut self, next: u32) {
        while let Some(first) = self.far.first() {
            let off = first.sn.wrapping_sub(next) as usize;
            if off >= RING_LIMIT {
                break;
            }
            let f = self.far.remove(0);
            if off >= self.slots.len() {
                self.slots.resize_with(off + 1, || None);
            }
            self.slots[off] = Some(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(sn: u32) -> Fragment<()> {
        Fragment {
            sn,
            frg: 0,
            data: (),
        }
    }

    #[test]
    fn out_of_order_then_in_order() {
        let mut w = RecvWindow::new();
        w.insert(0, frag(2)).unwrap();
        w.insert(0, frag(1)).unwrap();
        assert!(w.insert(0, frag(2)).is_err());
        assert!(w.pop_next(0).is_none());
        w.insert(0, frag(0)).unwrap();
        assert_eq!(w.pop_next(0).unwrap().sn, 0);
        assert_eq!(w.pop_next(1).unwrap().sn, 1);
        assert_eq!(w.pop_next(2).unwrap().sn, 2);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn far_segments_do_not_allocate_the_ring() {
        let mut w = RecvWindow::new();
        let far = RING_LIMIT as u32 + 5;
        w.insert(0, frag(far)).unwrap();
        assert!(w.insert(0, frag(far)).is_err());
        assert!(w.slots.is_empty());
        assert_eq!(w.len(), 1);
        for sn in 0..6 {
            w.insert(sn, frag(sn)).unwrap();
            assert_eq!(w.pop_next(sn).unwrap().sn, sn);
        }
        assert!(w.far.is_empty());
        assert_eq!(w.len(), 1);
    }
}
