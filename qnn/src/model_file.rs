//! The model file: a trained network, versioned, with the scenario it was
//! trained on.
//!
//! JSON (serde), human-readable and diffable. `format_version` is read
//! first and anything but [`FORMAT_VERSION`] is refused before the rest is
//! parsed, so a future format fails with a clear message instead of a
//! confusing field error. The network is rebuilt from its shape and every
//! parameter checked (count, finiteness) on load; the scales must be
//! positive. Whether the model fits a scenario is [`ModelFile::check_fits`].
//!
//! `decision` (who decides each slot, [`DecisionMode`]) and `closed_loop`
//! (the record of closed-loop training) came after version 2 was fixed;
//! both default when absent, so every version-2 file written before them
//! still loads and means what it meant (the critic decides).

use crate::arch::{ArchKind, Network, NetworkSpec};
use crate::candidates::DecisionMode;
use crate::closed_loop::ClosedLoopInfo;
use crate::error::{QnnError, Result, field};
use crate::features::FeatureScales;
use qmec_model::Scenario;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The one format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 2;

/// The scenario a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// M.
    pub devices: usize,
    /// S.
    pub servers: usize,
    /// V.
    pub v: f64,
    /// τ (s).
    pub slot_seconds: f64,
}

impl ScenarioInfo {
    /// The summary of `scenario`.
    pub fn of(scenario: &Scenario) -> ScenarioInfo {
        ScenarioInfo {
            name: scenario.name.clone(),
            devices: scenario.devices,
            servers: scenario.servers,
            v: scenario.control.v,
            slot_seconds: scenario.slot_seconds,
        }
    }
}

/// How the model was trained and how it validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    /// The loss trained on.
    pub objective: crate::train::Objective,
    /// Sizes (M, S) learnt from; empty: the scenario's own.
    pub sizes: Vec<(usize, usize)>,
    /// Epochs run.
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of initialisation, rollouts and batches.
    pub seed: u64,
    /// Mini-batch size (states).
    pub batch_size: usize,
    /// Mini-batches per epoch.
    pub batches_per_epoch: usize,
    /// Training states.
    pub train_states: usize,
    /// Final training loss (what it measures depends on the objective).
    pub final_loss: f64,
    /// Mean share of the LP optimum on held-out states.
    pub validation_mean_share: f64,
    /// 5th percentile of that share.
    pub validation_p5_share: f64,
    /// Wall-clock training time (s).
    pub seconds: f64,
}

/// The file's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// [`FORMAT_VERSION`].
    pub format_version: u64,
    /// Where it was trained.
    pub scenario: ScenarioInfo,
    /// Feature scales measured on the training states.
    pub scales: FeatureScales,
    /// Architecture, shape and parameters.
    pub network: NetworkSpec,
    /// Training record (absent for untrained models).
    pub training: Option<TrainingInfo>,
    /// Who decides each slot: the critic (default) or the network itself.
    #[serde(default)]
    pub decision: DecisionMode,
    /// Closed-loop training on top of `training`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_loop: Option<ClosedLoopInfo>,
}

impl ModelFile {
    /// The architecture.
    pub fn arch(&self) -> ArchKind {
        match self.network {
            NetworkSpec::Paper { .. } => ArchKind::Paper,
            NetworkSpec::PerLink { .. } => ArchKind::PerLink,
            NetworkSpec::Mlp { .. } => ArchKind::Mlp,
            NetworkSpec::PairMlp { .. } => ArchKind::PairMlp,
        }
    }

    /// Parses and validates JSON text (`origin` names it in errors).
    pub fn from_json(text: &str, origin: &str) -> Result<(ModelFile, Network)> {
        let json_err = |e: serde_json::Error| QnnError::Json { path: origin.into(), reason: qmec_model::excerpt::excerpt_lines(&e.to_string()) };
        let value: serde_json::Value = serde_json::from_str(text).map_err(json_err)?;
        let version = value
            .get("format_version")
            .ok_or_else(|| field("format_version", "missing (is this a qmec model file?)"))?
            .as_u64()
            .ok_or_else(|| field("format_version", "must be a non-negative integer"))?;
        if version != FORMAT_VERSION {
            return Err(QnnError::Version { found: version, supported: FORMAT_VERSION });
        }
        let file: ModelFile = serde_json::from_value(value).map_err(json_err)?;
        if !file.scales.is_valid() {
            return Err(field("scales", "every scale must be a finite positive number"));
        }
        let network = Network::from_spec(&file.network)?;
        if let NetworkSpec::Paper { devices, servers, .. } | NetworkSpec::Mlp { devices, servers, .. } = file.network
            && (devices, servers) != (file.scenario.devices, file.scenario.servers)
        {
            return Err(field(
                "network.devices",
                format!(
                    "network is sized for {devices}×{servers} but scenario records {}×{}",
                    file.scenario.devices, file.scenario.servers
                ),
            ));
        }
        Ok((file, network))
    }

    /// Reads and validates a model file.
    pub fn load(path: &Path) -> Result<(ModelFile, Network)> {
        let text = std::fs::read_to_string(path).map_err(|source| QnnError::Io { path: path.display().to_string(), source })?;
        ModelFile::from_json(&text, &path.display().to_string())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| QnnError::Json { path: "<memory>".into(), reason: e.to_string() })
    }

    /// Writes the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = self.to_json()?;
        std::fs::write(path, text + "\n").map_err(|source| QnnError::Io { path: path.display().to_string(), source })
    }

    /// Ok if the model can run on `scenario`; else a message saying why not.
    pub fn check_fits(&self, network: &Network, scenario: &Scenario) -> Result<()> {
        network.arch().fits(scenario.devices, scenario.servers).map_err(|e| match e {
            QnnError::Mismatch(why) => QnnError::Mismatch(format!(
                "model trained on scenario `{}`, used on `{}`: {why}",
                self.scenario.name, scenario.name
            )),
            other => other,
        })
    }
}
