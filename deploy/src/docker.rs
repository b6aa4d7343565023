//! A testbed in containers: the image built with no pull, the compose file
//! generated into the run folder, containers created with
//! `docker-compose up --no-start` and started one by one (devices first, so
//! their links are shaped before the controller's slot clock can start),
//! each watched through `docker start -a`. Fault signals go through
//! `docker kill --signal`, which reaches the agent (the container's only
//! process); a restart starts the same container again. With netem, a device's `up`
//! direction goes on its `eth0` (entered with `nsenter`) and `down` on the
//! host end of its veth. `docker-compose down` removes everything when the
//! run ends, also on failure.

use crate::compose;
use crate::config::{LaunchOptions, TestbedConfig};
use crate::emulation::{self, Emulation};
use crate::error::{DeployError, LaunchError, ShellError};
use crate::faults;
use crate::outcome::{self, LaunchOutcome};
use crate::plan::{self, Addressing, AgentPlan, Role};
use crate::run_folder::{self, Prepared};
use crate::runtime::{Agent, LocalProcesses, Runtime};
use crate::shell;
use crate::supervise::{self, JOIN_LIMIT, Links, Schedule};
use qmec_linkem::LinkProfile;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(30);
const COMPOSE_LIMIT: Duration = Duration::from_secs(120);

/// A compose project, taken down on drop.
#[derive(Debug)]
struct Project {
    name: String,
    file: PathBuf,
}

impl Project {
    fn args(&self, rest: &[&str]) -> Vec<String> {
        let mut args = shell::args(["-p", &self.name, "-f"]);
        args.push(self.file.display().to_string());
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        shell::run_blocking("docker-compose", &self.args(&["down", "-t", "2", "--remove-orphans", "-v"]), COMPOSE_LIMIT);
    }
}

/// Whether this host can run a container testbed.
pub async fn available() -> Result<(), String> {
    shell::run("docker", &shell::args(["info", "--format", "{{.ServerVersion}}"]), STEP)
        .await
        .map_err(|e| format!("no usable Docker engine ({e})"))?;
    shell::run("docker-compose", &shell::args(["version", "--short"]), STEP)
        .await
        .map_err(|e| format!("no docker-compose ({e})"))?;
    Ok(())
}

fn project_name() -> String {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    format!("qmec{}x{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed))
}

/// The PID of a running container (0 until it runs).
async fn container_pid(container: &str) -> Result<u32, LaunchError> {
    let give_up = tokio::time::Instant::now() + STEP;
    loop {
        let out = shell::run("docker", &shell::args(["inspect", "-f", "{{.State.Pid}}", container]), STEP).await?;
        if let Ok(pid) = out.trim().parse::<u32>()
            && pid > 0
        {
            return Ok(pid);
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(LaunchError::Unavailable(format!("container {container} did not start")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The host end of a container's `eth0` veth.
async fn host_veth(pid: &str) -> Result<String, LaunchError> {
    let iflink = shell::run("nsenter", &shell::args(["-t", pid, "-n", "cat", "/sys/class/net/eth0/iflink"]), STEP).await?;
    let iflink = iflink.trim();
    let entries = std::fs::read_dir("/sys/class/net")
        .map_err(|source| DeployError::Io { path: "/sys/class/net".into(), source })?;
    for entry in entries.flatten() {
        let index = std::fs::read_to_string(entry.path().join("ifindex")).unwrap_or_default();
        if index.trim() == iflink {
            return Ok(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Err(ShellError::Failed {
        command: format!("find the host veth with ifindex {iflink}"),
        status: "not found".into(),
        stderr: String::new(),
    }
    .into())
}

/// A partition through the engine: the agent's container leaves the run's
/// network and joins it again under its service name, which the others
/// resolve it by.
struct NetworkLinks<'a> {
    project: &'a str,
}

impl Links for NetworkLinks<'_> {
    fn command(&self, agent: &str, up: bool) -> Option<(String, Vec<String>)> {
        let network = format!("{}_{}", self.project, compose::NETWORK);
        let container = compose::container(self.project, agent);
        let args = match up {
            true => shell::args(["network", "connect", "--alias", agent, &network, &container]),
            false => shell::args(["network", "disconnect", &network, &container]),
        };
        Some(("docker".into(), args))
    }
}

/// Starts `container` and watches it through `docker start -a`, logging
/// to `log`; faults reach it through `docker kill`.
fn watch(runtime: &mut LocalProcesses, log: &str, container: &str) -> Result<Agent, DeployError> {
    let mut agent = runtime.start(log, &shell::args(["start", "-a", container]))?;
    agent.container = Some(container.to_string());
    Ok(agent)
}

/// The container backend under the launcher.
pub async fn run(
    config: &TestbedConfig,
    options: &LaunchOptions,
    profile: Option<&LinkProfile>,
) -> Result<LaunchOutcome, LaunchError> {
    available().await.map_err(LaunchError::Unavailable)?;
    let Prepared { scenario, emulation, out } = run_folder::prepare(config, options, profile)?;
    let image = crate::image::ensure(&config.exe).await.map_err(|e| LaunchError::Image(e.to_string()))?;
    let (devices, servers) = (scenario.devices, scenario.servers);
    // Containers see only the run folder: the files go there.
    let security = run_folder::security_args(config, &out, Some(compose::OUT_DIR))?;
    let userspace_links = matches!(emulation, Emulation::Userspace { .. });
    let plans = container_plans(config, devices, servers, userspace_links, security)?;
    // Every fault must name an agent of this run.
    let actions = faults::actions(&config.faults, &plan::names(config, devices, servers), config.slot()).map_err(DeployError::from)?;
    let project = write_compose(&out, &image, &plans)?;
    shell::run("docker-compose", &project.args(&["up", "--no-start"]), COMPOSE_LIMIT).await?;
    let mut runtime = LocalProcesses { exe: "docker".into(), logs: out.join("logs") };
    let links = match emulation {
        Emulation::Netem => profile,
        Emulation::Off | Emulation::Userspace { .. } | Emulation::Kernel { .. } | Emulation::Simulated => None,
    };
    let mut agents = start_containers(&mut runtime, &project.name, &plans, links).await?;
    supervise::wait_for_run_start(&mut agents, JOIN_LIMIT).await?;
    // A restart starts the agent's stopped container again.
    let name = project.name.clone();
    let mut start_again =
        supervise::start_again(&plans, |log, i| supervise::at_once(watch(&mut runtime, log, &compose::container(&name, &plans[i].name))));
    let network = NetworkLinks { project: &project.name };
    let schedule =
        Schedule { actions, start_again: &mut start_again, links: Some(&network), deadline: Some(options.deadline), slot: config.slot() };
    let lost = supervise::supervise(&mut agents, schedule).await?;
    drop(agents);
    drop(project);
    let outcome = outcome::finish(config, scenario, &out, &plans, lost)?;
    Ok(LaunchOutcome { outcome, emulation, virtual_time: None })
}

/// Every agent's plan in containers: fixed ports on container names, the
/// run folder at `/out`, devices dialling through the link profile there
/// when the userspace emulator runs, and `security` (the `--tls-dir` and
/// `--token-file` flags, paths inside `/out`).
fn container_plans(
    config: &TestbedConfig,
    devices: usize,
    servers: usize,
    userspace_links: bool,
    security: Vec<String>,
) -> Result<Vec<AgentPlan>, DeployError> {
    let server_hosts: Vec<String> = (0..servers).map(crate::plan::server_name).collect();
    let mut at = Addressing::fixed("controller", &server_hosts, compose::OUT_DIR.into());
    at.device_link_profile = userspace_links.then(|| format!("{}/link-profile.toml", compose::OUT_DIR));
    at.security = security;
    plan::agents(config, devices, servers, &at)
}

/// The compose file a container run of `config` writes (project
/// `project`, image `image`, run folder `out_on_host`), for checking it
/// with `docker-compose config` without Docker Engine: the same plans as
/// [`run`], with `security` flags as [`run`] passes them.
pub fn compose_yaml(
    config: &TestbedConfig,
    userspace_links: bool,
    security: Vec<String>,
    project: &str,
    image: &str,
    out_on_host: &str,
) -> Result<String, DeployError> {
    let scenario = config.scenario()?;
    let plans = container_plans(config, scenario.devices, scenario.servers, userspace_links, security)?;
    Ok(compose::to_yaml(&compose::build(project, image, out_on_host, &plans))?)
}

/// Writes the compose file of `plans` into the run folder; the project
/// it names is taken down when the returned value is dropped.
fn write_compose(out: &Path, image: &str, plans: &[AgentPlan]) -> Result<Project, LaunchError> {
    let name = project_name();
    let file = out.join("docker-compose.yml");
    let yaml = compose::to_yaml(&compose::build(&name, image, &out.display().to_string(), plans))
        .map_err(|e| LaunchError::Unavailable(format!("writing the compose file: {e}")))?;
    std::fs::write(&file, yaml).map_err(|source| DeployError::Io { path: file.clone(), source })?;
    qmec_proto::agent_process::note(format_args!("compose file: {} (project {name}, image {image})", file.display()));
    Ok(Project { name, file })
}

/// Starts every container of project `name`, devices first, each watched
/// through `docker start -a`; with `netem` (the profile, when netem
/// emulates it) a container's link is shaped before the next one starts.
/// The agents come back in start order (the controller last).
async fn start_containers(
    runtime: &mut LocalProcesses,
    name: &str,
    plans: &[AgentPlan],
    netem: Option<&LinkProfile>,
) -> Result<Vec<Agent>, LaunchError> {
    let mut agents = Vec::with_capacity(plans.len());
    for plan in plans.iter().rev() {
        let container = compose::container(name, &plan.name);
        let mut agent = watch(runtime, &plan.name, &container)?;
        let pid = container_pid(&container).await?.to_string();
        if let Some(link) = netem.and_then(|profile| emulation::link_of(&plan.role, profile)) {
            emulation::apply_netem(&["nsenter", "-t", &pid, "-n"], "eth0", &link.up).await?;
            let veth = host_veth(&pid).await?;
            emulation::apply_netem(&[], &veth, &link.down).await?;
        }
        if !matches!(plan.role, Role::Devices(_)) {
            agent.listening().await.map_err(DeployError::from)?;
        }
        agents.push(agent);
    }
    Ok(agents)
}
