//! The `lyapunov` policy: the exact per-slot drift-plus-penalty LP
//!
//!   max Σ Ψ_ms μ_ms  s.t.  Σ_s μ_ms ≤ 1,  Σ_m μ_ms ≤ 1,
//!                          Σ_s μ_ms τ r_ms ≤ Q_m,  0 ≤ μ ≤ 1,
//!
//! solved with microlp (pure-Rust simplex). Pairs with Ψ_ms ≤ 0 are left out
//! (an optimum never uses them), and a queue cap is added only where it can
//! bind, which keeps the LP small.

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOutcome, Variable};
use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Decision, Matrix, Policy, PolicyError, Scenario, SystemState};

#[derive(Debug, Clone, Copy, Default)]
pub struct Lyapunov;

impl Policy for Lyapunov {
    fn name(&self) -> &str {
        "lyapunov"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        let (offload, _) = solve_dpp_lp(scenario, state)?;
        Ok(Decision::with_default_cpu(scenario, state, offload))
    }
}

/// The optimal shares μ* and the optimum Σ Ψ μ*.
pub fn solve_dpp_lp(scenario: &Scenario, state: &SystemState) -> Result<(Matrix, f64), PolicyError> {
    let weights = dpp_weights(scenario, state);
    let (devices, servers) = (state.devices(), state.servers());
    let mut problem = Problem::new(OptimizationDirection::Maximize);
    let mut vars: Vec<(usize, usize, Variable)> = Vec::new();
    let mut per_server: Vec<Vec<(Variable, f64)>> = vec![Vec::new(); servers];
    let unit = scenario.control.queue_unit_bits;
    for m in 0..devices {
        let mut radio = Vec::new();
        let mut cap = Vec::new();
        let mut largest_slot_bits: f64 = 0.0;
        for (s, column) in per_server.iter_mut().enumerate() {
            let psi = weights.get(m, s);
            if psi <= 0.0 || !psi.is_finite() {
                continue;
            }
            let var = problem.add_var(psi, (0.0, 1.0));
            let slot_bits = scenario.slot_seconds * state.rates_bps.get(m, s);
            largest_slot_bits = largest_slot_bits.max(slot_bits);
            radio.push((var, 1.0));
            cap.push((var, slot_bits / unit));
            column.push((var, 1.0));
            vars.push((m, s, var));
        }
        if radio.len() > 1 {
            problem.add_constraint(radio.as_slice(), ComparisonOp::Le, 1.0);
        }
        if !cap.is_empty() && state.queue_bits[m] < largest_slot_bits {
            problem.add_constraint(cap.as_slice(), ComparisonOp::Le, state.queue_bits[m] / unit);
        }
    }
    for column in per_server.iter().filter(|c| c.len() > 1) {
        problem.add_constraint(column.as_slice(), ComparisonOp::Le, 1.0);
    }
    let mut offload = Matrix::zeros(devices, servers);
    if vars.is_empty() {
        return Ok((offload, 0.0));
    }
    let solution = match problem.solve().map_err(|e| PolicyError::Solver(e.to_string()))? {
        SolveOutcome::Solution(solution) => solution,
        SolveOutcome::Interrupted(_) => return Err(PolicyError::Solver("the LP solve was interrupted".into())),
    };
    for (m, s, var) in vars {
        // Simplex vertices can sit a hair outside [0, 1].
        offload.set(m, s, solution.var_value(var).clamp(0.0, 1.0));
    }
    let value = weights.dot(&offload);
    Ok((offload, value))
}
