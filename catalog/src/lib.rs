//! Every policy qmec knows, built from a name (and a model file for learned
//! policies). The CLI and the controller both build policies here, so a
//! policy that runs in the simulator runs unchanged in the testbed.

#![forbid(unsafe_code)]

use qmec_model::{Policy, Scenario};
pub use qmec_qnn::online::Execution;
use qmec_qnn::online::core::OnlineConfig;
use std::path::PathBuf;

/// What the user asked for: a policy name, a model file where the policy
/// is a trained one, and whether it learns online.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicySpec {
    pub name: String,
    pub model: Option<PathBuf>,
    /// Online learning for the policies that can ([`ONLINE`]); `None`
    /// keeps a trained model frozen (`lydroo` learns in-line regardless).
    pub online: Option<OnlineSpec>,
}

/// How a policy learns online (`qmec_qnn::online`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineSpec {
    /// In-line (the simulator: reproducible) or on a worker thread (the
    /// controller: never on the slot's critical path).
    pub execution: Execution,
    /// Train, or only measure the share of the LP optimum (a frozen
    /// reference that reports the same figures).
    pub learn: bool,
    /// The run folder the model files go to.
    pub checkpoints: Option<PathBuf>,
}

impl PolicySpec {
    pub fn named(name: impl Into<String>) -> PolicySpec {
        PolicySpec { name: name.into(), model: None, online: None }
    }

    /// `NAME` or `NAME=MODEL_FILE`, as written in a `--policies` list.
    pub fn parse(text: &str) -> PolicySpec {
        match text.split_once('=') {
            Some((name, model)) => PolicySpec { model: Some(model.trim().into()), ..PolicySpec::named(name.trim()) },
            None => PolicySpec::named(text.trim()),
        }
    }

    /// The same spec learning online as `online` says, where the policy can.
    pub fn learning(mut self, online: OnlineSpec) -> PolicySpec {
        if ONLINE.contains(&self.name.as_str()) {
            self.online = Some(online);
        }
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown policy `{name}` (known: {known})")]
    Unknown { name: String, known: String },
    #[error("policy `{name}` is a trained one: give its model file (--model FILE, or {name}=FILE in a list)")]
    MissingModel { name: String },
    #[error("policy `{name}` cannot use {origin}: {reason}")]
    Shipped { name: String, origin: &'static str, reason: qmec_qnn::QnnError },
    /// The reason is part of the message (not a `source`), so it is printed
    /// once however the error is shown.
    #[error("policy `{name}` cannot use model {path}: {reason}")]
    Model { name: String, path: String, reason: qmec_qnn::QnnError },
    #[error("policy `{name}` cannot learn online: {reason}")]
    Online { name: String, reason: qmec_qnn::QnnError },
}

/// Trained policies: `qnn` (paper or per-link QNN), `qnn-alone` (the same
/// deciding from the network's own candidates only, an ablation) and `dl`
/// (the MLP). `qnn` and `qnn-alone` run the shipped per-link model unless a
/// model file is given.
pub const TRAINED: [&str; 3] = ["qnn", "qnn-alone", "dl"];

/// `lydroo`: a per-pair MLP actor learning online from its own critic's
/// winners (Bi et al., IEEE TWC 2021), from seeded random weights.
pub const LYDROO: &str = "lydroo";

/// Policies that learn online: `qnn` and `qnn-alone` when asked (the CLI
/// asks by default; `--online false` freezes them), `lydroo` always. `dl`'s
/// MLP is sized for one (M, S) and stays frozen.
pub const ONLINE: [&str; 3] = ["qnn", "qnn-alone", LYDROO];

/// The policy the CLI runs when none is named: the shipped QNN.
pub const DEFAULT_POLICY: &str = "qnn";

/// Names of every policy [`build`] accepts.
pub fn known() -> Vec<&'static str> {
    qmec_policies::CLASSICAL.iter().chain(&qmec_policies::REFERENCE).chain(&TRAINED).chain(&[LYDROO]).chain(&qmec_qubo::POLICIES).copied().collect()
}

/// Builds the policy `spec` names for `scenario`; `seed` drives any
/// randomness of the policy's own.
pub fn build(spec: &PolicySpec, scenario: &Scenario, seed: u64) -> Result<Box<dyn Policy>, CatalogError> {
    if let Some(policy) = build_learned(spec, scenario)? {
        return Ok(Box::new(policy));
    }
    if spec.name == LYDROO {
        let online = spec.online.clone().unwrap_or(OnlineSpec { execution: Execution::Inline, learn: true, checkpoints: None });
        let policy = qmec_qnn::LearnedPolicy::lydroo(scenario, seed, online.execution, online.checkpoints)
            .map_err(|reason| CatalogError::Online { name: spec.name.clone(), reason })?;
        return Ok(Box::new(policy));
    }
    if let Some(policy) = qmec_qubo::by_name_policy(&spec.name, seed) {
        return Ok(Box::new(policy));
    }
    qmec_policies::classical(&spec.name, seed).ok_or_else(|| CatalogError::Unknown {
        name: spec.name.clone(),
        known: known().join(", "),
    })
}

/// The policy `spec` names as its own type where it is a trained one
/// ([`TRAINED`]), so a caller can read what only a learned policy reports
/// (which kind of candidate won, [`qmec_qnn::LearnedPolicy::wins`]);
/// `None` for every other name, which [`build`] then resolves.
pub fn build_learned(spec: &PolicySpec, scenario: &Scenario) -> Result<Option<qmec_qnn::LearnedPolicy>, CatalogError> {
    if TRAINED.contains(&spec.name.as_str()) { learned(spec, scenario).map(Some) } else { Ok(None) }
}

/// A trained policy: its model file, or the shipped model for `qnn`.
fn learned(spec: &PolicySpec, scenario: &Scenario) -> Result<qmec_qnn::LearnedPolicy, CatalogError> {
    let (kind, alone) = match spec.name.as_str() {
        "qnn-alone" => ("qnn", true),
        other => (other, false),
    };
    // Refuses a model of the other kind, or one that does not fit the scenario, saying why.
    let policy = match &spec.model {
        Some(path) => qmec_qnn::LearnedPolicy::load(kind, path, scenario).map_err(|reason| CatalogError::Model {
            name: spec.name.clone(),
            path: path.display().to_string(),
            reason,
        })?,
        None if kind == "qnn" => {
            let origin = qmec_qnn::shipped::ORIGIN;
            qmec_qnn::shipped::per_link()
                .and_then(|loaded| qmec_qnn::LearnedPolicy::from_file(kind, loaded, origin, scenario))
                .map_err(|reason| CatalogError::Shipped { name: spec.name.clone(), origin, reason })?
        }
        None => return Err(CatalogError::MissingModel { name: spec.name.clone() }),
    };
    let policy = if alone { policy.network_alone() } else { policy };
    match &spec.online {
        Some(online) => {
            let config = OnlineConfig { learn: online.learn, ..OnlineConfig::exact_labels(scenario.devices, scenario.servers) };
            policy
                .with_online(config, online.execution, online.checkpoints.clone())
                .map_err(|reason| CatalogError::Online { name: spec.name.clone(), reason })
        }
        None => Ok(policy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_policies_come_back_as_their_own_type_and_the_rest_do_not() {
        let scenario = Scenario::paper();
        let qnn = build_learned(&PolicySpec::named("qnn"), &scenario).expect("shipped model loads");
        assert!(qnn.is_some_and(|p| p.wins().total() == 0));
        assert!(build_learned(&PolicySpec::named("greedy"), &scenario).expect("no error").is_none());
        assert!(matches!(build_learned(&PolicySpec::named("dl"), &scenario), Err(CatalogError::MissingModel { .. })));
    }
}
