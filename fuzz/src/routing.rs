//! The routing target: the listener's routing table and admission policy
//! (`kcp::runtime::fuzzing::Table`, what the listener's task runs for every
//! datagram) fed arbitrary datagrams from arbitrary addresses, with the
//! connection tasks' events (established, gone) and the clock in the
//! input's hands, under small limits the input chooses so that full tables
//! are the common case.
//!
//! Checked after every step:
//! - nothing panics;
//! - at most `max_connections` connections and `max_half_open` half-open
//!   ones exist, and the table agrees with a model of what was inserted,
//!   established and removed;
//! - an established connection is never evicted for an opening nor expired:
//!   only its own task ending removes it;
//! - a half-open connection is gone once its peer has been silent (no
//!   datagram routed to it) for its timeout, and not before;
//! - a datagram for a live connection is routed to it; an opening is only
//!   admitted when it is well formed, a data segment with sequence number 0,
//!   and within the rate limits;
//! - conversation 0 peers get a non-zero id that routes their later
//!   datagrams, and assignments never outnumber connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use kcp::engine::{Command, SegmentHeader, HEADER_LEN};
use kcp::runtime::fuzzing::{opens_connection, well_formed, Key, Room, Route, Table, Verdict};
use kcp::runtime::ListenerLimits;
use tokio::time::Instant;

use crate::input::Input;

/// Steps per input.
const MAX_STEPS: usize = 4_000;

/// What the model knows of a live connection.
#[derive(Debug, Clone, Copy)]
struct Known {
    id: u64,
    established: bool,
    /// When its peer was last heard (opened, or a datagram routed to it).
    heard: Instant,
}

fn peer(input: &mut Input) -> SocketAddr {
    // 8 addresses x 8 ports: collisions (and the per-source limit) are common.
    let b = input.u8();
    SocketAddr::from(([10, 0, 0, b & 7], 4000 + u16::from(b >> 5)))
}

fn datagram(input: &mut Input) -> Vec<u8> {
    let kind = input.u8();
    let conv = match input.u8() % 4 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => input.u32(),
    };
    let mut d = Vec::new();
    match kind % 6 {
        // Garbage.
        0 => {
            let n = usize::from(input.u8());
            d.extend_from_slice(input.bytes(n));
        }
        // Segments, well formed or not.
        _ => {
            for _ in 0..=(kind >> 6) {
                let cmd = match kind % 6 {
                    1 | 2 => Command::Push as u8,
                    3 => Command::Ack as u8,
                    4 => [Command::WindowAsk as u8, Command::WindowTell as u8]
                        [usize::from(kind >> 3 & 1)],
                    _ => input.u8(),
                };
                let sn = if kind % 6 == 1 {
                    0
                } else {
                    u32::from(input.u8())
                };
                let n = usize::from(input.u8() % 64);
                let payload = input.bytes(n);
                let mut len = payload.len() as u32;
                if input.u8() == 0xff {
                    len = input.u32(); // a length that lies
                }
                SegmentHeader {
                    conv,
                    cmd,
                    sn,
                    len,
                    ..Default::default()
                }
                .encode(&mut d);
                d.extend_from_slice(payload);
            }
            if kind & 0x20 != 0 {
                d.truncate(d.len() - usize::from(input.u8()) % d.len().max(1));
            }
        }
    }
    d
}

/// How often each outcome happened in a run, so a test can check the
/// random inputs reach every path.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reached {
    pub routed: u64,
    pub opened: u64,
    pub rate_limited: u64,
    pub evicted: u64,
    pub no_room: u64,
    pub expired: u64,
    pub established: u64,
    pub conv_assigned: u64,
}

impl Reached {
    pub fn add(&mut self, o: &Reached) {
        self.routed += o.routed;
        self.opened += o.opened;
        self.rate_limited += o.rate_limited;
        self.evicted += o.evicted;
        self.no_room += o.no_room;
        self.expired += o.expired;
        self.established += o.established;
        self.conv_assigned += o.conv_assigned;
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    run_reached(data);
}

/// Runs one input and says what it reached.
pub fn run_reached(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let mut input = Input::new(data);
    let limits = ListenerLimits {
        max_connections: 1 + usize::from(input.u8() % 16),
        max_half_open: 1 + usize::from(input.u8() % 8),
        half_open_timeout: Duration::from_millis(u64::from(input.u16() % 4_000)),
        openings_per_source: u32::from(input.u8() % 6),
        openings_per_second: u32::from(input.u8() % 40),
        ..ListenerLimits::default()
    };
    let start = Instant::now();
    let mut now = start;
    let mut table: Table<Key> = Table::new(&limits, now);
    let mut model: HashMap<Key, Known> = HashMap::new();
    let mut fresh = input.u32();

    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0..=3 => {
                let from = peer(&mut input);
                let d = datagram(&mut input);
                if !well_formed(&d) {
                    continue; // the listener drops it before the table
                }
                match table.route(&d, from) {
                    Route::Known {
                        conv,
                        value,
                        half_open,
                    } => {
                        reached.routed += 1;
                        assert_eq!(*value, (from, conv), "routed to another connection");
                        let k = model
                            .get_mut(&(from, conv))
                            .expect("routed to a dead connection");
                        assert_eq!(half_open, !k.established);
                        // As the listener does for a half-open connection.
                        if half_open {
                            k.heard = now;
                            table.heard((from, conv), now);
                        }
                    }
                    Route::Unknown => {
                        assert!(!opens_connection(&d));
                        let conv = kcp::engine::conv_of(&d).unwrap();
                        assert!(
                            conv == 0 || !model.contains_key(&(from, conv)),
                            "a live connection's datagram was not routed"
                        );
                    }
                    Route::Opening { wire_conv } => {
                        assert!(opens_connection(&d));
                        assert!(!model.contains_key(&(from, wire_conv)) || wire_conv == 0);
                        if table.admit(from, wire_conv, now) != Verdict::Admit {
                            reached.rate_limited += 1;
                            continue;
                        }
                        match table.make_room() {
                            Room::Free => {}
                            Room::Evicted(key, value) => {
                                assert_eq!(key, value);
                                let k = model.remove(&key).expect("evicted an unknown connection");
                                assert!(!k.established, "an established connection gave way");
                                reached.evicted += 1;
                            }
                            Room::Full => {
                                assert!(
                                    model.values().all(|k| k.established),
                                    "no room although a half-open connection exists"
                                );
                                assert!(model.len() >= limits.max_connections);
                                reached.no_room += 1;
                                continue;
                            }
                        }
                        let conv = table.conv_for(from, wire_conv, || {
                            // Full period mod 64, so a free id is always found.
                            fresh = fresh.wrapping_mul(0x9E37_79B9).wrapping_add(1) % 64;
                            fresh
                        });
                        assert_ne!(conv, 0);
                        let key = (from, conv);
                        let id = table.insert(key, wire_conv, key, now);
                        let replaced = model.insert(
                            key,
                            Known {
                                id,
                                established: false,
                                heard: now,
                            },
                        );
                        assert!(replaced.is_none(), "opened a live connection twice");
                        reached.opened += 1;
                        if wire_conv == 0 {
                            reached.conv_assigned += 1;
                            assert!(
                                matches!(table.route(&d, from), Route::Known { conv: c, .. } if c == conv)
                            );
                        }
                    }
                }
            }
            4 => now += Duration::from_millis(u64::from(input.u16() % 2_000)),
            // A connection's task: established, or gone (its own end).
            5 | 6 => {
                let mut keys: Vec<Key> = model.keys().copied().collect();
                if keys.is_empty() {
                    continue;
                }
                keys.sort();
                let key = keys[usize::from(input.u8()) % keys.len()];
                let k = model[&key];
                // A stale id (an event of an earlier connection at this key) is ignored.
                let id = if input.u8() == 0 {
                    k.id.wrapping_add(1)
                } else {
                    k.id
                };
                if input.bool() {
                    table.established(key, id);
                    if id == k.id && !k.established {
                        model.get_mut(&key).unwrap().established = true;
                        reached.established += 1;
                    }
                    assert_eq!(table.is_half_open(&key), Some(!model[&key].established));
                } else {
                    let removed = table.remove(key, id);
                    assert_eq!(removed.is_some(), id == k.id);
                    if id == k.id {
                        model.remove(&key);
                    }
                }
            }
            _ => {
                for (key, value) in table.expire(now) {
                    assert_eq!(key, value);
                    let k = model.remove(&key).expect("expired an unknown connection");
                    assert!(!k.established, "an established connection expired");
                    assert!(k.heard + limits.half_open_timeout <= now, "expired early");
                    reached.expired += 1;
                }
                for k in model.values() {
                    assert!(
                        k.established || k.heard + limits.half_open_timeout > now,
                        "a half-open connection outlived its timeout"
                    );
                }
            }
        }
        assert_eq!(table.len(), model.len());
        assert!(
            table.len() <= limits.max_connections,
            "{} connections",
            table.len()
        );
        let half_open = model.values().filter(|k| !k.established).count();
        assert_eq!(table.half_open_len(), half_open);
        assert!(half_open <= limits.max_half_open);
        assert!(table.assigned_len() <= table.len());
        if let Some(at) = table.next_expiry() {
            assert!(at >= start);
        }
    }
    // Every datagram a peer could still send reaches its own connection.
    for (&(from, conv), _) in model.iter() {
        let mut d = Vec::new();
        SegmentHeader {
            conv,
            cmd: Command::Ack as u8,
            ..Default::default()
        }
        .encode(&mut d);
        debug_assert_eq!(d.len(), HEADER_LEN);
        match table.route(&d, from) {
            Route::Known { value, .. } => assert_eq!(*value, (from, conv)),
            other => panic!("live connection {from}/{conv} unreachable: {other:?}"),
        }
    }
    reached
}
