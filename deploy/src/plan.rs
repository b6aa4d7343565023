//! Which agents a testbed runs and with which arguments: one controller, S
//! server agents and the device agents, `agents_per_process` to an OS
//! process (containers and namespaces run one each, so each device has its
//! own link). Every runtime (local processes, namespaces, containers) gets
//! its argument lists here, with the run's security flags and fault flags,
//! and differs only in [`Addressing`]: loopback port 0 or fixed ports on
//! named hosts.

use crate::config::TestbedConfig;
use crate::error::DeployError;
use crate::faults;
use std::net::SocketAddr;
use std::ops::Range;

/// The controller's gRPC port inside its container or namespace.
pub const CONTROLLER_PORT: u16 = 50051;
/// Every server agent's Offload port.
pub const SERVER_PORT: u16 = 50052;
/// The controller's Prometheus port (Kubernetes only).
pub const METRICS_PORT: u16 = 9090;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Controller,
    Server(usize),
    /// A device-agent process and the devices it runs.
    Devices(Range<usize>),
}

/// One agent to start.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentPlan {
    /// `controller`, `server-S`, `device-M` or `devices-A-B`: the process,
    /// container, service or namespace name (and its records file's).
    pub name: String,
    pub role: Role,
    /// Arguments after the `qmec` binary.
    pub args: Vec<String>,
}

/// How agents find each other and where they write.
#[derive(Debug, Clone)]
pub struct Addressing {
    /// Where the controller listens.
    pub controller_listen: String,
    /// How agents reach the controller.
    pub controller_uri: String,
    /// Where each server listens.
    pub server_listen: String,
    /// How devices reach server s; none: each server advertises the
    /// address it bound (loopback, port 0).
    pub server_uris: Option<Vec<String>>,
    /// The run folder as the agents see it (`/out` in a container).
    pub out_dir: String,
    /// Devices dial through this userspace link profile (path as agents see it).
    pub device_link_profile: Option<String>,
    /// Devices' flags for links the kernel shapes (`--kernel-links IFACE`).
    pub device_link_flags: Vec<String>,
    /// `--tls-dir` / `--token-file`, paths as the agents see them.
    pub security: Vec<String>,
}

impl Addressing {
    /// Fixed ports on named hosts (containers, namespaces): the controller
    /// on `controller_host`, server s on `server_hosts[s]`.
    pub fn fixed(controller_host: &str, server_hosts: &[String], out_dir: String) -> Addressing {
        Addressing {
            controller_listen: format!("0.0.0.0:{CONTROLLER_PORT}"),
            controller_uri: format!("http://{controller_host}:{CONTROLLER_PORT}"),
            server_listen: format!("0.0.0.0:{SERVER_PORT}"),
            server_uris: Some(server_hosts.iter().map(|host| format!("http://{host}:{SERVER_PORT}")).collect()),
            out_dir,
            device_link_profile: None,
            device_link_flags: Vec::new(),
            security: Vec::new(),
        }
    }

    /// Loopback, ports picked by the kernel; the controller's URI is known
    /// once it has started.
    pub fn loopback(out_dir: String) -> Addressing {
        Addressing {
            controller_listen: "127.0.0.1:0".into(),
            controller_uri: String::new(),
            server_listen: "127.0.0.1:0".into(),
            server_uris: None,
            out_dir,
            device_link_profile: None,
            device_link_flags: Vec::new(),
            security: Vec::new(),
        }
    }

    fn records(&self, name: &str) -> String {
        format!("{}/records/{name}.json", self.out_dir)
    }
}

/// The name of the device-agent process running `devices`: also the name
/// of its certificate, when `qmec certs` wrote one for the process.
pub use qmec_security::certs::devices_name;

/// An agent of a run before its arguments are known.
#[derive(Debug)]
struct Member {
    name: String,
    role: Role,
}

/// Every agent's name and role, controller first, then servers, then
/// device processes of `per_process` devices each.
fn roles(config: &TestbedConfig, devices: usize, servers: usize) -> Vec<Member> {
    let mut roles = vec![Member { name: "controller".into(), role: Role::Controller }];
    roles.extend((0..servers).map(|s| Member { name: server_name(s), role: Role::Server(s) }));
    for range in device_processes(config, devices) {
        roles.push(Member { name: devices_name(&range), role: Role::Devices(range) });
    }
    roles
}

/// Server `server`'s agent name: its process, container, namespace and
/// records file.
pub fn server_name(server: usize) -> String {
    format!("server-{server}")
}

/// The server an agent name [`server_name`] gave belongs to, if it is one.
pub fn server_of(name: &str) -> Option<usize> {
    name.strip_prefix("server-")?.parse().ok()
}

/// The devices of each device process, in plan order.
pub fn device_processes(config: &TestbedConfig, devices: usize) -> Vec<Range<usize>> {
    let per_process = config.agents_per_process.max(1);
    (0..devices).step_by(per_process).map(|first| first..(first + per_process).min(devices)).collect()
}

/// Every agent's name, in plan order (fault schedules name these).
pub fn names(config: &TestbedConfig, devices: usize, servers: usize) -> Vec<String> {
    roles(config, devices, servers).into_iter().map(|member| member.name).collect()
}

/// Every agent of a run, controller first, then servers, then devices.
/// The controller's URI in `at` must be known by the time the servers and
/// devices start; the local launcher plans again once it is.
pub fn agents(config: &TestbedConfig, devices: usize, servers: usize, at: &Addressing) -> Result<Vec<AgentPlan>, DeployError> {
    let roles = roles(config, devices, servers);
    let names: Vec<String> = roles.iter().map(|member| member.name.clone()).collect();
    let metrics = metrics_addrs(config.metrics, roles.len())?;
    Ok(roles
        .into_iter()
        .enumerate()
        .map(|(i, Member { name, role })| {
            let mut args = match &role {
                Role::Controller => controller_args(config, devices, servers, at),
                Role::Server(server) => server_args(*server, at),
                Role::Devices(range) => device_args(config, range, at),
            };
            args.extend(at.security.iter().cloned());
            args.extend(faults::agent_args(&config.faults, &name, &names, config.slot_ms));
            if let Some(addr) = metrics.get(i) {
                args.extend([s(&"--metrics"), s(addr)]);
            }
            args.extend([s(&"--records"), at.records(&name)]);
            AgentPlan { name, role, args }
        })
        .collect())
}

/// The metrics address of each of `agents` agents: `first`, then the
/// ports after it.
fn metrics_addrs(first: Option<SocketAddr>, agents: usize) -> Result<Vec<SocketAddr>, DeployError> {
    let Some(first) = first else { return Ok(Vec::new()) };
    let last = u16::try_from(agents.saturating_sub(1)).ok().and_then(|n| first.port().checked_add(n));
    match last {
        Some(last) if first.port() != 0 => Ok((first.port()..=last).map(|port| SocketAddr::new(first.ip(), port)).collect()),
        _ => Err(DeployError::Metrics {
            addr: first,
            reason: format!("{agents} agents need {agents} ports from a fixed one (not 0) up to 65535"),
        }),
    }
}

fn s(value: &dyn ToString) -> String {
    value.to_string()
}

fn controller_args(config: &TestbedConfig, devices: usize, servers: usize, at: &Addressing) -> Vec<String> {
    let mut args = vec![
        s(&"agent"), s(&"controller"),
        s(&"--scenario"), config.scenario.clone(),
        s(&"--devices"), s(&devices),
        s(&"--servers"), s(&servers),
        s(&"--policy"), config.policy.clone(),
        s(&"--online"), s(&config.online),
        s(&"--seed"), s(&config.seed),
        s(&"--slots"), s(&config.slots),
        s(&"--slot-ms"), s(&config.slot_ms),
        s(&"--report-deadline"), s(&config.report_deadline),
        s(&"--listen"), at.controller_listen.clone(),
    ];
    if let Some(model) = &config.model {
        args.extend([s(&"--model"), model.display().to_string()]);
    }
    if qmec_controller::external::address(&config.policy).is_some() {
        args.extend([s(&"--external-fallback"), config.external.fallback.clone()]);
        args.extend([s(&"--external-deadline"), s(&config.external.deadline)]);
    }
    args
}

fn server_args(server: usize, at: &Addressing) -> Vec<String> {
    let mut args = vec![
        s(&"agent"), s(&"server"),
        s(&"--id"), s(&server),
        s(&"--controller"), at.controller_uri.clone(),
        s(&"--listen"), at.server_listen.clone(),
    ];
    if let Some(uri) = at.server_uris.as_ref().and_then(|uris| uris.get(server)) {
        args.extend([s(&"--advertise"), uri.clone()]);
    }
    args
}

/// The arguments every replica of a replicated device service gets (Docker
/// Swarm): all `devices`, of which each replica runs the
/// `agents_per_process` its task slot picks, recording to the file named
/// after them. Per-process fault and metrics flags cannot differ between
/// replicas: the swarm backend refuses them.
pub fn replicated_device_args(config: &TestbedConfig, devices: usize, at: &Addressing) -> Vec<String> {
    let mut args = device_args(config, &(0..devices), at);
    args.extend([s(&"--devices-per-slot"), s(&config.agents_per_process.max(1))]);
    args.extend(at.security.iter().cloned());
    args.extend([s(&"--records"), at.records(qmec_device_agent::DEVICES_PLACEHOLDER)]);
    args
}

fn device_args(config: &TestbedConfig, devices: &Range<usize>, at: &Addressing) -> Vec<String> {
    let ids = if devices.len() == 1 { s(&devices.start) } else { format!("{}..{}", devices.start, devices.end) };
    let mut args = vec![
        s(&"agent"), s(&"device"),
        s(&"--controller"), at.controller_uri.clone(),
        s(&"--devices"), ids,
        s(&"--payload-scale"), s(&config.payload_scale),
    ];
    if config.early_reports {
        args.push(s(&"--early-reports"));
    }
    if let Some(profile) = &at.device_link_profile {
        args.extend([s(&"--link-profile"), profile.clone()]);
    }
    args.extend(at.device_link_flags.iter().cloned());
    args
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixed() -> Addressing {
        let mut at = Addressing::fixed("controller", &["server-0".into(), "server-1".into()], "/out".into());
        at.device_link_profile = Some("/out/link-profile.toml".into());
        at.device_link_flags = vec!["--kernel-links".into(), "eth0".into()];
        at
    }

    #[test]
    fn every_agent_has_a_fixed_port_and_its_own_records() {
        let config = crate::config::tests::config();
        let plans = agents(&config, 3, 2, &fixed()).unwrap();
        assert_eq!(plans.len(), 6);
        let joined = |p: &AgentPlan| p.args.join(" ");
        assert!(joined(&plans[0]).contains("--listen 0.0.0.0:50051"));
        assert!(joined(&plans[2]).contains("--advertise http://server-1:50052"));
        assert!(joined(&plans[5]).contains("--controller http://controller:50051 --devices 2"));
        assert!(joined(&plans[5]).contains("--link-profile /out/link-profile.toml --kernel-links eth0"));
        assert!(joined(&plans[5]).ends_with("--records /out/records/device-2.json"));
        let mut records: Vec<String> = plans.iter().map(|p| p.args[p.args.iter().position(|a| a == "--records").unwrap() + 1].clone()).collect();
        records.dedup();
        assert_eq!(records.len(), 6);
    }

    #[test]
    fn devices_share_processes_and_every_agent_gets_security_and_fault_flags() {
        let mut config = crate::config::tests::config();
        config.agents_per_process = 2;
        config.faults = faults::parse("late:device-2@4,slow:server-1@3").unwrap();
        let mut at = Addressing::loopback("/runs/x".into());
        at.controller_uri = "http://127.0.0.1:4000".into();
        at.security = vec!["--token-file".into(), "/runs/x/token".into()];
        let plans = agents(&config, 3, 2, &at).unwrap();
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["controller", "server-0", "server-1", "devices-0-1", "device-2"]);
        assert_eq!(plans[3].role, Role::Devices(0..2));
        let joined = |p: &AgentPlan| p.args.join(" ");
        assert!(joined(&plans[3]).contains("--devices 0..2"));
        assert!(!joined(&plans[1]).contains("--advertise"), "loopback servers advertise what they bound");
        assert!(plans.iter().all(|p| joined(p).contains("--token-file /runs/x/token")));
        assert!(joined(&plans[4]).contains("--report-delay-ms 200 --report-delay-from 4"));
        assert!(joined(&plans[2]).contains("--result-delay-ms 75 --result-delay-from 3"));
        assert!(!joined(&plans[3]).contains("--report-delay-ms"));
    }

    #[test]
    fn every_agent_serves_metrics_on_the_next_port() {
        let mut config = crate::config::tests::config();
        config.metrics = Some("127.0.0.1:9100".parse().unwrap());
        let plans = agents(&config, 3, 2, &fixed()).unwrap();
        for (i, plan) in plans.iter().enumerate() {
            assert!(plan.args.join(" ").contains(&format!("--metrics 127.0.0.1:{}", 9100 + i)), "{:?}", plan.args);
        }
        for bad in ["127.0.0.1:0", "127.0.0.1:65533"] {
            config.metrics = Some(bad.parse().unwrap());
            let error = agents(&config, 3, 2, &fixed()).unwrap_err().to_string();
            assert!(error.starts_with(&format!("--metrics {bad}: 6 agents need 6 ports")), "{error}");
        }
    }
}
