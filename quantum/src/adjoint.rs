//! Gradients by adjoint differentiation.
//!
//! For f(θ) = ⟨ψ(θ)|O|ψ(θ)⟩ with ψ = U_L⋯U_1 ψ₀, the method keeps two
//! registers, ψ and λ = O ψ, and walks the ops backwards once: at each op it
//! reads the derivative term from the pair, then un-applies the op to both.
//! Cost: one forward pass plus about two more for the backward sweep,
//! whatever the number of parameters — parameter-shift needs two full runs
//! *per parameter occurrence*.
//!
//! * `vjp` is what the QNN trainer calls: given upstream weights wₖ over the
//!   observables it returns the expectations and ∇θ Σₖ wₖ⟨Oₖ⟩ in ONE forward
//!   and ONE backward pass (all observables here are diagonal, so Σₖ wₖOₖ is a
//!   single real diagonal).
//! * `jacobian` returns every d⟨Oₖ⟩/dθₚ: one forward pass and one backward pass
//!   per observable.
//!
//! Derivative terms: a rotation R(φ) = exp(-iφG/2) with φ = s·θₚ contributes
//! s·Im⟨λ|G|ψ⟩, and exp(-iθₚD) contributes 2·Im⟨λ|D|ψ⟩ (ψ, λ taken right
//! after the op). Contributions of ops sharing a parameter are summed.

use crate::circuit::{Angle, Circuit, Op};
use crate::error::{QuantumError, Result};
use crate::kernels::{self, Axis};
use crate::observable::{Observable, combined_diagonal_into, validate_all};
use crate::state::StateVector;
use num_complex::Complex64 as C;

/// Expectations and the gradient of Σₖ wₖ⟨Oₖ⟩.
#[derive(Debug, Clone, PartialEq)]
pub struct Vjp {
    /// ⟨Oₖ⟩, one per observable.
    pub expectations: Vec<f64>,
    /// ∂/∂θₚ Σₖ wₖ⟨Oₖ⟩, one per entry of the parameter vector given.
    pub gradient: Vec<f64>,
}

/// Expectations and the full Jacobian d⟨Oₖ⟩/dθₚ.
#[derive(Debug, Clone, PartialEq)]
pub struct Jacobian {
    expectations: Vec<f64>,
    n_params: usize,
    /// Row-major: `data[k * n_params + p]`.
    data: Vec<f64>,
}

impl Jacobian {
    pub(crate) fn from_parts(expectations: Vec<f64>, n_params: usize, data: Vec<f64>) -> Self {
        debug_assert_eq!(data.len(), expectations.len() * n_params);
        Jacobian {
            expectations,
            n_params,
            data,
        }
    }

    /// ⟨Oₖ⟩, one per observable.
    pub fn expectations(&self) -> &[f64] {
        &self.expectations
    }

    /// Number of observables (rows).
    pub fn n_observables(&self) -> usize {
        self.expectations.len()
    }

    /// Number of parameters (columns).
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// d⟨Oₖ⟩/dθ for all parameters, or `None` if `k` is out of range.
    pub fn row(&self, k: usize) -> Option<&[f64]> {
        self.data.get(k * self.n_params..(k + 1) * self.n_params)
    }

    /// d⟨Oₖ⟩/dθₚ, or `None` if out of range.
    pub fn get(&self, k: usize, p: usize) -> Option<f64> {
        if p < self.n_params {
            self.data.get(k * self.n_params + p).copied()
        } else {
            None
        }
    }

    /// Jᵀw: the gradient of Σₖ wₖ⟨Oₖ⟩.
    pub fn transpose_mul(&self, weights: &[f64]) -> Result<Vec<f64>> {
        check_weights(weights, self.n_observables())?;
        let mut g = vec![0.0; self.n_params];
        for (row, &w) in self.data.chunks_exact(self.n_params.max(1)).zip(weights) {
            for (gp, &j) in g.iter_mut().zip(row) {
                *gp += w * j;
            }
        }
        Ok(g)
    }
}

pub(crate) fn check_weights(weights: &[f64], n_observables: usize) -> Result<()> {
    if weights.len() != n_observables {
        return Err(QuantumError::SizeMismatch {
            what: "weights per observable",
            expected: n_observables,
            found: weights.len(),
        });
    }
    if let Some(index) = weights.iter().position(|w| !w.is_finite()) {
        return Err(QuantumError::NonFinite {
            what: "weight",
            index,
        });
    }
    Ok(())
}

/// Index of the first parameterised op: the backward sweep can stop there.
fn first_param_op(circuit: &Circuit) -> usize {
    circuit
        .ops()
        .iter()
        .position(|op| {
            matches!(
                op,
                Op::PhaseDiag { .. }
                    | Op::Rx {
                        angle: Angle::Param { .. },
                        ..
                    }
                    | Op::Ry {
                        angle: Angle::Param { .. },
                        ..
                    }
                    | Op::Rz {
                        angle: Angle::Param { .. },
                        ..
                    }
            )
        })
        .unwrap_or(circuit.ops().len())
}

/// The backward sweep. `psi` holds the final state, `lambda` = O·ψ; both are
/// consumed. Gradient terms are added into `grad`.
pub(crate) fn backward(
    circuit: &Circuit,
    params: &[f64],
    psi: &mut [C],
    lambda: &mut [C],
    grad: &mut [f64],
) {
    let ops = &circuit.ops()[first_param_op(circuit)..];
    for op in ops.iter().rev() {
        match op {
            Op::H { qubit } => {
                kernels::h(psi, *qubit);
                kernels::h(lambda, *qubit);
            }
            Op::X { qubit } => {
                kernels::x(psi, *qubit);
                kernels::x(lambda, *qubit);
            }
            Op::Cnot { control, target } => {
                kernels::cnot(psi, *control, *target);
                kernels::cnot(lambda, *control, *target);
            }
            Op::Cz { q1, q2 } => {
                kernels::cz(psi, *q1, *q2);
                kernels::cz(lambda, *q1, *q2);
            }
            Op::Rx { qubit, angle } => rotation(psi, lambda, *qubit, Axis::X, angle, params, grad),
            Op::Ry { qubit, angle } => rotation(psi, lambda, *qubit, Axis::Y, angle, params, grad),
            Op::Rz { qubit, angle } => rotation(psi, lambda, *qubit, Axis::Z, angle, params, grad),
            Op::PhaseDiag { param, diag } => {
                grad[*param] +=
                    2.0 * kernels::phase_diag_backward(psi, lambda, diag, params[*param]);
            }
        }
    }
}

#[inline]
fn rotation(
    psi: &mut [C],
    lambda: &mut [C],
    q: usize,
    axis: Axis,
    angle: &Angle,
    params: &[f64],
    grad: &mut [f64],
) {
    let phi = angle.resolve(params);
    let term = kernels::rotation_backward(psi, lambda, q, axis, phi);
    if let Angle::Param { index, scale } = *angle {
        grad[index] += scale * term;
    }
}

/// Reusable scratch registers for repeated gradient evaluations of circuits
/// on one register size: no allocation per call.
#[derive(Debug, Clone)]
pub struct Workspace {
    n_qubits: usize,
    psi: Vec<C>,
    lambda: Vec<C>,
    diag: Vec<f64>,
}

impl Workspace {
    /// Scratch space for `n_qubits`-qubit circuits.
    pub fn new(n_qubits: usize) -> Result<Self> {
        let dim = StateVector::zero(n_qubits)?.dim();
        Ok(Workspace {
            n_qubits,
            psi: vec![C::new(0.0, 0.0); dim],
            lambda: vec![C::new(0.0, 0.0); dim],
            diag: vec![0.0; dim],
        })
    }

    /// Number of qubits this workspace serves.
    pub fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    /// Runs `circuit` on `initial`, writes ⟨Oₖ⟩ into `expectations` and ADDS
    /// ∇θ Σₖ wₖ⟨Oₖ⟩ into `gradient` (length = `params.len()`), in one forward
    /// and one backward pass.
    #[allow(clippy::too_many_arguments)]
    pub fn vjp_accumulate(
        &mut self,
        circuit: &Circuit,
        params: &[f64],
        initial: &StateVector,
        observables: &[Observable],
        weights: &[f64],
        expectations: &mut [f64],
        gradient: &mut [f64],
    ) -> Result<()> {
        check_all(self, circuit, params, initial, observables)?;
        check_weights(weights, observables.len())?;
        check_len("expectations buffer", observables.len(), expectations.len())?;
        check_len("gradient buffer", params.len(), gradient.len())?;
        self.forward_unchecked(circuit, params, initial.amplitudes());
        for (e, o) in expectations.iter_mut().zip(observables) {
            *e = o.expectation_unchecked(&self.psi);
        }
        self.backward_unchecked(circuit, params, observables, weights, gradient);
        Ok(())
    }

    pub(crate) fn forward_unchecked(&mut self, circuit: &Circuit, params: &[f64], initial: &[C]) {
        self.psi.copy_from_slice(initial);
        circuit.run_unchecked(params, &mut self.psi);
    }

    pub(crate) fn final_state(&self) -> &[C] {
        &self.psi
    }

    pub(crate) fn load_final(&mut self, final_state: &[C]) {
        self.psi.copy_from_slice(final_state);
    }

    /// Backward sweep from the final state held in `self.psi`.
    pub(crate) fn backward_unchecked(
        &mut self,
        circuit: &Circuit,
        params: &[f64],
        observables: &[Observable],
        weights: &[f64],
        gradient: &mut [f64],
    ) {
        combined_diagonal_into(observables, weights, &mut self.diag);
        for ((l, p), &d) in self.lambda.iter_mut().zip(&self.psi).zip(&self.diag) {
            *l = p * d;
        }
        backward(circuit, params, &mut self.psi, &mut self.lambda, gradient);
    }
}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(QuantumError::SizeMismatch {
            what,
            expected,
            found,
        })
    }
}

fn check_all(
    ws: &Workspace,
    circuit: &Circuit,
    params: &[f64],
    initial: &StateVector,
    observables: &[Observable],
) -> Result<()> {
    circuit.check_run(params, initial.n_qubits())?;
    check_len("workspace qubits", circuit.n_qubits(), ws.n_qubits)?;
    validate_all(observables, circuit.n_qubits())
}

/// Expectations of `observables` after `circuit` on `initial`, and the
/// gradient of Σₖ `weights[k]`·⟨Oₖ⟩ over all of `params`: one forward, one
/// backward pass.
pub fn vjp(
    circuit: &Circuit,
    params: &[f64],
    initial: &StateVector,
    observables: &[Observable],
    weights: &[f64],
) -> Result<Vjp> {
    let mut ws = Workspace::new(circuit.n_qubits())?;
    let mut expectations = vec![0.0; observables.len()];
    let mut gradient = vec![0.0; params.len()];
    ws.vjp_accumulate(
        circuit,
        params,
        initial,
        observables,
        weights,
        &mut expectations,
        &mut gradient,
    )?;
    Ok(Vjp {
        expectations,
        gradient,
    })
}

/// Expectations and the full Jacobian d⟨Oₖ⟩/dθₚ (columns: all of `params`):
/// one forward pass, then one backward pass per observable.
pub fn jacobian(
    circuit: &Circuit,
    params: &[f64],
    initial: &StateVector,
    observables: &[Observable],
) -> Result<Jacobian> {
    let mut ws = Workspace::new(circuit.n_qubits())?;
    check_all(&ws, circuit, params, initial, observables)?;
    ws.forward_unchecked(circuit, params, initial.amplitudes());
    let final_state = ws.psi.clone();
    let expectations: Vec<f64> = observables
        .iter()
        .map(|o| o.expectation_unchecked(&final_state))
        .collect();
    let n_params = params.len();
    let mut data = vec![0.0; observables.len() * n_params];
    if n_params > 0 {
        for (row, obs) in data.chunks_exact_mut(n_params).zip(observables.chunks(1)) {
            ws.load_final(&final_state);
            ws.backward_unchecked(circuit, params, obs, &[1.0], row);
        }
    }
    Ok(Jacobian::from_parts(expectations, n_params, data))
}
