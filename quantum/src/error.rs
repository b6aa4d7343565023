//! Typed errors for the simulator.
//!
//! Every check on caller-supplied data (qubit indices, parameter vectors,
//! diagonals, encoded features) happens once at the public boundary and is
//! reported through these enums, so the gate kernels underneath can run
//! without checks and nothing in this crate panics on user input.
//! Encoding failures get their own enum because callers (the QNN feature
//! pipeline) want to tell "the input row is unusable" apart from "the circuit
//! is wrong".

use thiserror::Error;

/// Why a classical feature vector could not be encoded into a state.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EncodingError {
    /// No features at all.
    #[error("cannot encode an empty feature vector")]
    Empty,
    /// A feature is NaN or infinite.
    #[error("feature {index} is not finite ({value})")]
    NonFinite {
        /// Position of the offending feature.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// Amplitude encoding needs a non-zero vector to normalise.
    #[error("cannot amplitude-encode an all-zero feature vector")]
    AllZero,
    /// The features do not fit the register (2^n amplitudes, or n angles).
    #[error("{len} features do not fit in {capacity} slots")]
    TooManyFeatures {
        /// Number of features given.
        len: usize,
        /// Number of slots available.
        capacity: usize,
    },
    /// The squared norm overflowed f64 (features around 1e154 or larger).
    #[error("the feature vector's norm is not finite")]
    NormOverflow,
}

/// Errors from building circuits, states and observables, and from running them.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum QuantumError {
    /// A register was asked for with more qubits than this simulator allows.
    #[error("{requested} qubits requested, at most {max} are supported")]
    TooManyQubits {
        /// Requested qubit count.
        requested: usize,
        /// [`crate::MAX_QUBITS`].
        max: usize,
    },
    /// A register needs at least one qubit.
    #[error("a register needs at least one qubit")]
    NoQubits,
    /// A gate or observable names a qubit outside the register.
    #[error("qubit {qubit} is out of range for {n_qubits} qubits")]
    QubitOutOfRange {
        /// The offending qubit index.
        qubit: usize,
        /// Register size.
        n_qubits: usize,
    },
    /// A two-qubit gate or observable names the same qubit twice.
    #[error("two-qubit operation uses qubit {qubit} twice")]
    RepeatedQubit {
        /// The repeated qubit.
        qubit: usize,
    },
    /// An amplitude vector's length is not a power of two.
    #[error("amplitude vector length {len} is not a power of two")]
    NotPowerOfTwo {
        /// The length given.
        len: usize,
    },
    /// A state, diagonal or circuit has the wrong size for its partner.
    #[error("{what}: expected {expected}, found {found}")]
    SizeMismatch {
        /// What was being compared.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size given.
        found: usize,
    },
    /// A number that must be finite is NaN or infinite.
    #[error("{what} at index {index} is not finite")]
    NonFinite {
        /// What was being checked (parameter, angle, diagonal entry ...).
        what: &'static str,
        /// Position of the offending value.
        index: usize,
    },
    /// The parameter vector is shorter than the circuit requires.
    #[error("circuit uses {needed} parameters, {given} given")]
    TooFewParameters {
        /// `Circuit::n_params()`.
        needed: usize,
        /// Length of the slice given.
        given: usize,
    },
    /// A feature vector could not be encoded.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

/// Result alias for this crate.
pub type Result<T, E = QuantumError> = std::result::Result<T, E>;
