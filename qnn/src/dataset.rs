//! Training and validation states from simulator rollouts.
//!
//! A learned policy must decide well in the states it will meet, and those
//! depend on how it decides; a single behaviour policy would show it a
//! narrow slice. Each slot of a rollout is therefore decided by a policy
//! drawn at random — lyapunov (40 %), greedy (30 %), random (20 %), local
//! (10 %) — which keeps queues bounded (lyapunov/greedy drain them) while
//! visiting congested and idle states too. After a warm-up, every
//! `stride`-th state is kept. Each kept state is labelled with its exact LP
//! optimum ([`solve_dpp_lp`]), the denominator of the validation share. Validation rollouts use seeds no training rollout uses.

use crate::error::{QnnError, Result};
use crate::features::{FeatureScales, StateInput};
use qmec_model::{Policy, Scenario, SystemState};
use qmec_policies::{Greedy, Local, Lyapunov, RandomChoice, solve_dpp_lp};
use qmec_sim::Simulator;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Added to a seed for states that judge a trained model (`qmec evaluate`,
/// the decision benches). The trainer's rollouts use `seed + i·7919`
/// (training) and that plus 0x5eed_0000_0000 (validation), small seeds in
/// both cases; evaluation seeds start here, a range neither reaches, so no
/// evaluated state was a training or a validation state.
pub const EVALUATION_SEED_OFFSET: u64 = 0xe7a1_0000_0000;

/// Slots per rollout.
pub const ROLLOUT_SLOTS: u64 = 240;
/// Slots skipped at the start of a rollout (empty queues).
pub const WARMUP_SLOTS: u64 = 40;
/// Keep every `STRIDE`-th state after the warm-up.
pub const STRIDE: u64 = 2;
/// LP optima below this share of max|Ψ| count as "nothing to offload"
/// (here and wherever a share of the optimum is reported).
pub const TRIVIAL_OPTIMUM: f64 = 1e-9;

/// One state prepared for training or validation.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The prepared inputs.
    pub input: StateInput,
    /// The exact per-slot LP optimum Σ Ψ μ*.
    pub lp_value: f64,
    /// The exact decision μ* (M × S, row-major): the target of the exact loss.
    pub lp_mu: Vec<f64>,
    /// The loss normaliser, max|Ψ| of the state.
    pub norm: f64,
}

impl Sample {
    /// Whether the LP optimum is positive (the share of it is defined).
    pub fn has_optimum(&self) -> bool {
        self.lp_value > TRIVIAL_OPTIMUM * self.input.psi_scale
    }
}

/// `count` states from rollouts seeded from `seed` under the behaviour mix.
pub fn collect_states(scenario: &Scenario, count: usize, seed: u64) -> Result<Vec<SystemState>> {
    let mut states = Vec::with_capacity(count);
    let mut rollout = 0u64;
    while states.len() < count {
        let rollout_seed = seed.wrapping_mul(1_000_003).wrapping_add(rollout);
        let mut sim = Simulator::new(scenario, rollout_seed);
        let mut choose = ChaCha8Rng::seed_from_u64(rollout_seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut behaviours: [Box<dyn Policy>; 4] =
            [Box::new(Lyapunov), Box::new(Greedy), Box::new(RandomChoice::new(rollout_seed)), Box::new(Local)];
        for slot in 0..ROLLOUT_SLOTS {
            let state = sim.observe();
            let draw: f64 = choose.random();
            let pick = if draw < 0.4 {
                0
            } else if draw < 0.7 {
                1
            } else if draw < 0.9 {
                2
            } else {
                3
            };
            let decision = behaviours[pick].decide(scenario, &state)?;
            decision.check(scenario, &state)?;
            if slot >= WARMUP_SLOTS && (slot - WARMUP_SLOTS).is_multiple_of(STRIDE) && states.len() < count {
                states.push(state.clone());
            }
            sim.apply(&state, decision);
        }
        rollout += 1;
    }
    Ok(states)
}

/// Prepares states and labels each with its LP optimum.
pub fn prepare(scenario: &Scenario, states: &[SystemState], scales: &FeatureScales) -> Result<Vec<Sample>> {
    states.iter().map(|state| Sample::labelled(scenario, state, StateInput::new(scenario, state, scales))).collect()
}

impl Sample {
    /// `input`, the prepared form of `state`, labelled with the exact LP
    /// decision of `state`: the one labelling of training and online learning.
    pub fn labelled(scenario: &Scenario, state: &SystemState, input: StateInput) -> Result<Sample> {
        let (lp_mu, lp_value) = solve_dpp_lp(scenario, state)?;
        let norm = input.psi_scale;
        if !norm.is_finite() || norm <= 0.0 {
            return Err(QnnError::Config { field: "states", reason: format!("a state has no usable Ψ scale ({norm})") });
        }
        Ok(Sample { input, lp_value, lp_mu: lp_mu.as_slice().to_vec(), norm })
    }
}
