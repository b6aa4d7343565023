//! Every policy qmec knows, built from a name (and a model file for learned
//! policies). The CLI and the controller both build policies here, so a
//! policy that runs in the simulator runs unchanged in the testbed.

#![forbid(unsafe_code)]

use qmec_model::{Policy, Scenario};
use std::path::PathBuf;

/// What the user asked for: a policy name, and a model file where the
/// policy is a trained one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicySpec {
    pub name: String,
    pub model: Option<PathBuf>,
}

impl PolicySpec {
    pub fn named(name: impl Into<String>) -> PolicySpec {
        PolicySpec { name: name.into(), model: None }
    }

    /// `NAME` or `NAME=MODEL_FILE`, as written in a `--policies` list.
    pub fn parse(text: &str) -> PolicySpec {
        match text.split_once('=') {
            Some((name, model)) => PolicySpec { name: name.trim().into(), model: Some(model.trim().into()) },
            None => PolicySpec::named(text.trim()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown policy `{name}` (known: {known})")]
    Unknown { name: String, known: String },
}

/// Names of every policy [`build`] accepts.
pub fn known() -> Vec<&'static str> {
    qmec_policies::CLASSICAL.to_vec()
}

/// Builds the policy `spec` names for `scenario`; `seed` drives any
/// randomness of the policy's own.
pub fn build(spec: &PolicySpec, _scenario: &Scenario, seed: u64) -> Result<Box<dyn Policy>, CatalogError> {
    qmec_policies::classical(&spec.name, seed).ok_or_else(|| CatalogError::Unknown {
        name: spec.name.clone(),
        known: known().join(", "),
    })
}
