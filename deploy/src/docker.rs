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

use crate::cluster::{self, ClusterError, ClusterOptions, ClusterOutcome, Emulation};
use crate::compose;
use crate::faults;
use crate::local::{DeployError, TestbedConfig};
use crate::outcome;
use crate::plan::{self, Addressing, Role};
use crate::runtime::{Agent, LocalProcesses, Runtime};
use crate::supervise;
use crate::shell::{self, ShellError};
use qmec_linkem::LinkProfile;
use std::path::PathBuf;
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
async fn container_pid(container: &str) -> Result<u32, ClusterError> {
    let give_up = tokio::time::Instant::now() + STEP;
    loop {
        let out = shell::run("docker", &shell::args(["inspect", "-f", "{{.State.Pid}}", container]), STEP).await?;
        if let Ok(pid) = out.trim().parse::<u32>()
            && pid > 0
        {
            return Ok(pid);
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(ClusterError::Unavailable(format!("container {container} did not start")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The host end of a container's `eth0` veth.
async fn host_veth(pid: &str) -> Result<String, ClusterError> {
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

/// Starts `container` and watches it through `docker start -a`, logging
/// to `log`; faults reach it through `docker kill`.
fn watch(runtime: &mut LocalProcesses, log: &str, container: &str) -> Result<Agent, DeployError> {
    let mut agent = runtime.start(log, &shell::args(["start", "-a", container]))?;
    agent.container = Some(container.to_string());
    Ok(agent)
}

pub async fn run(
    config: &TestbedConfig,
    options: &ClusterOptions,
    profile: Option<&LinkProfile>,
) -> Result<ClusterOutcome, ClusterError> {
    available().await.map_err(ClusterError::Unavailable)?;
    let cluster::Prepared { scenario, emulation, out } = cluster::prepare(config, options, profile)?;
    let image = crate::image::ensure(&config.exe).await.map_err(|e| ClusterError::Image(e.to_string()))?;
    let (devices, servers) = (scenario.devices, scenario.servers);
    let server_hosts: Vec<String> = (0..servers).map(|s| format!("server-{s}")).collect();
    let mut at = Addressing::fixed("controller", &server_hosts, compose::OUT_DIR.into());
    at.device_link_profile = matches!(emulation, Emulation::Userspace { .. })
        .then(|| format!("{}/link-profile.toml", compose::OUT_DIR));
    // Containers see only the run folder: the files go there.
    at.security = crate::local::security_args(config, &out, Some(compose::OUT_DIR))?;
    let plans = plan::agents(config, devices, servers, &at)?;
    // Every fault must name an agent of this run.
    let slot = Duration::from_secs_f64(config.slot_ms / 1e3);
    let actions = faults::actions(&config.faults, &plan::names(config, devices, servers), slot).map_err(DeployError::from)?;
    let name = project_name();
    let file = out.join("docker-compose.yml");
    let yaml = compose::to_yaml(&compose::build(&name, &image, &out.display().to_string(), &plans))
        .map_err(|e| ClusterError::Unavailable(format!("writing the compose file: {e}")))?;
    std::fs::write(&file, yaml).map_err(|source| DeployError::Io { path: file.clone(), source })?;
    eprintln!("compose file: {} (project {name}, image {image})", file.display());

    let project = Project { name: name.clone(), file };
    shell::run("docker-compose", &project.args(&["up", "--no-start"]), COMPOSE_LIMIT).await?;
    let mut runtime = LocalProcesses { exe: "docker".into(), logs: out.join("logs") };
    let mut agents = Vec::with_capacity(plans.len());
    for plan in plans.iter().rev() {
        let container = compose::container(&name, &plan.name);
        let mut agent = watch(&mut runtime, &plan.name, &container)?;
        let pid = container_pid(&container).await?.to_string();
        if let (Emulation::Netem, Some(profile)) = (&emulation, profile)
            && let Some(link) = cluster::link_of(&plan.role, profile)
        {
            cluster::apply_netem(&["nsenter", "-t", &pid, "-n"], "eth0", &link.up).await?;
            let veth = host_veth(&pid).await?;
            cluster::apply_netem(&[], &veth, &link.down).await?;
        }
        if !matches!(plan.role, Role::Devices(_)) {
            agent.listening().await.map_err(DeployError::from)?;
        }
        agents.push(agent);
    }
    // Started last: the controller.
    if let Some(controller) = agents.last_mut() {
        supervise::wait_for_run_start(controller, crate::local::JOIN_LIMIT).await;
    }
    // A restart starts the agent's stopped container again.
    let mut start_again =
        supervise::start_again(&plans, |log, i| watch(&mut runtime, log, &compose::container(&name, &plans[i].name)));
    let killed = supervise::supervise(&mut agents, actions, &mut start_again, Some(options.deadline)).await?;
    drop(agents);
    drop(project);
    let outcome = outcome::finish(config, scenario, &out, &plans, &killed)?;
    Ok(ClusterOutcome { outcome, emulation })
}
