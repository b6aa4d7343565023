//! A trained network as a [`Policy`]: the `qnn` and `dl` policies.
//!
//! Each slot: prepare the state ([`StateInput`]), score, project, and hand
//! the feasible μ to the model crate's default CPU split. Loading checks
//! that the model file's architecture matches the policy asked for (`qnn`:
//! paper or per-link; `dl`: mlp) and that it fits the scenario.

use crate::arch::{ArchKind, Network};
use crate::error::{QnnError, Result};
use crate::features::{FeatureScales, StateInput};
use crate::loss::decide;
use crate::model_file::ModelFile;
use qmec_model::{Decision, Matrix, Policy, PolicyError, Scenario, SystemState};
use std::path::Path;

/// A trained offloading policy.
#[derive(Debug, Clone)]
pub struct LearnedPolicy {
    name: String,
    network: Network,
    scales: FeatureScales,
}

impl LearnedPolicy {
    /// Wraps a network with its feature scales.
    pub fn new(network: Network, scales: FeatureScales) -> LearnedPolicy {
        let kind = network.arch().kind();
        let name = match kind {
            ArchKind::Mlp => "dl".to_string(),
            other => format!("qnn-{other}"),
        };
        LearnedPolicy { name, network, scales }
    }

    /// Loads `path` for the policy `policy` ("qnn" or "dl") on `scenario`.
    pub fn load(policy: &str, path: &Path, scenario: &Scenario) -> Result<LearnedPolicy> {
        let (file, network) = ModelFile::load(path)?;
        let kind = file.arch();
        if kind.policy_name() != policy {
            return Err(QnnError::Mismatch(format!(
                "{} holds a `{kind}` model, which runs as policy `{}`, not `{policy}`",
                path.display(),
                kind.policy_name()
            )));
        }
        file.check_fits(&network, scenario)?;
        Ok(LearnedPolicy::new(network, file.scales))
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// μ for a state, as a matrix.
    pub fn offload(&self, scenario: &Scenario, state: &SystemState) -> Result<Matrix> {
        let input = StateInput::new(scenario, state, &self.scales);
        let mu = decide(self.network.arch(), &input)?;
        Matrix::from_vec(state.devices(), state.servers(), mu)
            .ok_or_else(|| QnnError::Mismatch("the network returned a decision of the wrong size".into()))
    }
}

impl Policy for LearnedPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        let offload = self.offload(scenario, state).map_err(|e| match e {
            QnnError::Mismatch(why) => PolicyError::Mismatch(why),
            other => PolicyError::Solver(other.to_string()),
        })?;
        Ok(Decision::with_default_cpu(scenario, state, offload))
    }
}
