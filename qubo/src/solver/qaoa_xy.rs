//! QAOA restricted to the one-hot feasible subspace (the quantum alternating
//! operator ansatz of Hadfield et al. 2019): each device is an S-level qudit
//! (= its S qubits held one-hot), the start state is the uniform
//! superposition of all S^M assignments, the cost layer is exp(−iγ C) with C
//! the total latency (no penalty needed: nothing ever leaves the subspace),
//! and the mixer is the ring or complete XY mixer on every device. The
//! register is S^M instead of 2^(M·S) amplitudes — 10 devices × 5 servers is
//! 9.8 M amplitudes against 2^50 — so this form reaches sizes the textbook
//! one cannot. Angles are trained by Adam on adjoint gradients
//! ([`super::qudit::QuditQaoa`]); the answer is the best of `shots` samples,
//! all feasible by construction.

use super::exact::one_hot_costs;
use super::qaoa::{QaoaRun, best_sample, standardise, train};
pub use super::qudit::Mixer;
use super::qudit::{QuditQaoa, register_size};
use super::{Solution, Solver, from_assignment};
use crate::build::AssignmentQubo;
use crate::error::QuboError;
use crate::problem::SelectionProblem;
use crate::rng::FastRng;

#[derive(Debug, Clone, Copy)]
pub struct QaoaXy {
    pub depth: usize,
    pub restarts: usize,
    pub iterations: usize,
    pub learning_rate: f64,
    pub shots: usize,
    pub seed: u64,
    pub mixer: Mixer,
    /// Refuse registers larger than this many amplitudes.
    pub max_states: usize,
}

impl Default for QaoaXy {
    fn default() -> QaoaXy {
        QaoaXy {
            depth: 3,
            restarts: 2,
            iterations: 60,
            learning_rate: 0.05,
            shots: 1024,
            seed: 0,
            mixer: Mixer::Ring,
            max_states: 1 << 24,
        }
    }
}

/// The assignment of a mixed-radix index.
pub(crate) fn digits(mut index: usize, devices: usize, servers: usize) -> Vec<usize> {
    (0..devices)
        .map(|_| {
            let d = index % servers;
            index /= servers;
            d
        })
        .collect()
}

impl QaoaXy {
    /// Trains the angles and returns the final distribution over S^M states.
    pub fn optimise(&self, problem: &SelectionProblem) -> Result<QaoaRun, QuboError> {
        register_size(problem.servers(), problem.devices(), self.max_states)?;
        let costs = one_hot_costs(problem, self.max_states as u64)?;
        let (diag, mean, spread) = standardise(&costs);
        let circuit = QuditQaoa::new(problem.servers(), diag, self.mixer)?;
        let mut rng = FastRng::new(self.seed);
        let (params, value) = train(
            self.depth,
            self.restarts,
            self.iterations,
            self.learning_rate,
            &mut rng,
            |p| Ok(circuit.expectation_and_gradient(p)),
        )?;
        let probabilities = circuit.run(&params).iter().map(|a| a.norm_sqr()).collect();
        Ok(QaoaRun {
            params,
            expectation: mean + spread * value,
            probabilities,
        })
    }
}

impl Solver for QaoaXy {
    fn name(&self) -> &str {
        match self.mixer {
            Mixer::Ring => "qaoa-xy",
            Mixer::Complete => "qaoa-xy-complete",
        }
    }

    fn solve(&mut self, aq: &AssignmentQubo) -> Result<Solution, QuboError> {
        let p = aq.problem();
        let run = self.optimise(p)?;
        let mut rng = FastRng::new(self.seed ^ 0x5A5A);
        let (m, s) = (p.devices(), p.servers());
        let index = best_sample(&run.probabilities, self.shots, &mut rng, |i| {
            Some(p.cost_unchecked(&digits(i, m, s)))
        })
        .unwrap_or(0);
        Ok(from_assignment(aq, digits(index, m, s), true, 0))
    }
}
