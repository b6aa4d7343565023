//! Container and namespace testbeds: what they share. The link emulation is
//! chosen once per run (tc netem where the kernel has it, else the
//! userspace emulator in the device agents) and said in the output; the
//! run folder is prepared; and a run is sent to the runtime asked for.

use crate::local::{DeployError, TestbedConfig};
use crate::outcome::TestbedOutcome;
use crate::plan::Role;
use crate::shell::ShellError;
use qmec_linkem::{Direction, Link, LinkProfile, ProfileError, netem};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the agents of a testbed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// OS processes on loopback (no link emulation).
    Local,
    /// One container per agent, from a compose file.
    Docker,
    /// One network namespace per agent, veth pairs to a bridge.
    Netns,
}

/// How to emulate links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EmulationChoice {
    /// tc netem where the kernel has it, else userspace.
    #[default]
    Auto,
    /// tc netem, or fail.
    Netem,
    /// The userspace emulator in the device agents.
    Userspace,
}

/// What a run does with its link profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Emulation {
    /// No profile, or one that changes nothing.
    Off,
    /// tc netem on both ends of every emulated link's veth pair.
    Netem,
    /// qmec-linkem in the device agents; `why` says why not netem.
    Userspace { why: String },
}

impl Emulation {
    pub fn describe(&self) -> String {
        match self {
            Emulation::Off => "off (no link profile)".into(),
            Emulation::Netem => "tc netem (kernel)".into(),
            Emulation::Userspace { why } => format!("userspace (qmec-linkem in the device agents): {why}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub runtime: RuntimeKind,
    pub link_profile: Option<PathBuf>,
    pub emulation: EmulationChoice,
    /// Give up on the run (and tear it down) after this long.
    pub deadline: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("--emulation netem, but this kernel has no netem: {0}")]
    NoNetem(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("building the image: {0}")]
    Image(String),
}

/// A finished container or namespace testbed.
#[derive(Debug)]
pub struct ClusterOutcome {
    pub outcome: TestbedOutcome,
    pub emulation: Emulation,
}

/// What a container or namespace run starts from.
#[derive(Debug)]
pub struct Prepared {
    pub scenario: qmec_model::Scenario,
    pub emulation: Emulation,
    /// The run folder, absolute.
    pub out: PathBuf,
}

/// The first steps of every container or namespace run: the scenario, the
/// link emulation for `profile`, and the run folder.
pub fn prepare(config: &TestbedConfig, options: &ClusterOptions, profile: Option<&LinkProfile>) -> Result<Prepared, ClusterError> {
    let scenario = crate::outcome::scenario(config)?;
    let emulation = choose_emulation(profile, options.emulation)?;
    let out = prepare_out(&config.out, profile, &emulation)?;
    Ok(Prepared { scenario, emulation, out })
}

/// Picks the emulation for `profile` and says it on stderr.
pub fn choose_emulation(profile: Option<&LinkProfile>, choice: EmulationChoice) -> Result<Emulation, ClusterError> {
    let emulation = match profile {
        None => Emulation::Off,
        Some(p) if p.is_noop() => Emulation::Off,
        Some(_) => match (choice, netem::support()) {
            (EmulationChoice::Userspace, _) => Emulation::Userspace { why: "asked for (--emulation userspace)".into() },
            (_, netem::Support::Netem) => Emulation::Netem,
            (EmulationChoice::Netem, netem::Support::Missing(why)) => return Err(ClusterError::NoNetem(why.clone())),
            (EmulationChoice::Auto, netem::Support::Missing(why)) => {
                Emulation::Userspace { why: format!("this kernel has no tc netem ({why})") }
            }
        },
    };
    eprintln!("link emulation: {}", emulation.describe());
    if let (Emulation::Userspace { .. }, Some(p)) = (&emulation, profile)
        && !p.server.is_noop()
    {
        eprintln!("link emulation: the server links apply to device ↔ server traffic only (server ↔ controller is not emulated in userspace)");
    }
    Ok(emulation)
}

/// Creates the run folder (absolute) with `records/` and writes the
/// resolved link profile and the emulation choice into it.
pub fn prepare_out(out: &Path, profile: Option<&LinkProfile>, emulation: &Emulation) -> Result<PathBuf, DeployError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Io { path, source }
    };
    let records = out.join("records");
    std::fs::create_dir_all(&records).map_err(io(&records))?;
    let out = std::fs::canonicalize(out).map_err(io(out))?;
    if let Some(profile) = profile {
        let path = out.join("link-profile.toml");
        std::fs::write(&path, profile.to_toml()).map_err(io(&path))?;
    }
    let path = out.join("emulation.json");
    std::fs::write(&path, serde_json::to_string_pretty(emulation).unwrap_or_default()).map_err(io(&path))?;
    Ok(out)
}

/// The link an agent's interface carries under netem (the controller's
/// link is not modelled).
pub fn link_of(role: &Role, profile: &LinkProfile) -> Option<Link> {
    match role {
        Role::Controller => None,
        Role::Server(_) => Some(profile.server).filter(|l| !l.is_noop()),
        Role::Devices(_) => Some(profile.device).filter(|l| !l.is_noop()),
    }
}

/// Puts `direction` on `iface`'s egress with tc, run under `exec` (e.g.
/// `ip netns exec NS` or `nsenter -t PID -n`; empty: this namespace).
pub async fn apply_netem(exec: &[&str], iface: &str, direction: &Direction) -> Result<(), ShellError> {
    let mut line: Vec<String> = exec.iter().map(|s| s.to_string()).collect();
    line.push("tc".into());
    line.extend(netem::tc_args(iface, direction));
    let (program, args) = line.split_at(1);
    crate::shell::run(&program[0], args, Duration::from_secs(10)).await.map(|_| ())
}

/// Runs a container or namespace testbed.
pub async fn run(config: &TestbedConfig, options: &ClusterOptions) -> Result<ClusterOutcome, ClusterError> {
    let profile = options.link_profile.as_deref().map(LinkProfile::load).transpose()?;
    match options.runtime {
        RuntimeKind::Local => {
            if profile.is_some() {
                return Err(ClusterError::Unavailable(
                    "--link-profile needs --runtime docker or netns (each agent needs its own link)".into(),
                ));
            }
            let outcome = crate::local::run_local(config).await?;
            Ok(ClusterOutcome { outcome, emulation: Emulation::Off })
        }
        RuntimeKind::Netns => crate::netns::run(config, options, profile.as_ref()).await,
        RuntimeKind::Docker => crate::docker::run(config, options, profile.as_ref()).await,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config() -> TestbedConfig {
        TestbedConfig {
            exe: PathBuf::from("/usr/local/bin/qmec"),
            scenario: "paper".into(),
            devices: Some(3),
            servers: Some(2),
            policy: "lyapunov".into(),
            model: None,
            online: true,
            seed: 1,
            slots: 10,
            slot_ms: 100.0,
            report_deadline: 0.5,
            agents_per_process: 1,
            payload_scale: 1000.0,
            early_reports: false,
            out: PathBuf::from("runs/x"),
            metrics: None,
            security: Default::default(),
            faults: Vec::new(),
        }
    }

    #[test]
    fn no_profile_or_a_noop_one_turns_emulation_off() {
        assert_eq!(choose_emulation(None, EmulationChoice::Netem).ok(), Some(Emulation::Off));
        let noop = LinkProfile::with_defaults();
        assert_eq!(choose_emulation(Some(&noop), EmulationChoice::Auto).ok(), Some(Emulation::Off));
        let delayed = LinkProfile::device_delay(Duration::from_millis(20));
        let chosen = choose_emulation(Some(&delayed), EmulationChoice::Auto).ok();
        match netem::support() {
            netem::Support::Netem => assert_eq!(chosen, Some(Emulation::Netem)),
            netem::Support::Missing(_) => assert!(matches!(chosen, Some(Emulation::Userspace { .. }))),
        }
    }
}
