//! Simulated bifurcation (Goto et al., Sci. Adv. 2019 and 2021), the
//! quantum-inspired solver: each spin is an oscillator (position x, momentum
//! y) whose potential bifurcates from one well to two as the pump a(t) rises
//! from 0 to a0, with the Ising couplings as forces. Integrated by symplectic
//! Euler over many agents at once (agent index innermost, so the coupling
//! loop vectorises), with perfectly inelastic walls at |x| = 1:
//!
//!   y_i += dt [ −(a0 − a(t)) x_i + c0 (Σ_j K_ij φ(x_j) + f_i) ],  x_i += dt a0 y_i,
//!
//! φ(x) = x for ballistic SB (bSB) and sign(x) for discrete SB (dSB).
//!
//! The QUBO becomes an Ising model by x = (1 + σ)/2: K_ij = −b_ij / 4 and
//! f_i = −(a_i / 2 + Σ_j b_ij / 4) (SB maximises ½ σᵀKσ + fᵀσ). The scale
//! c0 = 0.5 / rms_i ‖(K_i·, f_i)‖ is Goto's 0.5 / (σ_J √N) written for
//! sparse rows. Every agent's sign(x) — and the best sign state seen every few
//! steps — is descended to a local minimum (hence feasible), and the best is optionally polished by device moves.

use super::local::{polish, quench};
use super::{Solution, Solver, finish};
use crate::build::AssignmentQubo;
use crate::error::QuboError;
use crate::qubo::Qubo;
use crate::rng::FastRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Ballistic,
    Discrete,
}

#[derive(Debug, Clone, Copy)]
pub struct SimulatedBifurcation {
    pub agents: usize,
    pub steps: usize,
    pub dt: f64,
    pub seed: u64,
    pub variant: Variant,
    /// Factor on Goto's c0 (1 = the formula above).
    pub coupling_scale: f64,
    pub polish: bool,
}

impl Default for SimulatedBifurcation {
    fn default() -> SimulatedBifurcation {
        SimulatedBifurcation {
            agents: 64,
            steps: 1000,
            dt: 1.0,
            seed: 0,
            variant: Variant::Ballistic,
            coupling_scale: 1.0,
            polish: true,
        }
    }
}

/// Steps between checks of the agents' sign states.
const CHECK_EVERY: usize = 5;

/// out_ia = f_i + Σ_j K_ij φ_ja with K_ij = −b_ij / 4, agents innermost.
fn ising_forces(
    qubo: &Qubo,
    field: &[f64],
    phi: &[f64],
    agents: usize,
    out: &mut [f64],
) {
    for (i, f) in out.chunks_exact_mut(agents).enumerate() {
        f.fill(field[i]);
        let (cols, vals) = qubo.row(i);
        for (j, b) in cols.iter().zip(vals) {
            let k = -b / 4.0;
            let pj = &phi[*j as usize * agents..(*j as usize + 1) * agents];
            for (fa, pa) in f.iter_mut().zip(pj) {
                *fa += k * pa;
            }
        }
    }
}

impl Solver for SimulatedBifurcation {
    fn name(&self) -> &str {
        match self.variant {
            Variant::Ballistic => "sb",
            Variant::Discrete => "dsb",
        }
    }

    fn solve(&mut self, aq: &AssignmentQubo) -> Result<Solution, QuboError> {
        self.check()?;
        let qubo = aq.qubo();
        let (field, c0) = ising_form(qubo, self.coupling_scale);
        let (x, tracked) = self.evolve(qubo, &field, c0);
        let bits = best_quenched(qubo, &x, self.agents, &tracked.bits);
        let mut solution = finish(aq, bits);
        if self.polish {
            polish(aq.problem(), &mut solution.assignment);
            solution.cost = aq.problem().cost_unchecked(&solution.assignment);
        }
        Ok(solution)
    }
}

impl SimulatedBifurcation {
    fn check(&self) -> Result<(), QuboError> {
        if self.agents == 0 || self.steps == 0 {
            return Err(QuboError::Size("simulated bifurcation needs ≥ 1 agent and ≥ 1 step".into()));
        }
        if !(self.coupling_scale.is_finite() && self.coupling_scale > 0.0) {
            return Err(QuboError::Value { what: "SB coupling scale".into(), value: self.coupling_scale });
        }
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(QuboError::Value { what: "SB time step".into(), value: self.dt });
        }
        Ok(())
    }

    /// Integrates every agent's oscillators over the run; returns their
    /// final positions and the best sign state seen on the way.
    fn evolve(&self, qubo: &Qubo, field: &[f64], c0: f64) -> (Vec<f64>, Tracked) {
        let (n, agents, dt) = (qubo.variables(), self.agents, self.dt);
        let a0 = 1.0;
        let mut rng = FastRng::new(self.seed);
        let mut x: Vec<f64> = (0..n * agents).map(|_| 0.2 * (rng.unit() - 0.5)).collect();
        let mut y: Vec<f64> = (0..n * agents).map(|_| 0.2 * (rng.unit() - 0.5)).collect();
        let mut force = vec![0.0; n * agents];
        let mut phi = vec![0.0; n * agents];
        let mut signs = vec![0.0; n * agents];
        let mut sign_force = vec![0.0; n * agents];
        let mut tracked = Tracked { energy: f64::INFINITY, bits: vec![0u8; n] };
        for step in 0..self.steps {
            let pump = a0 * step as f64 / self.steps as f64;
            for (s, v) in signs.iter_mut().zip(&x) {
                *s = if *v >= 0.0 { 1.0 } else { -1.0 };
            }
            let check = step % CHECK_EVERY == 0 || step + 1 == self.steps;
            match self.variant {
                Variant::Ballistic => {
                    phi.copy_from_slice(&x);
                    ising_forces(qubo, field, &phi, agents, &mut force);
                    if check {
                        ising_forces(qubo, field, &signs, agents, &mut sign_force);
                    }
                }
                Variant::Discrete => {
                    ising_forces(qubo, field, &signs, agents, &mut force);
                    if check {
                        sign_force.copy_from_slice(&force);
                    }
                }
            }
            if check {
                tracked.note(&signs, &sign_force, field, agents);
            }
            for ((xi, yi), fi) in x.iter_mut().zip(y.iter_mut()).zip(&force) {
                *yi += dt * (-(a0 - pump) * *xi + c0 * fi);
                *xi += dt * a0 * *yi;
                if xi.abs() > 1.0 {
                    *xi = xi.signum();
                    *yi = 0.0;
                }
            }
        }
        (x, tracked)
    }
}

/// The QUBO as an Ising model: the fields f_i and the coupling scale c0.
fn ising_form(qubo: &Qubo, coupling_scale: f64) -> (Vec<f64>, f64) {
    let n = qubo.variables();
    let field: Vec<f64> =
        (0..n).map(|i| -(qubo.linear()[i] / 2.0 + qubo.row(i).1.iter().sum::<f64>() / 4.0)).collect();
    let mean_sq = (0..n).map(|i| qubo.row(i).1.iter().map(|b| b * b / 16.0).sum::<f64>() + field[i] * field[i]).sum::<f64>()
        / n as f64;
    let c0 = coupling_scale * if mean_sq > 0.0 { 0.5 / mean_sq.sqrt() } else { 1.0 };
    (field, c0)
}

/// The lowest Ising energy of any agent's sign(x) seen so far, checked
/// every few steps: the trajectory often passes a better state than the
/// one it ends in.
struct Tracked {
    energy: f64,
    bits: Vec<u8>,
}

impl Tracked {
    /// Looks at every agent's sign state, `sign_force` being the forces on it.
    fn note(&mut self, signs: &[f64], sign_force: &[f64], field: &[f64], agents: usize) {
        let n = field.len();
        for a in 0..agents {
            let h: f64 = (0..n).map(|i| -0.5 * signs[i * agents + a] * (sign_force[i * agents + a] + field[i])).sum();
            if h < self.energy {
                self.energy = h;
                for i in 0..n {
                    self.bits[i] = u8::from(signs[i * agents + a] > 0.0);
                }
            }
        }
    }
}

/// Every agent's final sign state and the tracked one, each descended to a
/// local minimum; the lowest in energy.
fn best_quenched(qubo: &Qubo, x: &[f64], agents: usize, tracked: &[u8]) -> Vec<u8> {
    let n = qubo.variables();
    let mut best: Option<(f64, Vec<u8>)> = None;
    let mut bits = vec![0u8; n];
    let mut fields = vec![0.0; n];
    for a in 0..=agents {
        if a == agents {
            bits.copy_from_slice(tracked);
        } else {
            for i in 0..n {
                bits[i] = u8::from(x[i * agents + a] > 0.0);
            }
        }
        qubo.fields(&bits, &mut fields);
        quench(qubo, &mut bits, &mut fields);
        let e = qubo.energy_unchecked(&bits);
        if best.as_ref().is_none_or(|(b, _)| e < *b) {
            best = Some((e, bits.clone()));
        }
    }
    best.map(|(_, b)| b).unwrap_or(bits)
}
