//! A testbed on loopback: the controller, S server agents and the device
//! agents (`agents_per_process` per OS process) started as child processes
//! on ports the kernel picks, supervised until the run is over (with the
//! fault schedule), and torn down on completion, on Ctrl-C and when any
//! child exits with an error (reported with the tail of its log). Then the
//! records are merged and the run folder written. Like every backend it
//! builds on the layers below (plan, run folder, supervision, outcome) and
//! knows no other backend.

use crate::config::{LaunchOptions, TestbedConfig};
use crate::emulation::Emulation;
use crate::error::{DeployError, LaunchError};
use crate::faults;
use crate::outcome::{self, LaunchOutcome, TestbedOutcome};
use crate::plan::{self, Addressing, AgentPlan, Role};
use crate::run_folder;
use crate::runtime::{LocalProcesses, Runtime};
use crate::supervise::{self, JOIN_LIMIT, Schedule};
use qmec_linkem::LinkProfile;

/// The local backend under the launcher: no link can be emulated, since
/// every agent shares loopback. The options' deadline is not applied here
/// (the run ends with its agents or on Ctrl-C), as before the launcher.
pub async fn run(
    config: &TestbedConfig,
    _options: &LaunchOptions,
    profile: Option<&LinkProfile>,
) -> Result<LaunchOutcome, LaunchError> {
    if profile.is_some() {
        return Err(LaunchError::Unavailable(
            "--link-profile needs --runtime docker or netns (each agent needs its own link)".into(),
        ));
    }
    let outcome = run_local(config).await?;
    Ok(LaunchOutcome { outcome, emulation: Emulation::Off, virtual_time: None })
}

/// Runs a whole testbed and writes its run folder.
pub async fn run_local(config: &TestbedConfig) -> Result<TestbedOutcome, DeployError> {
    let scenario = config.scenario()?;
    let (devices, servers) = (scenario.devices, scenario.servers);
    let out = run_folder::prepare_out(&config.out, None, &Emulation::Off)?;
    let mut at = Addressing::loopback(out.display().to_string());
    at.security = run_folder::security_args(config, &out, None)?;
    let mut runtime = LocalProcesses { exe: config.exe.clone(), logs: out.join("logs") };
    // Every fault must name an agent of this run.
    let actions = faults::actions(&config.faults, &plan::names(config, devices, servers), config.slot())?;

    // The controller first, on a port the kernel picks; everyone else is
    // planned once its address is known.
    let mut agents = Vec::new();
    let mut controller = runtime.start("controller", &plan::agents(config, devices, servers, &at)?[0].args)?;
    let controller_addr = controller.listening().await?;
    agents.push(controller);
    at.controller_uri = format!("http://{controller_addr}");
    let mut plans = plan::agents(config, devices, servers, &at)?;
    // A restarted controller must come back where the agents look for it.
    set_flag(&mut plans[0], "--listen", &controller_addr);
    for plan in &plans[1..] {
        let mut agent = runtime.start(&plan.name, &plan.args)?;
        if matches!(plan.role, Role::Server(_)) {
            agent.listening().await?;
        }
        agents.push(agent);
    }
    supervise::wait_for_run_start(&mut agents, JOIN_LIMIT).await?;
    let mut start_again = supervise::start_again(&plans, |log, i| supervise::at_once(runtime.start(log, &plans[i].args).map_err(Into::into)));
    // Dropping `agents` on any error kills every child.
    let schedule = Schedule { actions, start_again: &mut start_again, links: None, deadline: None, slot: config.slot() };
    let lost = supervise::supervise(&mut agents, schedule).await?;
    drop(agents);
    outcome::finish(config, scenario, &out, &plans, lost)
}

/// Sets the value after `flag` in `plan`'s arguments.
fn set_flag(plan: &mut AgentPlan, flag: &str, value: &str) {
    if let Some(at) = plan.args.iter().position(|a| a == flag)
        && let Some(slot) = plan.args.get_mut(at + 1)
    {
        *slot = value.to_string();
    }
}
