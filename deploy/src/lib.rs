//! Testbed deployment: start a controller, S server agents and M device
//! agents, wait for the run, gather every agent's records and write the same
//! run folder as `qmec simulate`, plus the testbed-only figures.
//!
//! # Layout
//! Layers, bottom to top; a module imports only from layers below it (or,
//! within a layer, from the modules listed before it), so there are no
//! import circles.
//! 1. `error` (every error type: a layer wraps the ones below without
//!    importing their modules) and `config` (what a run is asked to do:
//!    [`TestbedConfig`], the parsed fault schedule, [`RuntimeKind`],
//!    [`LaunchOptions`]).
//! 2. `shell` (external commands with time limits), `runtime` (the seam
//!    where an agent process starts), [`faults`] (parsing a schedule, its
//!    timed actions and agent flags, sending signals) and `collect`
//!    (merging agents' records into slot and task records and the figures).
//! 3. `plan`: which agents a run has and every agent's arguments (security
//!    and fault flags included), for every runtime; only the addressing
//!    differs.
//! 4. The run folder and emulation: `emulation` (tc netem or userspace,
//!    per run), `run_folder` (created before the agents start, with the
//!    security files), `outcome` (records read from it after the run,
//!    merged and written back); and what only some backends use: `compose`
//!    and [`image`] (containers), [`k8s`] (manifests for several machines).
//! 5. `supervise`: watching a running testbed and carrying out the fault
//!    schedule, for every backend.
//! 6. The backends, none of which imports another: `local` (loopback
//!    processes), `docker` (containers), `netns` (network namespaces),
//!    `swarm` (a Docker Swarm stack).
//!    Each has `run(config, options, profile) -> LaunchOutcome`.
//!    [`virtual_runtime`] runs every agent's core in this process on
//!    virtual time over a simulated network.
//! 7. `launch`: the only module that knows every backend; it dispatches on
//!    [`RuntimeKind`]. Beside it, [`soak`]: random fault schedules and the
//!    verdicts a run under them must pass, whatever runs it.
//!
//! Modules are private unless another crate uses them ([`faults`],
//! [`image`], [`k8s`], [`soak`], [`virtual_runtime`]); what the CLI and tests need
//! is re-exported here.
//!
//! # Adding a backend
//! A module beside the others whose entry point takes
//! `(config: &TestbedConfig, options: &LaunchOptions, profile:
//! Option<&LinkProfile>)` and returns `Result<LaunchOutcome, LaunchError>`
//! (`run`, async, for the process backends; [`virtual_runtime`]'s
//! `launch` is synchronous), a [`RuntimeKind`] variant and its arm in
//! `launch::run`. It builds on the layers below only: `run_folder::prepare`
//! (or `prepare_out`) for the run folder, `plan::agents` or `plan::names`
//! for the agents, `faults::actions` for the schedule, and last
//! `outcome::finish` (its agents wrote `records/NAME.json`) or
//! `outcome::summarise` and `outcome::write` (it holds the records in
//! memory as `collect::AgentRecords`), which merge them and write the run
//! folder.

#![forbid(unsafe_code)]

mod collect;
mod compose;
mod config;
mod docker;
mod emulation;
mod error;
pub mod faults;
pub mod image;
pub mod k8s;
mod launch;
mod local;
mod netns;
mod outcome;
mod plan;
mod run_folder;
mod runtime;
mod shell;
pub mod soak;
mod supervise;
mod swarm;
pub mod virtual_runtime;

pub use collect::{BitConservation, FallbackFigures, MAX_POLICY_FAILED_SHARE, Merged, Percentiles, ProcessFigures, TestbedFigures};
pub use config::{EmulationChoice, Fault, FaultKind, LaunchOptions, RuntimeKind, TestbedConfig};
pub use docker::compose_yaml;
pub use emulation::Emulation;
pub use error::{DeployError, EngineError, FaultError, LaunchError, RuntimeError, ShellError};
pub use launch::run;
pub use local::run_local;
pub use outcome::{LaunchOutcome, TestbedOutcome, figures_table, policy_failures, summarise};
