//! The launcher, on top of every backend and the only module that knows
//! them all: it loads the link profile and sends the run to the backend
//! that [`RuntimeKind`] names. Each backend (`local`, `docker`, `netns`)
//! has the same entry point, `run(config, options, profile)`, and imports
//! no other backend; a new one adds its `RuntimeKind` variant and one arm
//! here.

use crate::config::{EmulationChoice, FaultKind, LaunchOptions, RuntimeKind, TestbedConfig};
use crate::error::{DeployError, FaultError, LaunchError};
use crate::outcome::LaunchOutcome;
use crate::{docker, local, netns, swarm, virtual_runtime};
use qmec_linkem::LinkProfile;

/// Runs a testbed on the runtime `options` names and writes its run folder.
pub async fn run(config: &TestbedConfig, options: &LaunchOptions) -> Result<LaunchOutcome, LaunchError> {
    let profile = options.link_profile.as_deref().map(LinkProfile::load).transpose()?;
    let profile = profile.as_ref();
    refuse_unsupported(config, options.runtime).map_err(DeployError::from)?;
    refuse_faults_beyond_the_run(config).map_err(DeployError::from)?;
    if options.emulation == EmulationChoice::Kernel && options.runtime != RuntimeKind::Netns {
        return Err(LaunchError::KernelRuntime);
    }
    match options.runtime {
        RuntimeKind::Local => local::run(config, options, profile).await,
        RuntimeKind::Netns => netns::run(config, options, profile).await,
        RuntimeKind::Docker => docker::run(config, options, profile).await,
        RuntimeKind::Swarm => swarm::run(config, options, profile).await,
        RuntimeKind::Virtual => virtual_runtime::launch(config, options, profile),
    }
}

/// A fault at a slot the run never reaches would silently not happen.
fn refuse_faults_beyond_the_run(config: &TestbedConfig) -> Result<(), FaultError> {
    match config.faults.iter().find(|f| f.at_slot >= config.slots) {
        Some(fault) => Err(FaultError {
            entry: format!("{}@{}", fault.target, fault.at_slot),
            reason: format!("slot {} is beyond the run's {} slots (0..{})", fault.at_slot, config.slots, config.slots),
        }),
        None => Ok(()),
    }
}

/// Partitions need a network of the agents' own: local agents share
/// loopback, so a partition there is refused by name before anything starts.
fn refuse_unsupported(config: &TestbedConfig, runtime: RuntimeKind) -> Result<(), FaultError> {
    match config.faults.iter().find(|f| matches!(f.kind, FaultKind::Partition { .. })) {
        Some(fault) if runtime == RuntimeKind::Local => Err(FaultError {
            entry: format!("partition:{}", fault.target),
            reason: "local agents share loopback; partitions run on --runtime netns, docker or virtual".into(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_beyond_the_run_and_partitions_on_the_local_runtime_are_refused() {
        let mut config = crate::config::tests::config();
        config.faults = crate::faults::parse("kill:server-1@10").expect("valid");
        let error = refuse_faults_beyond_the_run(&config).expect_err("slot 10 of 10 slots");
        assert_eq!(error.reason, "slot 10 is beyond the run's 10 slots (0..10)");
        config.faults = crate::faults::parse("kill:server-1@9,partition:server-0@2+3").expect("valid");
        assert!(refuse_faults_beyond_the_run(&config).is_ok());
        assert!(refuse_unsupported(&config, RuntimeKind::Virtual).is_ok());
        assert!(refuse_unsupported(&config, RuntimeKind::Netns).is_ok());
        assert_eq!(refuse_unsupported(&config, RuntimeKind::Local).expect_err("local").entry, "partition:server-0");
    }
}
