//! Textbook QAOA (Farhi et al. 2014) on the penalised QUBO: n = M·S qubits,
//! start in |+⟩^n, then p layers of the cost phase exp(−iγ_k E) and the X
//! mixer Π_q RX(2β_k). It runs on qmec-quantum's exact statevector: the cost
//! layer is its parameterised diagonal phase op and the angles are trained
//! on ⟨E⟩ with gradients from its adjoint differentiation (one forward and
//! one backward pass for all 2p angles), by Adam from a linear-ramp start
//! plus perturbed restarts. E is standardised (zero mean, unit spread over
//! all bit strings) so that one angle scale suits every instance.
//!
//! The answer is read like on hardware: `shots` samples from the final
//! distribution, the best feasible one kept; if none is feasible the most
//! likely bit string is repaired, and the fix is counted.

use super::adam::Adam;
use super::exact::{all_energies, bits_of};
use super::{Solution, Solver, finish};
use crate::build::AssignmentQubo;
use crate::error::QuboError;
use crate::qubo::Qubo;
use crate::rng::FastRng;
use qmec_quantum::{Angle, Circuit, Complex64, Observable, Op, StateVector, Workspace};

#[derive(Debug, Clone, Copy)]
pub struct Qaoa {
    /// p, the number of cost + mixer layers.
    pub depth: usize,
    pub restarts: usize,
    /// Adam steps per restart.
    pub iterations: usize,
    pub learning_rate: f64,
    pub shots: usize,
    pub seed: u64,
    /// The statevector holds 2^n amplitudes; refuse beyond this n.
    pub max_qubits: usize,
}

impl Default for Qaoa {
    fn default() -> Qaoa {
        Qaoa {
            depth: 3,
            restarts: 3,
            iterations: 100,
            learning_rate: 0.05,
            shots: 1024,
            seed: 0,
            max_qubits: 22,
        }
    }
}

/// A trained circuit and what it produces.
#[derive(Debug, Clone)]
pub struct QaoaRun {
    /// [γ_0, β_0, γ_1, β_1, …].
    pub params: Vec<f64>,
    /// ⟨E⟩ in the QUBO's own units.
    pub expectation: f64,
    /// |amplitude|² per basis index (bit i = variable i, or digit m = device m).
    pub probabilities: Vec<f64>,
}

/// (E − mean) / spread, and (mean, spread).
pub(crate) fn standardise(energies: &[f64]) -> (Vec<f64>, f64, f64) {
    let n = energies.len() as f64;
    let mean = energies.iter().sum::<f64>() / n;
    let var = energies.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n;
    let spread = if var > 0.0 { var.sqrt() } else { 1.0 };
    (
        energies.iter().map(|e| (e - mean) / spread).collect(),
        mean,
        spread,
    )
}

/// Start angles: a linear ramp (γ rising, β falling, as in a discretised
/// anneal) for restart 0, perturbed ramps after.
pub(crate) fn initial_angles(depth: usize, restart: usize, rng: &mut FastRng) -> Vec<f64> {
    let total = 0.8;
    (0..depth)
        .flat_map(|k| {
            let f = (k as f64 + 0.5) / depth as f64;
            [f * total, (1.0 - f) * total]
        })
        .map(|a| {
            if restart == 0 {
                a
            } else {
                a * (0.5 + rng.unit()) + 0.2 * (rng.unit() - 0.5)
            }
        })
        .collect()
}

/// Adam over restarts; returns the best (angles, standardised ⟨D⟩).
pub(crate) fn train(
    depth: usize,
    restarts: usize,
    iterations: usize,
    rate: f64,
    rng: &mut FastRng,
    mut value_and_grad: impl FnMut(&[f64]) -> Result<(f64, Vec<f64>), QuboError>,
) -> Result<(Vec<f64>, f64), QuboError> {
    if depth == 0 || restarts == 0 {
        return Err(QuboError::Size(
            "QAOA needs depth ≥ 1 and ≥ 1 restart".into(),
        ));
    }
    if !(rate.is_finite() && rate > 0.0) {
        return Err(QuboError::Value {
            what: "QAOA learning rate".into(),
            value: rate,
        });
    }
    let mut best: Option<(Vec<f64>, f64)> = None;
    for restart in 0..restarts {
        let mut params = initial_angles(depth, restart, rng);
        let mut adam = Adam::new(params.len(), rate);
        let mut last = value_and_grad(&params)?;
        for _ in 0..iterations {
            adam.step(&mut params, &last.1);
            last = value_and_grad(&params)?;
        }
        if best.as_ref().is_none_or(|(_, v)| last.0 < *v) {
            best = Some((params, last.0));
        }
    }
    best.ok_or_else(|| QuboError::Size("no QAOA restart ran".into()))
}

/// Draws `shots` basis indices from `probabilities` and returns the one with
/// the lowest score among those `score` accepts (feasible ones).
pub(crate) fn best_sample(
    probabilities: &[f64],
    shots: usize,
    rng: &mut FastRng,
    score: impl Fn(usize) -> Option<f64>,
) -> Option<usize> {
    let mut cdf = Vec::with_capacity(probabilities.len());
    let mut acc = 0.0;
    for p in probabilities {
        acc += p;
        cdf.push(acc);
    }
    let mut best: Option<(f64, usize)> = None;
    for _ in 0..shots {
        let u = rng.unit() * acc;
        let i = cdf.partition_point(|c| *c < u).min(probabilities.len() - 1);
        if let Some(s) = score(i)
            && best.is_none_or(|(b, _)| s < b)
        {
            best = Some((s, i));
        }
    }
    best.map(|(_, i)| i)
}

impl Qaoa {
    /// The cost + mixer circuit for a standardised diagonal.
    fn circuit(&self, n: usize, diag: &[f64]) -> Result<Circuit, QuboError> {
        let mut c = Circuit::new(n)?;
        for k in 0..self.depth {
            c.push(Op::PhaseDiag {
                param: 2 * k,
                diag: diag.to_vec(),
            })?;
            for q in 0..n {
                // RX(2β) = exp(−iβX).
                c.push(Op::Rx {
                    qubit: q,
                    angle: Angle::scaled(2 * k + 1, 2.0),
                })?;
            }
        }
        Ok(c)
    }

    /// Trains the angles and returns the final distribution.
    pub fn optimise(&self, qubo: &Qubo) -> Result<QaoaRun, QuboError> {
        let n = qubo.variables();
        let energies = all_energies(qubo, self.max_qubits)?;
        let (diag, mean, spread) = standardise(&energies);
        let circuit = self.circuit(n, &diag)?;
        let dim = 1usize << n;
        let initial =
            StateVector::from_amplitudes(vec![
                Complex64::new(1.0 / (dim as f64).sqrt(), 0.0);
                dim
            ])?;
        let observable = [Observable::Diagonal(diag)];
        let mut ws = Workspace::new(n)?;
        let mut rng = FastRng::new(self.seed);
        let (params, value) = train(
            self.depth,
            self.restarts,
            self.iterations,
            self.learning_rate,
            &mut rng,
            |params| {
                let mut e = [0.0];
                let mut g = vec![0.0; params.len()];
                ws.vjp_accumulate(
                    &circuit,
                    params,
                    &initial,
                    &observable,
                    &[1.0],
                    &mut e,
                    &mut g,
                )?;
                Ok((e[0], g))
            },
        )?;
        let mut state = initial.clone();
        circuit.run(&params, &mut state)?;
        Ok(QaoaRun {
            params,
            expectation: mean + spread * value,
            probabilities: state.probabilities(),
        })
    }
}

impl Solver for Qaoa {
    fn name(&self) -> &str {
        "qaoa"
    }

    fn solve(&mut self, aq: &AssignmentQubo) -> Result<Solution, QuboError> {
        let run = self.optimise(aq.qubo())?;
        let n = aq.qubo().variables();
        let mut rng = FastRng::new(self.seed ^ 0x5A5A);
        let pick = best_sample(&run.probabilities, self.shots, &mut rng, |i| {
            let bits = bits_of(i, n);
            aq.decode(&bits).map(|a| aq.problem().cost_unchecked(&a))
        });
        let index = pick.unwrap_or_else(|| {
            (0..run.probabilities.len())
                .max_by(|&a, &b| run.probabilities[a].total_cmp(&run.probabilities[b]))
                .unwrap_or(0)
        });
        Ok(finish(aq, bits_of(index, n)))
    }
}
