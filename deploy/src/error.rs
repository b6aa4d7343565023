//! Every error of a testbed launch, in one module at the bottom of the
//! crate, so that each layer can return its own kind and wrap the ones
//! below without importing the module that raised them: [`ShellError`]
//! (external commands), [`RuntimeError`] (starting an agent),
//! [`EngineError`] (a swarm task the engine did not start),
//! [`FaultError`] (a fault schedule), [`DeployError`] (a run on any
//! runtime) and [`LaunchError`] (what the launcher returns, with the link
//! emulation and the container and namespace set-up on top).

use std::path::PathBuf;
use std::time::Duration;

/// An external command (`docker`, `ip`, `tc`, …) that failed.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error("`{command}` could not start: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("`{command}` took longer than {limit:?}")]
    Timeout { command: String, limit: Duration },
}

/// An agent that could not be started or said nothing it was asked for.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("starting {name}: {source}")]
    Spawn { name: String, source: std::io::Error },
    #[error("{name} closed its output before printing `{prefix}`")]
    NoLine { name: String, prefix: String },
}

/// A fault schedule entry that does not parse or names no agent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("fault `{entry}`: {reason} (expected kill:NAME@SLOT, stop:NAME@SLOT+SLOTS, restart:controller@SLOT+SLOTS, late:device-N@SLOT, slow:server-N@SLOT or partition:NAME@SLOT+SLOTS)")]
pub struct FaultError {
    pub entry: String,
    pub reason: String,
}

/// A testbed run that failed, whatever runs its agents.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{name} failed ({status}); last log lines:\n{tail}")]
    Crashed { name: String, status: String, tail: String },
    /// The records could not be read, and agents died: their causes are
    /// most likely why.
    #[error("{records}\n{losses}")]
    AfterLosses { records: Box<DeployError>, losses: String },
    #[error("interrupted (Ctrl-C); every agent was stopped")]
    Interrupted,
    #[error("scenario: {0}")]
    Scenario(#[from] qmec_model::ScenarioError),
    #[error("reading records {path}: {message}")]
    Records { path: PathBuf, message: String },
    #[error("writing the run folder: {0}")]
    Output(#[from] qmec_sim::output::OutputError),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Fault(#[from] FaultError),
    #[error("injecting a fault into {name}: {source}")]
    Signal { name: String, source: std::io::Error },
    #[error("--metrics {addr}: {reason}")]
    Metrics { addr: std::net::SocketAddr, reason: String },
    #[error("the run did not finish within {0:?}; everything was torn down")]
    Deadline(Duration),
    #[error("virtual run: {0}")]
    Virtual(String),
    #[error("writing the compose file: {0}")]
    Compose(#[from] serde_yaml::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A swarm task the engine did not start, with what the engine said.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error("the engine did not start {task}: {why}\n{diagnostics}")]
    NotStarted { task: String, why: String, diagnostics: String },
}

/// What the launcher returns: a failed run, or a runtime or link emulation
/// this host cannot provide.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error(transparent)]
    Profile(#[from] qmec_linkem::ProfileError),
    #[error("--emulation netem, but this kernel has no netem: {0}")]
    NoNetem(String),
    #[error("--emulation netem, but the link profile has a schedule ([[device.schedule]] or [[server.schedule]]): only the userspace emulator changes links during a run")]
    NetemSchedule,
    #[error("--emulation netem, but the link profile follows the modelled channel ([device.follow_channel]): a netem qdisc shapes an agent's whole interface, not each device's link to each server; --emulation kernel (HTB per link) or userspace follows it")]
    NetemFollow,
    #[error("--emulation kernel shapes links that follow the modelled channel only: {0}")]
    KernelProfile(&'static str),
    #[error("--emulation kernel runs on --runtime netns only (it shapes each device process's own interface)")]
    KernelRuntime,
    #[error("{0}")]
    Unavailable(String),
    #[error("building the image: {0}")]
    Image(String),
}
