//! Why a QUBO could not be built or solved. Every caller-supplied number and
//! size is checked at the crate boundary and reported here, never by a panic.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum QuboError {
    /// A size or count is out of range (no devices, too many variables, …).
    #[error("invalid size: {0}")]
    Size(String),
    /// A coefficient or parameter is NaN, infinite or of the wrong sign.
    #[error("invalid value for {what}: {value}")]
    Value { what: String, value: f64 },
    /// A solver cannot handle an instance this large.
    #[error("{solver} handles at most {limit} {unit}, the instance has {size}")]
    TooLarge {
        solver: String,
        limit: u64,
        unit: &'static str,
        size: u64,
    },
    /// An assignment does not fit the instance.
    #[error("invalid assignment: {0}")]
    Assignment(String),
    /// The quantum simulator refused a circuit or state.
    #[error("quantum simulator: {0}")]
    Quantum(#[from] qmec_quantum::QuantumError),
    /// A QUBO file could not be read.
    #[error("QUBO file: {0}")]
    Format(String),
    /// An unknown solver or policy name.
    #[error("unknown solver `{name}` (known: {known})")]
    UnknownSolver { name: String, known: String },
}

pub(crate) fn check_finite(what: &str, value: f64) -> Result<(), QuboError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(QuboError::Value {
            what: what.into(),
            value,
        })
    }
}

pub(crate) fn check_non_negative(what: &str, value: f64) -> Result<(), QuboError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(QuboError::Value {
            what: what.into(),
            value,
        })
    }
}
