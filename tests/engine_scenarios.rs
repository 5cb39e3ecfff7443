//! Scenario tests of the sans-IO engine: two endpoints, a simulated link and a
//! virtual clock, driven through the public Rust API only.

use kcp::engine::{InputError, RecvError, SendError};
use kcp::Kcp;

/// Deterministic xorshift, so a failing scenario can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Two endpoints joined by a link that drops `loss` percent of datagrams and
/// delivers the rest after `delay` ms.
struct Pair {
    a: Kcp,
    b: Kcp,
    now: u32,
    delay: u32,
    loss: u64,
    rng: Rng,
    /// (deliver_at, to_b, datagram)
    in_flight: Vec<(u32, bool, Vec<u8>)>,
    sent_to_b: usize,
}

impl Pair {
    fn new(conv: u32, start: u32, delay: u32, loss: u64, seed: u64) -> Pair {
        Pair {
            a: Kcp::new(conv),
            b: Kcp::new(conv),
            now: start,
            delay,
            loss,
            rng: Rng(seed | 1),
            in_flight: Vec::new(),
            sent_to_b: 0,
        }
    }

    fn configure(&mut self, f: impl Fn(&mut Kcp)) {
        f(&mut self.a);
        f(&mut self.b);
    }

    /// Advances the clock by `ms`, one millisecond at a time.
    fn step(&mut self, ms: u32) {
        for _ in 0..ms {
            self.now = self.now.wrapping_add(1);
            let now = self.now;
            let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
            self.a.update(now, &mut |d: &[u8]| to_b.push(d.to_vec()));
            self.b.update(now, &mut |d: &[u8]| to_a.push(d.to_vec()));
            self.sent_to_b += to_b.len();
            for (to_b_side, list) in [(true, to_b), (false, to_a)] {
                for d in list {
                    if !self.rng.chance(self.loss) {
                        self.in_flight
                            .push((now.wrapping_add(self.delay), to_b_side, d));
                    }
                }
            }
            let (due, later): (Vec<_>, Vec<_>) = self
                .in_flight
                .drain(..)
                .partition(|(at, _, _)| (now.wrapping_sub(*at) as i32) >= 0);
            self.in_flight = later;
            for (_, to_b_side, d) in due {
                let target = if to_b_side { &mut self.b } else { &mut self.a };
                target.input(&d).expect("well-formed datagram");
            }
        }
    }

    fn drain_b(&mut self) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n) = self.b.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }
}

fn message(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

#[test]
fn messages_arrive_intact_and_in_order_over_a_lossy_link() {
    for (seed, loss) in [(1u64, 0u64), (2, 10), (3, 30)] {
        let mut p = Pair::new(0x1122_3344, 0, 20, loss, seed);
        p.configure(|k| {
            k.set_nodelay(1, 10, 2, true);
            k.set_window_size(128, 128);
        });
        let sizes = [0usize, 1, 1375, 1376, 1377, 5000, 60_000];
        let mut expected = Vec::new();
        for i in 0..60 {
            let m = message(i, sizes[i % sizes.len()]);
            assert_eq!(p.a.send(&m), Ok(m.len()));
            expected.push(m);
        }
        let mut got = Vec::new();
        for _ in 0..600 {
            p.step(50);
            got.extend(p.drain_b());
            if got.len() == expected.len() {
                break;
            }
        }
        assert_eq!(got.len(), expected.len(), "seed {seed} loss {loss}%");
        assert!(
            got == expected,
            "payload mismatch, seed {seed} loss {loss}%"
        );
        if loss > 0 {
            let s = p.a.stats();
            assert!(s.timeout_retransmits + s.fast_retransmits > 0, "{s:?}");
        }
    }
}

#[test]
fn stream_mode_coalesces_small_writes_into_full_segments() {
    let mut p = Pair::new(5, 0, 5, 0, 9);
    p.configure(|k| k.set_stream_mode(true));
    for i in 0..100 {
        assert_eq!(p.a.send(&message(i, 100)), Ok(100));
    }
    // 100 writes of 100 bytes fill ceil(10000 / 1376) = 8 segments.
    assert_eq!(p.a.wait_snd(), 8);
    p.step(3_000);
    let received: usize = p.drain_b().iter().map(Vec::len).sum();
    assert_eq!(received, 10_000);
}

#[test]
fn messages_of_128_fragments_are_refused_127_accepted() {
    let mut k = Kcp::new(1);
    let mss = k.mss();
    assert_eq!(k.send(&vec![0u8; 127 * mss]), Ok(127 * mss));
    assert_eq!(k.send(&vec![0u8; 127 * mss + 1]), Err(SendError::TooLarge));
}

#[test]
fn fast_retransmit_after_duplicate_acks() {
    let mut p = Pair::new(7, 0, 10, 0, 4);
    p.configure(|k| {
        k.set_nodelay(1, 10, 2, true);
        k.set_window_size(64, 128);
    });
    // Lose the first segment; each later one goes out in its own flush, so
    // its ACK arrives in its own datagram and counts as one duplicate.
    p.a.send(&message(0, 1000)).unwrap();
    p.a.update(0, &mut |_: &[u8]| {});
    for i in 1..20 {
        p.a.send(&message(i, 1000)).unwrap();
        p.step(10);
    }
    p.step(100);
    assert!(p.a.stats().fast_retransmits >= 1, "{:?}", p.a.stats());
    assert_eq!(p.drain_b().len(), 20);
}

#[test]
fn zero_window_triggers_window_probes() {
    let mut p = Pair::new(9, 0, 5, 0, 5);
    // The receiver never reads: its window closes and the sender must ask.
    for i in 0..300 {
        p.a.send(&message(i, 100)).unwrap();
    }
    p.step(30_000);
    assert_eq!(p.a.remote_window(), 0);
    let before = p.sent_to_b;
    // Probes back off from 7 s by half each time (7, 10.5, 15.75 s...).
    p.step(25_000);
    assert!(
        p.sent_to_b > before,
        "no window probe sent while the peer's window was zero"
    );
    assert_eq!(p.b.recv_queue_len(), 128);
    let got = p.drain_b();
    assert_eq!(got.len(), 128);
    p.step(3_000);
    assert!(
        !p.drain_b().is_empty(),
        "transfer resumes once the window opens"
    );
}

#[test]
fn dead_link_is_reported_after_dead_link_transmissions() {
    let mut p = Pair::new(3, 0, 5, 100, 6);
    p.a.set_dead_link(5);
    p.a.send(b"into the void").unwrap();
    for _ in 0..200 {
        p.step(100);
        if p.a.is_dead() {
            break;
        }
    }
    assert!(p.a.is_dead());
}

#[test]
fn clock_wrapping_past_u32_max_keeps_working() {
    let mut p = Pair::new(11, u32::MAX - 500, 30, 10, 7);
    p.configure(|k| k.set_nodelay(1, 10, 2, false));
    let expected: Vec<_> = (0..40).map(|i| message(i, 3000)).collect();
    for m in &expected {
        p.a.send(m).unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..400 {
        p.step(25);
        got.extend(p.drain_b());
    }
    assert!(p.now < 100_000, "the clock wrapped");
    assert!(got == expected);
    assert!(p.a.srtt() > 0 && p.a.srtt() < 1000, "srtt {}", p.a.srtt());
}

#[test]
fn check_schedules_no_later_than_the_interval() {
    let mut k = Kcp::new(1);
    assert_eq!(k.check(1234), 1234, "before the first update, call now");
    k.update(1000, &mut |_: &[u8]| {});
    let next = k.check(1000);
    assert!(next > 1000 && next <= 1000 + k.interval(), "{next}");
    k.send(b"x").unwrap();
    k.update(next, &mut |_: &[u8]| {});
    assert!(k.check(next) <= next + k.interval());
}

#[test]
fn hostile_datagrams_are_rejected_without_damage() {
    let mut p = Pair::new(21, 0, 5, 0, 8);
    p.a.send(b"before").unwrap();
    p.step(100);
    let mut rng = Rng(99);
    let garbage: Vec<u8> = (0..1 << 20).map(|_| rng.next() as u8).collect();
    assert_eq!(p.b.input(&garbage[..10]), Err(InputError::TooShort));
    assert_eq!(p.b.input(&[]), Err(InputError::TooShort));
    assert!(p.b.input(&garbage).is_err());
    let mut wrong_conv = vec![0u8; 24];
    wrong_conv[0] = 22;
    assert_eq!(p.b.input(&wrong_conv), Err(InputError::ConvMismatch));
    let mut bad_len = 21u32.to_le_bytes().to_vec();
    bad_len.extend_from_slice(&[81, 0, 0, 1]);
    bad_len.extend_from_slice(&[0u8; 12]);
    bad_len.extend_from_slice(&1000u32.to_le_bytes());
    assert_eq!(p.b.input(&bad_len), Err(InputError::BadLength));
    let mut bad_cmd = bad_len.clone();
    bad_cmd[4] = 99;
    bad_cmd[20..24].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(p.b.input(&bad_cmd), Err(InputError::UnknownCommand));
    // A far-future sequence number within a huge window must not allocate the window.
    p.b.set_window_size(0, u32::MAX / 4);
    let mut far = 21u32.to_le_bytes().to_vec();
    far.extend_from_slice(&[81, 0, 0, 1, 0, 0, 0, 0]);
    far.extend_from_slice(&(1u32 << 29).to_le_bytes());
    far.extend_from_slice(&[0u8; 8]);
    assert_eq!(p.b.input(&far), Ok(()));
    p.a.send(b"after").unwrap();
    p.step(300);
    assert_eq!(p.drain_b(), vec![b"before".to_vec(), b"after".to_vec()]);
}

#[test]
fn recv_reports_small_buffers_and_incomplete_messages() {
    let mut p = Pair::new(2, 0, 5, 0, 10);
    let mut buf = [0u8; 8];
    assert_eq!(p.b.recv(&mut buf), Err(RecvError::Empty));
    p.a.send(&message(1, 3000)).unwrap();
    p.step(2_000);
    assert_eq!(p.b.peek_size(), Ok(3000));
    assert_eq!(
        p.b.recv(&mut buf),
        Err(RecvError::BufferTooSmall { needed: 3000 })
    );
    let mut big = vec![0u8; 3000];
    assert_eq!(p.b.peek(&mut big), Ok(3000));
    assert_eq!(p.b.recv(&mut big), Ok(3000));
    assert_eq!(big, message(1, 3000));
}

#[test]
fn peek_into_an_empty_buffer_refuses_like_recv() {
    let mut p = Pair::new(2, 0, 5, 0, 10);
    p.a.send(b"x").unwrap();
    p.a.send(b"").unwrap();
    p.step(2_000);
    let too_small = Err(RecvError::BufferTooSmall { needed: 1 });
    assert_eq!(p.b.peek(&mut []), too_small);
    assert_eq!(p.b.recv(&mut []), too_small);
    let mut one = [0u8; 1];
    assert_eq!(p.b.peek(&mut one), Ok(1));
    assert_eq!(p.b.recv(&mut one), Ok(1));
    assert_eq!(&one, b"x");
    // A zero-length message fits an empty buffer.
    assert_eq!(p.b.peek(&mut []), Ok(0));
    assert_eq!(p.b.recv(&mut []), Ok(0));
    assert_eq!(p.b.peek(&mut []), Err(RecvError::Empty));
}
