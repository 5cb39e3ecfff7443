//! Interoperability: our library on one end, upstream's `ikcp.c` on the other,
//! over a simulated lossy link (loss, duplication, reordering, delay) on a
//! virtual clock. Every mode (default, normal, fast; stream and message;
//! several windows and MTUs) must deliver all data intact in both directions
//! within a bounded virtual time.

use std::collections::VecDeque;
use std::io::Write;

use ffi_tests::api::Api;
use ffi_tests::kcp::{Field, Kcp};
use ffi_tests::link::{Link, LinkConfig};
use ffi_tests::rng::Rng;

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// No configuration call at all.
    Default,
    /// `ikcp_nodelay(0, 40, 0, 0)`.
    Normal,
    /// `ikcp_nodelay(1, 10, 2, 1)`, the "fast" setting upstream recommends.
    Fast,
    /// `ikcp_nodelay(2, 20, 1, 0)`: gentler RTO growth, congestion control on.
    Turbo,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    mode: Mode,
    stream: bool,
    wnd: (i32, i32),
    mtu: i32,
    link: LinkConfig,
    /// Whether A (the first endpoint) is ours; B is the other implementation.
    ours_first: bool,
    seed: u64,
}

/// Totals over all cases, for the summary line.
#[derive(Default)]
struct Totals {
    cases: u64,
    bytes: u64,
    messages: u64,
    datagrams: u64,
    retransmissions: u64,
    virtual_ms: u64,
}

/// The longest any case may take in virtual time.
const VIRTUAL_LIMIT_MS: u64 = 30 * 60 * 1000;

struct End {
    kcp: Kcp,
    /// Data sent by this end and not yet received by the other, as messages
    /// (message mode) or one byte stream (stream mode).
    pending: VecDeque<Vec<u8>>,
    to_send: VecDeque<Vec<u8>>,
    received_bytes: u64,
    received_messages: u64,
}

fn configure(k: &Kcp, case: &Case) {
    match case.mode {
        Mode::Default => {}
        Mode::Normal => assert_eq!(k.nodelay(0, 40, 0, 0), 0),
        Mode::Fast => assert_eq!(k.nodelay(1, 10, 2, 1), 0),
        Mode::Turbo => assert_eq!(k.nodelay(2, 20, 1, 0), 0),
    }
    assert_eq!(k.wndsize(case.wnd.0, case.wnd.1), 0);
    assert_eq!(k.setmtu(case.mtu), 0);
    if case.stream {
        k.set_field(Field::Stream, 1);
    }
}

/// Runs one case to completion; panics with the case when data is lost,
/// corrupted or late.
fn run_case(case: Case, totals: &mut Totals) {
    let mut rng = Rng::new(case.seed);
    let conv = rng.next_u32();
    let apis = if case.ours_first {
        [Api::ours(), Api::reference()]
    } else {
        [Api::reference(), Api::ours()]
    };
    let mss = (case.mtu - 24) as usize;
    let mut ends: Vec<End> = apis
        .iter()
        .map(|&api| {
            let kcp = Kcp::new(api, conv);
            configure(&kcp, &case);
            let n = rng.range(60, 160);
            let to_send = (0..n)
                .map(|_| {
                    let len = match rng.below(10) {
                        0 => 1,
                        1..=5 => rng.range(1, mss as i64),
                        6..=8 => rng.range(1, 4 * mss as i64),
                        _ => rng.range(4 * mss as i64, 20 * mss as i64),
                    };
                    rng.bytes(len as usize)
                })
                .collect();
            End {
                kcp,
                pending: VecDeque::new(),
                to_send,
                received_bytes: 0,
                received_messages: 0,
            }
        })
        .collect();
    let mut links = [Link::new(case.link), Link::new(case.link)];
    let mut elapsed: u64 = 0;
    let base = rng.next_u32();
    let ctx = |what: &str| format!("{what}\n  case: {case:?}");

    loop {
        let now = base.wrapping_add(elapsed as u32);
        // Deliver what has arrived, in arrival order.
        for to in 0..2 {
            for d in links[1 - to].due(elapsed) {
                let r = ends[to].kcp.input(&d);
                assert_eq!(
                    r,
                    0,
                    "{}",
                    ctx(&format!(
                        "{} rejected a datagram from {}",
                        apis[to].name,
                        apis[1 - to].name
                    ))
                );
            }
        }
        for (i, end) in ends.iter_mut().enumerate() {
            // The application keeps a bounded amount queued, like a real one.
            while end.kcp.waitsnd() < 256 {
                let Some(msg) = end.to_send.pop_front() else {
                    break;
                };
                let r = end.kcp.send(&msg);
                assert_eq!(
                    r as usize,
                    msg.len(),
                    "{}",
                    ctx(&format!("{} send", apis[i].name))
                );
                end.pending.push_back(msg);
            }
            end.kcp.update(now);
        }
        for (from, link) in links.iter_mut().enumerate() {
            for d in ends[from].kcp.take_datagrams() {
                totals.datagrams += 1;
                link.send(&mut rng, elapsed, &d);
            }
        }
        // Receive everything ready and check it against what the peer sent.
        for to in 0..2 {
            while let Some(got) = ends[to].kcp.recv_message() {
                let (receiver, sender) = if to == 0 { (0, 1) } else { (1, 0) };
                let who = format!("{} <- {}", apis[receiver].name, apis[sender].name);
                let src = &mut ends[sender].pending;
                if case.stream {
                    // Stream mode: boundaries may move, the byte sequence may not.
                    let mut off = 0;
                    while off < got.len() {
                        let head = src.front_mut().unwrap_or_else(|| {
                            panic!("{}", ctx(&format!("{who}: bytes nobody sent")))
                        });
                        let n = head.len().min(got.len() - off);
                        assert!(
                            head[..n] == got[off..off + n],
                            "{}",
                            ctx(&format!("{who}: stream bytes corrupted"))
                        );
                        head.drain(..n);
                        if head.is_empty() {
                            src.pop_front();
                        }
                        off += n;
                    }
                } else {
                    let want = src.pop_front().unwrap_or_else(|| {
                        panic!("{}", ctx(&format!("{who}: a message nobody sent")))
                    });
                    assert!(
                        want == got,
                        "{}",
                        ctx(&format!(
                            "{who}: message of {} bytes arrived as {} different bytes",
                            want.len(),
                            got.len()
                        ))
                    );
                    ends[receiver].received_messages += 1;
                }
                ends[receiver].received_bytes += got.len() as u64;
            }
        }
        let done = ends
            .iter()
            .all(|e| e.to_send.is_empty() && e.pending.is_empty());
        if done {
            break;
        }
        assert!(
            elapsed < VIRTUAL_LIMIT_MS,
            "{}",
            ctx(&format!(
                "not delivered within {VIRTUAL_LIMIT_MS} virtual ms: {} and {} messages still pending",
                ends[0].pending.len() + ends[0].to_send.len(),
                ends[1].pending.len() + ends[1].to_send.len()
            ))
        );
        // Sleep until the next thing to do, as an event loop using
        // ikcp_check would.
        let mut next = elapsed + 1000;
        for end in &ends {
            let wait = end.kcp.check(now).wrapping_sub(now) as u64;
            next = next.min(elapsed + wait);
        }
        for link in &links {
            if let Some(t) = link.next_arrival() {
                next = next.min(t);
            }
        }
        elapsed = next.max(elapsed + 1);
    }
    totals.cases += 1;
    totals.virtual_ms += elapsed;
    for end in &ends {
        totals.bytes += end.received_bytes;
        totals.messages += end.received_messages;
        totals.retransmissions += end.kcp.with_cb(|cb| cb.xmit as u64);
    }
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn lossy(rng: &mut Rng) -> LinkConfig {
    LinkConfig {
        loss: rng.pick(&[20, 50, 100, 150]),
        dup: rng.pick(&[0, 20, 50]),
        delay: rng.pick(&[5, 20, 60]),
        jitter: rng.pick(&[0, 10, 40, 120]),
    }
}

fn run_matrix(name: &str, modes: &[Mode], seed0: u64) {
    let mut totals = Totals::default();
    let mut rng = Rng::new(seed0);
    let mut seed = seed0;
    for &mode in modes {
        for stream in [false, true] {
            for wnd in [(32, 128), (128, 256), (1024, 1024)] {
                for mtu in [1400, 576, 200] {
                    for ours_first in [true, false] {
                        seed += 1;
                        let link = if rng.chance(150) {
                            LinkConfig::PERFECT
                        } else {
                            lossy(&mut rng)
                        };
                        let case = Case {
                            mode,
                            stream,
                            wnd,
                            mtu,
                            link,
                            ours_first,
                            seed,
                        };
                        run_case(case, &mut totals);
                    }
                }
            }
        }
    }
    say(&format!(
        "interop {name}: {} cases, {} bytes in {} messages delivered intact both ways, {} datagrams, {} retransmissions, {:.0} virtual s",
        totals.cases,
        totals.bytes,
        totals.messages,
        totals.datagrams,
        totals.retransmissions,
        totals.virtual_ms as f64 / 1000.0
    ));
    assert!(
        totals.bytes > 0 && totals.retransmissions > 0,
        "the matrix moved no data or lost nothing"
    );
}

#[test]
fn interop_default_and_normal_modes() {
    run_matrix("default+normal", &[Mode::Default, Mode::Normal], 10_000);
}

#[test]
fn interop_fast_modes() {
    run_matrix("fast+turbo", &[Mode::Fast, Mode::Turbo], 20_000);
}

/// Different MTUs on the two ends, both changed again mid-transfer, with a
/// window change: each receiver must accept whatever segment size arrives.
#[test]
fn interop_mtu_and_window_changes_mid_transfer() {
    for ours_first in [true, false] {
        let mut rng = Rng::new(77);
        let conv = 0x1234;
        let (a, b) = if ours_first {
            (
                Kcp::new(Api::ours(), conv),
                Kcp::new(Api::reference(), conv),
            )
        } else {
            (
                Kcp::new(Api::reference(), conv),
                Kcp::new(Api::ours(), conv),
            )
        };
        assert_eq!(a.setmtu(300), 0);
        assert_eq!(b.setmtu(1500), 0);
        let msgs: Vec<Vec<u8>> = (0..60).map(|_| rng.bytes_between(1, 5000)).collect();
        for m in &msgs {
            assert_eq!(a.send(m) as usize, m.len());
            assert_eq!(b.send(m) as usize, m.len());
        }
        let cfg = LinkConfig {
            loss: 80,
            dup: 30,
            delay: 15,
            jitter: 20,
        };
        let mut link = [Link::new(cfg), Link::new(cfg)];
        let mut got = [Vec::new(), Vec::new()];
        let mut t = 0u64;
        while (got[0].len() < msgs.len() || got[1].len() < msgs.len()) && t < 600_000 {
            if t == 1000 {
                // Upstream needs 3*(mtu+24) >= 24 + the largest queued
                // segment: 1476 bytes from B's old MTU fit into 3*600.
                assert_eq!(b.setmtu(576), 0);
                assert_eq!(a.setmtu(1400), 0);
                assert_eq!(a.wndsize(64, 512), 0);
                assert_eq!(b.wndsize(256, 128), 0);
            }
            a.update(t as u32);
            b.update(t as u32);
            for d in a.take_datagrams() {
                link[0].send(&mut rng, t, &d);
            }
            for d in b.take_datagrams() {
                link[1].send(&mut rng, t, &d);
            }
            for d in link[0].due(t) {
                assert_eq!(b.input(&d), 0);
            }
            for d in link[1].due(t) {
                assert_eq!(a.input(&d), 0);
            }
            while let Some(m) = a.recv_message() {
                got[0].push(m);
            }
            while let Some(m) = b.recv_message() {
                got[1].push(m);
            }
            t += 10;
        }
        assert!(
            got[0] == msgs,
            "{} receiving from {}",
            a.api.name,
            b.api.name
        );
        assert!(
            got[1] == msgs,
            "{} receiving from {}",
            b.api.name,
            a.api.name
        );
        say(&format!(
            "interop mid-transfer changes ({} first): {} messages each way in {} virtual ms",
            a.api.name,
            msgs.len(),
            t
        ));
    }
}
