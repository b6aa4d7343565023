//! Exact solvers, for checks and for the optimality gaps of the others.
//!
//! - [`ExactBits`] walks all 2^n bit strings in Gray-code order, so each
//!   step flips one bit and costs O(degree) through the local fields; it
//!   stops at [`MAX_EXACT_VARIABLES`]. Because it searches the penalised
//!   QUBO, its answer is also the check that the penalty rule works.
//! - [`ExactOneHot`] walks the S^M one-hot assignments with an odometer that
//!   moves one device per step (amortised), priced in O(1) from per-server
//!   counts and load sums; it reaches much larger M·S than 2^n allows.

use super::local::flip;
use super::{Solution, Solver, finish, from_assignment};
use crate::build::AssignmentQubo;
use crate::error::QuboError;
use crate::problem::SelectionProblem;
use crate::qubo::Qubo;

/// The bit-string enumeration limit.
pub const MAX_EXACT_VARIABLES: usize = 24;

/// Enumeration over every bit string.
#[derive(Debug, Clone, Copy)]
pub struct ExactBits {
    pub max_variables: usize,
}

impl Default for ExactBits {
    fn default() -> ExactBits {
        ExactBits {
            max_variables: MAX_EXACT_VARIABLES,
        }
    }
}

fn check_size(solver: &str, n: usize, limit: usize) -> Result<(), QuboError> {
    if n > limit.min(MAX_EXACT_VARIABLES) {
        return Err(QuboError::TooLarge {
            solver: solver.into(),
            limit: limit.min(MAX_EXACT_VARIABLES) as u64,
            unit: "variables",
            size: n as u64,
        });
    }
    Ok(())
}

/// Visits every bit string in Gray-code order, calling `visit(index, E)`
/// with the basis index (bit i = variable i).
fn gray_walk(qubo: &Qubo, mut visit: impl FnMut(usize, f64)) {
    let n = qubo.variables();
    let mut x = vec![0u8; n];
    let mut fields = qubo.linear().to_vec();
    let mut energy = qubo.offset();
    let mut index = 0usize;
    visit(0, energy);
    for k in 1..(1usize << n) {
        let bit = k.trailing_zeros() as usize;
        energy += if x[bit] == 0 {
            fields[bit]
        } else {
            -fields[bit]
        };
        flip(qubo, &mut x, &mut fields, bit);
        index ^= 1 << bit;
        visit(index, energy);
    }
}

/// E(x) for every basis index (bit i = variable i), for QAOA's cost layer.
pub fn all_energies(qubo: &Qubo, max_variables: usize) -> Result<Vec<f64>, QuboError> {
    check_size("energy table", qubo.variables(), max_variables)?;
    let mut out = vec![0.0; 1 << qubo.variables()];
    gray_walk(qubo, |i, e| out[i] = e);
    Ok(out)
}

/// The minimum energy and its first basis index.
pub fn minimum(qubo: &Qubo, max_variables: usize) -> Result<(usize, f64), QuboError> {
    check_size("exact", qubo.variables(), max_variables)?;
    let mut best = (0usize, f64::INFINITY);
    gray_walk(qubo, |i, e| {
        if e < best.1 {
            best = (i, e);
        }
    });
    Ok(best)
}

/// The bits of a basis index.
pub(crate) fn bits_of(index: usize, n: usize) -> Vec<u8> {
    (0..n).map(|i| ((index >> i) & 1) as u8).collect()
}

impl Solver for ExactBits {
    fn name(&self) -> &str {
        "exact"
    }

    fn solve(&mut self, aq: &AssignmentQubo) -> Result<Solution, QuboError> {
        let (index, _) = minimum(aq.qubo(), self.max_variables)?;
        Ok(finish(aq, bits_of(index, aq.qubo().variables())))
    }
}

/// Enumeration over the S^M one-hot assignments.
#[derive(Debug, Clone, Copy)]
pub struct ExactOneHot {
    /// Refuses instances with more assignments than this.
    pub max_states: u64,
}

impl Default for ExactOneHot {
    fn default() -> ExactOneHot {
        // About a second per 10^8 states on one core.
        ExactOneHot {
            max_states: 200_000_000,
        }
    }
}

/// Visits the S^M assignments in mixed-radix order (device 0 the least
/// significant digit), calling `visit(index, cost, assignment)`; each step
/// moves one device (amortised) and is priced in O(1).
pub(crate) fn odometer_walk(
    p: &SelectionProblem,
    states: u64,
    mut visit: impl FnMut(u64, f64, &[usize]),
) {
    let (m_count, s_count) = (p.devices(), p.servers());
    let mut a = vec![0usize; m_count];
    let mut count = vec![0usize; s_count];
    let mut load = vec![0.0; s_count];
    count[0] = m_count;
    load[0] = (0..m_count).map(|m| p.load(m, 0)).sum();
    let mut cost = p.cost_unchecked(&a);
    visit(0, cost, &a);
    for index in 1..states {
        // Odometer: advance device 0; carry into the next on wrap.
        for (m, am) in a.iter_mut().enumerate() {
            let s = *am;
            let t = if s + 1 == s_count { 0 } else { s + 1 };
            let leave =
                p.linear(m, s) + (count[s] - 1) as f64 * p.load(m, s) + (load[s] - p.load(m, s));
            count[s] -= 1;
            load[s] -= p.load(m, s);
            let join = p.linear(m, t) + count[t] as f64 * p.load(m, t) + load[t];
            count[t] += 1;
            load[t] += p.load(m, t);
            cost += join - leave;
            *am = t;
            if t != 0 {
                break;
            }
        }
        visit(index, cost, &a);
    }
}

/// The cost of every one-hot assignment, indexed in mixed radix (device 0
/// least significant), for QAOA-XY's cost layer.
pub fn one_hot_costs(p: &SelectionProblem, max_states: u64) -> Result<Vec<f64>, QuboError> {
    let states = one_hot_states(p.devices(), p.servers())
        .filter(|n| *n <= max_states)
        .ok_or(QuboError::TooLarge {
            solver: "one-hot cost table".into(),
            limit: max_states,
            unit: "one-hot states",
            size: one_hot_states(p.devices(), p.servers()).unwrap_or(u64::MAX),
        })?;
    let mut out = vec![0.0; states as usize];
    odometer_walk(p, states, |i, c, _| out[i as usize] = c);
    Ok(out)
}

/// S^M, or `None` past u64.
pub fn one_hot_states(devices: usize, servers: usize) -> Option<u64> {
    (servers as u64).checked_pow(u32::try_from(devices).ok()?)
}

impl Solver for ExactOneHot {
    fn name(&self) -> &str {
        "exact-onehot"
    }

    fn solve(&mut self, aq: &AssignmentQubo) -> Result<Solution, QuboError> {
        let p = aq.problem();
        let (m_count, s_count) = (p.devices(), p.servers());
        let states = one_hot_states(m_count, s_count)
            .filter(|n| *n <= self.max_states)
            .ok_or(QuboError::TooLarge {
                solver: "exact-onehot".into(),
                limit: self.max_states,
                unit: "one-hot states",
                size: one_hot_states(m_count, s_count).unwrap_or(u64::MAX),
            })?;
        let mut best = (f64::INFINITY, Vec::new());
        odometer_walk(p, states, |_, cost, a| {
            if cost < best.0 {
                best = (cost, a.to_vec());
            }
        });
        Ok(from_assignment(aq, best.1, true, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::FastRng;

    #[test]
    fn both_enumerations_agree_and_energy_table_matches() {
        let mut rng = FastRng::new(1);
        for _ in 0..10 {
            let linear = (0..12).map(|_| 10.0 * rng.unit()).collect();
            let load = (0..12).map(|_| 3.0 * rng.unit()).collect();
            let aq = AssignmentQubo::new(SelectionProblem::new(4, 3, linear, load).expect("valid"))
                .expect("builds");
            let bits = ExactBits::default().solve(&aq).expect("small");
            let onehot = ExactOneHot::default().solve(&aq).expect("small");
            assert!(bits.raw_feasible);
            assert!((bits.cost - onehot.cost).abs() < 1e-9);
            let table = all_energies(aq.qubo(), 24).expect("small");
            for (i, e) in table.iter().enumerate().step_by(97) {
                let x = bits_of(i, 12);
                assert!((aq.qubo().energy(&x).expect("ok") - e).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn refuses_large_instances() {
        let p = SelectionProblem::new(10, 3, vec![1.0; 30], vec![0.0; 30]).expect("valid");
        let aq = AssignmentQubo::new(p).expect("builds");
        assert!(matches!(
            ExactBits::default().solve(&aq),
            Err(QuboError::TooLarge { .. })
        ));
        assert!(ExactOneHot { max_states: 1000 }.solve(&aq).is_err());
    }
}
