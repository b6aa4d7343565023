//! Simulated annealing on the penalised QUBO: single-bit Metropolis sweeps
//! over flat arrays with the local fields kept up to date, so a proposal
//! costs O(1) and an accepted flip O(degree). The inverse temperature runs
//! geometrically from β_hot = ln 2 / max flip (the largest move accepted half
//! the time) to β_cold = ln 100 / min coefficient (the smallest uphill move
//! accepted 1 % of the time) — the same default schedule as dwave-neal, so
//! the two differ only in implementation and in the number of reads. Each
//! read ends with a zero-temperature descent (feasible by the penalty rule),
//! and the best read is optionally polished by single-device moves. Besides
//! the final state, each read keeps the lowest-energy state seen at the end
//! of a sweep, which costs one comparison per sweep and a copy per record.

use super::local::{flip, polish, quench};
use super::{Solution, Solver, finish};
use crate::build::AssignmentQubo;
use crate::error::QuboError;
use crate::rng::FastRng;

#[derive(Debug, Clone, Copy)]
pub struct SimulatedAnnealing {
    /// Independent restarts; the best is kept.
    pub reads: usize,
    /// Sweeps (n proposals each) per read.
    pub sweeps: usize,
    pub seed: u64,
    /// (β_hot, β_cold); `None` picks the schedule described above.
    pub beta_range: Option<(f64, f64)>,
    /// Finish with single-device re-assignment moves.
    pub polish: bool,
}

impl Default for SimulatedAnnealing {
    fn default() -> SimulatedAnnealing {
        SimulatedAnnealing {
            reads: 10,
            sweeps: 1000,
            seed: 0,
            beta_range: None,
            polish: true,
        }
    }
}

/// neal's default β range for a QUBO.
pub(crate) fn default_beta_range(qubo: &crate::qubo::Qubo) -> (f64, f64) {
    let max = qubo.max_flip_delta().max(f64::MIN_POSITIVE);
    let min = qubo.min_coefficient();
    let min = if min.is_finite() { min } else { max };
    (std::f64::consts::LN_2 / max, 100f64.ln() / min)
}

impl Solver for SimulatedAnnealing {
    fn name(&self) -> &str {
        "sa"
    }

    fn solve(&mut self, aq: &AssignmentQubo) -> Result<Solution, QuboError> {
        if self.reads == 0 || self.sweeps == 0 {
            return Err(QuboError::Size(
                "simulated annealing needs ≥ 1 read and ≥ 1 sweep".into(),
            ));
        }
        let qubo = aq.qubo();
        let (hot, cold) = match self.beta_range {
            Some((h, c)) if h.is_finite() && c.is_finite() && h > 0.0 && c >= h => (h, c),
            Some((h, _)) => {
                return Err(QuboError::Value {
                    what: "beta range".into(),
                    value: h,
                });
            }
            None => default_beta_range(qubo),
        };
        let ratio = if self.sweeps > 1 {
            (cold / hot).powf(1.0 / (self.sweeps - 1) as f64)
        } else {
            1.0
        };
        let n = qubo.variables();
        let mut rng = FastRng::new(self.seed);
        let mut x = vec![0u8; n];
        let mut fields = vec![0.0; n];
        let mut best: Option<(f64, Vec<u8>)> = None;
        for _ in 0..self.reads {
            for b in x.iter_mut() {
                *b = (rng.next_u64() >> 63) as u8;
            }
            qubo.fields(&x, &mut fields);
            let mut energy = qubo.energy_unchecked(&x);
            // The best state seen at a sweep's end, descended at the end of
            // the read: at the middle temperatures the walk passes through
            // better feasible states than the one it freezes in.
            let mut read_best = (energy, x.clone());
            let mut beta = hot;
            for _ in 0..self.sweeps {
                for i in 0..n {
                    let delta = if x[i] == 0 { fields[i] } else { -fields[i] };
                    let accept = delta <= 0.0 || {
                        let z = beta * delta;
                        z < 40.0 && rng.unit() < (-z).exp()
                    };
                    if accept {
                        flip(qubo, &mut x, &mut fields, i);
                        energy += delta;
                    }
                }
                if energy < read_best.0 {
                    read_best.0 = energy;
                    read_best.1.copy_from_slice(&x);
                }
                beta *= ratio;
            }
            for candidate in [x.clone(), read_best.1] {
                let mut y = candidate;
                qubo.fields(&y, &mut fields);
                quench(qubo, &mut y, &mut fields);
                let e = qubo.energy_unchecked(&y);
                if best.as_ref().is_none_or(|(b, _)| e < *b) {
                    best = Some((e, y));
                }
            }
        }
        let bits = best.map(|(_, b)| b).unwrap_or(x);
        let mut solution = finish(aq, bits);
        if self.polish {
            polish(aq.problem(), &mut solution.assignment);
            solution.cost = aq.problem().cost_unchecked(&solution.assignment);
        }
        Ok(solution)
    }
}
