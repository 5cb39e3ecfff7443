//! A Rust congestion controller installed on the engine: its hooks are
//! called with upstream 2.x's arguments, and the window it sets is the one
//! the engine sends with (even with `nocwnd`); the built-in algorithm
//! installed as a controller sends exactly what no controller sends.

use std::sync::{Arc, Mutex};

use kcp::engine::{BuiltIn, CongestionControl, Flavour, Window};
use kcp::Kcp;

/// Pins `cwnd` to `limit` and records every hook.
struct Pinned {
    limit: u32,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Pinned {
    fn note(&self, line: String) {
        self.seen.lock().unwrap().push(line);
    }
}

impl CongestionControl for Pinned {
    fn on_ack(&mut self, w: &mut Window, segs: u32, bytes: u32, prior: u32) {
        self.note(format!("ack {segs} {bytes} {prior}"));
        w.cwnd = self.limit;
    }
    fn on_tick(&mut self, w: &mut Window) {
        self.note("tick".into());
        w.cwnd = self.limit;
    }
    fn on_pkt_sent(
        &mut self,
        w: &mut Window,
        sn: u32,
        _ts: u32,
        len: u32,
        inflight: u32,
        xmit: u32,
    ) {
        assert_eq!(w.cwnd, self.limit);
        self.note(format!("sent {sn} {len} {inflight} {xmit}"));
    }
    fn on_pkt_acked(&mut self, _w: &mut Window, sn: u32, _ts: u32, len: u32, rtt: i32, _xmit: u32) {
        self.note(format!("acked {sn} {len} {rtt}"));
    }
    fn on_rtt(&mut self, _w: &mut Window, rtt: i32) {
        self.note(format!("rtt {rtt}"));
    }
}

/// Moves everything `from` emits at `now` into `to`; returns the datagrams.
fn carry(from: &mut Kcp, to: &mut Kcp, now: u32) -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    from.update(now, &mut |d: &[u8]| wire.push(d.to_vec()));
    for d in &wire {
        to.input(d).unwrap();
    }
    wire
}

#[test]
fn a_rust_controller_is_called_and_its_window_limits_sending() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (mut a, mut b) = (Kcp::new(3), Kcp::new(3));
    // No congestion window without a controller: nc = true.
    a.set_nodelay(1, 10, 0, true);
    b.set_nodelay(1, 10, 0, true);
    a.set_congestion_control(Pinned {
        limit: 3,
        seen: seen.clone(),
    });
    assert!(a.has_congestion_control());
    for _ in 0..40 {
        a.send(&[7u8; 1000]).unwrap();
    }
    let mut most_in_flight = 0;
    let mut delivered = 0;
    let mut buf = [0u8; 2000];
    for step in 0..400u32 {
        let now = step * 10;
        carry(&mut a, &mut b, now);
        most_in_flight = most_in_flight.max(a.in_flight());
        carry(&mut b, &mut a, now);
        while b.recv(&mut buf).is_ok() {
            delivered += 1;
        }
    }
    assert_eq!(delivered, 40, "every message arrives");
    assert_eq!(
        most_in_flight, 3,
        "the controller's cwnd bounds what is in flight"
    );
    assert_eq!(a.cwnd(), 3);

    let seen = seen.lock().unwrap();
    let count = |p: &str| seen.iter().filter(|l| l.starts_with(p)).count();
    assert_eq!(
        count("sent "),
        40,
        "one on_pkt_sent per transmission (no loss)"
    );
    assert_eq!(count("acked "), 40, "one on_pkt_acked per segment");
    assert!(count("rtt ") >= 40 && count("ack ") > 0 && count("tick") > 0);
    // The first segment: sn 0, 1000 bytes, sent with the two after it
    // already in flight (as upstream counts), first transmission.
    assert_eq!(
        seen.iter().find(|l| l.starts_with("sent ")).unwrap(),
        "sent 0 1000 3 1"
    );
    // Cumulative ACK arguments add up: every acknowledged byte is reported.
    let bytes: u32 = seen
        .iter()
        .filter_map(|l| l.strip_prefix("ack "))
        .map(|l| l.split(' ').nth(1).unwrap().parse::<u32>().unwrap())
        .sum();
    assert_eq!(bytes, 40 * 1000);

    a.clear_congestion_control();
    assert!(!a.has_congestion_control());
}

/// Drives a lossy bulk transfer from `a` to `b`; returns every datagram `a`
/// emitted.
fn lossy_transfer(mut a: Kcp) -> Vec<Vec<u8>> {
    let mut b = Kcp::new(9);
    b.set_flavour(a.flavour());
    a.set_nodelay(0, 20, 2, false);
    for i in 0..60u32 {
        a.send(&vec![i as u8; 700 + (i as usize * 37) % 900])
            .unwrap();
    }
    let mut all = Vec::new();
    let mut buf = [0u8; 4000];
    let mut rng = 0x1234_5678u32;
    for step in 0..600u32 {
        let now = step * 20;
        let mut wire = Vec::new();
        a.update(now, &mut |d: &[u8]| wire.push(d.to_vec()));
        for d in wire {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            if rng % 100 >= 15 {
                b.input(&d).unwrap();
            }
            all.push(d);
        }
        let mut back = Vec::new();
        b.update(now, &mut |d: &[u8]| back.push(d.to_vec()));
        for d in back {
            a.input(&d).unwrap();
        }
        while b.recv(&mut buf).is_ok() {}
    }
    all
}

#[test]
fn the_built_in_controller_sends_what_no_controller_sends() {
    // A controller brings 2.x's rules, which a V2 engine follows without
    // one too; so the two must send byte for byte the same.
    let mut plain = Kcp::new(9);
    plain.set_flavour(Flavour::V2);
    let mut with = Kcp::new(9);
    with.set_flavour(Flavour::V2);
    with.set_congestion_control(BuiltIn);
    let (p, w) = (lossy_transfer(plain), lossy_transfer(with));
    assert!(p.len() > 60, "the transfer ran: {} datagrams", p.len());
    assert_eq!(p, w);
}
