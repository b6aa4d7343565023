//! What a testbed run is asked to do, as plain data that every layer reads
//! and none owns: the run itself ([`TestbedConfig`], its fault schedule
//! included as parsed [`Fault`]s), where its agents run ([`RuntimeKind`])
//! and how links are emulated ([`EmulationChoice`], [`LaunchOptions`]).
//! Parsing a schedule and carrying it out live in [`crate::faults`] and
//! [`crate::supervise`].

use crate::error::DeployError;
use qmec_model::Scenario;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TestbedConfig {
    /// The binary that runs `agent controller|server|device`.
    pub exe: PathBuf,
    pub scenario: String,
    pub devices: Option<usize>,
    pub servers: Option<usize>,
    pub policy: String,
    /// Fallback and deadline of an `external=ADDR` policy.
    pub external: qmec_controller::external::ExternalOptions,
    /// Model file of a trained policy (qnn, dl), as the controller sees it.
    pub model: Option<PathBuf>,
    /// The controller's `--online` (learning policies keep learning).
    pub online: bool,
    pub seed: u64,
    pub slots: u64,
    pub slot_ms: f64,
    pub report_deadline: f64,
    pub agents_per_process: usize,
    pub payload_scale: f64,
    /// Devices report each slot ahead of its announcement (`--early-reports`).
    pub early_reports: bool,
    pub out: PathBuf,
    /// Prometheus metrics: the controller serves them on this address and
    /// every other agent on the ports after it, in plan order.
    pub metrics: Option<std::net::SocketAddr>,
    /// Mutual TLS and the bearer token for every agent.
    pub security: qmec_security::SecurityConfig,
    /// Faults to inject: see [`crate::faults`].
    pub faults: Vec<Fault>,
}

impl TestbedConfig {
    /// The scenario with the run's device and server counts.
    pub fn scenario(&self) -> Result<Scenario, DeployError> {
        let mut scenario = Scenario::load(&self.scenario)?;
        scenario.devices = self.devices.unwrap_or(scenario.devices);
        scenario.servers = self.servers.unwrap_or(scenario.servers);
        scenario.validate()?;
        Ok(scenario)
    }

    /// The length of one slot.
    pub fn slot(&self) -> Duration {
        Duration::from_secs_f64(self.slot_ms / 1e3)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL; the agent's exit is then expected, not a failure.
    Kill,
    /// SIGSTOP, then SIGCONT after this many slots.
    Stop { slots: u64 },
    /// SIGKILL, then the same agent started again after this many slots.
    Restart { slots: u64 },
    /// A device agent that holds its reports (agent flag).
    Late,
    /// A server agent that delays its results (agent flag).
    Slow,
    /// Cut off from the network, then joined again after this many slots.
    Partition { slots: u64 },
}

/// One entry of a fault schedule (see [`crate::faults`] for the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// An agent process name (`server-1`, `devices-0-3`) or `device-N`.
    pub target: String,
    pub at_slot: u64,
}

/// Where the agents of a testbed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// OS processes on loopback (no link emulation).
    Local,
    /// One container per agent, from a compose file.
    Docker,
    /// A Docker Swarm stack: a service per agent, devices as one
    /// replicated service, on an overlay network (one machine or several).
    Swarm,
    /// One network namespace per agent, veth pairs to a bridge.
    Netns,
    /// Every agent's core in this process on virtual time, over a simulated
    /// network: a seed replays exactly, and a run takes only its computing.
    Virtual,
}

/// How to emulate links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EmulationChoice {
    /// tc netem where the kernel has it, else userspace.
    #[default]
    Auto,
    /// tc netem, or fail.
    Netem,
    /// The userspace emulator in the device agents.
    Userspace,
    /// Links that follow the channel shaped by the kernel (netns runtime):
    /// an HTB class per device and server link whose rate follows the
    /// channel, with netem's delay, jitter and loss under it where the
    /// kernel has netem.
    Kernel,
}

/// How the launcher runs a testbed, beyond what the run is.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    pub runtime: RuntimeKind,
    pub link_profile: Option<PathBuf>,
    pub emulation: EmulationChoice,
    /// Give up on the run (and tear it down) after this long.
    pub deadline: Duration,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small run's configuration for the tests of every module.
    pub(crate) fn config() -> TestbedConfig {
        TestbedConfig {
            exe: PathBuf::from("/usr/local/bin/qmec"),
            scenario: "paper".into(),
            devices: Some(3),
            servers: Some(2),
            policy: "lyapunov".into(),
            external: Default::default(),
            model: None,
            online: true,
            seed: 1,
            slots: 10,
            slot_ms: 100.0,
            report_deadline: 0.5,
            agents_per_process: 1,
            payload_scale: 1000.0,
            early_reports: false,
            out: PathBuf::from("runs/x"),
            metrics: None,
            security: Default::default(),
            faults: Vec::new(),
        }
    }
}
