//! Server agent settings, from flags or a TOML file (`--config`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerAgentConfig {
    /// This server's index s.
    pub id: usize,
    /// The controller's gRPC endpoint, e.g. `http://127.0.0.1:4000`.
    pub controller: String,
    /// gRPC listen address for the Offload service; port 0 picks a free one.
    pub listen: String,
    /// The endpoint devices should use; by default `http://` + the bound address.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Burn this many real CPU loop iterations per modelled bit computed
    /// (0: modelled time only).
    #[serde(default)]
    pub burn_per_bit: f64,
    #[serde(default)]
    pub records: Option<PathBuf>,
    /// Mutual TLS and the bearer token (off by default).
    #[serde(default)]
    pub security: qmec_security::SecurityConfig,
    /// Fault injection: after computing each slot from
    /// `result_delay_from` on, wait this long before returning its results
    /// and reporting (a server that answers slowly). 0: none.
    #[serde(default)]
    pub result_delay_ms: f64,
    #[serde(default)]
    pub result_delay_from: u64,
    /// Prometheus metrics address (e.g. `127.0.0.1:9102`); none disables it.
    #[serde(default)]
    pub metrics: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Read every setting from this TOML file (a ServerAgentConfig) instead.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub id: usize,
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub controller: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    #[arg(long)]
    pub advertise: Option<String>,
    #[arg(long, default_value_t = 0.0)]
    pub burn_per_bit: f64,
    #[arg(long)]
    pub records: Option<PathBuf>,
    #[command(flatten)]
    pub security: qmec_security::SecurityArgs,
    /// Fault injection: delay each slot's results (and the report after
    /// them) by this many ms.
    #[arg(long, default_value_t = 0.0)]
    pub result_delay_ms: f64,
    /// First slot whose results are delayed.
    #[arg(long, default_value_t = 0)]
    pub result_delay_from: u64,
    /// Serve Prometheus metrics on this address.
    #[arg(long)]
    pub metrics: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] qmec_proto::config_file::ConfigFileError),
    #[error("`{field}` must be finite and ≥ 0, got {value}")]
    Negative { field: &'static str, value: f64 },
}

impl Args {
    pub fn into_config(self) -> Result<ServerAgentConfig, ConfigError> {
        let config = match &self.config {
            Some(path) => qmec_proto::config_file::read_toml(path)?,
            None => ServerAgentConfig {
                id: self.id,
                controller: self.controller,
                listen: self.listen,
                advertise: self.advertise,
                burn_per_bit: self.burn_per_bit,
                records: self.records,
                security: self.security.into(),
                result_delay_ms: self.result_delay_ms,
                result_delay_from: self.result_delay_from,
                metrics: self.metrics,
            },
        };
        for (field, value) in [("result_delay_ms", config.result_delay_ms), ("burn_per_bit", config.burn_per_bit)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ConfigError::Negative { field, value });
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: Args,
    }

    fn config(flags: &[&str]) -> Result<ServerAgentConfig, ConfigError> {
        Command::try_parse_from(std::iter::once("server").chain(flags.iter().copied())).unwrap().args.into_config()
    }

    #[test]
    fn a_negative_delay_or_burn_is_refused_by_name() {
        assert!(config(&[]).is_ok());
        for (flag, field) in [("--result-delay-ms=-1", "result_delay_ms"), ("--burn-per-bit=-0.5", "burn_per_bit")] {
            let error = config(&[flag]).unwrap_err().to_string();
            assert!(error.starts_with(&format!("`{field}` must be finite and ≥ 0")), "{error}");
        }
    }
}
