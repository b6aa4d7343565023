//! The `lyapunov` policy: the exact per-slot drift-plus-penalty LP
//!
//!   max Σ Ψ_ms μ_ms  s.t.  Σ_s μ_ms ≤ 1,  Σ_m μ_ms ≤ 1,
//!                          Σ_s μ_ms τ r_ms ≤ Q_m,  0 ≤ μ ≤ 1,
//!
//! solved by the structured, certified solver of [`crate::dpp_exact`];
//! `lyapunov-lp` solves the same LP with microlp (pure-Rust simplex), the
//! reference the structured solver is checked and timed against. For
//! microlp, pairs with Ψ_ms ≤ 0 are left out (an optimum never uses them),
//! and a queue cap is added only where it can bind, which keeps the LP small.

use crate::dpp_exact::{Certified, solve_exact};
use crate::fill::{SlotLimits, slot_bits_and_queues};
use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOutcome, Variable};
use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Decision, Matrix, Policy, PolicyError, Scenario, SystemState};

/// `lyapunov`: the LP optimum each slot, from the structured solver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lyapunov;

/// `lyapunov-lp`: the same optimum from microlp, for comparison.
#[derive(Debug, Clone, Copy, Default)]
pub struct LyapunovLp;

impl Policy for Lyapunov {
    fn name(&self) -> &str {
        "lyapunov"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        let offload = shares_matrix(state, certify(scenario, state)?.mu)?;
        Ok(Decision::with_default_cpu(scenario, state, offload))
    }
}

impl Policy for LyapunovLp {
    fn name(&self) -> &str {
        "lyapunov-lp"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        let (offload, _) = solve_dpp_lp(scenario, state)?;
        Ok(Decision::with_default_cpu(scenario, state, offload))
    }
}

/// The optimal shares μ* (as a matrix) and the certified optimum, from the
/// structured solver.
pub fn solve_dpp_exact(scenario: &Scenario, state: &SystemState) -> Result<(Matrix, Certified), PolicyError> {
    let certified = certify(scenario, state)?;
    Ok((shares_matrix(state, certified.mu.clone())?, certified))
}

/// The certified optimum of the state's LP.
fn certify(scenario: &Scenario, state: &SystemState) -> Result<Certified, PolicyError> {
    let weights = dpp_weights(scenario, state);
    let (slot_bits, queue_bits) = slot_bits_and_queues(scenario, state);
    let limits = SlotLimits { servers: state.servers(), slot_bits: &slot_bits, queue_bits: &queue_bits };
    solve_exact(weights.as_slice(), &limits)
}

/// The optimal shares μ* and the optimum Σ Ψ μ*, from microlp.
pub fn solve_dpp_lp(scenario: &Scenario, state: &SystemState) -> Result<(Matrix, f64), PolicyError> {
    let weights = dpp_weights(scenario, state);
    let (slot_bits, queue_bits) = slot_bits_and_queues(scenario, state);
    let limits = SlotLimits { servers: state.servers(), slot_bits: &slot_bits, queue_bits: &queue_bits };
    let all: Vec<usize> = (0..weights.as_slice().len()).collect();
    let (mu, value) = solve_on_pairs(weights.as_slice(), &limits, scenario.control.queue_unit_bits, &all)?;
    Ok((shares_matrix(state, mu)?, value))
}

fn shares_matrix(state: &SystemState, mu: Vec<f64>) -> Result<Matrix, PolicyError> {
    Matrix::from_vec(state.devices(), state.servers(), mu).ok_or_else(|| PolicyError::Solver("the LP returned a decision of the wrong size".into()))
}

/// The LP restricted to the pairs `pairs` (indices m·S + s; every other
/// share is 0): μ (M × S, row-major) and Σ Ψ μ. Over a set that holds the
/// optimum's support it is the optimum; the learned policies' critic solves
/// it on each candidate's support, as DROO's critic solves the resource
/// allocation of each candidate offloading decision. `unit` scales the
/// queue caps to the order of the shares, for the simplex's tolerances.
pub fn solve_on_pairs(weights: &[f64], limits: &SlotLimits<'_>, unit: f64, pairs: &[usize]) -> Result<(Vec<f64>, f64), PolicyError> {
    let (devices, servers) = (limits.devices(), limits.servers);
    let mut problem = Problem::new(OptimizationDirection::Maximize);
    let mut vars: Vec<(usize, Variable)> = Vec::new();
    let mut per_server: Vec<Vec<(Variable, f64)>> = vec![Vec::new(); servers];
    let mut per_device: Vec<Vec<(Variable, usize)>> = vec![Vec::new(); devices];
    for &pair in pairs {
        let psi = weights[pair];
        if psi <= 0.0 || !psi.is_finite() {
            continue;
        }
        let var = problem.add_var(psi, (0.0, 1.0));
        per_server[pair % servers].push((var, 1.0));
        per_device[pair / servers].push((var, pair));
        vars.push((pair, var));
    }
    for (m, row) in per_device.iter().enumerate().filter(|(_, row)| !row.is_empty()) {
        if row.len() > 1 {
            let radio: Vec<(Variable, f64)> = row.iter().map(|&(v, _)| (v, 1.0)).collect();
            problem.add_constraint(radio.as_slice(), ComparisonOp::Le, 1.0);
        }
        // A queue cap only where it can bind keeps the LP small.
        let largest = row.iter().map(|&(_, pair)| limits.slot_bits[pair]).fold(0.0, f64::max);
        if limits.queue_bits[m] < largest {
            let cap: Vec<(Variable, f64)> = row.iter().map(|&(v, pair)| (v, limits.slot_bits[pair] / unit)).collect();
            problem.add_constraint(cap.as_slice(), ComparisonOp::Le, limits.queue_bits[m] / unit);
        }
    }
    for column in per_server.iter().filter(|c| c.len() > 1) {
        problem.add_constraint(column.as_slice(), ComparisonOp::Le, 1.0);
    }
    let mut mu = vec![0.0; devices * servers];
    if vars.is_empty() {
        return Ok((mu, 0.0));
    }
    let solution = match problem.solve().map_err(|e| PolicyError::Solver(e.to_string()))? {
        SolveOutcome::Solution(solution) => solution,
        SolveOutcome::Interrupted(_) => return Err(PolicyError::Solver("the LP solve was interrupted".into())),
    };
    for (pair, var) in vars {
        // Simplex vertices can sit a hair outside [0, 1].
        mu[pair] = solution.var_value(var).clamp(0.0, 1.0);
    }
    let value = weights.iter().zip(&mu).map(|(w, u)| w * u).sum();
    Ok((mu, value))
}
