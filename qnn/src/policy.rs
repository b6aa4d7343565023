//! A trained network as a [`Policy`]: the `qnn` and `dl` policies.
//!
//! Each slot: prepare the state ([`StateInput`]), score every open pair,
//! and let the critic ([`crate::candidates`]) pick the best of the
//! network's candidate decisions (and greedy's, dpp-greedy's and the
//! previous slot's, unless the ablation is asked for) — or, for a model
//! file whose `decision` is `network` (closed-loop training), take the
//! network's own decision; the model crate's default CPU split completes
//! the decision. Loading checks that the model
//! file's architecture matches the policy asked for (`qnn`: paper or
//! per-link; `dl`: mlp) and that it fits the scenario.

use crate::arch::{ArchKind, Network};
use crate::candidates::{Choice, Critic, DEFAULT_MAX_CANDIDATES, DecisionMode, WinCounts};
use crate::error::{QnnError, Result};
use crate::features::{FeatureScales, StateInput};
use crate::model_file::ModelFile;
use qmec_model::{Decision, Matrix, Policy, PolicyError, Scenario, SystemState};
use std::path::Path;

/// A trained offloading policy.
#[derive(Debug, Clone)]
pub struct LearnedPolicy {
    name: String,
    network: Network,
    scales: FeatureScales,
    critic: Critic,
}

impl LearnedPolicy {
    /// Wraps a network with its feature scales; the critic weighs every
    /// kind of candidate.
    pub fn new(network: Network, scales: FeatureScales) -> LearnedPolicy {
        let kind = network.arch().kind();
        let name = match kind {
            ArchKind::Mlp => "dl".to_string(),
            other => format!("qnn-{other}"),
        };
        LearnedPolicy { name, network, scales, critic: Critic::new(DEFAULT_MAX_CANDIDATES, true) }
    }

    /// The same policy with `mode` deciding each slot.
    pub fn with_mode(mut self, mode: DecisionMode) -> LearnedPolicy {
        self.critic = Critic::for_mode(mode);
        self
    }

    /// Who decides each slot.
    pub fn mode(&self) -> DecisionMode {
        self.critic.mode()
    }

    /// The same policy deciding from the network's own candidates alone
    /// (the ablation), named `{name}-alone`. A network-mode policy already
    /// decides alone and keeps its mode.
    pub fn network_alone(mut self) -> LearnedPolicy {
        self.name = format!("{}-alone", self.name);
        if self.mode() == DecisionMode::Critic {
            self.critic = Critic::new(DEFAULT_MAX_CANDIDATES, false);
        }
        self
    }

    /// A model file already read ([`ModelFile::from_json`]), for the policy
    /// `policy` ("qnn" or "dl") on `scenario`; `origin` names where it came
    /// from in errors.
    pub fn from_file(policy: &str, loaded: (ModelFile, Network), origin: &str, scenario: &Scenario) -> Result<LearnedPolicy> {
        let (file, network) = loaded;
        let kind = file.arch();
        if kind.policy_name() != policy {
            return Err(QnnError::Mismatch(format!(
                "{origin} holds a `{kind}` model, which runs as policy `{}`, not `{policy}`",
                kind.policy_name()
            )));
        }
        file.check_fits(&network, scenario)?;
        Ok(LearnedPolicy::new(network, file.scales).with_mode(file.decision))
    }

    /// Loads `path` for the policy `policy` ("qnn" or "dl") on `scenario`.
    pub fn load(policy: &str, path: &Path, scenario: &Scenario) -> Result<LearnedPolicy> {
        LearnedPolicy::from_file(policy, ModelFile::load(path)?, &path.display().to_string(), scenario)
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// How often each kind of candidate has won so far.
    pub fn wins(&self) -> &WinCounts {
        self.critic.wins()
    }

    /// The chosen candidate for a state.
    pub fn choose(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Choice> {
        let input = StateInput::prepare(scenario, state, &self.scales, self.network.arch().reads_global());
        let scores = self.network.arch().scores(&input)?;
        Ok(self.critic.choose_for(scenario, state, &input, &scores))
    }
}

impl Policy for LearnedPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        let choice = self.choose(scenario, state).map_err(|e| match e {
            QnnError::Mismatch(why) => PolicyError::Mismatch(why),
            other => PolicyError::Solver(other.to_string()),
        })?;
        let offload = Matrix::from_vec(state.devices(), state.servers(), choice.mu)
            .ok_or_else(|| PolicyError::Solver("the critic returned a decision of the wrong size".into()))?;
        Ok(Decision::with_default_cpu(scenario, state, offload))
    }
}
