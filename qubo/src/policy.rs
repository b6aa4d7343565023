//! The `qubo` offloading policy for the MEC simulator and the testbed: each
//! slot, every device with a backlog picks one server (or stays local) by
//! solving a server-selection QUBO, and devices on one server split its
//! channel equally (the fair split of the classical policies).
//!
//! The slot's selection problem, in seconds, for device m with backlog Q_m:
//! - server s: c_ms = Q_m / r_ms (upload at the full channel) + Q_m L / F_s
//!   (compute at the full CPU) + Z_s L / F_s (the backlog already there) +
//!   the result delay; load_ms = Q_m / r_ms + Q_m L / F_s. With n devices
//!   sharing s, each uploads at r/n and computes at F/n, so device m's time
//!   is n (Q_m / r_ms + Q_m L / F_s): the cost of the co-assigned pairs is
//!   exactly Σ_{m<m'} (load_ms + load_m's), the QUBO coupling.
//! - local (the last option): c = Q_m L / f_loc, no coupling.
//!
//! A link with no rate costs [`UNREACHABLE_S`] instead of infinity, so the
//! coefficients stay finite and the link is never preferred.

use crate::build::AssignmentQubo;
use crate::error::QuboError;
use crate::problem::SelectionProblem;
use crate::solver::{Solver, by_name};
use qmec_model::{Decision, Policy, PolicyError, Scenario, SystemState};
use qmec_policies::share::fair_split;

/// Seconds charged for a link with zero rate.
pub const UNREACHABLE_S: f64 = 1e6;

/// The names [`by_name_policy`] knows: `qubo` (annealing), `qubo-sb`
/// (bifurcation), `qubo-exact` (one-hot enumeration, small M only).
pub const POLICIES: [&str; 3] = ["qubo", "qubo-sb", "qubo-exact"];

/// A QUBO server-selection policy around one solver.
pub struct QuboPolicy {
    name: String,
    solver: String,
    seed: u64,
}

impl std::fmt::Debug for QuboPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuboPolicy")
            .field("name", &self.name)
            .field("solver", &self.solver)
            .finish()
    }
}

/// A QUBO policy by name, or `None` for a name not in [`POLICIES`].
pub fn by_name_policy(name: &str, seed: u64) -> Option<QuboPolicy> {
    let solver = match name {
        "qubo" => "sa",
        "qubo-sb" => "sb",
        "qubo-exact" => "exact-onehot",
        _ => return None,
    };
    Some(QuboPolicy {
        name: name.into(),
        solver: solver.into(),
        seed,
    })
}

/// The slot's selection problem over the devices with a backlog; returns it
/// with the device index of each row. Option S is "local".
pub fn slot_problem(
    scenario: &Scenario,
    state: &SystemState,
) -> Result<Option<(SelectionProblem, Vec<usize>)>, QuboError> {
    let rows: Vec<usize> = (0..state.devices())
        .filter(|&m| state.queue_bits[m] > 0.0)
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let s_count = state.servers();
    let cycles = scenario.device.cycles_per_bit;
    let f_server = scenario.server.cpu_hz;
    let mut linear = Vec::with_capacity(rows.len() * (s_count + 1));
    let mut load = Vec::with_capacity(rows.len() * (s_count + 1));
    for &m in &rows {
        let q = state.queue_bits[m];
        for s in 0..s_count {
            let rate = state.rates_bps.get(m, s);
            let compute = q * cycles / f_server;
            let (c, l) = if rate > 0.0 && rate.is_finite() {
                let upload = q / rate;
                let backlog = state.server_bits.get(s).copied().unwrap_or(0.0) * cycles / f_server;
                (
                    upload + compute + backlog + scenario.server.result_delay_s,
                    upload + compute,
                )
            } else {
                (UNREACHABLE_S, 0.0)
            };
            linear.push(c.min(UNREACHABLE_S));
            load.push(l.min(UNREACHABLE_S));
        }
        linear.push((q * cycles / scenario.device.cpu_hz).min(UNREACHABLE_S));
        load.push(0.0);
    }
    Ok(Some((
        SelectionProblem::new(rows.len(), s_count + 1, linear, load)?,
        rows,
    )))
}

impl QuboPolicy {
    fn solver(&self, slot: u64) -> Result<Box<dyn Solver>, QuboError> {
        let seed = self.seed ^ slot.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        match self.solver.as_str() {
            // A slot's problem is small (M·(S+1) variables); fewer sweeps
            // than the offline default keep a slot's decision in milliseconds.
            "sa" => Ok(Box::new(crate::solver::sa::SimulatedAnnealing {
                reads: 4,
                sweeps: 300,
                seed,
                ..Default::default()
            })),
            other => by_name(other, seed),
        }
    }
}

impl Policy for QuboPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(
        &mut self,
        scenario: &Scenario,
        state: &SystemState,
    ) -> Result<Decision, PolicyError> {
        let Some((problem, rows)) =
            slot_problem(scenario, state).map_err(|e| PolicyError::Solver(e.to_string()))?
        else {
            return Ok(Decision::local(scenario, state));
        };
        let aq = AssignmentQubo::new(problem).map_err(|e| PolicyError::Solver(e.to_string()))?;
        let solution = self
            .solver(state.slot)
            .and_then(|mut s| s.solve(&aq))
            .map_err(|e| PolicyError::Solver(e.to_string()))?;
        let mut choices = vec![None; state.devices()];
        for (&m, &s) in rows.iter().zip(&solution.assignment) {
            choices[m] = (s < state.servers()).then_some(s);
        }
        Ok(fair_split(scenario, state, &choices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmec_model::Matrix;

    fn state(scenario: &Scenario, queues: Vec<f64>) -> SystemState {
        let (m, s) = (queues.len(), scenario.servers);
        let gains = Matrix::from_fn(m, s, |i, j| 1e-8 * (1.0 + i as f64 + 2.0 * j as f64));
        SystemState::new(
            scenario,
            0,
            queues,
            vec![0.0; m],
            Matrix::zeros(m, s),
            gains,
        )
    }

    #[test]
    fn decisions_pass_the_model_check_and_spread_load() {
        let mut scenario = Scenario::paper();
        scenario.devices = 6;
        let st = state(&scenario, vec![5e5, 5e5, 5e5, 5e5, 0.0, 5e5]);
        for name in POLICIES {
            let mut policy = by_name_policy(name, 1).expect("known");
            let d = policy.decide(&scenario, &st).expect("decides");
            d.check(&scenario, &st).expect("feasible");
            assert_eq!(
                d.offload.row_sum(4),
                0.0,
                "{name}: an empty queue sends nothing"
            );
            let used = (0..3).filter(|&s| d.offload.col_sum(s) > 0.0).count();
            assert!(
                used >= 2,
                "{name}: five loaded devices should not all share one server"
            );
        }
        assert!(by_name_policy("nope", 0).is_none());
    }

    #[test]
    fn the_slot_cost_is_the_fair_share_completion_time() {
        let scenario = Scenario::paper();
        let st = state(&scenario, vec![4e5, 2e5, 1e5]);
        let (p, rows) = slot_problem(&scenario, &st).expect("valid").expect("work");
        assert_eq!(rows, vec![0, 1, 2]);
        // All three on server 0: each takes n = 3 times its alone time.
        let cost = p.cost(&[0, 0, 0]).expect("valid");
        let cycles = scenario.device.cycles_per_bit;
        let expected: f64 = (0..3)
            .map(|m| {
                let q = st.queue_bits[m];
                3.0 * (q / st.rates_bps.get(m, 0) + q * cycles / scenario.server.cpu_hz)
                    + scenario.server.result_delay_s
            })
            .sum();
        assert!(
            (cost - expected).abs() < 1e-9 * expected,
            "{cost} vs {expected}"
        );
    }
}
