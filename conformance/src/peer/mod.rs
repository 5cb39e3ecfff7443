//! `peer`: a UDP conformance peer. We play reference KCP (upstream ikcp.c
//! 1.x, linked into this tool) against a remote implementation that runs a
//! plain echo, run a scripted suite, and judge what the remote sends.

mod link;
mod observe;
mod suite;

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use ffi_tests::rng::Rng;
use ffi_tests::wire;
use serde::Serialize;

use crate::record::Recorder;
use crate::report::{ReportArgs, Table};
use link::{Impairment, Link, LinkStats};
use suite::{Ctx, SCENARIOS};

#[derive(ClapArgs, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The remote echo's UDP address: we send first.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "listen")]
    pub connect: Option<String>,
    /// Wait on this address for the remote to open the conversation (its
    /// first message is read and dropped), then run the suite against it.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Conversation id (decimal or 0x hex). With --listen, taken from the
    /// remote's first datagram when not given.
    #[arg(long, value_parser = crate::decode::parse_u32)]
    pub conv: Option<u32>,
    /// The remote's nodelay (0, 1 or 2), as given to ikcp_nodelay.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=2))]
    pub nodelay: i32,
    /// The remote's timer interval (ms).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=5000))]
    pub interval: i32,
    /// The remote's fast-retransmit threshold (0: off).
    #[arg(long, default_value_t = 2)]
    pub resend: i32,
    /// The remote's congestion control off (1) or on (0).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub nc: u8,
    /// The remote's receive window (segments).
    #[arg(long, default_value_t = 128)]
    pub wnd: u32,
    /// The remote's MTU (bytes per datagram, 24-byte header included).
    #[arg(long, default_value_t = 1400, value_parser = clap::value_parser!(u32).range(50..=65507))]
    pub mtu: u32,
    /// The remote's minimum RTO (ms); default 30 with nodelay, 100 without.
    #[arg(long)]
    pub minrto: Option<u32>,
    /// The remote runs in stream mode (byte stream, no message boundaries).
    #[arg(long)]
    pub stream: bool,
    /// Largest message the remote's echo can hold (bytes); default: 127
    /// fragments (the reference's limit), fewer if the remote's advertised
    /// window is smaller.
    #[arg(long)]
    pub max_message: Option<usize>,
    /// Loss applied on our side to both directions in the lossy scenario (%).
    #[arg(long, default_value_t = 10.0)]
    pub loss: f64,
    /// Duplicated datagrams in the lossy scenario (%).
    #[arg(long, default_value_t = 5.0)]
    pub duplicate: f64,
    /// Reordered datagrams in the lossy scenario (%).
    #[arg(long, default_value_t = 10.0)]
    pub reorder: f64,
    /// Seconds to wait for the remote's window probe in the zero-window
    /// scenario (ikcp.c probes after 7 s).
    #[arg(long, default_value_t = 10)]
    pub probe_wait: u64,
    /// Only these scenarios (comma-separated; "basic" always runs).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Seed of the payloads and impairments.
    #[arg(long, default_value_t = 1, value_parser = crate::decode::parse_u64)]
    pub seed: u64,
    /// Time limit of the whole run (seconds).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Write every datagram of the run (both directions) as a pcap file for
    /// `decode`, tcpdump or Wireshark.
    #[arg(long, value_name = "FILE.pcap")]
    pub record: Option<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
}

const AFTER_HELP: &str = "\
The remote runs a plain echo: every message it receives (stream mode: every
byte) it sends back, on one conversation, with no encryption or FEC layer.
Tell the peer the remote's settings (--nodelay --interval --resend --nc --wnd
--mtu --stream); the peer uses the same ones, so the two ends agree.

Scenarios, in order:
  basic          one small message echoed; nothing runs without it
  sizes          one message of each size from 1 B to the largest
  bulk           many messages / a byte stream, pipelined
  lossy          bulk through loss, duplication and reordering on our side
  mtu            messages at the MSS edges; datagrams filled to the MTU
  zero-window    we stop reading: the remote must stop and probe (~7 s)
  rto            one segment lost repeatedly: the retransmission back-off
  fast-resend    one segment lost, the --resend segments after it acknowledged
                 one by one: it must come again before its RTO
  conv-mismatch  a stray segment of another conversation is ignored
  zero-length    a 0-byte message (message mode; late, as it can stall a remote)
  conv-takeover  another conversation opens from our address: is ours still
                 served (judged from acknowledgements; last)

Throughout, on everything the remote sends: every data segment of ours is
acknowledged, una never goes back, datagrams fit the MTU and data segments
the MSS, the window field stays within --wnd, and every retransmission comes
within the RTO bound of its rank (minrto and the round trip we measure,
doubled per timeout without nodelay, x1.5 with it, twice over for slack).

Each row of the report: held (as ikcp.c does), DIFFERS (works, but not as
ikcp.c does: reported, not a failure), FAILED (data lost or corrupted, or a
protocol expectation broken), skipped. Exit status 0 without FAILED rows,
1 with, 2 when the run could not start.

Example, against the C echo server of c-examples/ (started first):
  kcp-conformance peer --connect 127.0.0.1:4000 --conv 0x11223344";

/// The remote's settings, which the peer mirrors.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub nodelay: i32,
    pub interval: i32,
    pub resend: i32,
    pub nc: bool,
    pub wnd: u32,
    pub mtu: u32,
    pub minrto: u32,
    pub stream: bool,
}

/// What one row says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Held,
    Differs,
    Failed,
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Differs => "DIFFERS",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        }
    }
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub check: String,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct PeerReport {
    pub remote: String,
    pub conv: u32,
    pub reference: String,
    pub settings: Settings,
    pub scenarios: Vec<String>,
    pub rows: Vec<Row>,
    pub held: usize,
    pub differs: usize,
    pub failed: usize,
    pub link: LinkStats,
    pub remote_datagrams: u64,
    pub seconds: f64,
    pub conformant: bool,
}

/// The socket and the remote, by --connect or --listen.
fn open(args: &Args, deadline: Instant) -> Result<(UdpSocket, SocketAddr, u32), String> {
    let resolve = |s: &str| -> Result<SocketAddr, String> {
        s.to_socket_addrs()
            .map_err(|e| format!("{s}: {e}"))?
            .next()
            .ok_or_else(|| format!("{s}: no address"))
    };
    if let Some(c) = &args.connect {
        let remote = resolve(c)?;
        let Some(conv) = args.conv else {
            return Err("--connect needs --conv (the conversation the remote echoes on)".into());
        };
        let bind = if remote.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let bind = if remote.ip().is_loopback() && remote.is_ipv4() {
            "127.0.0.1:0"
        } else {
            bind
        };
        let sock = UdpSocket::bind(bind).map_err(|e| format!("cannot bind {bind}: {e}"))?;
        return Ok((sock, remote, conv));
    }
    let Some(l) = &args.listen else {
        return Err("say where the remote is: --connect HOST:PORT or --listen HOST:PORT".into());
    };
    let addr = resolve(l)?;
    let sock = UdpSocket::bind(addr).map_err(|e| format!("cannot bind {addr}: {e}"))?;
    args.report.progress(&format!(
        "peer: listening on {}; waiting for the remote's first datagram",
        sock.local_addr().map_err(|e| e.to_string())?
    ));
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no datagram from a remote before the time limit".into());
        }
        sock.set_read_timeout(Some(left.min(Duration::from_millis(500))))
            .map_err(|e| e.to_string())?;
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < wire::OVERHEAD {
                continue;
            }
            let conv = wire::header(&buf[..n]).conv;
            if args.conv.is_some_and(|c| c != conv) {
                continue;
            }
            // The remote retransmits its opening; the reference reads it then.
            return Ok((sock, from, conv));
        }
    }
}

pub fn run(args: &Args) -> Result<bool, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout);
    let settings = Settings {
        nodelay: args.nodelay,
        interval: args.interval,
        resend: args.resend,
        nc: args.nc == 1,
        wnd: args.wnd,
        mtu: args.mtu,
        minrto: args
            .minrto
            .unwrap_or(if args.nodelay > 0 { 30 } else { 100 }),
        stream: args.stream,
    };
    for name in &args.only {
        if !SCENARIOS.iter().any(|(n, _)| n == name) {
            return Err(format!(
                "--only: no scenario {name:?} (there are {})",
                SCENARIOS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let per_mille = |pct: f64| (pct.clamp(0.0, 100.0) * 10.0).round() as u32;
    let imp = Impairment {
        loss: per_mille(args.loss),
        duplicate: per_mille(args.duplicate),
        reorder: per_mille(args.reorder),
    };
    let recorder = match &args.record {
        Some(p) => Some(Recorder::create(p)?),
        None => None,
    };
    let (sock, remote, conv) = open(args, deadline)?;
    let mut link = Link::new(sock, remote, conv, &settings, args.seed, recorder)?;
    if args.listen.is_some() {
        // Take in the remote's opening and drop whatever it said.
        link.idle(Duration::from_millis(300));
        link.received.clear();
    }
    let progress = |text: &str| args.report.progress(text);
    progress(&format!(
        "peer: conv {conv:#x} with {remote}; reference ikcp.c 1.x as the other end"
    ));
    let mut cx = Ctx {
        link: &mut link,
        settings: &settings,
        rng: Rng::new(args.seed ^ 0x7065_6572),
        deadline,
        quiet: args.report.quiet,
        largest: 0,
        rows: Vec::new(),
        resplit: None,
    };
    let selected = |name: &str| args.only.is_empty() || args.only.iter().any(|n| n == name);
    let mut ran = Vec::new();
    let total = SCENARIOS
        .iter()
        .filter(|(n, _)| selected(n) || *n == "basic")
        .count();
    let mut alive = true;
    for (name, what) in SCENARIOS {
        if !(selected(name) || *name == "basic") {
            continue;
        }
        ran.push(name.to_string());
        if !alive || Instant::now() >= deadline {
            cx.rows.push(Row {
                check: format!("scenario {name}"),
                status: Status::Skipped,
                detail: if alive {
                    "the time limit (--timeout) was reached".into()
                } else {
                    "the basic echo failed".into()
                },
            });
            continue;
        }
        progress(&format!(
            "  [{}/{total}] {name}: {what} ({:.1} s)",
            ran.len(),
            started.elapsed().as_secs_f64()
        ));
        match *name {
            "basic" => {
                alive = suite::basic(&mut cx);
                // A message the remote can reassemble: at most its window.
                let mss = settings.mtu as usize - wire::OVERHEAD;
                let wnd = cx
                    .link
                    .obs
                    .wnd_max
                    .map_or(127, |w| (w as usize).clamp(1, 127));
                cx.largest = args.max_message.unwrap_or(usize::MAX).min(wnd * mss);
            }
            "sizes" => suite::sizes(&mut cx),
            "zero-length" => suite::zero_length(&mut cx),
            "bulk" => suite::bulk(&mut cx),
            "lossy" => suite::lossy(&mut cx, imp),
            "mtu" => suite::mtu(&mut cx),
            "zero-window" => suite::zero_window(&mut cx, args.probe_wait),
            "rto" => suite::rto(&mut cx),
            "fast-resend" => suite::fast_resend(&mut cx),
            "conv-mismatch" => suite::conv_mismatch(&mut cx),
            "conv-takeover" => suite::conv_takeover(&mut cx),
            _ => unreachable!("listed in SCENARIOS"),
        }
    }
    let mut rows = std::mem::take(&mut cx.rows);
    if alive && !settings.stream {
        rows.push(match cx.resplit.take() {
            None => Row {
                check: "message boundaries kept".into(),
                status: Status::Held,
                detail: "every echo came back as the messages sent".into(),
            },
            Some(e) => Row {
                check: "message boundaries kept".into(),
                status: Status::Differs,
                detail: format!("{e}; the bytes were all right"),
            },
        });
    }
    if alive {
        let wnd = link.obs.wnd_max.unwrap_or(0);
        rows.push(Row {
            check: "receive window as configured".into(),
            status: if u32::from(wnd) == settings.wnd {
                Status::Held
            } else {
                Status::Differs
            },
            detail: format!(
                "the remote advertised at most {wnd} segments (--wnd {}); largest message {} B",
                settings.wnd,
                args.max_message
                    .unwrap_or(usize::MAX)
                    .min((wnd as usize).clamp(1, 127) * (settings.mtu as usize - wire::OVERHEAD))
            ),
        });
        rows.extend(link.obs.rows(link.max_rto));
    }
    let count = |s| rows.iter().filter(|r| r.status == s).count();
    let report = PeerReport {
        remote: remote.to_string(),
        conv,
        reference: "upstream ikcp.c 1.x (kcp-io 0.0.5), linked into this tool".into(),
        settings,
        scenarios: ran,
        held: count(Status::Held),
        differs: count(Status::Differs),
        failed: count(Status::Failed),
        link: link.stats,
        remote_datagrams: link.obs.datagrams,
        seconds: started.elapsed().as_secs_f64(),
        conformant: count(Status::Failed) == 0,
        rows,
    };
    args.report.publish(|| render(&report), &report)?;
    Ok(report.conformant)
}

fn render(r: &PeerReport) -> String {
    let s = &r.settings;
    let mut out = format!(
        "kcp-conformance peer: {} conv {:#x}, {} mode, nodelay {} interval {} resend {} nc {} \
         wnd {} mtu {} minrto {}\nreference: {}\n\n",
        r.remote,
        r.conv,
        if s.stream { "stream" } else { "message" },
        s.nodelay,
        s.interval,
        s.resend,
        s.nc as u8,
        s.wnd,
        s.mtu,
        s.minrto,
        r.reference
    );
    let mut t = Table::new(&["check", "result", "detail"]);
    for row in &r.rows {
        t.row(vec![
            row.check.clone(),
            row.status.label().into(),
            row.detail.clone(),
        ]);
    }
    out.push_str(&t.render());
    out.push_str(&format!(
        "\n{} datagrams out, {} in; {:.1} s\n{}: {} held, {} differ, {} failed\n",
        r.link.datagrams_out,
        r.link.datagrams_in,
        r.seconds,
        if r.conformant {
            "CONFORMANT"
        } else {
            "NOT CONFORMANT"
        },
        r.held,
        r.differs,
        r.failed
    ));
    out
}
