//! The register QAOA-XY runs on: M qudits of S levels, S^M complex
//! amplitudes, index Σ_m s_m S^m (device 0 the least significant digit).
//! A qudit level s stands for the one-hot qubit pattern "device m on server
//! s", so this register is exactly the feasible subspace of the M·S-qubit
//! one, and an XY mixer on a device's S qubits acts on its qudit as the
//! hopping matrix T of the mixer graph (ring or complete): within the
//! one-hot subspace (XX + YY)/2 on qubits s, t is |s⟩⟨t| + |t⟩⟨s|.
//!
//! Mixer layers apply exp(−iβT) exactly (eigendecomposition of the small
//! real symmetric T by cyclic Jacobi rotations), to every device at once;
//! the per-device factors commute. Gradients by adjoint differentiation: one
//! forward pass, then one backward sweep that reads 2·Im⟨λ|G|ψ⟩ for each
//! layer's generator G (the cost diagonal, or Σ_m T^(m)) and un-applies it.

use crate::error::QuboError;
use num_complex::Complex64 as C;

/// Largest register (2^25 amplitudes, 512 MiB each for ψ and λ).
pub const MAX_STATES: usize = 1 << 25;

/// Which devices-level graph the XY mixer hops on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mixer {
    /// s ↔ s+1 (mod S): the ring XY mixer of Hadfield et al.
    Ring,
    /// every s ↔ t: the complete-graph (clique) XY mixer.
    Complete,
}

/// The S × S hopping matrix of a mixer graph.
pub fn hopping(levels: usize, mixer: Mixer) -> Vec<f64> {
    let mut t = vec![0.0; levels * levels];
    let mut link = |a: usize, b: usize| {
        if a != b {
            t[a * levels + b] = 1.0;
            t[b * levels + a] = 1.0;
        }
    };
    match mixer {
        Mixer::Ring => (0..levels).for_each(|s| link(s, (s + 1) % levels)),
        Mixer::Complete => (0..levels).for_each(|s| (s + 1..levels).for_each(|u| link(s, u))),
    }
    t
}

/// Eigenvalues and eigenvectors (columns of `v`, row-major) of a real
/// symmetric n × n matrix by cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |j| *j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// exp(−iβT) as a dense S × S complex matrix, from T's eigensystem.
pub fn mixer_unitary(values: &[f64], vectors: &[f64], beta: f64) -> Vec<C> {
    let n = values.len();
    let mut u = vec![C::new(0.0, 0.0); n * n];
    for k in 0..n {
        let phase = C::from_polar(1.0, -beta * values[k]);
        for i in 0..n {
            for j in 0..n {
                u[i * n + j] += vectors[i * n + k] * vectors[j * n + k] * phase;
            }
        }
    }
    u
}

/// The S^M register size, checked.
pub fn register_size(levels: usize, sites: usize, max_states: usize) -> Result<usize, QuboError> {
    let size = u32::try_from(sites)
        .ok()
        .and_then(|m| levels.checked_pow(m));
    match size {
        Some(n) if n <= max_states.min(MAX_STATES) => Ok(n),
        _ => Err(QuboError::TooLarge {
            solver: "qudit register".into(),
            limit: max_states.min(MAX_STATES) as u64,
            unit: "amplitudes",
            size: size.map_or(u64::MAX, |n| n as u64),
        }),
    }
}

/// ψ_i ← exp(−iγ D_i) ψ_i.
pub fn apply_phase(amps: &mut [C], diag: &[f64], gamma: f64) {
    for (a, d) in amps.iter_mut().zip(diag) {
        *a *= C::from_polar(1.0, -gamma * d);
    }
}

/// Applies the S × S matrix `u` to every qudit (the same on each).
pub fn apply_to_every_site(amps: &mut [C], levels: usize, u: &[C]) {
    let mut buf = vec![C::new(0.0, 0.0); levels];
    let mut out = vec![C::new(0.0, 0.0); levels];
    let mut stride = 1;
    while stride < amps.len() {
        let block = stride * levels;
        for start in (0..amps.len()).step_by(block) {
            for offset in 0..stride {
                let base = start + offset;
                for (k, b) in buf.iter_mut().enumerate() {
                    *b = amps[base + k * stride];
                }
                for (i, o) in out.iter_mut().enumerate() {
                    *o = u[i * levels..(i + 1) * levels]
                        .iter()
                        .zip(&buf)
                        .map(|(x, y)| x * y)
                        .sum();
                }
                for (k, o) in out.iter().enumerate() {
                    amps[base + k * stride] = *o;
                }
            }
        }
        stride = block;
    }
}

/// ⟨λ| Σ_m T^(m) |ψ⟩ for a real symmetric S × S matrix `t`.
pub fn site_sum_overlap(lambda: &[C], psi: &[C], levels: usize, t: &[f64]) -> C {
    let mut total = C::new(0.0, 0.0);
    let mut stride = 1;
    while stride < psi.len() {
        let block = stride * levels;
        for start in (0..psi.len()).step_by(block) {
            for offset in 0..stride {
                let base = start + offset;
                for i in 0..levels {
                    let li = lambda[base + i * stride].conj();
                    let mut row = C::new(0.0, 0.0);
                    for j in 0..levels {
                        let tij = t[i * levels + j];
                        if tij != 0.0 {
                            row += psi[base + j * stride] * tij;
                        }
                    }
                    total += li * row;
                }
            }
        }
        stride = block;
    }
    total
}

/// A QAOA-XY circuit on a qudit register: p layers of cost phase exp(−iγD)
/// then mixer exp(−iβ Σ_m T^(m)); parameters [γ_0, β_0, γ_1, β_1, …].
#[derive(Debug, Clone)]
pub struct QuditQaoa {
    levels: usize,
    diag: Vec<f64>,
    hopping: Vec<f64>,
    values: Vec<f64>,
    vectors: Vec<f64>,
}

impl QuditQaoa {
    /// `diag` holds the cost of every basis state (length S^M).
    pub fn new(levels: usize, diag: Vec<f64>, mixer: Mixer) -> Result<QuditQaoa, QuboError> {
        if levels == 0 || diag.is_empty() {
            return Err(QuboError::Size(
                "a qudit register needs ≥ 1 level and ≥ 1 state".into(),
            ));
        }
        if let Some(bad) = diag.iter().find(|d| !d.is_finite()) {
            return Err(QuboError::Value {
                what: "cost diagonal".into(),
                value: *bad,
            });
        }
        let hopping = hopping(levels, mixer);
        let (values, vectors) = symmetric_eigen(&hopping, levels);
        Ok(QuditQaoa {
            levels,
            diag,
            hopping,
            values,
            vectors,
        })
    }

    pub fn dim(&self) -> usize {
        self.diag.len()
    }

    /// The uniform superposition over all assignments (the product of W
    /// states, an eigenstate of every XY mixer).
    pub fn initial(&self) -> Vec<C> {
        vec![C::new(1.0 / (self.dim() as f64).sqrt(), 0.0); self.dim()]
    }

    /// The state after the circuit.
    pub fn run(&self, params: &[f64]) -> Vec<C> {
        let mut psi = self.initial();
        for layer in params.chunks_exact(2) {
            apply_phase(&mut psi, &self.diag, layer[0]);
            let u = mixer_unitary(&self.values, &self.vectors, layer[1]);
            apply_to_every_site(&mut psi, self.levels, &u);
        }
        psi
    }

    /// ⟨D⟩ and its gradient by adjoint differentiation.
    pub fn expectation_and_gradient(&self, params: &[f64]) -> (f64, Vec<f64>) {
        let mut psi = self.run(params);
        let mut lambda: Vec<C> = psi.iter().zip(&self.diag).map(|(p, d)| p * d).collect();
        let value: f64 = psi
            .iter()
            .zip(&lambda)
            .map(|(p, l)| (p.conj() * l).re)
            .sum();
        let mut grad = vec![0.0; params.len()];
        for k in (0..params.len() / 2).rev() {
            let (gamma, beta) = (params[2 * k], params[2 * k + 1]);
            grad[2 * k + 1] = 2.0 * site_sum_overlap(&lambda, &psi, self.levels, &self.hopping).im;
            let undo = mixer_unitary(&self.values, &self.vectors, -beta);
            apply_to_every_site(&mut psi, self.levels, &undo);
            apply_to_every_site(&mut lambda, self.levels, &undo);
            grad[2 * k] = 2.0
                * lambda
                    .iter()
                    .zip(&psi)
                    .zip(&self.diag)
                    .map(|((l, p), d)| (l.conj() * p * d).im)
                    .sum::<f64>();
            apply_phase(&mut psi, &self.diag, -gamma);
            apply_phase(&mut lambda, &self.diag, -gamma);
        }
        (value, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_reconstructs_the_hopping_matrices() {
        for levels in 1..7 {
            for mixer in [Mixer::Ring, Mixer::Complete] {
                let t = hopping(levels, mixer);
                let (values, v) = symmetric_eigen(&t, levels);
                for i in 0..levels {
                    for j in 0..levels {
                        let r: f64 = (0..levels)
                            .map(|k| v[i * levels + k] * values[k] * v[j * levels + k])
                            .sum();
                        assert!((r - t[i * levels + j]).abs() < 1e-10);
                    }
                }
            }
        }
    }

    #[test]
    fn mixer_is_unitary_and_keeps_the_norm() {
        let q = QuditQaoa::new(3, (0..27).map(|i| (i % 5) as f64).collect(), Mixer::Ring)
            .expect("valid");
        let psi = q.run(&[0.3, 0.7, -0.2, 0.4]);
        let norm: f64 = psi.iter().map(|a| a.norm_sqr()).sum();
        assert!((norm - 1.0).abs() < 1e-12);
    }

    #[test]
    fn adjoint_gradient_matches_finite_differences() {
        for mixer in [Mixer::Ring, Mixer::Complete] {
            let diag: Vec<f64> = (0..64).map(|i| ((i * 7919) % 13) as f64 / 3.0).collect();
            let q = QuditQaoa::new(4, diag, mixer).expect("valid");
            let params = [0.31, 0.52, -0.17, 0.9, 0.4, -0.33];
            let (_, grad) = q.expectation_and_gradient(&params);
            for p in 0..params.len() {
                let h = 1e-6;
                let mut plus = params;
                let mut minus = params;
                plus[p] += h;
                minus[p] -= h;
                let value = |ps: &[f64]| {
                    q.run(ps)
                        .iter()
                        .zip(&q.diag)
                        .map(|(a, d)| a.norm_sqr() * d)
                        .sum::<f64>()
                };
                let fd = (value(&plus) - value(&minus)) / (2.0 * h);
                assert!(
                    (fd - grad[p]).abs() < 1e-6,
                    "{mixer:?} param {p}: fd {fd} vs adjoint {}",
                    grad[p]
                );
            }
        }
    }
}
