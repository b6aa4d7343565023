//! Random circuits and states shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use qmec_quantum::{Angle, Circuit, Complex64, Observable, Op, StateVector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A random circuit using every op kind: fixed and parameterised rotations,
/// shared parameters, scale factors, and (when `phase_diag`) PhaseDiag ops.
pub fn random_circuit(
    rng: &mut StdRng,
    n: usize,
    n_params: usize,
    n_ops: usize,
    phase_diag: bool,
) -> Circuit {
    let mut c = Circuit::new(n).unwrap();
    let dim = 1usize << n;
    let kinds = if phase_diag { 9 } else { 8 };
    for _ in 0..n_ops {
        let q = rng.random_range(0..n);
        let mut r = rng.random_range(0..n - 1);
        if r >= q {
            r += 1;
        }
        let angle = if rng.random_bool(0.2) {
            Angle::Fixed(rng.random_range(-3.0..3.0))
        } else if rng.random_bool(0.5) {
            Angle::param(rng.random_range(0..n_params))
        } else {
            Angle::scaled(rng.random_range(0..n_params), rng.random_range(-2.0..2.0))
        };
        let op = match rng.random_range(0..kinds) {
            0 => Op::H { qubit: q },
            1 => Op::X { qubit: q },
            2 => Op::Cnot {
                control: q,
                target: r,
            },
            3 => Op::Cz { q1: q, q2: r },
            4 | 5 => Op::Rx { qubit: q, angle },
            6 => Op::Ry { qubit: q, angle },
            7 => Op::Rz { qubit: q, angle },
            _ => Op::PhaseDiag {
                param: rng.random_range(0..n_params),
                diag: (0..dim).map(|_| rng.random_range(-1.5..1.5)).collect(),
            },
        };
        c.push(op).unwrap();
    }
    c
}

pub fn random_params(rng: &mut StdRng, n_params: usize) -> Vec<f64> {
    (0..n_params).map(|_| rng.random_range(-3.2..3.2)).collect()
}

/// A random normalised state (complex amplitudes).
pub fn random_state(rng: &mut StdRng, n: usize) -> StateVector {
    let amps: Vec<Complex64> = (0..1usize << n)
        .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
        .collect();
    let norm = amps.iter().map(|a| a.norm_sqr()).sum::<f64>().sqrt();
    StateVector::from_amplitudes(amps.into_iter().map(|a| a / norm).collect()).unwrap()
}

/// Z on every qubit, a few ZZ pairs and a random diagonal.
pub fn observables(rng: &mut StdRng, n: usize) -> Vec<Observable> {
    let mut obs: Vec<Observable> = (0..n).map(Observable::Z).collect();
    obs.push(Observable::Zz(0, n - 1));
    obs.push(Observable::Zz(1, 2));
    obs.push(Observable::Diagonal(
        (0..1usize << n)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect(),
    ));
    obs
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
