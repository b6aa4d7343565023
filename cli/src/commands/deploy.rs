//! `qmec deploy k8s`: Kubernetes manifests for a testbed over several
//! machines (see `qmec_deploy::k8s` for what they contain).

use crate::output::say;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct K8sArgs {
    #[arg(long, default_value = "paper")]
    scenario: String,
    #[arg(long)]
    devices: Option<usize>,
    #[arg(long)]
    servers: Option<usize>,
    /// Policy by name; `qnn` (the default) runs the shipped trained model.
    #[arg(long, default_value = qmec_catalog::DEFAULT_POLICY)]
    policy: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 1000)]
    slots: u64,
    #[arg(long, default_value_t = 100.0)]
    slot_ms: f64,
    #[arg(long, default_value_t = 0.5)]
    report_deadline: f64,
    #[arg(long, default_value_t = 1000.0)]
    payload_scale: f64,
    /// The image every pod runs (load it on the nodes, e.g. from `qmec image build`).
    #[arg(long, default_value = "qmec:latest")]
    image: String,
    #[arg(long, default_value = "qmec")]
    namespace: String,
    /// A link profile for the device agents' userspace emulator.
    #[arg(long)]
    link_profile: Option<PathBuf>,
    /// Output file; `-` prints to stdout. A folder (an existing one, or a
    /// path ending in `/`) is created if missing and gets `qmec-k8s.yaml`.
    #[arg(long, default_value = MANIFEST_FILE)]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write Kubernetes manifests (ConfigMap, controller Deployment and
    /// Service, server and device StatefulSets).
    K8s(K8sArgs),
}

pub fn run(command: Command) -> Result<()> {
    let Command::K8s(args) = command;
    let mut scenario = super::load_scenario(&args.scenario)?;
    scenario.devices = args.devices.unwrap_or(scenario.devices);
    scenario.servers = args.servers.unwrap_or(scenario.servers);
    scenario.validate()?;
    let link_profile = match &args.link_profile {
        Some(path) => Some(qmec_linkem::LinkProfile::load(path)?.to_toml()),
        None => None,
    };
    let options = qmec_deploy::k8s::K8sOptions {
        namespace: args.namespace,
        image: args.image,
        policy: args.policy,
        seed: args.seed,
        slots: args.slots,
        slot_ms: args.slot_ms,
        report_deadline: args.report_deadline,
        payload_scale: args.payload_scale,
        link_profile,
    };
    let yaml = qmec_deploy::k8s::to_yaml(&qmec_deploy::k8s::manifests(&scenario, &options)?)?;
    if args.out.as_os_str() == "-" {
        crate::output::print(&yaml)?;
        return Ok(());
    }
    let path = manifest_path(&args.out);
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    say!("wrote {}", path.display())
}

/// The manifest file `--out` names: itself, or `qmec-k8s.yaml` inside it
/// when it is a folder (one that exists, or a path written with a trailing
/// `/`, as in `--out k8s/`).
fn manifest_path(out: &Path) -> PathBuf {
    let names_folder = out.is_dir() || out.as_os_str().to_string_lossy().ends_with(std::path::MAIN_SEPARATOR);
    if names_folder { out.join(MANIFEST_FILE) } else { out.to_path_buf() }
}

/// The file name a folder `--out` gets.
const MANIFEST_FILE: &str = "qmec-k8s.yaml";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::manifest_path;
    use std::path::Path;

    #[test]
    fn a_folder_out_gets_the_manifest_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(manifest_path(dir.path()), dir.path().join("qmec-k8s.yaml"));
        assert_eq!(manifest_path(Path::new("k8s/")), Path::new("k8s/qmec-k8s.yaml"));
        assert_eq!(manifest_path(Path::new("k8s/all.yaml")), Path::new("k8s/all.yaml"));
    }
}
