//! The `dpp-greedy` rule: the device–server pairs with a positive
//! drift-plus-penalty weight Ψ_ms, largest first, each given what its
//! device's radio, its server's channel and its device's queue still leave.
//!
//! A one-line classical answer to the per-slot LP: it is what every learned
//! policy must at least match, and one of the candidates their critic
//! weighs. Unlike `greedy` it never offloads on a pair whose Ψ is negative
//! (where transmitting costs more, under V, than it drains).

use crate::fill::{FillScratch, SlotLimits, fill_in_order, positive_by_weight, slot_bits_and_queues};
use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Decision, Matrix, Policy, PolicyError, Scenario, SystemState};

#[derive(Debug, Clone, Default)]
pub struct DppGreedy {
    scratch: FillScratch,
}

impl DppGreedy {
    /// μ (M × S, row-major) for Ψ (`weights`, row-major) under `limits`.
    pub fn shares(&mut self, weights: &[f64], limits: &SlotLimits<'_>) -> Vec<f64> {
        let mut mu = Vec::new();
        fill_in_order(limits, &positive_by_weight(weights), &mut mu, &mut self.scratch);
        mu
    }
}

impl Policy for DppGreedy {
    fn name(&self) -> &str {
        "dpp-greedy"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        let weights = dpp_weights(scenario, state);
        let (slot_bits, queue_bits) = slot_bits_and_queues(scenario, state);
        let limits = SlotLimits { servers: state.servers(), slot_bits: &slot_bits, queue_bits: &queue_bits };
        let mu = self.shares(weights.as_slice(), &limits);
        let offload = Matrix::from_vec(state.devices(), state.servers(), mu)
            .ok_or_else(|| PolicyError::Solver("dpp-greedy produced a decision of the wrong size".into()))?;
        Ok(Decision::with_default_cpu(scenario, state, offload))
    }
}
