//! The `greedy` baseline: every device with work offloads to the server with
//! its best channel this slot; devices that collide split the channel.
//!
//! This is the textbook "best channel, fair split" heuristic the papers
//! compare against, not a solver of the per-slot problem: it never looks at
//! the drift-plus-penalty weights Ψ, so it offloads on pairs whose Ψ is
//! negative (the energy penalty V P τ outweighs the drain) and splits a
//! channel among many devices where the optimum gives it to one. For the
//! greedy answer to the per-slot LP see [`crate::dpp_greedy`].

use crate::share::fair_shares;
use qmec_model::{Decision, Matrix, Policy, PolicyError, Scenario, SystemState};

#[derive(Debug, Clone, Copy, Default)]
pub struct Greedy;

impl Policy for Greedy {
    fn name(&self) -> &str {
        "greedy"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        Ok(Decision::with_default_cpu(scenario, state, Greedy::shares(scenario, state)))
    }
}

impl Greedy {
    /// The shares μ alone, without the CPU split (what a critic weighs).
    pub fn shares(scenario: &Scenario, state: &SystemState) -> Matrix {
        let choices: Vec<Option<usize>> = (0..state.devices())
            .map(|m| {
                if state.queue_bits[m] <= 0.0 {
                    return None;
                }
                let rates = state.rates_bps.row(m);
                (0..rates.len()).max_by(|&a, &b| rates[a].total_cmp(&rates[b]))
            })
            .collect();
        fair_shares(scenario, state, &choices)
    }
}
