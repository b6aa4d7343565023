//! Classical features into quantum states.
//!
//! The QNN feeds each sample to its circuit as a state: *amplitude encoding*
//! packs d features into ⌈log2 d⌉ qubits (the paper architecture), *angle
//! encoding* spends one qubit per feature as an RY rotation. Bad input rows
//! (empty, all-zero, NaN/inf) are reported as an [`EncodingError`] naming
//! the reason, so a data pipeline can skip or fix the row.

use crate::error::{EncodingError, QuantumError, Result};
use crate::kernels;
use crate::state::{StateVector, check_n_qubits};
use num_complex::Complex64;

/// Qubits needed to amplitude-encode `len` features: ⌈log2 len⌉, at least 1.
pub fn qubits_for_amplitudes(len: usize) -> usize {
    len.next_power_of_two().trailing_zeros().max(1) as usize
}

fn check_finite(features: &[f64]) -> Result<(), EncodingError> {
    if features.is_empty() {
        return Err(EncodingError::Empty);
    }
    match features.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(EncodingError::NonFinite {
            index,
            value: features[index],
        }),
        None => Ok(()),
    }
}

/// Amplitude encoding on the fewest qubits that hold `features`
/// ([`qubits_for_amplitudes`]): the vector is normalised and zero-padded, so
/// amplitude `i` is `features[i] / ‖features‖`.
pub fn amplitude(features: &[f64]) -> Result<StateVector> {
    amplitude_on(features, qubits_for_amplitudes(features.len()))
}

/// Amplitude encoding on exactly `n_qubits` qubits (`features.len() ≤ 2^n`).
pub fn amplitude_on(features: &[f64], n_qubits: usize) -> Result<StateVector> {
    let mut state = StateVector::zero(n_qubits)?;
    amplitude_into(features, &mut state)?;
    Ok(state)
}

/// Amplitude encoding into an existing register, without allocating. On
/// error the register is left unchanged.
pub fn amplitude_into(features: &[f64], state: &mut StateVector) -> Result<()> {
    check_finite(features)?;
    let capacity = state.dim();
    if features.len() > capacity {
        return Err(EncodingError::TooManyFeatures {
            len: features.len(),
            capacity,
        }
        .into());
    }
    let norm_sqr: f64 = features.iter().map(|x| x * x).sum();
    if norm_sqr == 0.0 {
        return Err(EncodingError::AllZero.into());
    }
    if !norm_sqr.is_finite() {
        return Err(EncodingError::NormOverflow.into());
    }
    let inv = norm_sqr.sqrt().recip();
    let amps = state.amps_mut();
    for (a, &x) in amps.iter_mut().zip(features) {
        *a = Complex64::new(x * inv, 0.0);
    }
    amps[features.len()..].fill(Complex64::new(0.0, 0.0));
    Ok(())
}

/// Angle encoding: RY(`features[i]`) on qubit `i`, starting from |0…0⟩ on
/// `features.len()` qubits.
pub fn angle(features: &[f64]) -> Result<StateVector> {
    check_finite(features)?;
    check_n_qubits(features.len())?;
    let mut state = StateVector::zero(features.len())?;
    angle_into(features, &mut state)?;
    Ok(state)
}

/// Applies RY(`features[i]`) to qubit `i` of an existing state (which need
/// not be |0…0⟩); `features.len()` must not exceed the qubit count.
pub fn angle_into(features: &[f64], state: &mut StateVector) -> Result<()> {
    check_finite(features)?;
    let capacity = state.n_qubits();
    if features.len() > capacity {
        return Err(QuantumError::Encoding(EncodingError::TooManyFeatures {
            len: features.len(),
            capacity,
        }));
    }
    let amps = state.amps_mut();
    for (q, &x) in features.iter().enumerate() {
        kernels::ry(amps, q, x);
    }
    Ok(())
}
