//! From a [`SelectionProblem`] to a QUBO with the one-hot constraint as a
//! penalty, and the rule for the penalty weight A.
//!
//! Variable x_ms (index m·S + s) says device m is served by option s. The
//! energy is
//!
//!   E(x) = Σ_ms c_ms x_ms + Σ_s Σ_{m<m'} J_mm's x_ms x_m's + A Σ_m (1 − Σ_s x_ms)²,
//!
//! with c the linear latencies and J_mm's = load_ms + load_m's. Expanding
//! the square with x² = x gives linear terms c_ms − A, a coupling 2A between
//! two options of one device, and an offset M·A. On a feasible x (exactly one
//! option per device) the penalty vanishes and E(x) is the total latency.
//!
//! # The penalty rule
//!
//! Let Δ_ms = c_ms + Σ_{m'≠m} J_mm's: the most that switching x_ms on can
//! add to the cost, whatever the other bits (all couplings are ≥ 0 and x_ms
//! only couples to the other devices on server s, each at most once). We set
//!
//!   A = (1 + margin) · max_m min_s Δ_ms   (margin = 0.1; A = 1 if that is 0).
//!
//! **Claim.** Every x that is not one-hot has a single-bit flip that lowers E
//! strictly; hence every global optimum, and even every 1-flip local optimum,
//! is feasible.
//!
//! *Proof.* Take a device m with k = Σ_s x_ms ≠ 1.
//! - k ≥ 2: clear one of its bits. The penalty term goes from A(k−1)² to
//!   A(k−2)², down by A(2k−3) ≥ A > 0, and the cost cannot rise because every
//!   c and J is ≥ 0. So E drops by at least A.
//! - k = 0: set x_ms* for s* = argmin_s Δ_ms. The penalty drops from A to 0
//!   and the cost rises by at most Δ_ms* ≤ max_m min_s Δ_ms < A. So E drops.
//!
//! Both cases need only c, J ≥ 0, which [`SelectionProblem`] enforces. The
//! rule is also small: a larger A only deepens the penalty walls that
//! annealers and QAOA have to cross, so the smallest provable A is the one
//! that serves them best. ∎

use crate::error::QuboError;
use crate::problem::SelectionProblem;
use crate::qubo::Qubo;

/// Relative margin above the bound, so that the strict inequality holds in
/// floating point with room to spare.
pub const PENALTY_MARGIN: f64 = 0.1;

/// A server-selection QUBO and the problem it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentQubo {
    problem: SelectionProblem,
    qubo: Qubo,
    penalty: f64,
}

/// The penalty weight of the documented rule.
pub fn penalty_weight(problem: &SelectionProblem) -> f64 {
    let (m_count, s_count) = (problem.devices(), problem.servers());
    // Σ_{m'} load_m's per server, so Δ_ms is O(1) each.
    let server_load: Vec<f64> = (0..s_count)
        .map(|s| (0..m_count).map(|m| problem.load(m, s)).sum())
        .collect();
    let bound = (0..m_count)
        .map(|m| {
            (0..s_count)
                .map(|s| {
                    let others = m_count as f64 - 1.0;
                    let coupling =
                        others * problem.load(m, s) + (server_load[s] - problem.load(m, s));
                    problem.linear(m, s) + coupling
                })
                .fold(f64::INFINITY, f64::min)
        })
        .fold(0.0, f64::max);
    if bound > 0.0 {
        (1.0 + PENALTY_MARGIN) * bound
    } else {
        1.0
    }
}

impl AssignmentQubo {
    /// The QUBO with the penalty of [`penalty_weight`].
    pub fn new(problem: SelectionProblem) -> Result<AssignmentQubo, QuboError> {
        let penalty = penalty_weight(&problem);
        AssignmentQubo::with_penalty(problem, penalty)
    }

    /// The QUBO with a penalty weight of the caller's choice (A > 0); below
    /// the rule, optima may be infeasible.
    pub fn with_penalty(
        problem: SelectionProblem,
        penalty: f64,
    ) -> Result<AssignmentQubo, QuboError> {
        if !(penalty.is_finite() && penalty > 0.0) {
            return Err(QuboError::Value {
                what: "penalty weight A".into(),
                value: penalty,
            });
        }
        let (m_count, s_count) = (problem.devices(), problem.servers());
        let n = problem.variables();
        let mut linear = vec![0.0; n];
        let mut quadratic = Vec::with_capacity(m_count * s_count * (m_count + s_count) / 2);
        for m in 0..m_count {
            for s in 0..s_count {
                linear[m * s_count + s] = problem.linear(m, s) - penalty;
                for t in s + 1..s_count {
                    quadratic.push((m * s_count + s, m * s_count + t, 2.0 * penalty));
                }
                for other in m + 1..m_count {
                    let j = problem.coupling(m, other, s);
                    if j != 0.0 {
                        quadratic.push((m * s_count + s, other * s_count + s, j));
                    }
                }
            }
        }
        let qubo = Qubo::new(linear, &quadratic, m_count as f64 * penalty)?;
        Ok(AssignmentQubo {
            problem,
            qubo,
            penalty,
        })
    }

    pub fn problem(&self) -> &SelectionProblem {
        &self.problem
    }

    pub fn qubo(&self) -> &Qubo {
        &self.qubo
    }

    pub fn penalty(&self) -> f64 {
        self.penalty
    }

    pub fn devices(&self) -> usize {
        self.problem.devices()
    }

    pub fn servers(&self) -> usize {
        self.problem.servers()
    }

    /// Index of x_ms.
    #[inline]
    pub fn var(&self, m: usize, s: usize) -> usize {
        m * self.problem.servers() + s
    }

    /// The bits of an assignment.
    pub fn encode(&self, assignment: &[usize]) -> Result<Vec<u8>, QuboError> {
        self.problem.check_assignment(assignment)?;
        let mut x = vec![0u8; self.problem.variables()];
        for (m, &s) in assignment.iter().enumerate() {
            x[self.var(m, s)] = 1;
        }
        Ok(x)
    }

    /// The assignment of a one-hot x; `None` if some device has zero or
    /// several options set (or the length is wrong).
    pub fn decode(&self, x: &[u8]) -> Option<Vec<usize>> {
        if x.len() != self.problem.variables() {
            return None;
        }
        x.chunks_exact(self.problem.servers())
            .map(|row| {
                let mut ones = row.iter().enumerate().filter(|(_, b)| **b != 0);
                match (ones.next(), ones.next()) {
                    (Some((s, _)), None) => Some(s),
                    _ => None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SelectionProblem {
        SelectionProblem::new(2, 2, vec![1.0, 2.0, 3.0, 1.0], vec![0.5, 0.5, 0.25, 0.25])
            .expect("valid")
    }

    #[test]
    fn feasible_energy_is_the_cost() {
        let aq = AssignmentQubo::new(small()).expect("builds");
        for a in [[0, 0], [0, 1], [1, 0], [1, 1]] {
            let x = aq.encode(&a).expect("encodes");
            let e = aq.qubo().energy(&x).expect("energy");
            assert!((e - aq.problem().cost(&a).expect("cost")).abs() < 1e-12);
            assert_eq!(aq.decode(&x), Some(a.to_vec()));
        }
        assert_eq!(aq.decode(&[1, 1, 0, 1]), None);
        assert_eq!(aq.decode(&[0, 0, 0, 1]), None);
    }

    #[test]
    fn penalty_follows_the_rule() {
        // Δ for device 0: min(1 + 0.75, 2 + 0.75) = 1.75; device 1:
        // min(3 + 0.75, 1 + 0.75) = 1.75; A = 1.1 × 1.75.
        let a = penalty_weight(&small());
        assert!((a - 1.925).abs() < 1e-12, "{a}");
        assert!(AssignmentQubo::with_penalty(small(), 0.0).is_err());
    }
}
