//! The listener's routing table without its I/O: which connection a datagram
//! belongs to, whether an unknown sender may open one, which half-open
//! connection gives way, and when half-open connections expire (once their
//! peer has been silent for the half-open timeout).
//!
//! The listener's task (`listener.rs`) receives, spawns and closes around
//! it; the `routing` fuzz target drives it with arbitrary datagrams from
//! arbitrary addresses and checks its bounds (see `ListenerLimits`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::admission::{Admission, HalfOpen, Key, Verdict};
use super::listener::ListenerLimits;
use crate::engine::{conv_of, segments, Command, SegmentHeader, HEADER_LEN};

/// Whether a datagram can be KCP (or our end-of-stream signal): every
/// segment has a known command and a length that fits. Fewer than 24 trailing
/// bytes are ignored, as the engine (and the reference) ignore them.
pub fn well_formed(d: &[u8]) -> bool {
    // Our end-of-stream signal: its command is not KCP's, on purpose.
    if super::end_of_stream::is_signal(d) {
        return true;
    }
    if d.len() < HEADER_LEN {
        return false;
    }
    let mut end = 0;
    for (at, h) in segments(d) {
        if Command::from_byte(h.cmd).is_none() {
            return false;
        }
        end = at + HEADER_LEN + h.len as usize;
    }
    // A header's worth or more left over: a segment ran past the end.
    d.len() - end < HEADER_LEN
}

/// Whether a datagram may open a connection: its first segment is data
/// with sequence number 0, which every KCP sender emits first.
pub fn opens_connection(d: &[u8]) -> bool {
    matches!(SegmentHeader::decode(d), Some(h) if h.cmd == Command::Push as u8 && h.sn == 0)
}

/// Where a well-formed datagram goes.
#[derive(Debug)]
pub enum Route<'a, T> {
    /// To this connection, under conversation `conv` (the one assigned to a
    /// peer that still sends 0). If it is `half_open`, tell the table its
    /// peer was heard ([`Table::heard`]).
    Known {
        conv: u32,
        value: &'a T,
        half_open: bool,
    },
    /// Nowhere: no connection, and it cannot open one.
    Unknown,
    /// Nowhere yet: it may open a connection (see [`Table::admit`]).
    Opening { wire_conv: u32 },
}

/// What [`Table::make_room`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Room<T> {
    /// There was room.
    Free,
    /// The oldest half-open connection was removed to make room.
    Evicted(Key, T),
    /// No room: every connection is established.
    Full,
}

/// A live connection: `value` is what the listener keeps for it.
#[derive(Debug)]
struct Slot<T> {
    id: u64,
    /// Not established yet (then it is in `Table::half_open`).
    half_open: bool,
    value: T,
}

/// Connections by (peer, conversation), with the admission policy.
#[derive(Debug)]
pub struct Table<T> {
    admission: Admission,
    half_open: HalfOpen,
    slots: HashMap<Key, Slot<T>>,
    /// Peers that opened with conversation 0, and the id they were given.
    assigned: HashMap<SocketAddr, u32>,
    next_id: u64,
    max_connections: usize,
    max_half_open: usize,
    half_open_timeout: Duration,
}

impl<T> Table<T> {
    /// An empty table enforcing `limits` (its rate limits start full at `now`).
    pub fn new(limits: &ListenerLimits, now: Instant) -> Self {
        Table {
            admission: Admission::new(limits.openings_per_source, limits.openings_per_second, now),
            half_open: HalfOpen::default(),
            slots: HashMap::new(),
            assigned: HashMap::new(),
            next_id: 0,
            max_connections: limits.max_connections,
            max_half_open: limits.max_half_open,
            half_open_timeout: limits.half_open_timeout,
        }
    }

    /// Connections alive.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no connection is alive.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Half-open connections alive.
    pub fn half_open_len(&self) -> usize {
        self.half_open.len()
    }

    /// Peers whose conversation 0 maps to an assigned id.
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    pub fn assigned_len(&self) -> usize {
        self.assigned.len()
    }

    /// Whether connection `key` exists and is half-open.
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    pub fn is_half_open(&self, key: &Key) -> Option<bool> {
        self.slots.get(key).map(|s| s.half_open)
    }

    /// Where the well-formed datagram `d` from `peer` goes.
    pub fn route(&self, d: &[u8], peer: SocketAddr) -> Route<'_, T> {
        let wire_conv = conv_of(d).unwrap_or(0);
        let conv = match (wire_conv, self.assigned.get(&peer)) {
            (0, Some(&c)) => c,
            (c, _) => c,
        };
        if let Some(slot) = self.slots.get(&(peer, conv)) {
            return Route::Known {
                conv,
                value: &slot.value,
                half_open: slot.half_open,
            };
        }
        if opens_connection(d) {
            Route::Opening { wire_conv }
        } else {
            Route::Unknown
        }
    }

    /// The rate limits' decision on an opening by `peer` with `wire_conv`
    /// (a conv-0 opening is remembered as such: its retransmission carries
    /// 0 again, not the id it would have been given).
    pub fn admit(&mut self, peer: SocketAddr, wire_conv: u32, now: Instant) -> Verdict {
        self.admission.check((peer, wire_conv), now)
    }

    /// Makes room for one more connection. An established connection is
    /// never removed for a new one.
    pub fn make_room(&mut self) -> Room<T> {
        if self.slots.len() < self.max_connections && self.half_open.len() < self.max_half_open {
            return Room::Free;
        }
        let Some((id, key)) = self.half_open.oldest() else {
            return Room::Full;
        };
        self.half_open.remove(id);
        match self.remove(key, id) {
            Some(v) => Room::Evicted(key, v),
            None => Room::Free,
        }
    }

    /// The conversation a new connection of `peer` gets: `wire_conv`, or for
    /// 0 a fresh id from `fresh` that `peer` does not use yet.
    pub fn conv_for(
        &self,
        peer: SocketAddr,
        wire_conv: u32,
        mut fresh: impl FnMut() -> u32,
    ) -> u32 {
        if wire_conv != 0 {
            return wire_conv;
        }
        loop {
            let c = fresh();
            if c != 0 && !self.slots.contains_key(&(peer, c)) {
                return c;
            }
        }
    }

    /// The id [`insert`](Table::insert) gives the next connection.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Adds a half-open connection (after [`make_room`](Table::make_room))
    /// and returns its id, which later events about it carry.
    pub fn insert(&mut self, key: Key, wire_conv: u32, value: T, now: Instant) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(old) = self.slots.insert(
            key,
            Slot {
                id,
                half_open: true,
                value,
            },
        ) {
            // Callers look the key up first; never leave a stale age behind.
            self.half_open.remove(old.id);
        }
        if wire_conv == 0 {
            self.assigned.insert(key.0, key.1);
        }
        self.half_open.insert(now, id, key);
        id
    }

    /// Connection `id` at `key` is established: it no longer expires or
    /// gives way.
    pub fn established(&mut self, key: Key, id: u64) {
        if let Some(slot) = self.slots.get_mut(&key).filter(|s| s.id == id) {
            slot.half_open = false;
            self.half_open.remove(id);
        }
    }

    /// The peer of half-open connection `key` was heard at `now` (a datagram
    /// was routed to it): its half-open timeout starts again. A forged
    /// opening is never followed by more; a real peer whose first answers
    /// were lost keeps retransmitting its opening until it hears one.
    pub fn heard(&mut self, key: Key, now: Instant) {
        if let Some(slot) = self.slots.get(&key).filter(|s| s.half_open) {
            self.half_open.heard(slot.id, now);
        }
    }

    /// Removes connection `id` at `key` (its task ended, or it was closed),
    /// if it is still there.
    pub fn remove(&mut self, key: Key, id: u64) -> Option<T> {
        if !self.slots.get(&key).is_some_and(|s| s.id == id) {
            return None;
        }
        let slot = self.slots.remove(&key)?;
        if slot.half_open {
            self.half_open.remove(id);
        }
        if self.assigned.get(&key.0) == Some(&key.1) {
            self.assigned.remove(&key.0);
        }
        Some(slot.value)
    }

    /// When the next half-open connection expires: the one whose peer has
    /// been silent longest.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.half_open
            .most_silent()
            .map(|(heard, ..)| heard + self.half_open_timeout)
    }

    /// Removes the half-open connections whose peers were silent for the
    /// half-open timeout by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(Key, T)> {
        let mut gone = Vec::new();
        while let Some((heard, id, key)) = self.half_open.most_silent() {
            if heard + self.half_open_timeout > now {
                break;
            }
            self.half_open.remove(id);
            if let Some(v) = self.remove(key, id) {
                gone.push((key, v));
            }
        }
        gone
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One encoded segment: also used by the listener's tests.
    pub(crate) fn segment(conv: u32, cmd: u8, sn: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        SegmentHeader {
            conv,
            cmd,
            sn,
            len: payload.len() as u32,
            ..Default::default()
        }
        .encode(&mut v);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn malformed_datagrams_are_recognised() {
        let good = segment(5, Command::Push as u8, 0, b"abc");
        assert!(well_formed(&good));
        assert!(!well_formed(&good[..good.len() - 1]), "truncated payload");
        assert!(!well_formed(&good[..10]), "truncated header");
        assert!(!well_formed(&segment(5, 99, 0, b"")), "unknown command");
        let mut two = good.clone();
        two.extend_from_slice(&segment(5, Command::Ack as u8, 0, b""));
        assert!(well_formed(&two));
        two.extend_from_slice(&[0; 30]);
        assert!(!well_formed(&two), "trailing garbage as long as a header");
        assert!(opens_connection(&good));
        assert!(!opens_connection(&segment(1, Command::Push as u8, 3, b"")));
        assert!(!opens_connection(&segment(1, Command::Ack as u8, 0, b"")));
    }

    #[test]
    fn established_connections_never_give_way() {
        let now = Instant::now();
        let limits = ListenerLimits {
            max_connections: 2,
            max_half_open: 2,
            ..ListenerLimits::default()
        };
        let mut t: Table<u8> = Table::new(&limits, now);
        let peer = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let a = t.insert((peer(1), 1), 1, 1, now);
        t.established((peer(1), 1), a);
        assert_eq!(t.make_room(), Room::Free);
        t.insert((peer(2), 2), 2, 2, now);
        // Full: the half-open one gives way, then nothing does.
        assert_eq!(t.make_room(), Room::Evicted((peer(2), 2), 2));
        assert_eq!(t.make_room(), Room::Free);
        t.insert((peer(3), 3), 3, 3, now);
        assert_eq!(t.make_room(), Room::Evicted((peer(3), 3), 3));
        let b = t.insert((peer(4), 4), 4, 4, now);
        t.established((peer(4), 4), b);
        assert_eq!(
            t.make_room(),
            Room::Full,
            "only established connections left"
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn conv_zero_openings_get_an_id_and_keep_it() {
        let now = Instant::now();
        let mut t: Table<()> = Table::new(&ListenerLimits::default(), now);
        let peer = SocketAddr::from(([10, 0, 0, 1], 9));
        let opening = segment(0, Command::Push as u8, 0, b"hi");
        let Route::Opening { wire_conv: 0 } = t.route(&opening, peer) else {
            panic!("a conv-0 opening");
        };
        let mut ids = [0, 77].into_iter();
        let conv = t.conv_for(peer, 0, || ids.next().unwrap());
        assert_eq!(conv, 77, "0 is never assigned");
        let id = t.insert((peer, conv), 0, (), now);
        assert!(matches!(
            t.route(&opening, peer),
            Route::Known { conv: 77, .. }
        ));
        // Expiry removes it and its assignment.
        assert!(t.expire(now).is_empty());
        let gone = t.expire(now + ListenerLimits::default().half_open_timeout);
        assert_eq!(gone.len(), 1);
        assert_eq!(t.assigned_len(), 0);
        assert!(t.remove((peer, conv), id).is_none());
    }

    #[test]
    fn a_half_open_connection_expires_once_its_peer_is_silent() {
        let t0 = Instant::now();
        let timeout = ListenerLimits::default().half_open_timeout;
        let ms = Duration::from_millis;
        let mut t: Table<()> = Table::new(&ListenerLimits::default(), t0);
        let peer = SocketAddr::from(([10, 0, 0, 1], 9));
        let opening = segment(5, Command::Push as u8, 0, b"hi");
        t.insert((peer, 5), 5, (), t0);
        // A KCP sender whose first answers are lost retransmits its opening
        // with a growing timeout; each copy restarts the half-open clock.
        let mut at = t0;
        for gap in [200, 300, 450, 675, 1012, 1518, 2277] {
            at += ms(gap);
            assert!(t.expire(at).is_empty(), "expired at {:?}", at - t0);
            let Route::Known {
                half_open: true, ..
            } = t.route(&opening, peer)
            else {
                panic!("routed to the half-open connection");
            };
            t.heard((peer, 5), at);
            assert_eq!(t.next_expiry(), Some(at + timeout));
        }
        assert!(at - t0 > 2 * timeout);
        // Silent from then on: it expires a timeout after it was last heard.
        assert!(t.expire(at + timeout - ms(1)).is_empty());
        assert_eq!(t.expire(at + timeout).len(), 1);
        assert!(t.is_empty());

        // Established, it no longer expires, and hearing from it changes
        // nothing.
        let id = t.insert((peer, 6), 6, (), at);
        t.established((peer, 6), id);
        t.heard((peer, 6), at + timeout);
        assert_eq!(t.next_expiry(), None);
        assert!(t.expire(at + 10 * timeout).is_empty());
    }
}
