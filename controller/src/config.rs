//! Controller settings. The same [`Args`] serve `qmec agent controller` and
//! the standalone `qmec-controller` binary; `--config FILE` reads a TOML
//! [`ControllerConfig`] instead, for testbeds spread over machines.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Everything the controller needs for one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Built-in scenario name or TOML file.
    pub scenario: String,
    /// Overrides the scenario's device count (benchmarks).
    #[serde(default)]
    pub devices: Option<usize>,
    /// Overrides the scenario's server count.
    #[serde(default)]
    pub servers: Option<usize>,
    pub policy: String,
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Whether a policy that can learn online does (`qnn`: on by default),
    /// on a worker thread, with model files beside the records.
    #[serde(default = "learn_online")]
    pub online: bool,
    pub seed: u64,
    pub slots: u64,
    /// Wall-clock slot length in milliseconds (independent of τ).
    pub slot_ms: f64,
    /// Reports are awaited until this share of the slot has passed.
    pub report_deadline: f64,
    /// gRPC listen address; port 0 picks a free one (printed on stdout).
    pub listen: String,
    /// Prometheus metrics address; none disables it.
    #[serde(default)]
    pub metrics: Option<String>,
    /// How long to wait for every agent to join, in seconds.
    pub join_timeout_s: f64,
    /// Where to write the controller's records (JSON) at shutdown.
    #[serde(default)]
    pub records: Option<PathBuf>,
    /// Mutual TLS and the bearer token (off by default).
    #[serde(default)]
    pub security: qmec_security::SecurityConfig,
    /// With `policy = "external=ADDR"`: the built-in that decides a slot
    /// the service did not (late, failed, infeasible).
    #[serde(default = "default_fallback")]
    pub external_fallback: String,
    /// With an external policy: the share of the slot's wall time the
    /// service gets to answer.
    #[serde(default = "default_external_deadline")]
    pub external_deadline: f64,
}

fn learn_online() -> bool {
    true
}

fn default_fallback() -> String {
    crate::external::DEFAULT_FALLBACK.into()
}

fn default_external_deadline() -> f64 {
    crate::external::DEFAULT_DEADLINE
}

impl ControllerConfig {
    pub fn slot_wall(&self) -> Duration {
        Duration::from_secs_f64(self.slot_ms.max(0.01) / 1e3)
    }

    /// How long an external policy service gets each slot.
    pub fn external_deadline(&self) -> Duration {
        self.slot_wall().mul_f64(self.external_deadline)
    }
}

/// Flags of the controller.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Read every setting from this TOML file (a ControllerConfig) instead.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value = "paper")]
    pub scenario: String,
    #[arg(long)]
    pub devices: Option<usize>,
    #[arg(long)]
    pub servers: Option<usize>,
    /// Policy by name; `qnn` (the default) runs the shipped model unless
    /// --model names another; `external=http://HOST:PORT` asks a policy
    /// service (qmec.policy.v1) each slot.
    #[arg(long, default_value = qmec_catalog::DEFAULT_POLICY)]
    pub policy: String,
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Online learning for policies that can (`--online false` freezes them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub online: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1000)]
    pub slots: u64,
    #[arg(long, default_value_t = 10.0)]
    pub slot_ms: f64,
    /// Share of the slot after which missing reports count as late.
    #[arg(long, default_value_t = 0.5)]
    pub report_deadline: f64,
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    #[arg(long)]
    pub metrics: Option<String>,
    #[arg(long, default_value_t = 60.0)]
    pub join_timeout_s: f64,
    #[arg(long)]
    pub records: Option<PathBuf>,
    #[command(flatten)]
    pub security: qmec_security::SecurityArgs,
    /// With --policy external=ADDR: the built-in policy that decides each
    /// slot the service answered late, failed or infeasibly.
    #[arg(long, default_value = crate::external::DEFAULT_FALLBACK)]
    pub external_fallback: String,
    /// With --policy external=ADDR: the share of the slot's wall time the
    /// service gets to answer.
    #[arg(long, default_value_t = crate::external::DEFAULT_DEADLINE)]
    pub external_deadline: f64,
}

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] qmec_proto::config_file::ConfigFileError),
    #[error("`{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl Args {
    pub fn into_config(self) -> Result<ControllerConfig, ConfigError> {
        let config = match &self.config {
            Some(path) => qmec_proto::config_file::read_toml(path)?,
            None => ControllerConfig {
                scenario: self.scenario,
                devices: self.devices,
                servers: self.servers,
                policy: self.policy,
                model: self.model,
                online: self.online,
                seed: self.seed,
                slots: self.slots,
                slot_ms: self.slot_ms,
                report_deadline: self.report_deadline,
                listen: self.listen,
                metrics: self.metrics,
                join_timeout_s: self.join_timeout_s,
                records: self.records,
                security: self.security.into(),
                external_fallback: self.external_fallback,
                external_deadline: self.external_deadline,
            },
        };
        if !(config.slot_ms.is_finite() && config.slot_ms >= 0.1) {
            return Err(ConfigError::Invalid { field: "slot_ms", reason: format!("must be ≥ 0.1, got {}", config.slot_ms) });
        }
        if !(config.report_deadline > 0.0 && config.report_deadline <= 1.0) {
            return Err(ConfigError::Invalid {
                field: "report_deadline",
                reason: format!("must be in (0, 1], got {}", config.report_deadline),
            });
        }
        if !(config.external_deadline > 0.0 && config.external_deadline <= 1.0) {
            return Err(ConfigError::Invalid {
                field: "external_deadline",
                reason: format!("must be a share of the slot in (0, 1], got {}", config.external_deadline),
            });
        }
        if !(config.join_timeout_s.is_finite() && config.join_timeout_s > 0.0) {
            return Err(ConfigError::Invalid { field: "join_timeout_s", reason: "must be > 0".into() });
        }
        Ok(config)
    }
}
