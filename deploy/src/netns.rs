//! A testbed in network namespaces (root, no Docker): one namespace per
//! agent, each with an `eth0` veth whose peer sits on a bridge inside a hub
//! namespace, so nothing is added to the host's own network. Links are
//! emulated with netem on both veth ends (`up` on the agent's `eth0`,
//! `down` on the hub side) or by the device agents in userspace. Agents are
//! this binary under `ip netns exec`; namespaces go when the run ends,
//! also on failure.

use crate::cluster::{self, ClusterError, ClusterOptions, ClusterOutcome, Emulation};
use crate::faults;
use crate::local::{DeployError, TestbedConfig};
use crate::outcome;
use crate::plan::{self, Addressing, Role};
use crate::runtime::{LocalProcesses, Runtime};
use crate::shell::{self, ShellError};
use crate::supervise;
use qmec_linkem::LinkProfile;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(10);

/// The namespaces of one run, deleted on drop (which also deletes their veths).
#[derive(Debug, Default)]
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.0.iter().rev() {
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

pub async fn run(
    config: &TestbedConfig,
    options: &ClusterOptions,
    profile: Option<&LinkProfile>,
) -> Result<ClusterOutcome, ClusterError> {
    available().await.map_err(ClusterError::Unavailable)?;
    let cluster::Prepared { scenario, emulation, out } = cluster::prepare(config, options, profile)?;
    let (devices, servers) = (scenario.devices, scenario.servers);
    if 1 + servers + devices > 250 {
        return Err(ClusterError::Unavailable(format!("{} agents do not fit one /24", 1 + servers + devices)));
    }
    // Agent i (plan order) is 10.77.0.(i + 1).
    let ip_of = |i: usize| format!("10.77.0.{}", i + 1);
    let mut at = Addressing::fixed(&ip_of(0), &(0..servers).map(|s| ip_of(1 + s)).collect::<Vec<_>>(), out.display().to_string());
    at.device_link_profile = matches!(emulation, Emulation::Userspace { .. })
        .then(|| out.join("link-profile.toml").display().to_string());
    // Namespaces share this host's file system: the files are where they are.
    at.security = crate::local::security_args(config, &out, None)?;
    let plans = plan::agents(config, devices, servers, &at)?;
    let slot = Duration::from_secs_f64(config.slot_ms / 1e3);
    let actions = faults::actions(&config.faults, &plan::names(config, devices, servers), slot).map_err(DeployError::from)?;

    let id = run_id();
    let hub = format!("{id}-hub");
    let mut namespaces = Namespaces::default();
    ip(&["netns", "add", &hub]).await?;
    namespaces.0.push(hub.clone());
    ip(&["-n", &hub, "link", "set", "lo", "up"]).await?;
    ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]).await?;
    ip(&["-n", &hub, "link", "set", "br0", "up"]).await?;
    let mut agent_ns = Vec::with_capacity(plans.len());
    for (i, plan) in plans.iter().enumerate() {
        let ns = format!("{id}-{}", plan.name);
        ip(&["netns", "add", &ns]).await?;
        namespaces.0.push(ns.clone());
        let peer = format!("p{i}");
        ip(&["-n", &hub, "link", "add", &peer, "type", "veth", "peer", "name", "eth0", "netns", &ns]).await?;
        ip(&["-n", &hub, "link", "set", &peer, "master", "br0", "up"]).await?;
        ip(&["-n", &ns, "addr", "add", &format!("{}/24", ip_of(i)), "dev", "eth0"]).await?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"]).await?;
        ip(&["-n", &ns, "link", "set", "lo", "up"]).await?;
        if let (Emulation::Netem, Some(profile)) = (&emulation, profile)
            && let Some(link) = cluster::link_of(&plan.role, profile)
        {
            cluster::apply_netem(&["ip", "netns", "exec", &ns], "eth0", &link.up).await?;
            cluster::apply_netem(&["ip", "netns", "exec", &hub], &peer, &link.down).await?;
        }
        agent_ns.push(ns);
    }

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
    // Started last: the controller.
    if let Some(controller) = agents.last_mut() {
        supervise::wait_for_run_start(controller, crate::local::JOIN_LIMIT).await;
    }
    let mut start_again = supervise::start_again(&plans, |log, i| Ok(runtime.start(log, &exec(i))?));
    let killed = supervise::supervise(&mut agents, actions, &mut start_again, Some(options.deadline)).await?;
    drop(agents);
    drop(namespaces);
    let outcome = outcome::finish(config, scenario, &out, &plans, &killed)?;
    Ok(ClusterOutcome { outcome, emulation })
}
