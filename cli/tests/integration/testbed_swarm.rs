//! `qmec testbed --runtime swarm` end to end: a Docker Swarm stack (a
//! single-node swarm made and left by the command when the node is in
//! none) with devices as one replicated service, under mutual TLS and a
//! token passed as swarm secrets, with every fault a stack takes carried out
//! through the engine: a server stopped, one cut off the overlay network and
//! joined again, the controller's task replaced by a new one, a server
//! killed. Skipped with the reason where Docker Engine is missing, unless
//! `CI` is set, where that is a failure. It runs alone among the tests that
//! use the engine (the `docker-engine` group in `.config/nextest.toml`).

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
    cmd.args(["--agents-per-process", "10", "--slots", "200", "--slot-ms", "50", "--report-deadline", "0.7", "--deadline-s", "150"]);
    let faults = "stop:server-1@10+5,partition:server-0@30+20,restart:controller@70+20,kill:server-2@150";
    cmd.args(["--faults", faults, "--tls-dir"]).arg(&certs);
    cmd.arg("--token-file").arg(certs.join("token")).arg("--out").arg(&out);
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "qmec testbed --runtime swarm failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("conservation: holds") && stdout.contains("agent lost: server-2"), "{stdout}");
    // Carried out through the engine, each said so.
    for said in ["link cut", "link up again", "starting a killed agent again"] {
        assert!(stderr.contains(said), "no `{said}` in the launcher's log:\n{stderr}");
    }
    let figures: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("testbed.json")).unwrap()).unwrap();
    // The killed server is lost for good; the restarted controller is not,
    // and its records start where its new task went on.
    let lost: Vec<&str> = figures["lost_agents"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(lost, ["server-2"], "{figures}");
    let first = figures["controller_first_slot"].as_u64().unwrap();
    assert!(first > 0, "the controller's records start at slot 0: it was not restarted");
    assert_eq!(figures["slots_run"].as_u64(), Some(200));
    assert!(out.join("logs/controller.restart-1.log").is_file(), "no log of the restarted controller");
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
    // The image is per binary build; do not leave one per build behind.
    if let Ok(tag) = qmec_deploy::image::tag_for(std::path::Path::new(qmec)) {
        let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    }
}
