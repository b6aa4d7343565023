//! A testbed in network namespaces (root, no Docker): one namespace per
//! agent, each with an `eth0` veth whose peer sits on a bridge inside a hub
//! namespace, so nothing is added to the host's own network. Links are
//! emulated with netem on both veth ends (`up` on the agent's `eth0`,
//! `down` on the hub side), by the device agents in userspace, or (links
//! that follow the channel, `--emulation kernel`) by an HTB tree each
//! device process puts on its own `eth0`. Agents are
//! this binary under `ip netns exec`; namespaces go when the run ends,
//! also on failure.

use crate::config::{LaunchOptions, TestbedConfig};
use crate::emulation::{self, Emulation};
use crate::error::{DeployError, LaunchError, ShellError};
use crate::faults;
use crate::outcome::{self, LaunchOutcome};
use crate::plan::{self, AgentPlan, Addressing, Role};
use crate::run_folder::{self, Prepared};
use crate::runtime::{LocalProcesses, Runtime};
use crate::shell;
use crate::supervise::{self, JOIN_LIMIT, Links, Schedule};
use qmec_linkem::LinkProfile;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(10);

/// The namespaces of one run, deleted on drop (which also deletes their
/// veths), last created first.
#[derive(Debug, Default)]
struct Namespaces {
    /// Every namespace created so far, the hub first.
    created: Vec<String>,
    /// Agent i's namespace (plan order).
    agents: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            shell::run_blocking("ip", &shell::args(["netns", "del", ns]), STEP);
        }
    }
}

async fn ip(args: &[&str]) -> Result<(), ShellError> {
    shell::run("ip", &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), STEP).await.map(|_| ())
}

/// Whether this host can run a namespace testbed: `ip netns` works (root).
pub async fn available() -> Result<(), String> {
    let probe = format!("qmec-probe-{}", std::process::id());
    if let Err(e) = ip(&["netns", "add", &probe]).await {
        return Err(format!("cannot create network namespaces ({e})"));
    }
    let _ = ip(&["netns", "del", &probe]).await;
    Ok(())
}

/// A run-unique short prefix (interface and namespace names are short).
fn run_id() -> String {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    format!("q{}x{}", std::process::id() % 100_000, RUNS.fetch_add(1, Ordering::Relaxed))
}

/// Agent i's address (plan order).
fn ip_of(i: usize) -> String {
    format!("10.77.0.{}", i + 1)
}

/// The namespace backend under the launcher.
pub async fn run(
    config: &TestbedConfig,
    options: &LaunchOptions,
    profile: Option<&LinkProfile>,
) -> Result<LaunchOutcome, LaunchError> {
    available().await.map_err(LaunchError::Unavailable)?;
    let Prepared { scenario, emulation, out } = run_folder::prepare(config, options, profile)?;
    let (devices, servers) = (scenario.devices, scenario.servers);
    if 1 + servers + devices > 250 {
        return Err(LaunchError::Unavailable(format!("{} agents do not fit one /24", 1 + servers + devices)));
    }
    let mut at = Addressing::fixed(&ip_of(0), &(0..servers).map(|s| ip_of(1 + s)).collect::<Vec<_>>(), out.display().to_string());
    at.device_link_profile = matches!(emulation, Emulation::Userspace { .. } | Emulation::Kernel { .. })
        .then(|| out.join("link-profile.toml").display().to_string());
    if let Emulation::Kernel { netem, .. } = emulation {
        at.device_link_flags = shell::args(["--kernel-links", "eth0"]);
        if netem {
            at.device_link_flags.push("--kernel-netem".into());
        }
    }
    // Namespaces share this host's file system: the files are where they are.
    at.security = run_folder::security_args(config, &out, None)?;
    let plans = plan::agents(config, devices, servers, &at)?;
    let actions = faults::actions(&config.faults, &plan::names(config, devices, servers), config.slot()).map_err(DeployError::from)?;
    let links = match (&emulation, profile) {
        (Emulation::Netem, Some(profile)) => KernelLinks::Netem(profile),
        (Emulation::Kernel { netem, .. }, Some(profile)) => KernelLinks::Htb { profile, netem: *netem },
        _ => KernelLinks::None,
    };
    let namespaces = build_network(&plans, links).await?;
    let agent_ns = namespaces.agents.clone();

    // Devices first (they retry until the controller is up), then servers,
    // then the controller, whose slot clock starts once all have joined.
    let mut runtime = LocalProcesses { exe: "ip".into(), logs: out.join("logs") };
    // `ip netns exec` execs the agent, so signals reach it by PID.
    let exec = |i: usize| {
        let mut args = vec!["netns".to_string(), "exec".into(), agent_ns[i].clone(), config.exe.display().to_string()];
        args.extend(plans[i].args.iter().cloned());
        args
    };
    let mut agents = Vec::with_capacity(plans.len());
    for (i, plan) in plans.iter().enumerate().rev() {
        let mut agent = runtime.start(&plan.name, &exec(i)).map_err(DeployError::from)?;
        if !matches!(plan.role, Role::Devices(_)) {
            agent.listening().await.map_err(DeployError::from)?;
        }
        agents.push(agent);
    }
    supervise::wait_for_run_start(&mut agents, JOIN_LIMIT).await?;
    let mut start_again = supervise::start_again(&plans, |log, i| supervise::at_once(runtime.start(log, &exec(i)).map_err(Into::into)));
    let links = HubLinks { hub: &namespaces.created[0], plans: &plans };
    let schedule =
        Schedule { actions, start_again: &mut start_again, links: Some(&links), deadline: Some(options.deadline), slot: config.slot() };
    let lost = supervise::supervise(&mut agents, schedule).await?;
    drop(agents);
    drop(namespaces);
    let outcome = outcome::finish(config, scenario, &out, &plans, lost)?;
    Ok(LaunchOutcome { outcome, emulation, virtual_time: None })
}

/// The hub side of agent i's veth (plan order).
fn peer_of(i: usize) -> String {
    format!("p{i}")
}

/// A partition in namespaces: the hub side of the agent's veth goes down,
/// so its `eth0` loses carrier and nothing passes either way, and comes up
/// again when the cut heals.
struct HubLinks<'a> {
    hub: &'a str,
    plans: &'a [AgentPlan],
}

impl Links for HubLinks<'_> {
    fn command(&self, agent: &str, up: bool) -> Option<(String, Vec<String>)> {
        let i = self.plans.iter().position(|p| p.name == agent)?;
        Some(("ip".into(), shell::args(["-n", self.hub, "link", "set", &peer_of(i), if up { "up" } else { "down" }])))
    }
}

/// What the kernel does to the veths.
#[derive(Debug, Clone, Copy)]
enum KernelLinks<'a> {
    None,
    /// netem on both ends of every agent's veth.
    Netem(&'a LinkProfile),
    /// The device processes put HTB on their own `eth0` (the device links
    /// up); netem, where the kernel has it, does the rest.
    Htb { profile: &'a LinkProfile, netem: bool },
}

/// A hub namespace with a bridge, and one namespace per agent of `plans`
/// whose `eth0` is a veth to that bridge, addressed by [`ip_of`], its
/// links on it as `links` says. What was made so far goes again on failure.
async fn build_network(plans: &[AgentPlan], links: KernelLinks<'_>) -> Result<Namespaces, LaunchError> {
    let id = run_id();
    let hub = format!("{id}-hub");
    let mut namespaces = Namespaces::default();
    ip(&["netns", "add", &hub]).await?;
    namespaces.created.push(hub.clone());
    ip(&["-n", &hub, "link", "set", "lo", "up"]).await?;
    ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]).await?;
    ip(&["-n", &hub, "link", "set", "br0", "up"]).await?;
    for (i, plan) in plans.iter().enumerate() {
        let ns = format!("{id}-{}", plan.name);
        ip(&["netns", "add", &ns]).await?;
        namespaces.created.push(ns.clone());
        let peer = peer_of(i);
        ip(&["-n", &hub, "link", "add", &peer, "type", "veth", "peer", "name", "eth0", "netns", &ns]).await?;
        ip(&["-n", &hub, "link", "set", &peer, "master", "br0", "up"]).await?;
        ip(&["-n", &ns, "addr", "add", &format!("{}/24", ip_of(i)), "dev", "eth0"]).await?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"]).await?;
        ip(&["-n", &ns, "link", "set", "lo", "up"]).await?;
        put_links(links, &plan.role, &ns, &hub, &peer).await?;
        namespaces.agents.push(ns);
    }
    Ok(namespaces)
}

/// Agent `role`'s link on its veth (`eth0` in `ns`, `peer` in `hub`).
async fn put_links(links: KernelLinks<'_>, role: &Role, ns: &str, hub: &str, peer: &str) -> Result<(), LaunchError> {
    let device = matches!(role, Role::Devices(_));
    let (profile, up) = match links {
        KernelLinks::None => return Ok(()),
        KernelLinks::Netem(profile) => (profile, true),
        KernelLinks::Htb { profile, netem } => {
            if device {
                // HTB counts a GSO super-packet (up to 64 KB) as one: at a
                // few Mbit/s that is a burst of over 100 ms, which the
                // per-slot rates and their readings cannot resolve.
                ip(&["-n", ns, "link", "set", "eth0", "gso_max_segs", "1"]).await?;
            }
            if !netem {
                return Ok(());
            }
            // The device process's HTB carries the device links up.
            (profile, !device)
        }
    };
    if let Some(link) = emulation::link_of(role, profile) {
        if up {
            emulation::apply_netem(&["ip", "netns", "exec", ns], "eth0", &link.up).await?;
        }
        emulation::apply_netem(&["ip", "netns", "exec", hub], peer, &link.down).await?;
    }
    Ok(())
}
