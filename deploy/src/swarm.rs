//! A testbed as a Docker Swarm stack, so that the same run spans several
//! machines through an existing engine: the controller and each server as a
//! service, the device processes as ONE replicated service whose replicas
//! take their devices from their task slot (`QMEC_DEVICE_SLOT`), all on an
//! attachable overlay network, the run folder bind-mounted at `/out`, TLS
//! files and the token as swarm secrets. The stack file is written to the
//! run folder. A node not in a swarm is made a single-node one for the run
//! and leaves it after; the stack is removed at the end, also on failure.
//! The launcher waits for the engine as long as its tasks make progress,
//! and fails at once, with the engine's reason, on a task it refuses (see
//! [`tasks`]).
//! Each task's container is watched through `docker logs -f` and `docker
//! wait`; every fault goes through the engine: kill and stop as `docker
//! kill --signal`, a restart as a forced `docker service update` (a new
//! task for the slot), a partition as `docker network disconnect` and
//! `connect` of the task's container. The engine never restarts a task by
//! itself (`restart_policy: none`), so a killed agent stays lost, as the
//! schedule means it to.

mod tasks;

use crate::compose::{NETWORK, OUT_DIR};
use crate::config::{FaultKind, LaunchOptions, TestbedConfig};
use crate::emulation::Emulation;
use crate::error::{DeployError, EngineError, FaultError, LaunchError};
use crate::faults::{self, Step};
use crate::outcome::{self, LaunchOutcome};
use crate::plan::{self, Addressing, AgentPlan, Role};
use crate::run_folder::{self, Prepared};
use crate::runtime::{Agent, LocalProcesses, Runtime};
use crate::shell;
use crate::supervise::{self, JOIN_LIMIT, Links, Restarted, Schedule};
use qmec_linkem::LinkProfile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(30);
const STACK_LIMIT: Duration = Duration::from_secs(120);
/// The replicated service of every device process.
pub const DEVICES_SERVICE: &str = "devices";
/// Where secrets are mounted in every container.
const SECRETS_DIR: &str = "/run/secrets";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackFile {
    pub version: String,
    pub services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, Network>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub image: String,
    pub hostname: String,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretMount>,
    pub deploy: Deploy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub replicas: usize,
    pub restart_policy: RestartPolicy,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub condition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub driver: String,
    pub attachable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretFile {
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretMount {
    pub source: String,
    pub target: String,
}

/// The run's security files, each a secret: its name, the file on the
/// host and where containers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub name: String,
    pub host: PathBuf,
    pub target: String,
}

/// What a stack is built from besides the plans.
#[derive(Debug, Clone)]
pub struct StackInput<'a> {
    pub stack: &'a str,
    pub image: &'a str,
    pub out_on_host: &'a str,
    /// The replicated device service's arguments.
    pub device_args: Vec<String>,
    pub secrets: &'a [Secret],
}

/// The stack of `plans`: a service each for the controller and the
/// servers, one replicated service for every device process.
pub fn build(input: &StackInput<'_>, plans: &[AgentPlan]) -> StackFile {
    let mounts: Vec<SecretMount> =
        input.secrets.iter().map(|s| SecretMount { source: s.name.clone(), target: s.target.clone() }).collect();
    let service = |hostname: String, command: Vec<String>, replicas: usize| Service {
        image: input.image.to_string(),
        hostname,
        command,
        environment: BTreeMap::new(),
        volumes: vec![format!("{}:{OUT_DIR}", input.out_on_host)],
        networks: vec![NETWORK.to_string()],
        secrets: mounts.clone(),
        deploy: Deploy {
            replicas,
            restart_policy: RestartPolicy { condition: "none".into() },
            labels: BTreeMap::from([("qmec.run".to_string(), input.stack.to_string())]),
        },
    };
    let mut services: BTreeMap<String, Service> = plans
        .iter()
        .filter(|p| !matches!(p.role, Role::Devices(_)))
        .map(|p| (p.name.clone(), service(p.name.clone(), p.args.clone(), 1)))
        .collect();
    let replicas = plans.iter().filter(|p| matches!(p.role, Role::Devices(_))).count();
    let mut devices = service(format!("{DEVICES_SERVICE}-{{{{.Task.Slot}}}}"), input.device_args.clone(), replicas);
    devices.environment.insert(qmec_device_agent::SLOT_ENV.to_string(), "{{.Task.Slot}}".into());
    services.insert(DEVICES_SERVICE.to_string(), devices);
    StackFile {
        version: "3.8".into(),
        services,
        networks: BTreeMap::from([(NETWORK.to_string(), Network { driver: "overlay".into(), attachable: true })]),
        secrets: input.secrets.iter().map(|s| (s.name.clone(), SecretFile { file: s.host.display().to_string() })).collect(),
    }
}

/// The task (`SERVICE.SLOT`) that runs plan `plan`: a device process's
/// slot in the devices service is its place among `device_processes`, every
/// other service has one task, in slot 1.
fn task_of(stack: &str, plan: &AgentPlan, device_processes: &[AgentPlan]) -> String {
    match plan.role {
        Role::Devices(_) => {
            let slot = device_processes.iter().position(|p| p.name == plan.name).map_or(0, |i| i + 1);
            format!("{stack}_{DEVICES_SERVICE}.{slot}")
        }
        _ => format!("{stack}_{}.1", plan.name),
    }
}

/// Faults a stack cannot carry out, refused by name: a replica's arguments
/// cannot differ from its siblings' (late devices, per-agent metrics ports).
fn refuse(config: &TestbedConfig) -> Result<(), FaultError> {
    if config.metrics.is_some() {
        return Err(FaultError { entry: "--metrics".into(), reason: "replicas share their arguments, so cannot have a port each on --runtime swarm".into() });
    }
    match config.faults.iter().find(|fault| fault.kind == FaultKind::Late) {
        Some(fault) => Err(FaultError {
            entry: format!("{}@{}", fault.target, fault.at_slot),
            reason: "device replicas share their arguments on --runtime swarm, so one cannot report late".into(),
        }),
        None => Ok(()),
    }
}

/// A restart through the engine: the service's task replaced by a new one
/// (`--force`, as nothing in its spec changed; scaling to zero and back
/// starts none under `restart_policy: none`).
fn restart_args(service: &str) -> Vec<String> {
    shell::args(["service", "update", "--force", "--detach", "--quiet", service])
}

/// Where a partition cuts an agent off: its task's process, and the
/// interface of the stack's overlay network in the task's namespace.
#[derive(Debug, Clone, PartialEq)]
struct OverlayLink {
    pid: u32,
    interface: String,
}

/// A partition on a stack: the agent's overlay interface goes down in its
/// task's namespace, so nothing passes either way, and comes up again when
/// the cut heals. Not `docker network disconnect` and `connect`: a task
/// connected again by hand is no longer in its service's name resolution
/// (Engine 20.10 gave the healed container the service's virtual IP), so
/// nobody could reach it after the heal.
#[derive(Debug, Default)]
struct Cuts(BTreeMap<String, OverlayLink>);

impl Links for Cuts {
    fn command(&self, agent: &str, up: bool) -> Option<(String, Vec<String>)> {
        let OverlayLink { pid, interface } = self.0.get(agent)?;
        Some(("nsenter".into(), shell::args(["-t", &pid.to_string(), "-n", "ip", "link", "set", interface, if up { "up" } else { "down" }])))
    }
}

/// The interface an `ip -o -4 addr show to ADDRESS` line names.
fn interface_of(ip_addr: &str) -> Option<String> {
    let name = ip_addr.lines().next()?.split_whitespace().nth(1)?;
    Some(name.split('@').next().unwrap_or(name).to_string())
}

/// The overlay link of `container` on network `network`, through the engine
/// (the task's PID and address) and its namespace (the interface).
async fn overlay_link(container: &str, network: &str) -> Result<OverlayLink, LaunchError> {
    let format = format!("{{{{.State.Pid}}}} {{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    let inspected = shell::run("docker", &shell::args(["inspect", "--format", &format, container]), STEP).await?;
    let unknown = |what: &str| LaunchError::Unavailable(format!("no {what} for container {container} on network {network}: `{}`", inspected.trim()));
    let (pid, address) = inspected.trim().split_once(' ').ok_or_else(|| unknown("PID and address"))?;
    let pid: u32 = pid.parse().map_err(|_| unknown("PID"))?;
    let addresses = shell::run("nsenter", &shell::args(["-t", &pid.to_string(), "-n", "ip", "-o", "-4", "addr", "show", "to", address]), STEP).await?;
    let interface = interface_of(&addresses).ok_or_else(|| unknown("interface"))?;
    Ok(OverlayLink { pid, interface })
}

/// Whether this host can run a stack: an engine whose swarm is active or
/// can be made so.
pub async fn available() -> Result<(), String> {
    swarm_state().await.map(drop).map_err(|e| format!("no usable Docker engine ({e})"))
}

async fn swarm_state() -> Result<String, crate::error::ShellError> {
    Ok(shell::run("docker", &shell::args(["info", "--format", "{{.Swarm.LocalNodeState}}"]), STEP).await?.trim().to_string())
}

/// A single-node swarm made for the run, left on drop.
struct MadeSwarm;

impl Drop for MadeSwarm {
    fn drop(&mut self) {
        shell::run_blocking("docker", &shell::args(["swarm", "leave", "--force"]), STACK_LIMIT);
        // The bridge `swarm init` made for overlay traffic outlives the swarm.
        shell::run_blocking("docker", &shell::args(["network", "rm", "docker_gwbridge"]), STEP);
    }
}

/// Joins a swarm if the node is in none; `Some` when this run made it.
async fn ensure_swarm() -> Result<Option<MadeSwarm>, LaunchError> {
    match swarm_state().await?.as_str() {
        "active" => Ok(None),
        "inactive" => {
            shell::run("docker", &shell::args(["swarm", "init", "--advertise-addr", "127.0.0.1"]), STACK_LIMIT).await?;
            qmec_proto::agent_process::note(format_args!("made a single-node swarm for the run (left at its end)"));
            Ok(Some(MadeSwarm))
        }
        other => Err(LaunchError::Unavailable(format!("the node's swarm is `{other}`, neither active nor inactive"))),
    }
}

/// A deployed stack, removed on drop (its network waited for, so that the
/// next run or a swarm leave finds it gone).
struct Stack {
    name: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        shell::run_blocking("docker", &shell::args(["stack", "rm", &self.name]), STACK_LIMIT);
        // The engine removes tasks' containers and the network after
        // `stack rm` returns; a swarm left before then would orphan them.
        let network = format!("{}_{NETWORK}", self.name);
        let label = format!("label=com.docker.stack.namespace={}", self.name);
        let gone = || {
            let network_gone = std::process::Command::new("docker").args(["network", "inspect", &network]).output().is_ok_and(|o| !o.status.success());
            let containers = std::process::Command::new("docker").args(["ps", "-a", "-q", "--filter", &label]).output();
            network_gone && containers.is_ok_and(|o| o.status.success() && o.stdout.trim_ascii().is_empty())
        };
        let give_up = std::time::Instant::now() + STACK_LIMIT;
        while std::time::Instant::now() < give_up {
            if gone() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        tracing::warn!(stack = %self.name, "the stack's containers or network were still there after {STACK_LIMIT:?}");
    }
}

fn stack_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static RUNS: AtomicU32 = AtomicU32::new(0);
    format!("qmec{}s{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed))
}

/// Watches `container` as agent `name`: its output through `docker logs
/// -f` (from its start, so no line is missed) and its exit status through
/// `docker wait`; faults reach it through `docker kill`.
fn watch(runtime: &mut LocalProcesses, name: &str, container: &str) -> Result<Agent, DeployError> {
    let script = r#"docker logs -f "$0"; exit "$(docker wait "$0")""#;
    let mut agent = runtime.start(name, &[String::from("-c"), script.into(), container.into()])?;
    agent.container = Some(container.to_string());
    Ok(agent)
}

/// The run's TLS files and token as secrets (none without security), and
/// the agents' security flags pointing at them.
fn secrets(config: &TestbedConfig, out: &Path, stack: &str) -> Result<(Vec<Secret>, Vec<String>), DeployError> {
    let mut secrets = Vec::new();
    let mut flags = Vec::new();
    // The files land in the run folder as for containers; each becomes a secret.
    let mut inside = run_folder::security_args(config, out, Some(OUT_DIR))?.into_iter();
    while let (Some(flag), Some(path)) = (inside.next(), inside.next()) {
        let host = out.join(path.trim_start_matches(&format!("{OUT_DIR}/")));
        let files: Vec<PathBuf> = match flag.as_str() {
            "--tls-dir" => {
                let entries = std::fs::read_dir(&host).map_err(|source| DeployError::Io { path: host.clone(), source })?;
                entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect()
            }
            _ => vec![host.clone()],
        };
        let under = if flag == "--tls-dir" { format!("{SECRETS_DIR}/tls") } else { SECRETS_DIR.to_string() };
        for file in files {
            let base = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = format!("{stack}_{}", base.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
            secrets.push(Secret { name, target: format!("{under}/{base}"), host: file });
        }
        let seen = if flag == "--tls-dir" { under } else { format!("{SECRETS_DIR}/token") };
        flags.extend([flag, seen]);
    }
    Ok((secrets, flags))
}

/// The swarm backend under the launcher.
pub async fn run(config: &TestbedConfig, options: &LaunchOptions, profile: Option<&LinkProfile>) -> Result<LaunchOutcome, LaunchError> {
    refuse(config).map_err(DeployError::from)?;
    available().await.map_err(LaunchError::Unavailable)?;
    let Prepared { scenario, emulation, out } = run_folder::prepare(config, options, profile)?;
    if emulation == Emulation::Netem {
        return Err(LaunchError::Unavailable("--runtime swarm emulates links in userspace only: pass --emulation userspace".into()));
    }
    let (devices, servers) = (scenario.devices, scenario.servers);
    let actions = faults::actions(&config.faults, &plan::names(config, devices, servers), config.slot()).map_err(DeployError::from)?;
    let image = crate::image::ensure(&config.exe).await.map_err(|e| LaunchError::Image(e.to_string()))?;
    let made_swarm = ensure_swarm().await?;
    let name = stack_name();
    let (secrets, security) = secrets(config, &out, &name)?;
    let at = addressing(servers, matches!(emulation, Emulation::Userspace { .. }), security);
    let plans = plan::agents(config, devices, servers, &at)?;
    let input = StackInput {
        stack: &name,
        image: &image,
        out_on_host: &out.display().to_string(),
        device_args: plan::replicated_device_args(config, devices, &at),
        secrets: &secrets,
    };
    let file = write_stack(&out, &name, &build(&input, &plans))?;
    let stack = Stack { name: name.clone() };
    let deploy = shell::args(["stack", "deploy", "--resolve-image", "never", "-c", &file.display().to_string(), &name]);
    shell::run("docker", &deploy, STACK_LIMIT).await?;
    let device_processes: Vec<AgentPlan> = plans.iter().filter(|p| matches!(p.role, Role::Devices(_))).cloned().collect();
    let task_names: Vec<String> = plans.iter().map(|plan| task_of(&name, plan, &device_processes)).collect();
    let containers = tasks::wait(&name, &task_names, &[], &image).await.map_err(DeployError::from)?;
    // Only partitioned agents need their link found.
    let mut cuts = Cuts::default();
    for (plan, container) in plans.iter().zip(&containers) {
        if actions.iter().any(|a| a.agent == plan.name && matches!(a.step, Step::Cut { .. })) {
            cuts.0.insert(plan.name.clone(), overlay_link(container, &format!("{name}_{NETWORK}")).await?);
        }
    }
    let mut runtime = LocalProcesses { exe: "sh".into(), logs: out.join("logs") };
    // Controller last, as every backend returns them.
    let mut agents = Vec::with_capacity(plans.len());
    for (plan, container) in plans.iter().zip(&containers).rev() {
        agents.push(watch(&mut runtime, &plan.name, container)?);
    }
    supervise::wait_for_run_start(&mut agents, JOIN_LIMIT).await?;
    let mut start_again = supervise::start_again(&plans, |log, i| {
        Box::pin(start_again(name.clone(), task_names[i].clone(), image.clone(), runtime.clone(), log.to_string())) as Restarted
    });
    let schedule =
        Schedule { actions, start_again: &mut start_again, links: Some(&cuts), deadline: Some(options.deadline), slot: config.slot() };
    let lost = supervise::supervise(&mut agents, schedule).await?;
    drop(agents);
    drop(stack);
    drop(made_swarm);
    let outcome = outcome::finish(config, scenario, &out, &plans, lost)?;
    Ok(LaunchOutcome { outcome, emulation, virtual_time: None })
}

/// Starts task `task` (`SERVICE.SLOT` of stack `stack`) again through the
/// engine, and watches its new container under the log name `log`.
async fn start_again(stack: String, task: String, image: String, mut runtime: LocalProcesses, log: String) -> Result<Agent, DeployError> {
    let service = task.rsplit_once('.').map_or(task.as_str(), |(service, _)| service);
    // The containers the task ran in so far, which the new one is not.
    let listed = tasks::list(&stack).await.map_err(EngineError::from)?;
    let replaced: Vec<String> = listed.iter().filter(|t| t.name == task).map(tasks::Task::container).collect();
    shell::run("docker", &restart_args(service), STACK_LIMIT).await.map_err(EngineError::from)?;
    let container = tasks::wait(&stack, std::slice::from_ref(&task), &replaced, &image).await?;
    watch(&mut runtime, &log, &container[0])
}

/// Fixed ports on service names, the run folder at `/out`, devices dialling
/// through the link profile there when the userspace emulator runs, and
/// `security` (paths under `/run/secrets`).
fn addressing(servers: usize, userspace_links: bool, security: Vec<String>) -> Addressing {
    let server_hosts: Vec<String> = (0..servers).map(plan::server_name).collect();
    let mut at = Addressing::fixed("controller", &server_hosts, OUT_DIR.into());
    at.device_link_profile = userspace_links.then(|| format!("{OUT_DIR}/link-profile.toml"));
    at.security = security;
    at
}

fn write_stack(out: &Path, name: &str, stack: &StackFile) -> Result<PathBuf, LaunchError> {
    let file = out.join("stack.yml");
    let yaml = serde_yaml::to_string(stack).map_err(|e| LaunchError::Unavailable(format!("writing the stack file: {e}")))?;
    std::fs::write(&file, yaml).map_err(|source| DeployError::Io { path: file.clone(), source })?;
    qmec_proto::agent_process::note(format_args!("stack file: {} (stack {name})", file.display()));
    Ok(file)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stack(config: &TestbedConfig, secrets: &[Secret]) -> StackFile {
        let at = addressing(2, true, vec!["--token-file".into(), "/run/secrets/token".into()]);
        let plans = plan::agents(config, 7, 2, &at).unwrap();
        let input = StackInput {
            stack: "qmecs",
            image: "qmec:abc",
            out_on_host: "/tmp/run",
            device_args: plan::replicated_device_args(config, 7, &at),
            secrets,
        };
        build(&input, &plans)
    }

    #[test]
    fn devices_are_one_replicated_service_by_task_slot_on_an_overlay_network() {
        let mut config = crate::config::tests::config();
        config.agents_per_process = 3;
        let secret = Secret { name: "qmecs_token".into(), host: "/tmp/run/token".into(), target: "/run/secrets/token".into() };
        let file = stack(&config, std::slice::from_ref(&secret));
        let yaml = serde_yaml::to_string(&file).unwrap();
        let back: StackFile = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, file);
        let names: Vec<&str> = back.services.keys().map(String::as_str).collect();
        assert_eq!(names, ["controller", "devices", "server-0", "server-1"]);
        let devices = &back.services[DEVICES_SERVICE];
        assert_eq!(devices.deploy.replicas, 3, "7 devices, 3 a process");
        assert_eq!(devices.environment["QMEC_DEVICE_SLOT"], "{{.Task.Slot}}");
        assert_eq!(devices.hostname, "devices-{{.Task.Slot}}");
        let args = devices.command.join(" ");
        assert!(args.contains("--devices 0..7 --payload-scale 1000 --link-profile /out/link-profile.toml --devices-per-slot 3"), "{args}");
        assert!(args.ends_with("--token-file /run/secrets/token --records /out/records/{devices}.json"), "{args}");
        assert!(back.services["server-1"].command.join(" ").contains("--advertise http://server-1:50052"));
        for service in back.services.values() {
            assert_eq!(service.deploy.restart_policy.condition, "none");
            assert_eq!(service.volumes, ["/tmp/run:/out"]);
            assert_eq!(service.networks, [NETWORK]);
            assert_eq!(service.secrets, [SecretMount { source: "qmecs_token".into(), target: "/run/secrets/token".into() }]);
        }
        assert_eq!(back.networks[NETWORK], Network { driver: "overlay".into(), attachable: true });
        assert_eq!(back.secrets["qmecs_token"].file, "/tmp/run/token");
    }

    #[test]
    fn the_docker_cli_reads_the_stack_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stack.yml");
        std::fs::write(&file, serde_yaml::to_string(&stack(&crate::config::tests::config(), &[])).unwrap()).unwrap();
        let checked = std::process::Command::new("docker").args(["stack", "config", "-c"]).arg(&file).output();
        let no_command = |out: &std::process::Output| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            !out.status.success() && (stderr.contains("unknown") || stderr.contains("is not a docker command"))
        };
        match checked {
            Ok(out) if no_command(&out) => eprintln!("skipped: this docker CLI has no `stack config`"),
            Ok(out) => {
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                let resolved: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
                assert_eq!(resolved["services"]["devices"]["deploy"]["replicas"].as_u64(), Some(7));
                assert_eq!(resolved["networks"][NETWORK]["driver"].as_str(), Some("overlay"));
            }
            Err(error) => eprintln!("skipped: no docker CLI ({error})"),
        }
    }

    #[test]
    fn what_replicas_cannot_differ_in_is_refused_by_name() {
        let mut config = crate::config::tests::config();
        config.faults = faults::parse("kill:server-1@3,stop:controller@2+2,slow:server-1@2,restart:controller@4+2,partition:server-0@4+2").unwrap();
        assert!(refuse(&config).is_ok());
        config.faults = faults::parse("kill:server-1@3,late:device-2@4").unwrap();
        let refused = refuse(&config).unwrap_err();
        assert!(refused.entry == "device-2@4" && refused.reason.contains("cannot report late"), "{refused}");
        config.faults.clear();
        config.metrics = Some("127.0.0.1:9100".parse().unwrap());
        assert_eq!(refuse(&config).unwrap_err().entry, "--metrics");
    }

    #[test]
    fn faults_go_through_the_engine_on_the_task_of_each_agent() {
        let mut config = crate::config::tests::config();
        config.agents_per_process = 3;
        let at = addressing(2, false, Vec::new());
        let plans = plan::agents(&config, 7, 2, &at).unwrap();
        let devices: Vec<AgentPlan> = plans.iter().filter(|p| matches!(p.role, Role::Devices(_))).cloned().collect();
        let tasks: Vec<String> = plans.iter().map(|p| task_of("q", p, &devices)).collect();
        assert_eq!(tasks, ["q_controller.1", "q_server-0.1", "q_server-1.1", "q_devices.1", "q_devices.2", "q_devices.3"]);
        let cuts = Cuts(BTreeMap::from([("server-0".to_string(), OverlayLink { pid: 4242, interface: "eth0".into() })]));
        let (program, cut) = cuts.command("server-0", false).unwrap();
        assert_eq!((program.as_str(), cut.join(" ").as_str()), ("nsenter", "-t 4242 -n ip link set eth0 down"));
        assert_eq!(cuts.command("server-0", true).unwrap().1.join(" "), "-t 4242 -n ip link set eth0 up");
        assert_eq!(cuts.command("server-9", true), None);
        let shown = "69: eth0    inet 10.0.4.3/24 brd 10.0.4.255 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(interface_of(shown).as_deref(), Some("eth0"));
        assert_eq!(interface_of("7: eth1@if8    inet 10.0.9.2/24 scope global eth1").as_deref(), Some("eth1"));
        assert_eq!(interface_of(""), None);
        assert_eq!(restart_args("q_controller").join(" "), "service update --force --detach --quiet q_controller");
    }
}
