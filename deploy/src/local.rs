//! A testbed on loopback: the controller, S server agents and the device
//! agents (`agents_per_process` per OS process) started through a
//! [`Runtime`], watched until the controller finishes, and torn down on
//! completion, on Ctrl-C and when any child exits with an error (which is
//! reported with the tail of its log). Then the records are merged and the
//! run folder written.

use crate::collect::{self, AgentRecords, Merged, TestbedFigures};
use crate::faults::{self, Action, Signal, Step};
use crate::runtime::{Agent, LocalProcesses, Runtime, RuntimeError};
use qmec_model::Scenario;
use qmec_sim::Summary;
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
    pub seed: u64,
    pub slots: u64,
    pub slot_ms: f64,
    pub report_deadline: f64,
    pub agents_per_process: usize,
    pub payload_scale: f64,
    /// Devices report each slot ahead of its announcement (`--early-reports`).
    pub early_reports: bool,
    pub out: PathBuf,
    pub metrics: Option<String>,
    /// Mutual TLS and the bearer token for every agent (local runtime).
    pub security: qmec_security::SecurityConfig,
    /// Faults to inject (local runtime): see [`crate::faults`].
    pub faults: Vec<crate::faults::Fault>,
}

#[derive(Debug)]
pub struct TestbedOutcome {
    pub scenario: Scenario,
    pub summary: Summary,
    pub merged: Merged,
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
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DeployError> {
    let err = |message: String| DeployError::Records { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(e.to_string()))
}

/// Waits until every agent has exited; fails on the first that fails,
/// except one this launcher killed on purpose. Carries out the fault
/// schedule on time (`start` starts a killed agent again); returns the
/// names of the agents it killed and did not start again.
async fn watch(
    agents: &mut [Agent],
    mut actions: Vec<Action>,
    start: &mut dyn FnMut(&str) -> Result<Agent, DeployError>,
) -> Result<Vec<String>, DeployError> {
    let started = tokio::time::Instant::now();
    actions.reverse(); // the next one last
    let mut killed = Vec::new();
    let mut done = vec![false; agents.len()];
    loop {
        while let Some(action) = actions.last().filter(|a| started + a.after <= tokio::time::Instant::now()) {
            let action = action.clone();
            actions.pop();
            let Some(i) = agents.iter().position(|a| a.name == action.agent) else { continue };
            tracing::warn!(agent = %action.agent, step = ?action.step, "fault injected");
            match action.step {
                Step::Send(signal) => {
                    let Some(pid) = agents[i].child.id().filter(|_| !done[i]) else { continue };
                    faults::send(pid, signal).map_err(|source| DeployError::Signal { name: action.agent.clone(), source })?;
                    if signal == Signal::Kill {
                        killed.push(action.agent.clone());
                    }
                }
                Step::Start if killed.contains(&action.agent) => {
                    // The old process is reaped first, so that its exit is
                    // not taken for the new one's.
                    let _ = agents[i].child.wait().await;
                    agents[i] = start(&action.agent)?;
                    done[i] = false;
                    killed.retain(|name| *name != action.agent);
                }
                Step::Start => {}
            }
        }
        for (agent, done) in agents.iter_mut().zip(done.iter_mut()).filter(|(_, d)| !**d) {
            if let Ok(Some(status)) = agent.child.try_wait() {
                if !status.success() && !killed.contains(&agent.name) {
                    return Err(DeployError::Crashed {
                        name: agent.name.clone(),
                        status: status.to_string(),
                        tail: agent.log_tail(),
                    });
                }
                *done = true;
            }
        }
        if done.iter().all(|d| *d) {
            return Ok(killed);
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Err(DeployError::Interrupted),
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
}

/// Runs a whole testbed and writes its run folder.
pub async fn run_local(config: &TestbedConfig) -> Result<TestbedOutcome, DeployError> {
    let mut scenario = Scenario::load(&config.scenario)?;
    scenario.devices = config.devices.unwrap_or(scenario.devices);
    scenario.servers = config.servers.unwrap_or(scenario.servers);
    scenario.validate()?;
    let records_dir = config.out.join("records");
    std::fs::create_dir_all(&records_dir).map_err(|source| DeployError::Io { path: records_dir.clone(), source })?;
    let mut runtime = LocalProcesses { exe: config.exe.clone(), logs: config.out.join("logs") };
    let path = |name: &str| records_dir.join(name).display().to_string();
    let s = |v: &dyn ToString| v.to_string();

    let secure = security_args(config, &config.out)?;
    let per_process = config.agents_per_process.max(1);
    let mut names = vec!["controller".to_string()];
    names.extend((0..scenario.servers).map(|s| format!("server-{s}")));
    names.extend((0..scenario.devices.div_ceil(per_process)).map(|i| format!("devices-{i}")));
    let fault_args = |name: &str| faults::agent_args(&config.faults, name, &names, per_process, config.slot_ms);
    // Every fault must name an agent of this run.
    faults::actions(&config.faults, &names, per_process, Duration::from_secs_f64(config.slot_ms / 1e3))?;
    let mut agents = Vec::new();
    let mut controller_args = vec![
        s(&"agent"), s(&"controller"),
        s(&"--scenario"), config.scenario.clone(),
        s(&"--devices"), s(&scenario.devices),
        s(&"--servers"), s(&scenario.servers),
        s(&"--policy"), config.policy.clone(),
        s(&"--seed"), s(&config.seed),
        s(&"--slots"), s(&config.slots),
        s(&"--slot-ms"), s(&config.slot_ms),
        s(&"--report-deadline"), s(&config.report_deadline),
        s(&"--records"), path("controller.json"),
    ];
    if let Some(metrics) = &config.metrics {
        controller_args.extend([s(&"--metrics"), metrics.clone()]);
    }
    controller_args.extend(secure.iter().cloned());
    if let Some(model) = &config.model {
        controller_args.extend([s(&"--model"), model.display().to_string()]);
    }
    let mut controller = runtime.start("controller", &controller_args)?;
    let controller_addr = controller.listening().await?;
    let controller_uri = format!("http://{controller_addr}");
    agents.push(controller);
    // A restarted controller must come back where the agents look for it.
    controller_args.extend([s(&"--listen"), controller_addr]);
    for server in 0..scenario.servers {
        let name = format!("server-{server}");
        let mut args = vec![
            s(&"agent"), s(&"server"),
            s(&"--id"), s(&server),
            s(&"--controller"), controller_uri.clone(),
            s(&"--records"), path(&format!("{name}.json")),
        ];
        args.extend(secure.iter().cloned());
        args.extend(fault_args(&name));
        let mut agent = runtime.start(&name, &args)?;
        agent.listening().await?;
        agents.push(agent);
    }
    let mut device_files = Vec::new();
    for (i, first) in (0..scenario.devices).step_by(per_process).enumerate() {
        let last = (first + per_process).min(scenario.devices);
        let name = format!("devices-{i}");
        let file = path(&format!("{name}.json"));
        let mut args = vec![
            s(&"agent"), s(&"device"),
            s(&"--controller"), controller_uri.clone(),
            s(&"--devices"), format!("{first}..{last}"),
            s(&"--payload-scale"), s(&config.payload_scale),
            s(&"--records"), file.clone(),
        ];
        if config.early_reports {
            args.push(s(&"--early-reports"));
        }
        args.extend(secure.iter().cloned());
        args.extend(fault_args(&name));
        agents.push(runtime.start(&name, &args)?);
        device_files.push(file);
    }
    let slot = Duration::from_secs_f64(config.slot_ms / 1e3);
    let actions = faults::actions(&config.faults, &names, per_process, slot)?;
    let mut starts = 0;
    let mut start_again = |name: &str| {
        if name != "controller" {
            let reason = "only the controller can be started again".to_string();
            return Err(DeployError::Fault(faults::FaultError { entry: name.to_string(), reason }));
        }
        starts += 1;
        // Its own log; the same name in the schedule and the records.
        let mut agent = runtime.start(&format!("{name}.restart-{starts}"), &controller_args)?;
        agent.name = name.to_string();
        Ok(agent)
    };
    // Dropping `agents` on any error kills every child.
    let killed = watch(&mut agents, actions, &mut start_again).await?;
    drop(agents);

    let mut records = AgentRecords { controller: read(&records_dir.join("controller.json"))?, ..Default::default() };
    for server in 0..scenario.servers {
        if killed.contains(&format!("server-{server}")) {
            // Killed mid-run: it wrote no records; what it held is lost.
            records.servers.push(qmec_server_agent::records::ServerRecords { server, ..Default::default() });
            records.lost_servers.push(server);
            continue;
        }
        records.servers.push(read(&records_dir.join(format!("server-{server}.json")))?);
    }
    for file in &device_files {
        records.device_processes.push(read(Path::new(file))?);
    }
    let merged = collect::merge(&records, config.slot_ms);
    let summary = Summary::build(
        &records.controller.policy,
        &scenario,
        config.seed,
        &merged.slots,
        &merged.tasks,
        merged.conservation.clone(),
    );
    qmec_sim::output::write_run(&config.out, &scenario, &summary, &merged.slots, &merged.tasks)?;
    write_figures(&config.out, &merged.figures, &records)?;
    Ok(TestbedOutcome { scenario, summary, merged })
}

/// The security flags every agent gets. An inline token is written to
/// `out/token` (owner-only) and passed by file, so it never shows in `ps`.
fn security_args(config: &TestbedConfig, out: &Path) -> Result<Vec<String>, DeployError> {
    let security = &config.security;
    let mut args = Vec::new();
    if let Some(dir) = &security.tls_dir {
        args.extend(["--tls-dir".to_string(), dir.display().to_string()]);
    }
    let token_file = match (&security.token, &security.token_file) {
        (Some(token), _) => {
            let path = out.join("token");
            let io = |source| DeployError::Io { path: path.clone(), source };
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).map_err(io)?;
            std::io::Write::write_all(&mut file, token.as_bytes()).map_err(io)?;
            Some(path)
        }
        (None, file) => file.clone(),
    };
    if let Some(file) = token_file {
        args.extend(["--token-file".to_string(), file.display().to_string()]);
    }
    Ok(args)
}

pub fn write_figures(out: &Path, figures: &TestbedFigures, records: &AgentRecords) -> Result<(), DeployError> {
    let io = |path: PathBuf| move |source| DeployError::Io { path, source };
    let path = out.join("testbed.json");
    let json = serde_json::to_string_pretty(figures).unwrap_or_default();
    std::fs::write(&path, json).map_err(io(path.clone()))?;
    let path = out.join("controller_slots.csv");
    let mut writer = csv::Writer::from_path(&path)
        .map_err(|e| DeployError::Records { path: path.clone(), message: e.to_string() })?;
    for slot in &records.controller.slots {
        writer.serialize(slot).map_err(|e| DeployError::Records { path: path.clone(), message: e.to_string() })?;
    }
    writer.flush().map_err(io(path))
}

/// The testbed-only lines printed under the summary table.
pub fn figures_table(figures: &TestbedFigures) -> String {
    let ms = |s: f64| format!("{:.3}", s * 1e3);
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<34}{value:>14}\n"));
    line("wall latency p50 (ms)", ms(figures.wall_latency.p50_s));
    line("wall latency p95 (ms)", ms(figures.wall_latency.p95_s));
    line("wall latency p99 (ms)", ms(figures.wall_latency.p99_s));
    line("wall latency max (ms)", ms(figures.wall_latency.max_s));
    line("decision p50 / p99 (ms)", format!("{} / {}", ms(figures.decision.p50_s), ms(figures.decision.p99_s)));
    line("slot loop p50 / p99 (ms)", format!("{} / {}", ms(figures.slot_loop.p50_s), ms(figures.slot_loop.p99_s)));
    line("slot loop max (ms)", ms(figures.slot_loop.max_s));
    line("late device reports", figures.late_device_reports.to_string());
    line("late server reports", figures.late_server_reports.to_string());
    line("slots without a decision", figures.undecided_device_slots.to_string());
    if !figures.lost_servers.is_empty() || figures.requeued_fragments > 0 {
        let lost: Vec<String> = figures.lost_servers.iter().map(|s| format!("server-{s}")).collect();
        line("servers killed", if lost.is_empty() { "none".into() } else { lost.join(" ") });
        line("fragments requeued (lost server)", figures.requeued_fragments.to_string());
        line("bits requeued (lost server)", figures.requeued_bits.to_string());
    }
    if figures.controller_first_slot > 0 {
        line("controller restarted; went on at slot", figures.controller_first_slot.to_string());
    }
    line("payload sent (MB)", format!("{:.2}", figures.payload_bytes as f64 / 1e6));
    line("bits conserved across processes", if figures.bits.holds() { "yes".into() } else { "NO".into() });
    for (name, usage) in &figures.processes {
        line(&format!("cpu {name} (% of a core)"), format!("{:.1}", usage.cpu_share() * 100.0));
    }
    out
}
