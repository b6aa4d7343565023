//! The server-selection problem in its physical form, before any QUBO: M
//! devices each pick one of S options; picking s costs device m a latency
//! `linear[m][s]`, and every pair of devices on the same server pays a load
//! coupling `load[m][s] + load[m'][s]`.
//!
//! That pairwise form is what makes the problem quadratic and
//! non-separable: on a server that serves its requests one after another in
//! random order, a request waits on average for half of the work of every
//! other request placed there, so the total waiting time on server s is
//! Σ_{m<m'} (w_m + w_m') / (2 v_s) — a sum over pairs. Without it each device
//! would simply take its cheapest option and greedy would be optimal.
//!
//! All coefficients are seconds and non-negative; the penalty rule of
//! [`crate::build`] relies on that sign.

use crate::error::{QuboError, check_non_negative};

/// M devices × S options, linear latencies and per-pair load couplings.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionProblem {
    devices: usize,
    servers: usize,
    linear: Vec<f64>,
    load: Vec<f64>,
}

impl SelectionProblem {
    /// Row-major M × S `linear` and `load`, all finite and ≥ 0.
    pub fn new(
        devices: usize,
        servers: usize,
        linear: Vec<f64>,
        load: Vec<f64>,
    ) -> Result<SelectionProblem, QuboError> {
        if devices == 0 || servers == 0 {
            return Err(QuboError::Size(format!(
                "{devices} devices × {servers} servers: both must be ≥ 1"
            )));
        }
        let cells = devices
            .checked_mul(servers)
            .ok_or_else(|| QuboError::Size("M × S overflows".into()))?;
        for (name, v) in [("linear", &linear), ("load", &load)] {
            if v.len() != cells {
                return Err(QuboError::Size(format!(
                    "{name} has {} entries, expected {cells}",
                    v.len()
                )));
            }
            for x in v {
                check_non_negative(name, *x)?;
            }
        }
        Ok(SelectionProblem {
            devices,
            servers,
            linear,
            load,
        })
    }

    pub fn devices(&self) -> usize {
        self.devices
    }

    pub fn servers(&self) -> usize {
        self.servers
    }

    /// Number of binary variables x_ms: M·S.
    pub fn variables(&self) -> usize {
        self.devices * self.servers
    }

    /// Latency of device m on option s, alone.
    #[inline]
    pub fn linear(&self, m: usize, s: usize) -> f64 {
        self.linear[m * self.servers + s]
    }

    /// Device m's share of each coupling on server s.
    #[inline]
    pub fn load(&self, m: usize, s: usize) -> f64 {
        self.load[m * self.servers + s]
    }

    /// The cost added when devices m ≠ m' share server s.
    #[inline]
    pub fn coupling(&self, m: usize, other: usize, s: usize) -> f64 {
        self.load(m, s) + self.load(other, s)
    }

    /// Checks that `assignment` gives every device one option in range.
    pub fn check_assignment(&self, assignment: &[usize]) -> Result<(), QuboError> {
        if assignment.len() != self.devices {
            return Err(QuboError::Assignment(format!(
                "{} entries for {} devices",
                assignment.len(),
                self.devices
            )));
        }
        if let Some((m, s)) = assignment
            .iter()
            .enumerate()
            .find(|(_, s)| **s >= self.servers)
        {
            return Err(QuboError::Assignment(format!(
                "device {m} picks option {s} of {}",
                self.servers
            )));
        }
        Ok(())
    }

    /// Total cost Σ_m linear + Σ_{pairs on one server} coupling, in O(M + S):
    /// on a server with n devices the pair sum is (n − 1) Σ load.
    pub fn cost(&self, assignment: &[usize]) -> Result<f64, QuboError> {
        self.check_assignment(assignment)?;
        Ok(self.cost_unchecked(assignment))
    }

    pub(crate) fn cost_unchecked(&self, assignment: &[usize]) -> f64 {
        let mut count = vec![0usize; self.servers];
        let mut load = vec![0.0; self.servers];
        let mut total = 0.0;
        for (m, &s) in assignment.iter().enumerate() {
            total += self.linear(m, s);
            count[s] += 1;
            load[s] += self.load(m, s);
        }
        total
            + count
                .iter()
                .zip(&load)
                .map(|(&n, &l)| n.saturating_sub(1) as f64 * l)
                .sum::<f64>()
    }

    /// Each device's cheapest option ignoring the coupling: the separable
    /// heuristic that the coupling makes sub-optimal.
    pub fn separable_choice(&self) -> Vec<usize> {
        (0..self.devices)
            .map(|m| {
                (0..self.servers)
                    .min_by(|&a, &b| self.linear(m, a).total_cmp(&self.linear(m, b)))
                    .unwrap_or(0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_every_pair_on_a_server_once() {
        // Three devices on server 0, linear 1 each, loads 1, 2, 3:
        // pairs (1+2) + (1+3) + (2+3) = 12.
        let p = SelectionProblem::new(3, 2, vec![1.0; 6], vec![1.0, 0.0, 2.0, 0.0, 3.0, 0.0])
            .expect("valid");
        assert_eq!(p.cost(&[0, 0, 0]).expect("ok"), 3.0 + 12.0);
        assert_eq!(p.cost(&[0, 1, 0]).expect("ok"), 3.0 + 4.0);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(SelectionProblem::new(0, 2, vec![], vec![]).is_err());
        assert!(SelectionProblem::new(1, 2, vec![1.0, -1.0], vec![0.0, 0.0]).is_err());
        assert!(SelectionProblem::new(1, 2, vec![1.0, f64::NAN], vec![0.0, 0.0]).is_err());
        let p = SelectionProblem::new(1, 2, vec![1.0, 2.0], vec![0.0, 0.0]).expect("valid");
        assert!(p.cost(&[2]).is_err());
        assert!(p.cost(&[0, 0]).is_err());
    }
}
