//! Where the engine meets a congestion controller: the hook events, the
//! installed Rust controller, and the 1.x / 2.x behaviour switch.
//!
//! Every hook goes through the [`Host`](super::host::Host) first, so the C
//! ABI can hand it to a C `IKCPOPS` table (read from the program's struct
//! at each hook, as upstream does); other hosts run the controller stored
//! in the engine.

use super::congestion::{CongestionControl, Window};
use super::host::Host;
use super::kcp::Kcp;
use super::payload::Payload;
use super::tail::TailFields;

/// Which upstream release's behaviour an engine reproduces where the two
/// differ without a controller: the first window probe (1.x 7 s, 2.x 5 s)
/// and the slow-start threshold after a timeout (1.x half the effective
/// window, 2.x half of `cwnd` at the start of the flush).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavour {
    /// `ikcp.c` 1.x (the default).
    #[default]
    V1,
    /// `ikcp.c` 2.x.
    V2,
}

/// A hook point reached, with upstream's arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CcEvent {
    Ack {
        acked_segs: u32,
        acked_bytes: u32,
        prior_in_flight: u32,
    },
    FastRetransmit {
        count: u32,
        in_flight: u32,
        prior_cwnd: u32,
    },
    Timeout {
        prior_cwnd: u32,
    },
    Tick,
    AppLimited {
        in_flight: u32,
    },
    Rtt {
        rtt: i32,
    },
    PktSent {
        sn: u32,
        ts: u32,
        len: u32,
        in_flight: u32,
        xmit: u32,
    },
    PktAcked {
        sn: u32,
        ts: u32,
        len: u32,
        rtt: i32,
        xmit: u32,
    },
    Pacing,
}

/// What became of a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CcOutcome {
    /// No controller hook ran: the built-in behaviour applies.
    NotSet,
    /// The controller's hook ran.
    Done,
    /// `pacing_rate` ran and returned this (read as signed: negative means
    /// no limit).
    Budget(u32),
}

/// The Rust controller slot (a box has no `Debug`).
#[derive(Default)]
pub(crate) struct Controller(pub(crate) Option<Box<dyn CongestionControl>>);

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Controller(installed)"
        } else {
            "Controller(built-in)"
        })
    }
}

impl<P: Payload> Kcp<P> {
    /// Installs a congestion controller in place of the built-in algorithm.
    /// Its hooks run as upstream 2.x runs an `IKCPOPS` table's (see
    /// [`CongestionControl`]); while one is installed the congestion window
    /// applies even with `nocwnd` (`set_nodelay(.., nc = true)`).
    pub fn set_congestion_control(&mut self, cc: impl CongestionControl + 'static) {
        self.controller.0 = Some(Box::new(cc));
    }

    /// Goes back to the built-in algorithm, keeping a window it can grow
    /// (at least one segment, `incr` consistent with it), as `ikcp_setcc(kcp,
    /// NULL)` does.
    pub fn clear_congestion_control(&mut self) {
        self.controller.0 = None;
        self.cwnd = self.cwnd.max(1);
        self.incr = self.cwnd.wrapping_mul(self.mss).max(self.mss);
    }

    /// Whether a controller other than the built-in algorithm is installed.
    pub fn has_congestion_control(&self) -> bool {
        self.controller.0.is_some()
    }

    /// Selects the upstream release whose behaviour this engine reproduces.
    pub fn set_flavour(&mut self, flavour: Flavour) {
        self.flavour = flavour;
    }

    /// The upstream release whose behaviour this engine reproduces.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// What a Rust controller's hook sees.
    fn window_view(&self) -> Window {
        Window {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            incr: self.incr,
            mss: self.mss,
            rmt_wnd: self.rmt_wnd,
            snd_wnd: self.snd_wnd,
            snd_una: self.snd_una,
            snd_nxt: self.snd_nxt,
            in_flight: self.snd_buf.len() as u32,
            queued: self.snd_buf.queued() as u32,
            now: self.current,
            srtt: self.rx_srtt,
            rto: self.rx_rto,
            fastresend: self.tail.fastresend(),
        }
    }

    /// Runs `event` on the Rust controller, if one is installed.
    pub(crate) fn run_rust_controller(&mut self, event: CcEvent) -> CcOutcome {
        let mut w = self.window_view();
        let Some(cc) = self.controller.0.as_mut() else {
            return CcOutcome::NotSet;
        };
        let outcome = match event {
            CcEvent::Ack {
                acked_segs,
                acked_bytes,
                prior_in_flight,
            } => {
                cc.on_ack(&mut w, acked_segs, acked_bytes, prior_in_flight);
                CcOutcome::Done
            }
            CcEvent::FastRetransmit {
                count,
                in_flight,
                prior_cwnd,
            } => {
                cc.on_fast_retransmit(&mut w, count, in_flight, prior_cwnd);
                CcOutcome::Done
            }
            CcEvent::Timeout { prior_cwnd } => {
                cc.on_timeout(&mut w, prior_cwnd);
                CcOutcome::Done
            }
            CcEvent::Tick => {
                cc.on_tick(&mut w);
                CcOutcome::Done
            }
            CcEvent::AppLimited { in_flight } => {
                cc.on_app_limited(&mut w, in_flight);
                CcOutcome::Done
            }
            CcEvent::Rtt { rtt } => {
                cc.on_rtt(&mut w, rtt);
                CcOutcome::Done
            }
            CcEvent::PktSent {
                sn,
                ts,
                len,
                in_flight,
                xmit,
            } => {
                cc.on_pkt_sent(&mut w, sn, ts, len, in_flight, xmit);
                CcOutcome::Done
            }
            CcEvent::PktAcked {
                sn,
                ts,
                len,
                rtt,
                xmit,
            } => {
                cc.on_pkt_acked(&mut w, sn, ts, len, rtt, xmit);
                CcOutcome::Done
            }
            CcEvent::Pacing => match cc.pacing_budget(&mut w) {
                // Upstream reads the budget as a signed number.
                Some(b) => CcOutcome::Budget(b.min(i32::MAX as u32)),
                None => CcOutcome::Budget(u32::MAX),
            },
        };
        self.cwnd = w.cwnd;
        self.ssthresh = w.ssthresh;
        self.incr = w.incr;
        outcome
    }

    /// Whether a controller's hooks run (a C table or a Rust controller).
    #[inline(always)]
    pub(super) fn controlled<H: Host<P>>(&self, host: &H) -> bool {
        host.has_controller(self)
    }

    /// Reaches hook `event`: the host's controller runs it, if any.
    #[inline(always)]
    pub(super) fn hook<H: Host<P>>(&mut self, host: &mut H, event: CcEvent) -> CcOutcome {
        if !host.has_controller(self) {
            return CcOutcome::NotSet;
        }
        host.congestion(self, event)
    }
}
