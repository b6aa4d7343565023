//! A serialisable description of a parameterised circuit, and running it.
//!
//! Models (the QNN's filters, QAOA layers) are built once as a [`Circuit`]
//! and then run many times with different parameter vectors, by the forward
//! pass and by the differentiation modules. Keeping the circuit as plain data
//! (serde) lets a trained model be saved, shipped to the cross-check, and
//! exported. A `Circuit` is validated when it is built or deserialised, so
//! running it only has to check the parameters and the state size.

use crate::error::{QuantumError, Result};
use crate::kernels;
use crate::plan::Plan;
use crate::state::{StateVector, check_diagonal, check_n_qubits, check_pair, check_qubit};
use num_complex::Complex64;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

fn one() -> f64 {
    1.0
}

/// A rotation angle: fixed, or `scale × params[index]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Angle {
    /// A constant angle in radians.
    Fixed(f64),
    /// `scale × params[index]`; several ops may share one index.
    Param {
        /// Index into the parameter vector.
        index: usize,
        /// Factor on the parameter (1 when omitted in JSON).
        #[serde(default = "one")]
        scale: f64,
    },
}

impl Angle {
    /// `params[index]`.
    pub fn param(index: usize) -> Self {
        Angle::Param { index, scale: 1.0 }
    }

    /// `scale × params[index]`.
    pub fn scaled(index: usize, scale: f64) -> Self {
        Angle::Param { index, scale }
    }

    /// The angle for a given parameter vector (already checked long enough).
    #[inline]
    pub(crate) fn resolve(&self, params: &[f64]) -> f64 {
        match *self {
            Angle::Fixed(a) => a,
            Angle::Param { index, scale } => scale * params[index],
        }
    }

    fn check(&self) -> Result<()> {
        let v = match *self {
            Angle::Fixed(a) => a,
            Angle::Param { scale, .. } => scale,
        };
        if v.is_finite() {
            Ok(())
        } else {
            Err(QuantumError::NonFinite {
                what: "fixed angle or scale",
                index: 0,
            })
        }
    }
}

impl From<f64> for Angle {
    fn from(a: f64) -> Self {
        Angle::Fixed(a)
    }
}

/// One operation of a [`Circuit`]. Qubits follow the crate convention
/// (qubit 0 = least significant bit of the basis index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Hadamard.
    H {
        /// Target qubit.
        qubit: usize,
    },
    /// Pauli X.
    X {
        /// Target qubit.
        qubit: usize,
    },
    /// Controlled NOT.
    Cnot {
        /// Control qubit.
        control: usize,
        /// Target qubit.
        target: usize,
    },
    /// Controlled Z (symmetric in its qubits).
    Cz {
        /// First qubit.
        q1: usize,
        /// Second qubit.
        q2: usize,
    },
    /// RX(angle) = exp(-i·angle·X/2).
    Rx {
        /// Target qubit.
        qubit: usize,
        /// Rotation angle.
        angle: Angle,
    },
    /// RY(angle) = exp(-i·angle·Y/2).
    Ry {
        /// Target qubit.
        qubit: usize,
        /// Rotation angle.
        angle: Angle,
    },
    /// RZ(angle) = exp(-i·angle·Z/2).
    Rz {
        /// Target qubit.
        qubit: usize,
        /// Rotation angle.
        angle: Angle,
    },
    /// exp(-i·`params[param]`·D) for a real diagonal D over all 2^n basis
    /// states (a QAOA cost layer).
    PhaseDiag {
        /// Index into the parameter vector.
        param: usize,
        /// The diagonal D, one entry per basis index.
        diag: Vec<f64>,
    },
}

impl Op {
    fn validate(&self, n_qubits: usize) -> Result<()> {
        match self {
            Op::H { qubit } | Op::X { qubit } => check_qubit(*qubit, n_qubits),
            Op::Cnot { control, target } => check_pair(*control, *target, n_qubits),
            Op::Cz { q1, q2 } => check_pair(*q1, *q2, n_qubits),
            Op::Rx { qubit, angle } | Op::Ry { qubit, angle } | Op::Rz { qubit, angle } => {
                check_qubit(*qubit, n_qubits)?;
                angle.check()
            }
            Op::PhaseDiag { diag, .. } => check_diagonal(diag, n_qubits),
        }
    }

    /// The highest parameter index this op reads, if any.
    fn max_param(&self) -> Option<usize> {
        match self {
            Op::Rx {
                angle: Angle::Param { index, .. },
                ..
            }
            | Op::Ry {
                angle: Angle::Param { index, .. },
                ..
            }
            | Op::Rz {
                angle: Angle::Param { index, .. },
                ..
            } => Some(*index),
            Op::PhaseDiag { param, .. } => Some(*param),
            _ => None,
        }
    }
}

/// Applies one validated op to amplitudes of the right size.
#[inline]
pub(crate) fn apply_op(op: &Op, params: &[f64], amps: &mut [Complex64]) {
    match op {
        Op::H { qubit } => kernels::h(amps, *qubit),
        Op::X { qubit } => kernels::x(amps, *qubit),
        Op::Cnot { control, target } => kernels::cnot(amps, *control, *target),
        Op::Cz { q1, q2 } => kernels::cz(amps, *q1, *q2),
        Op::Rx { qubit, angle } => kernels::rx(amps, *qubit, angle.resolve(params)),
        Op::Ry { qubit, angle } => kernels::ry(amps, *qubit, angle.resolve(params)),
        Op::Rz { qubit, angle } => kernels::rz(amps, *qubit, angle.resolve(params)),
        Op::PhaseDiag { param, diag } => kernels::phase_diag(amps, diag, params[*param]),
    }
}

/// The serialised form; converted through [`Circuit::from_ops`] so that a
/// deserialised circuit is always valid.
#[derive(Serialize, Deserialize)]
struct CircuitSpec {
    n_qubits: usize,
    ops: Vec<Op>,
}

/// A validated list of [`Op`]s over `n_qubits` qubits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "CircuitSpec", into = "CircuitSpec")]
pub struct Circuit {
    n_qubits: usize,
    ops: Vec<Op>,
    n_params: usize,
    /// How the forward pass fuses and blocks the ops: made on the first
    /// run, dropped whenever an op is pushed.
    plan: OnceLock<Plan>,
}

/// Two circuits are equal when their ops are; whether either has been run
/// (and so planned) does not matter.
impl PartialEq for Circuit {
    fn eq(&self, other: &Self) -> bool {
        self.n_qubits == other.n_qubits && self.n_params == other.n_params && self.ops == other.ops
    }
}

impl TryFrom<CircuitSpec> for Circuit {
    type Error = QuantumError;
    fn try_from(spec: CircuitSpec) -> Result<Self> {
        Circuit::from_ops(spec.n_qubits, spec.ops)
    }
}

impl From<Circuit> for CircuitSpec {
    fn from(c: Circuit) -> Self {
        CircuitSpec {
            n_qubits: c.n_qubits,
            ops: c.ops,
        }
    }
}

impl Circuit {
    /// An empty circuit on `n_qubits` qubits (1 ≤ n ≤ [`crate::MAX_QUBITS`]).
    pub fn new(n_qubits: usize) -> Result<Self> {
        check_n_qubits(n_qubits)?;
        Ok(Circuit {
            n_qubits,
            ops: Vec::new(),
            n_params: 0,
            plan: OnceLock::new(),
        })
    }

    /// A circuit from a list of ops, each validated.
    pub fn from_ops(n_qubits: usize, ops: Vec<Op>) -> Result<Self> {
        let mut c = Circuit::new(n_qubits)?;
        c.ops.reserve(ops.len());
        for op in ops {
            c.push(op)?;
        }
        Ok(c)
    }

    /// Appends an op after checking it against the register.
    pub fn push(&mut self, op: Op) -> Result<&mut Self> {
        op.validate(self.n_qubits)?;
        if let Some(p) = op.max_param() {
            self.n_params = self.n_params.max(p + 1);
        }
        self.ops.push(op);
        self.plan = OnceLock::new();
        Ok(self)
    }

    /// The layered ansatz used by the QNN and the benchmarks: per layer,
    /// RX, RY, RZ on every qubit (each with its own parameter, numbered
    /// layer-major, then qubit, then X/Y/Z), then a CZ chain (0,1), (1,2), …
    /// Uses `3 × n_qubits × layers` parameters.
    pub fn layered(n_qubits: usize, layers: usize) -> Result<Self> {
        let mut c = Circuit::new(n_qubits)?;
        let mut p = 0;
        for _ in 0..layers {
            for q in 0..n_qubits {
                c.push(Op::Rx {
                    qubit: q,
                    angle: Angle::param(p),
                })?;
                c.push(Op::Ry {
                    qubit: q,
                    angle: Angle::param(p + 1),
                })?;
                c.push(Op::Rz {
                    qubit: q,
                    angle: Angle::param(p + 2),
                })?;
                p += 3;
            }
            for q in 1..n_qubits {
                c.push(Op::Cz { q1: q - 1, q2: q })?;
            }
        }
        Ok(c)
    }

    /// Number of qubits.
    pub fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    /// The ops in application order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// One more than the highest parameter index used (0 if none): the
    /// shortest parameter vector [`Circuit::run`] accepts.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Checks a parameter vector and a state against this circuit.
    pub(crate) fn check_run(&self, params: &[f64], n_qubits: usize) -> Result<()> {
        if n_qubits != self.n_qubits {
            return Err(QuantumError::SizeMismatch {
                what: "state qubits for this circuit",
                expected: self.n_qubits,
                found: n_qubits,
            });
        }
        if params.len() < self.n_params {
            return Err(QuantumError::TooFewParameters {
                needed: self.n_params,
                given: params.len(),
            });
        }
        if let Some(index) = params.iter().position(|p| !p.is_finite()) {
            return Err(QuantumError::NonFinite {
                what: "parameter",
                index,
            });
        }
        Ok(())
    }

    /// Applies the circuit to `state` in place. `params` must hold at least
    /// [`Circuit::n_params`] finite values; extra ones are ignored.
    pub fn run(&self, params: &[f64], state: &mut StateVector) -> Result<()> {
        self.check_run(params, state.n_qubits())?;
        self.run_unchecked(params, state.amps_mut());
        Ok(())
    }

    /// The forward pass: fused and cache-blocked (see `plan`).
    pub(crate) fn run_unchecked(&self, params: &[f64], amps: &mut [Complex64]) {
        self.plan
            .get_or_init(|| Plan::new(self.n_qubits, &self.ops))
            .run(&self.ops, params, amps);
    }

    /// Applies the circuit op by op, one sweep of the state per op, without
    /// the fusion and blocking of [`Circuit::run`]: the reference the fused
    /// forward pass is tested against, and the per-gate kernel speed in the
    /// kernel benchmark. Same checks and result as [`Circuit::run`] up to
    /// rounding.
    pub fn run_unfused(&self, params: &[f64], state: &mut StateVector) -> Result<()> {
        self.check_run(params, state.n_qubits())?;
        for op in &self.ops {
            apply_op(op, params, state.amps_mut());
        }
        Ok(())
    }
}
