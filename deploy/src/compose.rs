//! The docker-compose file of a container testbed: one service per agent
//! (its command is the agent's arguments; the image's entry point is
//! `qmec`), one bridge network, the run folder bind-mounted at `/out` so
//! every container's records land on the host. Written to the run folder so
//! users can edit and reuse it (`docker-compose -f … up`).

use crate::plan::AgentPlan;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The network every service joins.
pub const NETWORK: &str = "qmec";
/// Where the run folder is mounted inside each container.
pub const OUT_DIR: &str = "/out";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComposeFile {
    pub version: String,
    pub services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, Network>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub image: String,
    pub container_name: String,
    pub hostname: String,
    pub command: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub driver: String,
}

/// The container name of `service` in compose project `project`.
pub fn container(project: &str, service: &str) -> String {
    format!("{project}-{service}")
}

pub fn build(project: &str, image: &str, out_on_host: &str, plans: &[AgentPlan]) -> ComposeFile {
    let services = plans
        .iter()
        .map(|plan| {
            let service = Service {
                image: image.to_string(),
                container_name: container(project, &plan.name),
                hostname: plan.name.clone(),
                command: plan.args.clone(),
                volumes: vec![format!("{out_on_host}:{OUT_DIR}")],
                networks: vec![NETWORK.to_string()],
                labels: BTreeMap::from([("qmec.run".to_string(), project.to_string())]),
            };
            (plan.name.clone(), service)
        })
        .collect();
    ComposeFile {
        version: "2.4".into(),
        services,
        networks: BTreeMap::from([(NETWORK.to_string(), Network { driver: "bridge".into() })]),
    }
}

pub fn to_yaml(file: &ComposeFile) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(file)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plan::{Addressing, agents};

    #[test]
    fn one_service_per_agent_on_one_network_with_the_run_folder_mounted() {
        let at = Addressing::fixed("controller", &["server-0".into(), "server-1".into()], OUT_DIR.into());
        let plans = agents(&crate::config::tests::config(), 3, 2, &at).unwrap();
        let file = build("qmecrun", "qmec:abc", "/tmp/run", &plans);
        let yaml = to_yaml(&file).unwrap();
        let back: ComposeFile = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, file);
        assert_eq!(back.services.len(), 6);
        let device = &back.services["device-2"];
        assert_eq!(device.container_name, "qmecrun-device-2");
        assert_eq!(device.volumes, ["/tmp/run:/out"]);
        assert!(device.command.windows(2).any(|w| w == ["--controller", "http://controller:50051"]));
        assert!(back.services.contains_key("controller") && back.networks.contains_key(NETWORK));
    }
}
