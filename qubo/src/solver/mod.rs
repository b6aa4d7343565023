//! Every solver behind one trait. A solver takes the penalised
//! [`AssignmentQubo`] and returns a one-hot assignment; whatever it ends on
//! is made feasible by [`crate::repair`] and the fix is counted, so outputs
//! are comparable and infeasibility is visible rather than hidden.
//!
//! - [`exact`]: enumeration of all 2^n bit strings (≤ 24 variables) and of
//!   the S^M one-hot assignments.
//! - [`greedy`]: devices in turn take their cheapest server given the load so far.
//! - [`sa`]: simulated annealing with incremental energy deltas.
//! - [`sb`]: simulated bifurcation (ballistic and discrete), the
//!   quantum-inspired solver.
//! - [`qaoa`]: textbook QAOA over 2^(M·S) amplitudes, X mixer, penalty.
//! - [`qaoa_xy`]: QAOA on the one-hot subspace, M qudits of S levels, XY mixer.
//! - [`local`]: the descent and re-assignment moves the heuristics finish with.
//! - [`adam`]: the angle optimiser of both QAOA forms.
//! - [`qudit`]: the S^M-amplitude register QAOA-XY runs on, with its adjoint.

pub mod adam;
pub mod exact;
pub mod greedy;
pub mod local;
pub mod qaoa;
pub mod qaoa_xy;
pub mod qudit;
pub mod sa;
pub mod sb;

use crate::build::AssignmentQubo;
use crate::error::QuboError;
use crate::repair::repair;

/// What a solver returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// Option per device.
    pub assignment: Vec<usize>,
    /// Total cost (seconds for AIGC), = QUBO energy of the one-hot x.
    pub cost: f64,
    /// Whether the solver's own output was already one-hot.
    pub raw_feasible: bool,
    /// Devices [`repair`] had to re-assign.
    pub repaired_devices: usize,
}

/// A QUBO server-selection solver.
pub trait Solver: Send {
    /// Short name for tables and the command line.
    fn name(&self) -> &str;

    fn solve(&mut self, aq: &AssignmentQubo) -> Result<Solution, QuboError>;
}

/// Repairs a bit string, decodes it and prices it.
pub(crate) fn finish(aq: &AssignmentQubo, mut x: Vec<u8>) -> Solution {
    let repaired_devices = repair(aq, &mut x);
    // After repair every row is one-hot, so decoding cannot fail; the
    // fallback only keeps this panic-free.
    let assignment = aq.decode(&x).unwrap_or_else(|| vec![0; aq.devices()]);
    from_assignment(aq, assignment, repaired_devices == 0, repaired_devices)
}

pub(crate) fn from_assignment(
    aq: &AssignmentQubo,
    assignment: Vec<usize>,
    raw_feasible: bool,
    repaired_devices: usize,
) -> Solution {
    let cost = aq.problem().cost_unchecked(&assignment);
    Solution {
        assignment,
        cost,
        raw_feasible,
        repaired_devices,
    }
}

/// The names [`by_name`] knows.
pub const SOLVERS: [&str; 9] = [
    "exact",
    "exact-onehot",
    "greedy",
    "sa",
    "sb",
    "dsb",
    "qaoa",
    "qaoa-xy",
    "qaoa-xy-complete",
];

/// A solver with its default settings, seeded.
pub fn by_name(name: &str, seed: u64) -> Result<Box<dyn Solver>, QuboError> {
    Ok(match name {
        "exact" => Box::new(exact::ExactBits::default()),
        "exact-onehot" => Box::new(exact::ExactOneHot::default()),
        "greedy" => Box::new(greedy::Greedy),
        "sa" => Box::new(sa::SimulatedAnnealing {
            seed,
            ..Default::default()
        }),
        "sb" => Box::new(sb::SimulatedBifurcation {
            seed,
            ..Default::default()
        }),
        "dsb" => Box::new(sb::SimulatedBifurcation {
            seed,
            variant: sb::Variant::Discrete,
            ..Default::default()
        }),
        "qaoa" => Box::new(qaoa::Qaoa {
            seed,
            ..Default::default()
        }),
        "qaoa-xy" => Box::new(qaoa_xy::QaoaXy {
            seed,
            ..Default::default()
        }),
        "qaoa-xy-complete" => Box::new(qaoa_xy::QaoaXy {
            seed,
            mixer: qaoa_xy::Mixer::Complete,
            ..Default::default()
        }),
        other => {
            return Err(QuboError::UnknownSolver {
                name: other.into(),
                known: SOLVERS.join(", "),
            });
        }
    })
}
