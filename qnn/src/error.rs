//! Typed errors of the QNN crate.
//!
//! A model file is user input: every way it can be wrong (unknown format
//! version, wrong architecture for the policy asked for, dimensions that do
//! not fit the scenario, parameter vectors of the wrong length, non-finite
//! numbers) gets its own variant naming the field, so `qmec simulate` can
//! say exactly why a model was refused.

use thiserror::Error;

/// Everything that can go wrong building, training, loading or exporting a model.
#[derive(Debug, Error)]
pub enum QnnError {
    /// The statevector simulator refused a circuit, state or parameter vector.
    #[error("quantum simulation: {0}")]
    Quantum(#[from] qmec_quantum::QuantumError),
    /// A model file field is missing, malformed or out of range.
    #[error("model file field `{field}`: {reason}")]
    Field {
        /// Dotted path of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The model file's format version is not one this build reads.
    #[error("model file format version {found} is not supported (this build reads version {supported})")]
    Version {
        /// The version in the file.
        found: u64,
        /// The one version this build reads.
        supported: u64,
    },
    /// The model was trained for other dimensions than the scenario's.
    #[error("model does not fit the scenario: {0}")]
    Mismatch(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The model file is not valid JSON for the model schema.
    #[error("model file {path} is not a valid model: {reason}")]
    Json {
        /// The file.
        path: String,
        /// serde_json's message (it names the field and line).
        reason: String,
    },
    /// A policy from the model crate failed (the LP, a behaviour policy).
    #[error("policy: {0}")]
    Policy(#[from] qmec_model::PolicyError),
    /// A training or data-collection setting is out of range.
    #[error("training setting `{field}`: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The OpenQASM text could not be parsed back.
    #[error("OpenQASM line {line}: {reason}")]
    Qasm {
        /// 1-based line number.
        line: usize,
        /// What was expected.
        reason: String,
    },
    /// Drawing the loss curve failed.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The PNG being written.
        path: String,
        /// The backend's message.
        reason: String,
    },
    /// A closed-loop training rollout failed in the simulator.
    #[error("closed-loop rollout: {0}")]
    Rollout(String),
    /// Training produced a non-finite loss or gradient.
    #[error("training diverged at step {step}: {what} is not finite")]
    Diverged {
        /// Optimiser step.
        step: usize,
        /// Loss or gradient.
        what: &'static str,
    },
}

/// Result alias for this crate.
pub type Result<T, E = QnnError> = std::result::Result<T, E>;

pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> QnnError {
    QnnError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}
