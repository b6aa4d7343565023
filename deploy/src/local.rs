//! A testbed on loopback: the controller, S server agents and the device
//! agents (`agents_per_process` per OS process) started as child processes
//! on ports the kernel picks, supervised until the run is over (with the
//! fault schedule), and torn down on completion, on Ctrl-C and when any
//! child exits with an error (reported with the tail of its log). Then the
//! records are merged and the run folder written.

use crate::faults;
use crate::outcome::{self, TestbedOutcome};
use crate::plan::{self, Addressing, AgentPlan, Role};
use crate::runtime::{LocalProcesses, Runtime, RuntimeError};
use crate::supervise;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TestbedConfig {
    /// The binary that runs `agent controller|server|device`.
    pub exe: PathBuf,
    pub scenario: String,
    pub devices: Option<usize>,
    pub servers: Option<usize>,
    pub policy: String,
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
    pub faults: Vec<crate::faults::Fault>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{name} failed ({status}); last log lines:\n{tail}")]
    Crashed { name: String, status: String, tail: String },
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
    Fault(#[from] crate::faults::FaultError),
    #[error("injecting a fault into {name}: {source}")]
    Signal { name: String, source: std::io::Error },
    #[error("--metrics {addr}: {reason}")]
    Metrics { addr: std::net::SocketAddr, reason: String },
    #[error("the run did not finish within {0:?}; everything was torn down")]
    Deadline(Duration),
}

/// How long a launcher waits for the controller's clock to start: the
/// controller's own join timeout (60 s by default) and then some.
pub const JOIN_LIMIT: Duration = Duration::from_secs(70);

/// Runs a whole testbed and writes its run folder.
pub async fn run_local(config: &TestbedConfig) -> Result<TestbedOutcome, DeployError> {
    let scenario = outcome::scenario(config)?;
    let (devices, servers) = (scenario.devices, scenario.servers);
    let out = crate::cluster::prepare_out(&config.out, None, &crate::cluster::Emulation::Off)?;
    let mut at = Addressing::loopback(out.display().to_string());
    at.security = security_args(config, &out, None)?;
    let mut runtime = LocalProcesses { exe: config.exe.clone(), logs: out.join("logs") };
    let slot = Duration::from_secs_f64(config.slot_ms / 1e3);
    // Every fault must name an agent of this run.
    let actions = faults::actions(&config.faults, &plan::names(config, devices, servers), slot)?;

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
    supervise::wait_for_run_start(&mut agents[0], JOIN_LIMIT).await;
    let mut start_again = supervise::start_again(&plans, |log, i| Ok(runtime.start(log, &plans[i].args)?));
    // Dropping `agents` on any error kills every child.
    let killed = supervise::supervise(&mut agents, actions, &mut start_again, None).await?;
    drop(agents);
    outcome::finish(config, scenario, &out, &plans, &killed)
}

/// Sets the value after `flag` in `plan`'s arguments.
fn set_flag(plan: &mut AgentPlan, flag: &str, value: &str) {
    if let Some(at) = plan.args.iter().position(|a| a == flag)
        && let Some(slot) = plan.args.get_mut(at + 1)
    {
        *slot = value.to_string();
    }
}

/// The security flags every agent gets. An inline token is written to
/// `out/token` (owner-only) and passed by file, so it never shows in `ps`.
/// With `inside` (where a container sees the run folder) every file the
/// agents need is copied into the run folder first and named from there.
pub fn security_args(config: &TestbedConfig, out: &Path, inside: Option<&str>) -> Result<Vec<String>, DeployError> {
    let security = &config.security;
    let mut files = Vec::new();
    if let Some(dir) = &security.tls_dir {
        let dir = match inside {
            Some(_) => copy_into(dir, &out.join("tls"))?,
            None => dir.clone(),
        };
        files.push(("--tls-dir", dir));
    }
    let token_file = match (&security.token, &security.token_file) {
        (Some(token), _) => Some(write_private(&out.join("token"), token.as_bytes())?),
        (None, Some(file)) if inside.is_some() => {
            let text = std::fs::read(file).map_err(|source| DeployError::Io { path: file.clone(), source })?;
            Some(write_private(&out.join("token"), &text)?)
        }
        (None, file) => file.clone(),
    };
    if let Some(file) = token_file {
        files.push(("--token-file", file));
    }
    let seen = |path: &Path| match inside {
        Some(root) => format!("{root}/{}", path.strip_prefix(out).unwrap_or(path).display()),
        None => path.display().to_string(),
    };
    Ok(files.into_iter().flat_map(|(flag, path)| [flag.to_string(), seen(&path)]).collect())
}

/// Writes an owner-only file.
fn write_private(path: &Path, contents: &[u8]) -> Result<PathBuf, DeployError> {
    let io = |source| DeployError::Io { path: path.to_path_buf(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, contents).map_err(io)?;
    Ok(path.to_path_buf())
}

/// Copies the files of `from` (certificates and keys, kept owner-only)
/// into `to`, except the CA's signing key, which no agent needs.
fn copy_into(from: &Path, to: &Path) -> Result<PathBuf, DeployError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let path = entry.map_err(io(from))?.path();
        if path.is_file() && path.file_name().is_some_and(|name| name != "ca.key") {
            let contents = std::fs::read(&path).map_err(io(&path))?;
            write_private(&to.join(path.file_name().unwrap_or_default()), &contents)?;
        }
    }
    Ok(to.to_path_buf())
}
