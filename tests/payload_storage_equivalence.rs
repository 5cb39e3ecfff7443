//! The Rust API's default payload storage ([`SegmentBuf`]) sends a segment
//! that fills a datagram alone straight from its buffer instead of copying it
//! into the datagram buffer. That path must not change a single byte: this
//! test drives an engine on `SegmentBuf` and one on plain `Vec<u8>` (which
//! always copies, like the C ABI that the lockstep tests compare with the
//! reference) through identical seeded scenarios and compares every datagram,
//! every log line and every return value.

use kcp::engine::{LogMask, Output, Payload, SegmentBuf};
use kcp::Kcp;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

enum Event {
    Datagram(Vec<u8>),
    Log(String),
}

/// Records datagrams and log lines in order.
#[derive(Default)]
struct Recorder {
    events: Vec<Event>,
}

impl Output for Recorder {
    fn output(&mut self, datagram: &[u8]) {
        self.events.push(Event::Datagram(datagram.to_vec()));
    }
    fn wants_log(&self) -> bool {
        true
    }
    fn log(&mut self, mask: LogMask, line: &str) {
        self.events.push(Event::Log(format!("{}: {line}", mask.0)));
    }
}

/// One endpoint pair on storage `P`, with its own copy of the link.
struct Side<P: Payload> {
    a: Kcp<P>,
    b: Kcp<P>,
}

impl<P: Payload> Side<P> {
    fn new(conv: u32) -> Self {
        let mut side = Side {
            a: Kcp::with_payload(conv),
            b: Kcp::with_payload(conv),
        };
        side.a.set_log_mask(-1);
        side.b.set_log_mask(-1);
        side
    }

    fn both(&mut self, f: impl Fn(&mut Kcp<P>)) {
        f(&mut self.a);
        f(&mut self.b);
    }
}

/// A transcript of everything observable, to compare between storages.
type Transcript = Vec<String>;

fn run<P: Payload>(seed: u64) -> Transcript {
    let mut rng = Rng(seed | 1);
    let mut side = Side::<P>::new(7);
    let mut out = Transcript::new();
    let mtu = [1400, 576, 200, 60][rng.below(4) as usize];
    let wnd = [32, 128, 1024][rng.below(3) as usize];
    let stream = rng.below(4) == 0;
    let loss = rng.below(20);
    side.both(|k| {
        k.set_mtu(mtu).unwrap();
        k.set_window_size(wnd, wnd);
        k.set_nodelay(1, 10, 2, true);
        k.set_stream_mode(stream);
    });
    let mut link: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    for now in 0..600u32 {
        for _ in 0..rng.below(4) {
            // Mostly sizes around the MSS, where datagrams hold one segment,
            // with small ones mixed in so segments also share datagrams.
            let len = match rng.below(4) {
                0 => rng.below(40) as usize,
                1 => mtu - 24,
                2 => rng.below(3 * mtu as u64) as usize,
                _ => mtu - 24 - rng.below(30) as usize,
            };
            let data: Vec<u8> = (0..len).map(|i| (i as u64 ^ seed) as u8).collect();
            let from_a = rng.below(3) != 0;
            let k = if from_a { &mut side.a } else { &mut side.b };
            out.push(format!("send {from_a} {len} -> {:?}", k.send(&data)));
        }
        if now % 97 == 50 {
            // Lowering the MTU while segments are in flight.
            let m = [1400, 300, 100][rng.below(3) as usize];
            side.both(|k| {
                let _ = k.set_mtu(m);
            });
            out.push(format!("mtu {m}"));
        }
        let mut delivered = std::mem::take(&mut link);
        for (to_b, d) in delivered.drain(..) {
            if rng.below(100) < loss {
                continue;
            }
            let k = if to_b { &mut side.b } else { &mut side.a };
            out.push(format!("input {to_b} -> {:?}", k.input(&d)));
        }
        for (is_a, k) in [(true, &mut side.a), (false, &mut side.b)] {
            let mut rec = Recorder::default();
            if rng.below(5) == 0 {
                k.flush(&mut rec);
            } else {
                k.update(now, &mut rec);
            }
            for e in rec.events {
                match e {
                    Event::Datagram(d) => {
                        out.push(format!("datagram {is_a} {d:?}"));
                        link.push((is_a, d));
                    }
                    Event::Log(line) => out.push(format!("log {is_a} {line}")),
                }
            }
            while let Ok(n) = k.recv(&mut buf) {
                out.push(format!("recv {is_a} {:?}", &buf[..n.min(8)]));
            }
        }
    }
    out.push(format!("stats {:?} {:?}", side.a.stats(), side.b.stats()));
    out
}

#[test]
fn segment_buf_and_vec_storage_put_the_same_bytes_on_the_wire() {
    let scenarios: u64 = std::env::var("IKCP_STORAGE_SCENARIOS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut datagrams = 0;
    for seed in 1..=scenarios {
        let framed = run::<SegmentBuf>(seed);
        let copied = run::<Vec<u8>>(seed);
        if let Some(at) = framed.iter().zip(&copied).position(|(x, y)| x != y) {
            panic!(
                "seed {seed}: storages diverge at event {at}:\n  SegmentBuf: {}\n  Vec<u8>:    {}",
                framed[at], copied[at]
            );
        }
        assert_eq!(
            framed.len(),
            copied.len(),
            "seed {seed}: transcript lengths"
        );
        datagrams += framed.iter().filter(|e| e.starts_with("datagram")).count();
    }
    assert!(
        datagrams > 1000,
        "scenarios moved too little traffic: {datagrams}"
    );
    println!("{scenarios} scenarios, {datagrams} datagrams identical on both storages");
}
