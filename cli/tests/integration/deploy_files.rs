//! Every deployment file qmec writes passes a real validator, offline:
//! each `qmec deploy k8s` variant `kubernetes-validate --strict` (installed
//! by deploy/check/setup.sh into a cached venv), each compose file a
//! container run writes `docker-compose config`. Each validator is first
//! shown a broken file and must refuse it, so a validator that passes
//! everything fails the test. Outside CI a missing validator skips its
//! part with the reason printed; in CI (`CI=true`) it fails.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `qmec deploy k8s` variants: every option that changes the manifests.
const K8S_VARIANTS: [(&str, &[&str]); 4] = [
    ("plain", &[]),
    ("link-profile", &["--link-profile", "deploy/examples/links.toml"]),
    ("large-greedy", &["--devices", "100", "--servers", "10", "--policy", "greedy", "--slots", "50"]),
    ("namespace-image", &["--namespace", "edge", "--image", "registry.local/qmec:1.2", "--scenario", "paper-small"]),
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ sits in the repository").to_path_buf()
}

/// The validator at `path`, or `None` (with the reason printed) where it
/// may be absent: outside CI.
fn validator(path: PathBuf, install_hint: &str) -> Option<PathBuf> {
    let found = Command::new(&path).arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some(path);
    }
    let reason = format!("{} is missing ({install_hint})", path.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "in CI every validator must run: {reason}");
    eprintln!("skipped: {reason}");
    None
}

fn kubernetes_validate() -> Option<PathBuf> {
    let venv = std::env::var_os("QMEC_DEPLOY_CHECK_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/qmec/venv-deploy-check"),
        PathBuf::from,
    );
    validator(venv.join("bin/kubernetes-validate"), "run deploy/check/setup.sh")
}

fn docker_compose() -> Option<PathBuf> {
    validator(PathBuf::from("docker-compose"), "install docker-compose")
}

/// Runs `validator` with `before`, `file`, then `after`; Ok when it
/// accepts the file, else its output.
fn check(validator: &Path, before: &[&str], file: &Path, after: &[&str]) -> Result<(), String> {
    let output = Command::new(validator).args(before).arg(file).args(after).output().map_err(|e| e.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

/// A copy of `file` with `from` replaced by `to`: a broken file the
/// validator must refuse.
fn broken_copy(file: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(file).expect("generated file");
    assert!(text.contains(from), "`{from}` not in {}", file.display());
    let broken = file.with_extension("broken.yaml");
    std::fs::write(&broken, text.replacen(from, to, 1)).expect("writing the broken copy");
    broken
}

#[test]
fn every_k8s_variant_passes_kubernetes_validate_strict() {
    let Some(validate) = kubernetes_validate() else { return };
    let args = ["--strict", "--quiet"];
    let dir = tempfile::tempdir().expect("scratch folder");
    for (name, flags) in K8S_VARIANTS {
        let file = dir.path().join(format!("{name}.yaml"));
        let mut qmec = common::qmec();
        qmec.current_dir(repository()).args(["deploy", "k8s"]).args(flags).arg("--out").arg(&file);
        let output = common::run_bounded(qmec, Duration::from_secs(60));
        common::assert_success(&output, &format!("qmec deploy k8s ({name})"));
        if name == "plain" {
            // An unknown field in a pod spec: strict validation must refuse it.
            let broken = broken_copy(&file, "imagePullPolicy:", "imagePullPolicyy:");
            assert!(check(&validate, &args, &broken, &[]).is_err(), "kubernetes-validate accepted an unknown field");
        }
        if let Err(why) = check(&validate, &args, &file, &[]) {
            panic!("qmec deploy k8s ({name}) writes manifests kubernetes-validate --strict refuses:\n{why}");
        }
    }
}

/// Compose-file variants: every flag that changes a container run's file.
fn compose_variants() -> Vec<(&'static str, qmec_deploy::TestbedConfig, bool, Vec<String>)> {
    let base = qmec_deploy::TestbedConfig {
        exe: PathBuf::from("qmec"),
        scenario: "paper".into(),
        devices: Some(3),
        servers: Some(2),
        policy: "qnn".into(),
        external: Default::default(),
        model: None,
        online: true,
        seed: 1,
        slots: 100,
        slot_ms: 100.0,
        report_deadline: 0.5,
        agents_per_process: 1,
        payload_scale: 1000.0,
        early_reports: false,
        out: PathBuf::from("runs/docker"),
        metrics: None,
        security: Default::default(),
        faults: Vec::new(),
    };
    let tls: Vec<String> = ["--tls-dir", "/out/tls", "--token-file", "/out/token"].map(String::from).to_vec();
    let metrics = qmec_deploy::TestbedConfig { metrics: Some("0.0.0.0:9100".parse().expect("address")), ..base.clone() };
    let grouped = qmec_deploy::TestbedConfig { devices: Some(10), agents_per_process: 5, early_reports: true, ..base.clone() };
    vec![
        ("plain", base.clone(), false, Vec::new()),
        ("link-profile", base.clone(), true, Vec::new()),
        ("tls-token", base.clone(), false, tls.clone()),
        ("metrics", metrics.clone(), false, Vec::new()),
        ("grouped-devices", grouped, false, Vec::new()),
        ("everything", metrics, true, tls),
    ]
}

#[test]
fn every_compose_variant_passes_docker_compose_config() {
    let Some(compose) = docker_compose() else { return };
    // `-f FILE` before the subcommand: after it, docker-compose 1.29 prints
    // its usage and exits 0 whatever the file holds.
    let (before, after) = (["--log-level", "ERROR", "-f"], ["config", "--quiet"]);
    let dir = tempfile::tempdir().expect("scratch folder");
    for (name, config, userspace_links, security) in compose_variants() {
        let out_on_host = dir.path().join(name);
        let yaml = qmec_deploy::compose_yaml(&config, userspace_links, security, "qmectest", "qmec:test", &out_on_host.display().to_string())
            .unwrap_or_else(|e| panic!("compose file ({name}): {e}"));
        let file = dir.path().join(format!("{name}.yml"));
        std::fs::write(&file, yaml).expect("writing the compose file");
        if name == "plain" {
            // An unknown key in a service: docker-compose must refuse it.
            let broken = broken_copy(&file, "container_name:", "container_namee:");
            assert!(check(&compose, &before, &broken, &after).is_err(), "docker-compose accepted an unknown service key");
        }
        if let Err(why) = check(&compose, &before, &file, &after) {
            panic!("the compose file of a container run ({name}) is refused by docker-compose config:\n{why}");
        }
    }
}
