//! Exact statevector simulation in f64 complex numbers, with gradients, for
//! qmec's hybrid quantum-classical network (QNN) and for QAOA.
//!
//! # Layout
//!
//! - [`state`]: [`StateVector`], the 2^n amplitudes of an n-qubit register,
//!   and the checked in-place gates RX, RY, RZ, H, X, CNOT, CZ and the
//!   diagonal phase exp(-iθD). States the qubit convention (qubit 0 = least
//!   significant bit of the basis index) and the mapping to PennyLane wires.
//! - [`encoding`]: classical features into states (amplitude and angle
//!   encoding), with [`EncodingError`] naming why a row is unusable.
//! - [`state_prep`]: the RY and CNOT gates that prepare an amplitude
//!   encoding from |0…0⟩, for circuits exported to other simulators.
//! - [`observable`]: ⟨Z_i⟩, ⟨Z_i Z_j⟩ and ⟨ψ|D|ψ⟩ for a real diagonal D.
//! - [`circuit`]: [`Circuit`], a validated, serde-serialisable list of
//!   [`Op`]s with fixed or parameterised angles, and running it.
//! - `plan` (private): gate fusion and cache blocking for the forward pass.
//! - [`adjoint`]: gradients by adjoint differentiation: vector-Jacobian
//!   products in one forward + one backward pass, and full Jacobians.
//! - [`batch`]: one circuit over a batch of input states on scoped threads,
//!   gradients summed over the batch (a QNN training step).
//! - [`param_shift`]: the parameter-shift rule, the slow exact reference the
//!   adjoint gradients are tested against.
//! - `kernels` (private): the unchecked inner loops every module above runs.
//! - [`error`]: [`QuantumError`] and [`EncodingError`].
//!
//! # Errors
//!
//! Everything a caller passes in (qubit indices, parameter vectors, diagonals,
//! feature rows) is checked at the public boundary and reported as a typed
//! error; circuits are validated when built or deserialised. Nothing here
//! panics on user input, and the kernels run without checks.

#![forbid(unsafe_code)]

pub mod adjoint;
pub mod batch;
pub mod circuit;
pub mod encoding;
pub mod error;
mod kernels;
pub mod observable;
pub mod param_shift;
mod plan;
pub mod state;
pub mod state_prep;

pub use adjoint::{Jacobian, Vjp, Workspace};
pub use circuit::{Angle, Circuit, Op};
pub use error::{EncodingError, QuantumError};
pub use num_complex::Complex64;
pub use observable::Observable;
pub use state::{MAX_QUBITS, StateVector};
