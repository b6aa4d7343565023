//! `qmec testbed --runtime swarm` end to end: a Docker Swarm stack (a
//! single-node swarm made and left by the command when the node is in
//! none) with devices as one replicated service, under mutual TLS and a
//! token passed as swarm secrets, with a server stopped and one killed
//! through the engine. Skipped with the reason where Docker Engine is
//! missing, unless `CI` is set, where that is a failure.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

fn docker_available() -> Result<(), String> {
    let out = Command::new("docker").args(["info", "--format", "{{.Swarm.LocalNodeState}}"]).output().map_err(|e| format!("docker: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("docker info: {}", String::from_utf8_lossy(&out.stderr).trim())),
    }
}

fn swarm_state() -> String {
    let out = Command::new("docker").args(["info", "--format", "{{.Swarm.LocalNodeState}}"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
// Out of the default run until a flake is understood: in one of two
// clean-clone CI runs the engine never started the controller's task within
// 90 s (it passes in 12-18 s alone and passed in the other run). Run it with
// `cargo nextest run -p qmec-cli --test testbed_swarm --run-ignored all`.
#[ignore = "flaky under CI load: the controller's task was once not started in 90 s; run with --run-ignored"]
fn swarm_stack_with_replicated_devices_secrets_and_faults_conserves_its_tasks() {
    match docker_available() {
        Ok(()) => {}
        Err(reason) if in_ci() => panic!("CI is set but this machine cannot run the test: {reason}"),
        Err(reason) => return eprintln!("skipped: {reason}"),
    }
    let before = swarm_state();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let qmec = env!("CARGO_BIN_EXE_qmec");
    let made = Command::new(qmec).args(["certs", "--devices", "20", "--servers", "3", "--agents-per-process", "10", "--out"]).arg(&certs).output().unwrap();
    assert!(made.status.success(), "qmec certs: {}", String::from_utf8_lossy(&made.stderr));
    let out = dir.path().join("run");
    let mut cmd = Command::new(qmec);
    cmd.args(["testbed", "--runtime", "swarm", "--scenario", "paper-small", "--devices", "20", "--servers", "3"]);
    cmd.args(["--agents-per-process", "10", "--slots", "60", "--slot-ms", "50", "--report-deadline", "0.7", "--deadline-s", "150"]);
    cmd.args(["--faults", "stop:server-1@10+5,kill:server-2@30", "--tls-dir"]).arg(&certs);
    cmd.arg("--token-file").arg(certs.join("token")).arg("--out").arg(&out);
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "qmec testbed --runtime swarm failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("conservation: holds") && stdout.contains("agent lost: server-2"), "{stdout}");
    let stack = std::fs::read_to_string(out.join("stack.yml")).unwrap();
    assert!(stack.contains("QMEC_DEVICE_SLOT: '{{.Task.Slot}}'") && stack.contains("replicas: 2"), "{stack}");
    assert!(stack.contains("target: /run/secrets/tls/ca.pem") && stack.contains("target: /run/secrets/token"), "{stack}");
    for process in ["devices-0-9", "devices-10-19", "controller", "server-0", "server-1"] {
        assert!(out.join("records").join(format!("{process}.json")).is_file(), "no records of {process}");
    }
    // Whatever the command made, it took down again.
    assert_eq!(swarm_state(), before, "the node's swarm state changed");
    let stacks = ["ps", "-a", "--filter", "label=com.docker.stack.namespace", "--format", "{{.Label \"com.docker.stack.namespace\"}}"];
    let left = Command::new("docker").args(stacks).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!left.lines().any(|stack| stack.starts_with("qmec")), "containers of a stack left behind: {left}");
}
