//! The parameter-shift rule: exact gradients from shifted circuit runs.
//!
//! This is the reference the adjoint method is tested against, and the rule a
//! real quantum device would have to use. It costs two full circuit runs per
//! parameter *occurrence*, so it is for tests and small circuits only.
//!
//! * A rotation R(φ) = exp(-iφG/2), φ = s·θₚ, G a Pauli: ∂f/∂φ =
//!   [f(φ + π/2) − f(φ − π/2)] / 2, times s for θₚ.
//! * exp(-iθD) with a general real diagonal D has many frequencies, so it is
//!   split into its commuting factors exp(-iθ dᵢ |i⟩⟨i|), each a two-level
//!   generator with gap dᵢ: ∂f/∂θ = Σᵢ (dᵢ/2)[f(+) − f(−)], where ± shifts
//!   that factor's angle by ±π/(2dᵢ), i.e. multiplies amplitude i by ∓i just
//!   after the op.
//!
//! Contributions of ops sharing a parameter are summed.

use crate::adjoint::Jacobian;
use crate::circuit::{Angle, Circuit, Op, apply_op};
use crate::error::Result;
use crate::kernels;
use crate::observable::{Observable, validate_all};
use crate::state::StateVector;
use num_complex::Complex64 as C;
use std::f64::consts::FRAC_PI_2;

/// A modification of one op for a shifted run.
#[derive(Clone, Copy)]
enum Shift {
    /// Add this to the rotation angle of the op.
    Angle(f64),
    /// Multiply amplitude `index` by `factor` right after the op.
    Phase { index: usize, factor: C },
}

/// ⟨Oₖ⟩ for every observable after running the circuit with op `at` shifted.
fn shifted_run(
    circuit: &Circuit,
    params: &[f64],
    initial: &StateVector,
    observables: &[Observable],
    at: usize,
    shift: Shift,
    psi: &mut [C],
) -> Vec<f64> {
    psi.copy_from_slice(initial.amplitudes());
    for (j, op) in circuit.ops().iter().enumerate() {
        if j != at {
            apply_op(op, params, psi);
            continue;
        }
        match (op, shift) {
            (Op::Rx { qubit, angle }, Shift::Angle(d)) => {
                kernels::rx(psi, *qubit, angle.resolve(params) + d)
            }
            (Op::Ry { qubit, angle }, Shift::Angle(d)) => {
                kernels::ry(psi, *qubit, angle.resolve(params) + d)
            }
            (Op::Rz { qubit, angle }, Shift::Angle(d)) => {
                kernels::rz(psi, *qubit, angle.resolve(params) + d)
            }
            (_, Shift::Phase { index, factor }) => {
                apply_op(op, params, psi);
                psi[index] *= factor;
            }
            (_, Shift::Angle(_)) => apply_op(op, params, psi),
        }
    }
    observables
        .iter()
        .map(|o| o.expectation_unchecked(psi))
        .collect()
}

/// Expectations and the Jacobian d⟨Oₖ⟩/dθₚ (columns: all of `params`) by the
/// parameter-shift rule.
pub fn jacobian(
    circuit: &Circuit,
    params: &[f64],
    initial: &StateVector,
    observables: &[Observable],
) -> Result<Jacobian> {
    circuit.check_run(params, initial.n_qubits())?;
    validate_all(observables, circuit.n_qubits())?;
    let n_obs = observables.len();
    let n_params = params.len();
    let mut psi = initial.amplitudes().to_vec();
    circuit.run_unchecked(params, &mut psi);
    let expectations: Vec<f64> = observables
        .iter()
        .map(|o| o.expectation_unchecked(&psi))
        .collect();
    let mut data = vec![0.0; n_obs * n_params];
    let mut add = |p: usize, coeff: f64, plus: Vec<f64>, minus: Vec<f64>| {
        for (k, (a, b)) in plus.iter().zip(&minus).enumerate() {
            data[k * n_params + p] += coeff * (a - b);
        }
    };
    for (j, op) in circuit.ops().iter().enumerate() {
        match op {
            Op::Rx {
                angle: Angle::Param { index, scale },
                ..
            }
            | Op::Ry {
                angle: Angle::Param { index, scale },
                ..
            }
            | Op::Rz {
                angle: Angle::Param { index, scale },
                ..
            } => {
                let plus = shifted_run(
                    circuit,
                    params,
                    initial,
                    observables,
                    j,
                    Shift::Angle(FRAC_PI_2),
                    &mut psi,
                );
                let minus = shifted_run(
                    circuit,
                    params,
                    initial,
                    observables,
                    j,
                    Shift::Angle(-FRAC_PI_2),
                    &mut psi,
                );
                add(*index, 0.5 * scale, plus, minus);
            }
            Op::PhaseDiag { param, diag } => {
                for (i, &d) in diag.iter().enumerate().filter(|(_, d)| **d != 0.0) {
                    let plus = Shift::Phase {
                        index: i,
                        factor: C::new(0.0, -1.0),
                    };
                    let minus = Shift::Phase {
                        index: i,
                        factor: C::new(0.0, 1.0),
                    };
                    let plus =
                        shifted_run(circuit, params, initial, observables, j, plus, &mut psi);
                    let minus =
                        shifted_run(circuit, params, initial, observables, j, minus, &mut psi);
                    add(*param, 0.5 * d, plus, minus);
                }
            }
            _ => {}
        }
    }
    Ok(Jacobian::from_parts(expectations, n_params, data))
}

/// The gradient of Σₖ `weights[k]`·⟨Oₖ⟩ by the parameter-shift rule.
pub fn gradient(
    circuit: &Circuit,
    params: &[f64],
    initial: &StateVector,
    observables: &[Observable],
    weights: &[f64],
) -> Result<Vec<f64>> {
    crate::adjoint::check_weights(weights, observables.len())?;
    jacobian(circuit, params, initial, observables)?.transpose_mul(weights)
}
