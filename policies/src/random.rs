//! The `random` baseline: each device picks one of the S servers or "none"
//! uniformly at random, from the policy's own seeded stream.

use crate::share::fair_split;
use qmec_model::streams::{Purpose, stream};
use qmec_model::{Decision, Policy, PolicyError, Scenario, SystemState};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
pub struct RandomChoice {
    rng: ChaCha8Rng,
}

impl RandomChoice {
    pub fn new(seed: u64) -> RandomChoice {
        RandomChoice { rng: stream(seed, Purpose::Policy, 0) }
    }
}

impl Policy for RandomChoice {
    fn name(&self) -> &str {
        "random"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        let choices: Vec<Option<usize>> = (0..state.devices())
            .map(|_| {
                let pick = self.rng.random_range(0..=state.servers());
                (pick < state.servers()).then_some(pick)
            })
            .collect();
        Ok(fair_split(scenario, state, &choices))
    }
}
