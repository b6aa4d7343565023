//! Expectation values of diagonal (computational-basis) observables.
//!
//! The QNN reads Pauli-Z and ZZ expectations; QAOA needs ⟨ψ|D|ψ⟩ for a cost
//! function written as a real diagonal D. All three are diagonal, which the
//! adjoint method exploits: a weighted sum of observables collapses into one
//! real diagonal (`combined_diagonal_into`).

use crate::error::Result;
use crate::kernels;
use crate::state::{StateVector, check_diagonal, check_pair, check_qubit};
use serde::{Deserialize, Serialize};

/// A diagonal observable on an n-qubit register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observable {
    /// Pauli Z on one qubit.
    Z(usize),
    /// Z ⊗ Z on two distinct qubits.
    Zz(usize, usize),
    /// A real diagonal, one entry per basis index (length 2^n).
    Diagonal(Vec<f64>),
}

impl Observable {
    /// Checks the observable against an `n_qubits` register.
    pub fn validate(&self, n_qubits: usize) -> Result<()> {
        match self {
            Observable::Z(q) => check_qubit(*q, n_qubits),
            Observable::Zz(a, b) => check_pair(*a, *b, n_qubits),
            Observable::Diagonal(d) => check_diagonal(d, n_qubits),
        }
    }

    /// ⟨state|O|state⟩.
    pub fn expectation(&self, state: &StateVector) -> Result<f64> {
        self.validate(state.n_qubits())?;
        Ok(self.expectation_unchecked(state.amplitudes()))
    }

    pub(crate) fn expectation_unchecked(&self, amps: &[num_complex::Complex64]) -> f64 {
        match self {
            Observable::Z(q) => kernels::expectation_z(amps, *q),
            Observable::Zz(a, b) => kernels::expectation_zz(amps, *a, *b),
            Observable::Diagonal(d) => kernels::expectation_diag(amps, d),
        }
    }

    /// Adds `weight × diag(O)` to `out` (length 2^n, already validated).
    pub(crate) fn add_diagonal(&self, weight: f64, out: &mut [f64]) {
        match self {
            Observable::Z(q) => {
                let m = 1usize << q;
                for (i, o) in out.iter_mut().enumerate() {
                    *o += if i & m == 0 { weight } else { -weight };
                }
            }
            Observable::Zz(a, b) => {
                let m = (1usize << a) | (1usize << b);
                for (i, o) in out.iter_mut().enumerate() {
                    *o += if (i & m).count_ones().is_multiple_of(2) {
                        weight
                    } else {
                        -weight
                    };
                }
            }
            Observable::Diagonal(d) => {
                for (o, &x) in out.iter_mut().zip(d) {
                    *o += weight * x;
                }
            }
        }
    }
}

/// ⟨Z_qubit⟩.
pub fn expectation_z(state: &StateVector, qubit: usize) -> Result<f64> {
    state.check_qubit(qubit)?;
    Ok(kernels::expectation_z(state.amplitudes(), qubit))
}

/// ⟨Z_q1 Z_q2⟩ for distinct qubits.
pub fn expectation_zz(state: &StateVector, q1: usize, q2: usize) -> Result<f64> {
    check_pair(q1, q2, state.n_qubits())?;
    Ok(kernels::expectation_zz(state.amplitudes(), q1, q2))
}

/// ⟨ψ|D|ψ⟩ = Σᵢ Dᵢ|ψᵢ|² for a real diagonal `D` of length 2^n.
pub fn expectation_diagonal(state: &StateVector, diag: &[f64]) -> Result<f64> {
    check_diagonal(diag, state.n_qubits())?;
    Ok(kernels::expectation_diag(state.amplitudes(), diag))
}

/// Validates a list of observables against an `n_qubits` register.
pub fn validate_all(observables: &[Observable], n_qubits: usize) -> Result<()> {
    observables.iter().try_for_each(|o| o.validate(n_qubits))
}

/// Writes diag(Σₖ wₖ Oₖ) into `out` (length 2^n). The observables must have
/// been validated and `weights.len() == observables.len()`.
pub(crate) fn combined_diagonal_into(observables: &[Observable], weights: &[f64], out: &mut [f64]) {
    out.fill(0.0);
    for (o, &w) in observables.iter().zip(weights) {
        if w != 0.0 {
            o.add_diagonal(w, out);
        }
    }
}
