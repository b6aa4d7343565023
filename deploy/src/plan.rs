//! Which agents a container, namespace or Kubernetes testbed runs and with
//! which arguments: one controller, S server agents and one device agent
//! per device (each in its own container or namespace, so each has its own
//! link), addressed by name or IP on fixed ports instead of loopback port 0.

use crate::local::TestbedConfig;

/// The controller's gRPC port inside its container or namespace.
pub const CONTROLLER_PORT: u16 = 50051;
/// Every server agent's Offload port.
pub const SERVER_PORT: u16 = 50052;
/// The controller's Prometheus port (Kubernetes only).
pub const METRICS_PORT: u16 = 9090;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Controller,
    Server(usize),
    Device(usize),
}

/// One agent to start.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentPlan {
    /// `controller`, `server-S`, `device-M`: container, service or namespace name.
    pub name: String,
    pub role: Role,
    /// Arguments after the `qmec` binary.
    pub args: Vec<String>,
}

/// How agents find each other and where they write.
#[derive(Debug, Clone)]
pub struct Addressing {
    /// Host the controller is reached at (a DNS name or an IP).
    pub controller_host: String,
    /// Host of each server s.
    pub server_hosts: Vec<String>,
    /// Prefix of host-side paths as the agents see them (`/out` in a container).
    pub out_dir: String,
    /// Devices dial through this userspace link profile (path as agents see it).
    pub device_link_profile: Option<String>,
}

impl Addressing {
    pub fn controller_uri(&self) -> String {
        format!("http://{}:{CONTROLLER_PORT}", self.controller_host)
    }
}

/// Every agent of a run, controller first, then servers, then devices.
pub fn agents(config: &TestbedConfig, devices: usize, servers: usize, at: &Addressing) -> Vec<AgentPlan> {
    let s = |v: &dyn ToString| v.to_string();
    let records = |name: &str| format!("{}/records/{name}.json", at.out_dir);
    let mut plans = Vec::with_capacity(1 + servers + devices);
    let mut controller = vec![
        s(&"agent"), s(&"controller"),
        s(&"--scenario"), config.scenario.clone(),
        s(&"--devices"), s(&devices),
        s(&"--servers"), s(&servers),
        s(&"--policy"), config.policy.clone(),
        s(&"--seed"), s(&config.seed),
        s(&"--slots"), s(&config.slots),
        s(&"--slot-ms"), s(&config.slot_ms),
        s(&"--report-deadline"), s(&config.report_deadline),
        s(&"--listen"), format!("0.0.0.0:{CONTROLLER_PORT}"),
        s(&"--records"), records("controller"),
    ];
    if let Some(model) = &config.model {
        controller.extend([s(&"--model"), model.display().to_string()]);
    }
    if let Some(metrics) = &config.metrics {
        controller.extend([s(&"--metrics"), metrics.clone()]);
    }
    plans.push(AgentPlan { name: "controller".into(), role: Role::Controller, args: controller });
    for server in 0..servers {
        let name = format!("server-{server}");
        let args = vec![
            s(&"agent"), s(&"server"),
            s(&"--id"), s(&server),
            s(&"--controller"), at.controller_uri(),
            s(&"--listen"), format!("0.0.0.0:{SERVER_PORT}"),
            s(&"--advertise"), format!("http://{}:{SERVER_PORT}", at.server_hosts.get(server).map_or("127.0.0.1", String::as_str)),
            s(&"--records"), records(&name),
        ];
        plans.push(AgentPlan { name, role: Role::Server(server), args });
    }
    for device in 0..devices {
        let name = format!("device-{device}");
        let mut args = vec![
            s(&"agent"), s(&"device"),
            s(&"--controller"), at.controller_uri(),
            s(&"--devices"), s(&device),
            s(&"--payload-scale"), s(&config.payload_scale),
            s(&"--records"), records(&name),
        ];
        if config.early_reports {
            args.push(s(&"--early-reports"));
        }
        if let Some(profile) = &at.device_link_profile {
            args.extend([s(&"--link-profile"), profile.clone()]);
        }
        plans.push(AgentPlan { name, role: Role::Device(device), args });
    }
    plans
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_has_a_fixed_port_and_its_own_records() {
        let config = crate::cluster::tests::config();
        let at = Addressing {
            controller_host: "controller".into(),
            server_hosts: vec!["server-0".into(), "server-1".into()],
            out_dir: "/out".into(),
            device_link_profile: Some("/out/link-profile.toml".into()),
        };
        let plans = agents(&config, 3, 2, &at);
        assert_eq!(plans.len(), 6);
        let joined = |p: &AgentPlan| p.args.join(" ");
        assert!(joined(&plans[0]).contains("--listen 0.0.0.0:50051"));
        assert!(joined(&plans[2]).contains("--advertise http://server-1:50052"));
        assert!(joined(&plans[5]).contains("--controller http://controller:50051 --devices 2"));
        assert!(joined(&plans[5]).ends_with("--link-profile /out/link-profile.toml"));
        let mut records: Vec<String> = plans.iter().map(|p| p.args[p.args.iter().position(|a| a == "--records").unwrap() + 1].clone()).collect();
        records.dedup();
        assert_eq!(records.len(), 6);
    }
}
