//! The 2.x overlay of the scenario families: congestion controllers
//! installed with `ikcp_setcc` at the start and replaced, restored to NULL
//! or refused (failing `init`) mid-transfer. It draws from the scenario's
//! PRNG only when both implementations are 2.x, so 1.x scenarios are the
//! same with or without it.

use crate::cc::{pace, reenter, steer, CcConfig, ALL_HOOKS};
use crate::lockstep::Call;
use crate::rng::Rng;

use super::generator::{Scenario, Step};

/// How a scenario uses controllers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcProfile {
    /// Never installs one: the built-in algorithm with 2.x behaviour.
    None,
    /// Every hook, steering and pacing.
    Full,
    /// Some hooks NULL.
    Sparse,
}

impl CcProfile {
    pub fn name(self) -> &'static str {
        match self {
            CcProfile::None => "no controller",
            CcProfile::Full => "full controller",
            CcProfile::Sparse => "sparse controller",
        }
    }
}

/// A random configuration of the test controller for `profile`.
fn config(rng: &mut Rng, profile: CcProfile) -> CcConfig {
    let hooks = match profile {
        CcProfile::Sparse => rng.next_u32() as u16 & ALL_HOOKS,
        _ => ALL_HOOKS,
    };
    let mut steer_bits = 0;
    for bit in [
        steer::ACK,
        steer::FAST,
        steer::TIMEOUT,
        steer::TICK,
        steer::RTT,
        steer::INCR,
    ] {
        if rng.chance(500) {
            steer_bits |= bit;
        }
    }
    if rng.chance(100) {
        steer_bits |= steer::ZERO;
    }
    let mut reenter_bits = 0;
    for (bit, chance) in [
        (reenter::SEND, 200),
        (reenter::QUERY, 300),
        (reenter::RESTORE, 100),
    ] {
        if rng.chance(chance) {
            reenter_bits |= bit;
        }
    }
    let pacing = rng.pick(&[pace::NONE, pace::NONE, pace::FIXED, pace::BURST, pace::ZERO]);
    CcConfig {
        hooks,
        init_result: if rng.chance(100) {
            -1
        } else {
            rng.pick(&[0, 0, 1])
        },
        steer: steer_bits,
        reenter: reenter_bits,
        pacing,
        budget: rng.pick(&[0, 1, 100, 1376, 3000, 20_000, 200_000]),
    }
}

impl Scenario {
    /// At setup (2.x only): picks the scenario's profile and installs
    /// controllers accordingly, sometimes with `nocwnd = 1`.
    pub(super) fn cc_setup(&mut self) -> Step {
        self.cc_profile = match self.rng.below(8) {
            0 | 1 => CcProfile::None,
            2..=5 => CcProfile::Full,
            _ => CcProfile::Sparse,
        };
        if self.cc_profile == CcProfile::None {
            return Ok(());
        }
        for ep in 0..2 {
            if self.rng.chance(800) {
                let cfg = config(&mut self.rng, self.cc_profile);
                self.call(Call::SetCc { ep, cfg: Some(cfg) })?;
            }
            if self.rng.chance(300) {
                self.call(Call::Nodelay {
                    ep,
                    nodelay: -1,
                    interval: -1,
                    resend: -1,
                    nc: 1,
                })?;
            }
        }
        Ok(())
    }

    /// Mid-transfer (2.x only, now and then): replace a controller, restore
    /// the built-in one, or install one whose `init` fails.
    pub(super) fn cc_step(&mut self) -> Step {
        if self.cc_profile == CcProfile::None || !self.rng.chance(20) {
            return Ok(());
        }
        let ep = self.ep();
        let cfg = match self.rng.below(4) {
            0 => None,
            1 => Some(CcConfig {
                init_result: -1,
                ..config(&mut self.rng, self.cc_profile)
            }),
            _ => Some(config(&mut self.rng, self.cc_profile)),
        };
        self.call(Call::SetCc { ep, cfg })
    }
}
