//! `--runtime virtual`: the whole testbed in one process on virtual time.
//! The controller, server and device cores that carry the real agents run
//! here unchanged, each fed the events its tokio loop would feed it, with a
//! simulated network between them (per-link delay, jitter, loss and rate
//! from the link profile, and partitions) and the fault schedule carried out
//! on simulated agents instead of processes. Nothing waits on the wall
//! clock, so a seed replays byte for byte and a run takes only as long as
//! its computing; the records are merged into the same run folder as every
//! other runtime's.
//!
//! Why a discrete-event loop of its own rather than turmoil or tokio's
//! paused clock: the cores have no I/O, so the only thing to simulate is
//! the network between them, and one queue ordered by (time, arrival) makes
//! every run a pure function of its inputs without an async scheduler in
//! the way. What it leaves out (gRPC, HTTP/2, TLS, sockets, signals) the
//! real-process runtimes test.
//!
//! - [`queue`]: the virtual clock, one ordered queue.
//! - [`network`]: links and partitions.
//! - [`world`]: the engine: lives, faults, timers, sending.
//! - [`controller`], [`server`], [`device`]: each role's glue around its
//!   core, and [`session`]: the agents' sessions with the controller.

mod controller;
mod device;
#[cfg(test)]
mod following;
mod network;
mod queue;
mod server;
mod session;
mod world;

use crate::collect::{AgentRecords, LostAgent};
use crate::config::{Fault, FaultKind, LaunchOptions, TestbedConfig};
use crate::emulation::Emulation;
use crate::error::{DeployError, LaunchError};
use crate::faults::{self, Signal, Step};
use crate::outcome::{self, LaunchOutcome};
use controller::{ControllerNode, ControllerSetup, PolicyFactory};
use device::DeviceNode;
use server::ServerNode;
use network::{Endpoint, Network};
use qmec_controller::CoreSettings;
use qmec_device_agent::DeviceSettings;
use qmec_device_agent::records::ProcessRecords;
use qmec_linkem::LinkProfile;
use qmec_model::Scenario;
use qmec_server_agent::ServerFaults;
use std::time::{Duration, Instant};
use world::{VirtualFault, World};

/// How long the controller waits for every agent to join, as its default.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Defined with the other figures of a finished run, below every backend.
pub use crate::outcome::VirtualFigures;

/// A virtual run: its agents' records and what it cost.
#[derive(Debug)]
pub struct VirtualRun {
    pub scenario: Scenario,
    pub records: AgentRecords,
    pub figures: VirtualFigures,
}

/// The backend under the launcher: runs the testbed and writes its run
/// folder (and `virtual.json`).
pub fn launch(config: &TestbedConfig, _options: &LaunchOptions, profile: Option<&LinkProfile>) -> Result<LaunchOutcome, LaunchError> {
    let emulation = if profile.is_some_and(|p| !p.is_noop()) { Emulation::Simulated } else { Emulation::Off };
    let out = crate::run_folder::prepare_out(&config.out, profile, &emulation)?;
    let mut run = run(config, profile)?;
    let mut outcome = outcome::summarise(config, run.scenario, &mut run.records);
    // Every agent ran in this one process: no CPU or memory per agent was
    // measured (what the run cost is in `virtual.json`).
    outcome.merged.figures.processes.clear();
    outcome::write(&out, &outcome, &run.records)?;
    let path = out.join("virtual.json");
    let json = serde_json::to_string_pretty(&run.figures).unwrap_or_default();
    std::fs::write(&path, json).map_err(|source| DeployError::Io { path, source })?;
    Ok(LaunchOutcome { outcome, emulation, virtual_time: Some(run.figures) })
}

/// Runs the testbed of `config` on virtual time, with `profile` on its
/// links, and returns every agent's records (nothing is written).
pub fn run(config: &TestbedConfig, profile: Option<&LinkProfile>) -> Result<VirtualRun, DeployError> {
    if qmec_controller::external::address(&config.policy).is_some() {
        // A service on the wall clock cannot answer within a deadline on
        // virtual time, and its answers would not replay from a seed.
        return Err(DeployError::Virtual(format!(
            "--policy {}: the virtual runtime cannot call out to a policy service (its slots run on virtual time); use --runtime local, docker or netns",
            config.policy
        )));
    }
    let scenario = config.scenario()?;
    let slot = config.slot();
    let names = crate::plan::names(config, scenario.devices, scenario.servers);
    let schedule = schedule(&config.faults, &names, slot, scenario.devices)?;
    let network = Network::new(profile.cloned(), scenario.servers, scenario.devices);
    let controller = ControllerNode::new(controller_setup(config, &scenario, slot));
    let servers = (0..scenario.servers).map(|s| ServerNode::new(s, server_faults(config, &names, s, slot))).collect();
    let to_device = network.base_delay(Endpoint::Controller, Endpoint::Device(0));
    let devices = (0..scenario.devices)
        .map(|d| {
            let settings = device_settings(config, &names, d, slot, to_device);
            DeviceNode::new(d, scenario.servers, settings, config.payload_scale, network.followed_links(d, config.payload_scale))
        })
        .collect();
    let mut world = World::new(network, controller, servers, devices, config.seed, schedule);
    let started = Instant::now();
    // Far beyond any run that makes progress: joining, every slot, draining.
    let limit = JOIN_TIMEOUT * 2 + slot * (config.slots as u32).saturating_add(1000) + Duration::from_secs(60);
    let ended = world.run(limit);
    let figures = VirtualFigures { virtual_s: world.now.as_secs_f64(), wall_s: started.elapsed().as_secs_f64(), events: world.events() };
    if let Some(error) = &world.controller.policy_error {
        return Err(DeployError::Virtual(format!("the controller's policy: {error}")));
    }
    if let Err(at) = ended {
        return Err(DeployError::Virtual(format!("the run made no end by {:.1} s of virtual time", at.as_secs_f64())));
    }
    let records = records(&mut world, config, &names, &crate::plan::device_processes(config, scenario.devices))?;
    Ok(VirtualRun { scenario, records, figures })
}

fn controller_setup(config: &TestbedConfig, scenario: &Scenario, slot: Duration) -> ControllerSetup {
    let settings = CoreSettings {
        scenario: scenario.clone(),
        seed: config.seed,
        slots: config.slots,
        slot_wall: slot,
        report_deadline: config.report_deadline,
        join_timeout: JOIN_TIMEOUT,
    };
    let run_digest = qmec_proto::validate::run_digest(&settings.setup());
    let spec = qmec_catalog::PolicySpec { name: config.policy.clone(), model: config.model.clone(), online: None };
    // Learning happens inside the decide call, so a seed replays.
    let spec = if config.online {
        spec.learning(qmec_catalog::OnlineSpec { execution: qmec_catalog::Execution::Inline, learn: true, checkpoints: None })
    } else {
        spec
    };
    let (scenario, seed) = (scenario.clone(), config.seed);
    let policy: PolicyFactory = Box::new(move || qmec_catalog::build(&spec, &scenario, seed).map_err(|e| e.to_string()));
    ControllerSetup { settings, policy, run_digest }
}

/// The agents a fault's target names.
fn endpoints(agent: &str, names: &[String], devices: usize) -> Vec<Endpoint> {
    if agent == "controller" {
        return vec![Endpoint::Controller];
    }
    if let Some(server) = agent.strip_prefix("server-").and_then(|s| s.parse().ok()) {
        return vec![Endpoint::Server(server)];
    }
    (0..devices)
        .filter(|&d| faults::resolve(&format!("device-{d}"), names).as_deref() == Some(agent))
        .map(Endpoint::Device)
        .collect()
}

/// The fault schedule as the virtual runtime carries it out, by offset from
/// the run's start.
/// A controller killed with no restart to come leaves nobody to end the
/// run: every other agent is asked to stop then, as the process launchers
/// do with SIGTERM.
fn schedule(faults: &[Fault], names: &[String], slot: Duration, devices: usize) -> Result<Vec<(Duration, VirtualFault)>, DeployError> {
    let mut schedule = Vec::new();
    let actions = faults::actions(faults, names, slot)?;
    for (i, action) in actions.iter().enumerate() {
        let agents = endpoints(&action.agent, names, devices);
        let restarted_later = actions[i..].iter().any(|a| a.agent == action.agent && a.step == Step::Start);
        if action.step == Step::Send(Signal::Kill) && agents == [Endpoint::Controller] && !restarted_later {
            let others = (0..names.len()).flat_map(|i| endpoints(&names[i], names, devices));
            schedule.push((action.after, VirtualFault::Shutdown(others.filter(|&who| who != Endpoint::Controller).collect())));
        }
        let fault = match action.step {
            Step::Send(Signal::Kill) => VirtualFault::Kill(agents),
            Step::Send(Signal::Stop) => VirtualFault::Stop(agents),
            Step::Send(Signal::Cont) => VirtualFault::Continue(agents),
            Step::Start => VirtualFault::StartController,
            Step::Cut { slots } => VirtualFault::Partition { agents, slots: slot * slots as u32 },
            // The virtual network heals a cut by itself at its end.
            Step::Heal => continue,
        };
        schedule.push((action.after, fault));
    }
    Ok(schedule)
}

/// The `late` fault of device `device`, if it has one.
fn device_settings(config: &TestbedConfig, names: &[String], device: usize, slot: Duration, to_device: Duration) -> DeviceSettings {
    let late = config.faults.iter().find(|f| {
        f.kind == FaultKind::Late && faults::resolve(&f.target, names) == faults::resolve(&format!("device-{device}"), names)
    });
    DeviceSettings {
        tx_fraction: qmec_device_agent::DEFAULT_TX_FRACTION,
        early_reports: config.early_reports,
        report_delay: late.map_or(Duration::ZERO, |_| slot.mul_f64(faults::LATE_REPORT_SLOTS)),
        report_delay_from: late.map_or(0, |f| f.at_slot),
        announce_delay: to_device,
    }
}

/// The `slow` fault of server `server`, if it has one.
fn server_faults(config: &TestbedConfig, names: &[String], server: usize, slot: Duration) -> ServerFaults {
    let name = crate::plan::server_name(server);
    let slow = config.faults.iter().find(|f| f.kind == FaultKind::Slow && faults::resolve(&f.target, names).as_deref() == Some(&name));
    ServerFaults {
        result_delay: slow.map_or(Duration::ZERO, |_| slot.mul_f64(faults::SLOW_RESULT_SLOTS)),
        result_delay_from: slow.map_or(0, |f| f.at_slot),
    }
}

/// Every agent's records, grouped into processes as the real launch would.
/// An agent `config`'s faults killed for good is lost at the slot they
/// name: a server's records are empty, a device process's are missing, and
/// the controller's are its journal's slots.
fn records(world: &mut World, config: &TestbedConfig, names: &[String], processes: &[std::ops::Range<usize>]) -> Result<AgentRecords, DeployError> {
    let dead = |world: &World, who: Endpoint| world.life(who) == world::Life::Dead;
    let controller = match world.controller.take_outcome() {
        Some(outcome) => outcome.map_err(|error| DeployError::Virtual(format!("the controller: {error}")))?,
        None if dead(world, Endpoint::Controller) => world.controller.journaled(),
        None => return Err(DeployError::Virtual("the controller did not finish the run".into())),
    };
    let mut records = AgentRecords { controller, ..AgentRecords::default() };
    for (s, server) in world.servers.iter().enumerate() {
        match server.records().filter(|_| !dead(world, Endpoint::Server(s))) {
            Some(server_records) => records.servers.push(server_records),
            None => records.servers.push(qmec_server_agent::records::ServerRecords { server: s, ..Default::default() }),
        }
    }
    for process in processes.iter().filter(|&p| !p.clone().any(|d| dead(world, Endpoint::Device(d)))) {
        let devices = process.clone().filter_map(|d| world.devices.get(d).and_then(DeviceNode::records)).collect();
        records.device_processes.push(ProcessRecords { devices, ..Default::default() });
    }
    // The simulated network is one for the run: its links' figures go
    // with the first process.
    if let Some(first) = records.device_processes.first_mut() {
        first.link_measurements = world.network.link_measurements();
    }
    for fault in config.faults.iter().filter(|f| f.kind == FaultKind::Kill) {
        let name = faults::resolve(&fault.target, names).unwrap_or_else(|| fault.target.clone());
        let cause = "killed by the fault schedule".to_string();
        records.lost_agents.push(LostAgent { name, slot: fault.at_slot, cause, planned: true, log_tail: String::new() });
    }
    Ok(records)
}
