//! The subcommands of `qmec`.

mod agent;
mod certs;
mod compare;
mod deploy;
mod evaluate;
mod experiment;
mod export_qasm;
mod image;
mod mobility;
mod qubo;
mod scenario;
mod simulate;
mod soak;
mod testbed;
mod train;
mod train_closed_loop;

use anyhow::{Context, Result};
use qmec_catalog::PolicySpec;
use clap::{Parser, Subcommand};
use qmec_model::{Policy, Scenario};

#[derive(Debug, Parser)]
#[command(name = "qmec", version, about = "Lyapunov-stabilised MEC offloading: simulate, compare, deploy")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one policy in the in-process simulator and write a run folder.
    Simulate(simulate::Args),
    /// Run several policies on the same random streams and print one table.
    Compare(compare::Args),
    /// Each policy's share of the exact per-slot optimum and its decision time, per size, on held-out states.
    Evaluate(evaluate::Args),
    /// Reproduce the papers' comparisons: plots, CSV and a claim-by-claim report.
    Experiment(experiment::Args),
    /// A mobile scenario's device trajectories and best servers over a run, drawn.
    Mobility(mobility::Args),
    /// AIGC server selection as a QUBO: solvers side by side, benchmarks, baselines.
    Qubo(qubo::Args),
    /// Show built-in scenarios.
    #[command(subcommand)]
    Scenario(scenario::Command),
    /// Train a learned policy (QNN or MLP) on the drift-plus-penalty loss.
    Train(train::Args),
    /// Tune a trained per-link QNN in closed loop on p99 latency and transmit power (evolution strategies).
    TrainClosedLoop(train_closed_loop::Args),
    /// Write a trained circuit as OpenQASM 3.
    ExportQasm(export_qasm::Args),
    /// A multi-process testbed (local processes, containers or namespaces): controller, server and device agents over gRPC.
    Testbed(testbed::Args),
    /// Random fault schedules drawn from a seed, each over a short testbed run, judged for conservation and recovery.
    Soak(soak::Args),
    /// Write a CA, per-agent certificates and a token for mutual TLS.
    Certs(certs::Args),
    /// Run one testbed agent (what `testbed` spawns; also for multi-machine testbeds).
    #[command(subcommand)]
    Agent(agent::Command),
    /// Container images built with no registry pull.
    #[command(subcommand)]
    Image(image::Command),
    /// Deployment files for testbeds over several machines.
    #[command(subcommand)]
    Deploy(deploy::Command),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Simulate(args) => simulate::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Mobility(args) => mobility::run(args),
        Command::Qubo(args) => qubo::run(args),
        Command::Scenario(command) => scenario::run(command),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Experiment(args) => experiment::run_command(args),
        Command::Train(args) => train::run(args),
        Command::TrainClosedLoop(args) => train_closed_loop::run(args),
        Command::ExportQasm(args) => export_qasm::run(args),
        Command::Testbed(args) => testbed::run(args),
        Command::Soak(args) => soak::run(args),
        Command::Agent(command) => agent::run(command),
        Command::Certs(args) => certs::run(args),
        Command::Image(command) => image::run(command),
        Command::Deploy(command) => deploy::run(command),
    }
}

/// A built-in scenario name or a TOML file.
fn load_scenario(name_or_path: &str) -> Result<Scenario> {
    Scenario::load(name_or_path).with_context(|| format!("loading scenario `{}`", qmec_model::excerpt::excerpt(name_or_path)))
}

/// `spec` learning online when `on`, for the policies that can: in-line
/// at fixed slots (reproducible runs), model files in `run_folder`.
fn online(spec: PolicySpec, on: bool, run_folder: Option<&std::path::Path>) -> PolicySpec {
    if !on {
        return spec;
    }
    let checkpoints = run_folder.map(std::path::Path::to_path_buf);
    spec.learning(qmec_catalog::OnlineSpec { execution: qmec_catalog::Execution::Inline, learn: true, checkpoints })
}

/// A policy by name (and model file, for trained ones).
fn make_policy(spec: &PolicySpec, scenario: &Scenario, seed: u64) -> Result<Box<dyn Policy>> {
    Ok(qmec_catalog::build(spec, scenario, seed)?)
}
