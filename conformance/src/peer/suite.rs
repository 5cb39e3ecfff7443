//! The scripted scenarios. Each drives the link until its echoes are back
//! (or its time is up) and says what held and what differed.

use std::time::{Duration, Instant};

use ffi_tests::rng::Rng;
use ffi_tests::wire::{Segment, CMD_PUSH};

use super::link::{Impairment, Link};
use super::{Row, Settings, Status};

/// Everything a scenario needs.
pub struct Ctx<'a> {
    pub link: &'a mut Link,
    pub settings: &'a Settings,
    pub rng: Rng,
    /// No scenario runs past this.
    pub deadline: Instant,
    pub quiet: bool,
    /// The largest message the remote can take back (bytes).
    pub largest: usize,
    pub rows: Vec<Row>,
    /// Message boundaries changed on the way back (first example).
    pub resplit: Option<String>,
}

/// The scenarios, in the order they run.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("basic", "one small message echoed; nothing runs without it"),
    ("sizes", "one message of each size from 1 B to the largest"),
    ("bulk", "many messages / a byte stream, pipelined"),
    (
        "lossy",
        "bulk through loss, duplication and reordering on our side",
    ),
    (
        "mtu",
        "messages at the MSS edges; datagrams filled to the MTU",
    ),
    (
        "zero-window",
        "we stop reading: the remote must stop and probe",
    ),
    (
        "rto",
        "one segment lost repeatedly: the retransmission back-off",
    ),
    (
        "fast-resend",
        "one segment lost, `resend` later ones acknowledged: a fast retransmit",
    ),
    (
        "conv-mismatch",
        "a stray segment of another conversation is ignored",
    ),
    // Late: a remote that cannot read an empty message may stall on it.
    ("zero-length", "a 0-byte message (message mode)"),
    (
        "conv-takeover",
        "another conversation opens from our address; is ours still served",
    ),
];

impl Ctx<'_> {
    fn row(&mut self, check: &str, status: Status, detail: String) {
        self.rows.push(Row {
            check: check.into(),
            status,
            detail,
        });
    }

    fn until(&self, secs: u64) -> Instant {
        (Instant::now() + Duration::from_secs(secs)).min(self.deadline)
    }

    fn mss(&self) -> usize {
        self.settings.mtu as usize - 24
    }

    /// Sends `msgs` and waits for their echo; compares every byte, then the
    /// boundaries. Returns a one-line verdict and whether the bytes came back.
    fn echo(&mut self, label: &str, msgs: &[Vec<u8>], secs: u64) -> (Status, String) {
        self.link.received.clear();
        let want: usize = msgs.iter().map(Vec::len).sum();
        for m in msgs {
            let r = self.link.send(m);
            if r < 0 {
                return (
                    Status::Failed,
                    format!("the reference refused a {} B message ({r})", m.len()),
                );
            }
        }
        let deadline = self.until(secs);
        let started = Instant::now();
        let mut last_note = Instant::now();
        let quiet = self.quiet;
        let done = self.link.drive_until(deadline, |l| {
            let got: usize = l.received.iter().map(Vec::len).sum();
            if !quiet && last_note.elapsed() >= Duration::from_secs(2) {
                last_note = Instant::now();
                eprintln!(
                    "    {label}: {got}/{want} bytes back after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            got >= want
        });
        let got: Vec<u8> = self.link.received.concat();
        let sent: Vec<u8> = msgs.concat();
        let same = got.len().min(sent.len());
        if let Some(at) = (0..same).find(|&i| got[i] != sent[i]) {
            return (
                Status::Failed,
                format!(
                    "byte {at} of the echo differs: sent {:#04x}, got {:#04x}",
                    sent[at], got[at]
                ),
            );
        }
        if got.len() > sent.len() {
            return (
                Status::Failed,
                format!("{} bytes back for {} sent", got.len(), sent.len()),
            );
        }
        if !done {
            return (
                Status::Failed,
                format!(
                    "{} of {} bytes back within {:.1} s",
                    got.len(),
                    sent.len(),
                    started.elapsed().as_secs_f64()
                ),
            );
        }
        let secs = started.elapsed().as_secs_f64();
        if !self.settings.stream && self.link.received != msgs {
            let back: Vec<usize> = self.link.received.iter().map(Vec::len).collect();
            if self.resplit.is_none() {
                let first = msgs
                    .iter()
                    .map(Vec::len)
                    .zip(back.iter().copied())
                    .find(|(a, b)| a != b);
                self.resplit = Some(format!(
                    "{label}: {} messages sent, {} came back{}",
                    msgs.len(),
                    back.len(),
                    first.map_or(String::new(), |(a, b)| format!(
                        " (a {a} B message came back as {b} B first)"
                    ))
                ));
            }
            return (
                Status::Held,
                format!(
                    "{} B in {} messages, every byte back in {secs:.2} s (boundaries changed)",
                    sent.len(),
                    msgs.len()
                ),
            );
        }
        (
            Status::Held,
            format!(
                "{} B in {} {}, every byte back in {secs:.2} s",
                sent.len(),
                msgs.len(),
                if self.settings.stream {
                    "writes"
                } else {
                    "messages"
                }
            ),
        )
    }

    /// Random bytes; never starting with 'B', which the C example echo
    /// server of this repository takes as a goodbye.
    fn pattern(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.rng.bytes(len);
        if b.first() == Some(&b'B') {
            b[0] = b'b';
        }
        b
    }

    /// Lets the last acknowledgements cross.
    fn settle(&mut self) {
        let until = self.until(3);
        self.link.drive_until(until, Link::all_acked);
        self.link.idle(Duration::from_millis(
            (3 * self.settings.interval as u64).max(30),
        ));
    }
}

/// basic: the remote is there and echoes.
pub fn basic(cx: &mut Ctx) -> bool {
    let (status, detail) = cx.echo("basic", &[b"kcp-conformance hello".to_vec()], 5);
    let ok = status == Status::Held;
    cx.link.sample_rto = true;
    let detail = if ok {
        let rtt = cx.link.kcp.with_cb(|cb| cb.rx_srtt);
        format!("{detail}; smoothed RTT {rtt} ms")
    } else {
        format!(
            "{detail}: is a plain KCP echo (no encryption, no FEC) listening at {} with conv {}?",
            cx.link.remote, cx.link.conv
        )
    };
    cx.row("echo: basic", status, detail);
    cx.settle();
    ok
}

/// Sizes worth testing: around headers, the MSS, 64 KiB, and the largest.
pub fn sizes(cx: &mut Ctx) {
    let mss = cx.mss();
    let largest = cx.largest;
    let mut sizes = vec![
        1,
        2,
        23,
        24,
        25,
        100,
        mss - 1,
        mss,
        mss + 1,
        2 * mss,
        2 * mss + 1,
        4096,
        16384,
        65535,
        65536,
        largest - 1,
        largest,
    ];
    sizes.retain(|&s| s >= 1 && s <= largest);
    sizes.sort_unstable();
    sizes.dedup();
    let msgs: Vec<Vec<u8>> = sizes.iter().map(|&n| cx.pattern(n)).collect();
    let (status, detail) = cx.echo("sizes", &msgs, 20);
    cx.row(
        &format!("echo: sizes 1 B..{largest} B"),
        status,
        format!("{detail}; sizes {sizes:?}"),
    );
    cx.settle();
}

/// zero-length: ikcp.c sends a 0-byte message as one empty segment.
pub fn zero_length(cx: &mut Ctx) {
    if cx.settings.stream {
        cx.row(
            "0-byte message",
            Status::Skipped,
            "stream mode has no empty messages".into(),
        );
        return;
    }
    cx.link.received.clear();
    cx.link.send(&[]);
    cx.link.send(b"Z");
    let until = cx.until(5);
    let got = cx
        .link
        .drive_until(until, |l| l.received.iter().any(|m| m == b"Z"));
    let back = cx.link.received.clone();
    let (status, detail) = if !got {
        (
            Status::Failed,
            "the 1-byte message sent after it never came back: the empty message \
             seems to block the remote's reads (ikcp.c delivers it as an empty message)"
                .to_string(),
        )
    } else if back == [b"".to_vec(), b"Z".to_vec()] {
        (Status::Held, "echoed as an empty message".to_string())
    } else if back == [b"Z".to_vec()] {
        (
            Status::Differs,
            "not echoed (ikcp.c delivers and sends empty messages; the remote's \
             echo never returned it)"
                .to_string(),
        )
    } else {
        (Status::Failed, format!("came back as {back:?}"))
    };
    cx.row("0-byte message", status, detail);
    cx.settle();
}

fn bulk_load(cx: &mut Ctx, count: usize, max: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let n = 1 + cx.rng.below(max as u64) as usize;
            cx.pattern(n)
        })
        .collect()
}

/// bulk: pipelined traffic in both directions at once.
pub fn bulk(cx: &mut Ctx) {
    let msgs = if cx.settings.stream {
        bulk_load(cx, 256, 8192)
    } else {
        bulk_load(cx, 400, 4096.min(cx.largest))
    };
    let (status, detail) = cx.echo("bulk", &msgs, 30);
    cx.row("echo: bulk", status, detail);
    cx.settle();
}

/// lossy: bulk through our impairments, both directions.
pub fn lossy(cx: &mut Ctx, imp: Impairment) {
    let msgs = bulk_load(cx, 200, (3 * cx.mss()).min(cx.largest));
    cx.link.impair = imp;
    let before = cx.link.stats;
    let (status, detail) = cx.echo("lossy", &msgs, 40);
    cx.link.impair = Impairment::default();
    let s = cx.link.stats;
    cx.row(
        &format!(
            "echo: lossy ({}% loss, {}% duplicates, {}% reordered)",
            imp.loss as f64 / 10.0,
            imp.duplicate as f64 / 10.0,
            imp.reorder as f64 / 10.0
        ),
        status,
        format!(
            "{detail}; we dropped {} in / {} out, duplicated {}, reordered {}",
            s.dropped_in - before.dropped_in,
            s.dropped_out - before.dropped_out,
            s.duplicated - before.duplicated,
            s.reordered - before.reordered
        ),
    );
    cx.settle();
}

/// mtu: messages at the MSS edges; how the remote cuts them.
pub fn mtu(cx: &mut Ctx) {
    let mss = cx.mss();
    let sizes: Vec<usize> = [mss - 1, mss, mss + 1, 2 * mss + 1]
        .into_iter()
        .filter(|&n| n <= cx.largest)
        .collect();
    let full_before = cx.link.obs.full_datagrams;
    let first_sn = cx.link.obs.max_sn.map_or(0, |s| s.wrapping_add(1));
    let msgs: Vec<Vec<u8>> = sizes.iter().map(|&n| cx.pattern(n)).collect();
    let (status, detail) = cx.echo("mtu", &msgs, 10);
    cx.row(
        "echo: MSS edges",
        status,
        format!("{detail}; sizes {sizes:?}"),
    );
    if status != Status::Held {
        return;
    }
    let full = cx.link.obs.full_datagrams - full_before;
    cx.row(
        "full-MTU datagrams",
        if full > 0 {
            Status::Held
        } else {
            Status::Differs
        },
        if full > 0 {
            format!(
                "{full} datagrams of exactly {} bytes (a {mss} B segment and its header)",
                cx.settings.mtu
            )
        } else {
            format!(
                "none of exactly {} bytes: the remote cuts data below the MSS {mss}",
                cx.settings.mtu
            )
        },
    );
    // ikcp.c cuts a message into MSS-sized fragments, frg counting down to 0.
    if !cx.settings.stream {
        let last = cx.link.obs.max_sn.unwrap_or(0);
        let shapes: Vec<(u8, u32)> = (first_sn..=last)
            .filter_map(|sn| cx.link.obs.shapes.get(&sn).copied())
            .collect();
        let mut expect = Vec::new();
        for &n in &sizes {
            let count = n.div_ceil(mss);
            for i in 0..count {
                let len = if i + 1 < count {
                    mss
                } else {
                    n - mss * (count - 1)
                };
                expect.push(((count - 1 - i) as u8, len as u32));
            }
        }
        let (status, detail) = if shapes == expect {
            (
                Status::Held,
                format!(
                    "{} fragments of {mss} B and the rest, frg counting down",
                    expect.len()
                ),
            )
        } else {
            (
                Status::Differs,
                format!(
                    "(frg, len) of the echo: {:?}; ikcp.c: {expect:?}",
                    shapes.iter().take(8).collect::<Vec<_>>()
                ),
            )
        };
        cx.row("fragmentation as ikcp.c", status, detail);
    }
    cx.settle();
}

/// zero-window: we stop reading; the remote fills our window, stops, and
/// (ikcp.c: after 7 s) probes it; then we read again and everything comes
/// back.
pub fn zero_window(cx: &mut Ctx, probe_wait: u64) {
    let chunk = cx.mss().min(1000);
    // More than our queue and buffer hold (256 + 256 segments).
    let count = 600;
    let msgs: Vec<Vec<u8>> = (0..count).map(|_| cx.pattern(chunk)).collect();
    cx.link.received.clear();
    cx.link.reading = false;
    let wask_before = cx.link.obs.wask.len();
    cx.link.obs.new_data_into_zero_window = 0;
    for m in &msgs {
        cx.link.send(m);
    }
    let until = cx.until(10);
    let zero = cx
        .link
        .drive_until(until, |l| l.obs.peer_zero_since.is_some());
    if !zero {
        cx.link.reading = true;
        cx.row(
            "zero window reached",
            Status::Failed,
            "our window never closed: the remote did not send enough".into(),
        );
        cx.settle();
        return;
    }
    let closed_at = cx.link.obs.peer_zero_since.unwrap_or(0);
    let until = cx.until(probe_wait);
    let started = Instant::now();
    let quiet = cx.quiet;
    let mut last_note = Instant::now();
    let probed = cx.link.drive_until(until, |l| {
        if !quiet && last_note.elapsed() >= Duration::from_secs(2) {
            last_note = Instant::now();
            eprintln!(
                "    zero-window: waiting for the remote's window probe, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        l.obs.wask.len() > wask_before
    });
    let into = cx.link.obs.new_data_into_zero_window;
    cx.row(
        "no new data into a zero window",
        if into == 0 {
            Status::Held
        } else {
            Status::Failed
        },
        format!(
            "{into} new data segments sent {ZERO_GRACE} ms or more after our window closed",
            ZERO_GRACE = super::observe::ZERO_WINDOW_GRACE_MS
        ),
    );
    if probed {
        let first = cx.link.obs.wask[wask_before].wrapping_sub(closed_at);
        // ikcp.c: 7 s after it saw the window close, give or take a tick.
        let near = (6500..=8500 + 2 * cx.settings.interval as u32).contains(&first);
        cx.row(
            "zero-window probe",
            if near { Status::Held } else { Status::Differs },
            format!(
                "first window probe (WASK) {first} ms after our window closed (ikcp.c: 7000 ms{})",
                if near { "" } else { "; timing differs" }
            ),
        );
    } else {
        cx.row(
            "zero-window probe",
            Status::Differs,
            format!("no window probe within {probe_wait} s (ikcp.c probes after 7 s)"),
        );
    }
    // Read again: our window opens, the remote resumes.
    cx.link.reading = true;
    let want: usize = msgs.iter().map(Vec::len).sum();
    let until = cx.until(30);
    cx.link.drive_until(until, |l| {
        l.received.iter().map(Vec::len).sum::<usize>() >= want
    });
    let got = cx.link.received.concat();
    let status = if got == msgs.concat() {
        Status::Held
    } else {
        Status::Failed
    };
    cx.row(
        "echo: after a zero window",
        status,
        format!("{} of {want} B back after we read again", got.len()),
    );
    cx.settle();
}

/// rto: the remote's echo of one small message is dropped several times;
/// the gaps between its retransmissions show its back-off.
pub fn rto(cx: &mut Ctx) {
    let drops: usize = if cx.settings.nodelay == 0 { 5 } else { 6 };
    let first_new = cx.link.obs.max_sn.map_or(0, |s| s.wrapping_add(1));
    let mut dropped = 0usize;
    cx.link.drop_in = Some(Box::new(move |segs: &[Segment]| {
        let hit = segs.iter().any(|s| s.cmd == CMD_PUSH && s.sn == first_new);
        if hit && dropped < drops {
            dropped += 1;
            return true;
        }
        false
    }));
    let (status, detail) = cx.echo("rto", &[b"R".to_vec()], 15);
    cx.link.drop_in = None;
    cx.row(
        &format!("echo: its segment lost {drops} times"),
        status,
        detail,
    );
    let times = cx
        .link
        .obs
        .pushes
        .get(&first_new)
        .cloned()
        .unwrap_or_default();
    let gaps: Vec<u32> = times.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let expect = match cx.settings.nodelay {
        0 => "doubles per timeout",
        1 => "grows by half per timeout (x1.5)",
        _ => "grows by half the RTO per timeout (linear)",
    };
    if gaps.len() < 4 {
        cx.row(
            "RTO back-off",
            Status::Failed,
            format!(
                "only {} retransmissions seen (gaps {gaps:?} ms)",
                gaps.len()
            ),
        );
        cx.settle();
        return;
    }
    // Exponential back-off: the increments between gaps grow; linear: they
    // stay the same. Compare the last two increments with the first two.
    let inc: Vec<f64> = gaps.windows(2).map(|w| w[1] as f64 - w[0] as f64).collect();
    let n = inc.len();
    let early = (inc[0] + inc[1]).max(1.0);
    let late = inc[n - 1] + inc[n - 2];
    let exponential = late / early >= 2.0;
    let rest = &gaps[1..];
    let factor = (rest[rest.len() - 1] as f64 / rest[0] as f64).powf(1.0 / (rest.len() - 1) as f64);
    let shape = if exponential {
        format!("exponential, x{factor:.2} per timeout")
    } else {
        format!("linear, +{:.0} ms per timeout", late / 2.0)
    };
    let as_reference = if cx.settings.nodelay >= 2 {
        !exponential
    } else {
        // Timer ticks and scheduling blur single gaps; the growth factor
        // over the run still tells x1.5 from x2.
        let (lo, hi) = if cx.settings.nodelay == 0 {
            (1.7, 2.5)
        } else {
            (1.25, 1.7)
        };
        exponential && (lo..=hi).contains(&factor)
    };
    cx.row(
        "RTO back-off",
        if as_reference {
            Status::Held
        } else {
            Status::Differs
        },
        format!(
            "gaps {gaps:?} ms: {shape} (ikcp.c with nodelay {}: {expect})",
            cx.settings.nodelay
        ),
    );
    cx.settle();
}

/// fast-resend: the first segment of an echo of `resend + 1` segments is
/// lost and the `resend` after it are acknowledged one datagram each: ikcp.c
/// retransmits it then, before its RTO.
pub fn fast_resend(cx: &mut Ctx) {
    let k = cx.settings.resend;
    let mss = cx.mss();
    if k <= 0 || (k as usize + 1) * mss > cx.largest {
        cx.row(
            "fast retransmit",
            Status::Skipped,
            format!("--resend {k}: nothing to test within the largest message"),
        );
        return;
    }
    let k = k as usize;
    let lost = cx.link.obs.max_sn.map_or(0, |s| s.wrapping_add(1));
    let mut dropped = false;
    cx.link.drop_in = Some(Box::new(move |segs: &[Segment]| {
        let hit = segs.iter().any(|s| s.cmd == CMD_PUSH && s.sn == lost);
        if hit && !dropped {
            dropped = true;
            return true;
        }
        false
    }));
    cx.link.ack_each = true;
    let msg = cx.pattern((k + 1) * mss);
    let (status, detail) = cx.echo("fast-resend", &[msg], 10);
    cx.link.ack_each = false;
    cx.link.drop_in = None;
    cx.row(
        &format!("echo: first of {} segments lost", k + 1),
        status,
        detail,
    );
    let times = cx.link.obs.pushes.get(&lost).cloned().unwrap_or_default();
    let minrto = cx.settings.minrto;
    let (status, detail) = match times.as_slice() {
        [first, again, ..] => {
            let gap = again.wrapping_sub(*first);
            // An RTO is never below minrto: anything sooner was fast.
            if gap + 3 < minrto {
                (
                    Status::Held,
                    format!(
                        "resent {gap} ms after the first transmission, once the {k} segments \
                         after it were acknowledged (its RTO is at least {minrto} ms)"
                    ),
                )
            } else {
                (
                    Status::Differs,
                    format!(
                        "resent only after {gap} ms, by its RTO (minrto {minrto} ms): {k} \
                         acknowledgements of later segments did not trigger it (ikcp.c with \
                         resend {k}: they do)"
                    ),
                )
            }
        }
        _ => (Status::Failed, format!("sn {lost} was never retransmitted")),
    };
    cx.row("fast retransmit", status, detail);
    cx.settle();
}

/// conv-mismatch: a stray data segment of another conversation (sn 5, as
/// a late datagram of an old one), from our address.
pub fn conv_mismatch(cx: &mut Ctx) {
    let other = cx.link.conv ^ 0x5a5a_0001;
    let answered = forge(cx, other, 5);
    cx.row(
        "conv mismatch ignored",
        if answered == 0 {
            Status::Held
        } else {
            Status::Differs
        },
        if answered == 0 {
            format!(
                "nothing came back for a stray segment of conv {other:#x} (ikcp_input refuses it)"
            )
        } else {
            format!(
                "{answered} segments came back with conv {other:#x}: the remote opened a second \
                 conversation for a stray segment (a server keyed by address and conv does)"
            )
        },
    );
    let (status, detail) = cx.echo("after conv mismatch", &[b"still here".to_vec()], 5);
    cx.row("echo: after a foreign conv", status, detail);
    cx.settle();
}

/// Sends a forged data segment of conversation `conv`, waits, and returns
/// how many segments of that conversation came back.
fn forge(cx: &mut Ctx, conv: u32, sn: u32) -> u64 {
    let mut seg = Segment::new(conv, CMD_PUSH, sn, b"another conversation".to_vec());
    seg.ts = cx.link.now();
    cx.link.send_raw(&seg.encode());
    cx.link.idle(Duration::from_millis(
        500.max(20 * cx.settings.interval as u64),
    ));
    cx.link.obs.foreign.get(&conv).copied().unwrap_or(0)
}

/// conv-takeover: the opening segment (sn 0) of another conversation from
/// our address; is ours still served? Judged from acknowledgements, which
/// need no echo. Last: a remote may hand the address to the newcomer.
pub fn conv_takeover(cx: &mut Ctx) {
    let other = cx.link.conv ^ 0x0f0f_0002;
    let answered = forge(cx, other, 0);
    let since = cx.link.now();
    cx.link.send(b"are we still talking");
    let until = cx.until(3);
    let acked = cx.link.drive_until(until, Link::all_acked);
    let (status, detail) = match (acked, answered) {
        (true, 0) => (
            Status::Held,
            format!("ignored; conv {:#x} still acknowledged", cx.link.conv),
        ),
        (true, n) => (
            Status::Differs,
            format!(
                "{n} segments came back with conv {other:#x} (a second conversation opened); \
                 conv {:#x} still acknowledged",
                cx.link.conv
            ),
        ),
        (false, n) => {
            // Not the remote's protocol failing: it chose to end ours.
            cx.link.obs.forget_pending_since(since);
            (
                Status::Differs,
                format!(
                    "conv {:#x} no longer acknowledged: the remote gave our address to conv \
                     {other:#x} ({n} segments of it came back); ikcp.c ignores other \
                     conversations",
                    cx.link.conv
                ),
            )
        }
    };
    cx.row("new conv from our address", status, detail);
}
