//! Security with the real binaries on loopback: `qmec certs` then a whole
//! testbed under mutual TLS and a bearer token completes and conserves every
//! task; a controller under TLS and a token admits no agent that lacks the
//! right certificate or token (it times out waiting for them), nor a device
//! whose certificate names another device, and an agent naming an id the
//! run does not have is refused; `qmec certs` refuses a folder holding an
//! earlier run's files unless `--force`, and writes keys owner-only. Every
//! child is bounded and killed by the test.

#![forbid(unsafe_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn qmec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qmec"))
}

/// A child that is killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(mut command: Command, log: &Path) -> Killed {
    let log = std::fs::File::create(log).expect("log file");
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    Killed(command.spawn().expect("starting qmec"))
}

/// Starts a controller (logging to `dir/controller.log`) and returns it
/// with the URI from its listening line.
fn spawn_controller(command: Command, dir: &Path) -> (Killed, String) {
    let mut controller = spawn(command, &dir.join("controller.log"));
    let stdout = controller.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("listening line");
    let addr = line.trim().strip_prefix("qmec-listening ").expect("a listening line").to_string();
    (controller, format!("http://{addr}"))
}

/// Waits for the child to exit within `timeout`; its status, or None.
fn wait(child: &mut Killed, timeout: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Some(status) = child.0.try_wait().expect("waiting") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn certs(dir: &Path, devices: usize, servers: usize) {
    certs_per_process(dir, devices, servers, 1);
}

fn certs_per_process(dir: &Path, devices: usize, servers: usize, per_process: usize) {
    let status = qmec()
        .args(["certs", "--devices", &devices.to_string(), "--servers", &servers.to_string()])
        .args(["--agents-per-process", &per_process.to_string(), "--out"])
        .arg(dir)
        .status()
        .expect("qmec certs");
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn certs_into_a_folder_with_earlier_files_is_refused_without_force_and_writes_keys_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("ca.key");
    std::fs::write(&key, "planted").expect("planting");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let command = || {
        let mut command = qmec();
        command.args(["certs", "--devices", "1", "--servers", "1", "--out"]).arg(dir.path());
        command
    };
    let refused = command().output().expect("qmec certs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains(&key.display().to_string()), "{stderr}");
    assert!(command().arg("--force").status().expect("qmec certs --force").success());
    assert_eq!(std::fs::metadata(&key).expect("ca.key").permissions().mode() & 0o777, 0o600);
    assert_ne!(std::fs::read_to_string(&key).expect("ca.key"), "planted");
}

/// Runs a testbed of 3 devices and 2 servers under mutual TLS and the
/// token in `tls` with `extra` flags; returns its run folder once it
/// succeeded and conserved its tasks.
fn secure_testbed(dir: &Path, tls: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("run");
    let mut command = qmec();
    command.args(["testbed", "--scenario", "paper-small", "--devices", "3", "--servers", "2", "--slots", "60", "--slot-ms", "20"]);
    command.args(extra).arg("--tls-dir").arg(tls).arg("--token-file").arg(tls.join("token")).arg("--out").arg(&out);
    // The device agents say which certificates they use at info level.
    command.env("RUST_LOG", "warn,qmec_device_agent=info");
    let mut child = spawn(command, &dir.join("testbed.log"));
    let status = wait(&mut child, Duration::from_secs(60)).expect("the secure testbed finished within 60 s");
    let log = std::fs::read_to_string(dir.join("testbed.log")).unwrap_or_default();
    assert!(status.success(), "qmec testbed failed: {log}");
    let summary = json(&out.join("summary.json"));
    let tasks = &summary["tasks"];
    let arrived = tasks["arrived"].as_u64().expect("arrived");
    let completed = tasks["completed"].as_u64().expect("completed");
    let queued = tasks["queued"].as_u64().expect("queued");
    let dropped: u64 = tasks["dropped"].as_object().expect("dropped").values().filter_map(Value::as_u64).sum();
    assert!(completed > 0, "no task completed under TLS");
    assert_eq!(arrived, completed + queued + dropped, "tasks not conserved: {tasks}");
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("reading json")).expect("parsing json")
}

#[test]
fn a_testbed_under_mutual_tls_and_a_token_completes_and_conserves_tasks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("certs");
    certs(&tls, 3, 2);
    let out = secure_testbed(dir.path(), &tls, &[]);
    let figures = json(&out.join("testbed.json"));
    assert_eq!(figures["invalid_messages"].as_u64(), Some(0));
    // No agent's message was refused on the way.
    let controller_log = std::fs::read_to_string(out.join("logs/controller.log")).unwrap_or_default();
    assert!(!controller_log.contains("invalid"), "{controller_log}");
}

/// With a certificate for each device process (`qmec certs
/// --agents-per-process`), a process's devices share one identity and its
/// connections, and the controller and servers still check that the
/// certificate names the device in each hello.
#[test]
fn a_device_process_with_one_certificate_shares_it_among_its_devices() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("certs");
    certs_per_process(&tls, 3, 2, 3);
    assert!(tls.join("devices-0-2.pem").exists(), "no process certificate");
    let out = secure_testbed(dir.path(), &tls, &["--agents-per-process", "3"]);
    let log = std::fs::read_to_string(out.join("logs/devices-0-2.log")).unwrap_or_default();
    assert!(log.contains("share this process's certificate"), "{log}");
}

#[test]
fn agents_without_the_right_certificate_or_token_never_join() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("certs");
    let foreign = dir.path().join("foreign");
    certs(&tls, 1, 1);
    certs(&foreign, 1, 1);
    let mut command = qmec();
    command.args(["agent", "controller", "--scenario", "paper-small", "--devices", "1", "--servers", "1"]);
    command.args(["--slots", "5", "--slot-ms", "20", "--join-timeout-s", "6", "--tls-dir"]).arg(&tls);
    command.arg("--token-file").arg(tls.join("token"));
    let (mut controller, uri) = spawn_controller(command, dir.path());

    // Right certificate, foreign token.
    let mut command = qmec();
    command.args(["agent", "server", "--id", "0", "--controller", &uri, "--tls-dir"]).arg(&tls);
    command.arg("--token-file").arg(foreign.join("token"));
    let server_log = dir.path().join("server.log");
    let _server = spawn(command, &server_log);
    // Right token, certificate from another CA.
    let mut command = qmec();
    command.args(["agent", "device", "--devices", "0", "--controller", &uri, "--tls-dir"]).arg(&foreign);
    command.arg("--token-file").arg(tls.join("token"));
    let _stranger = spawn(command, &dir.path().join("stranger.log"));
    // Right token, no TLS at all.
    let mut command = qmec();
    command.args(["agent", "device", "--devices", "0", "--controller", &uri, "--token-file"]).arg(tls.join("token"));
    let _plain = spawn(command, &dir.path().join("plain.log"));

    let status = wait(&mut controller, Duration::from_secs(20)).expect("the controller gave up within 20 s");
    assert!(!status.success(), "the controller ran a run with agents it should have refused");
    let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default();
    assert!(log.contains("only 0/1 devices and 0/1 servers joined"), "{log}");
    let server = std::fs::read_to_string(&server_log).unwrap_or_default();
    assert!(server.contains("wrong bearer token"), "the server agent was not told why: {server}");
}

#[test]
fn an_unknown_device_id_is_refused_by_the_controller() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = qmec();
    command.args(["agent", "controller", "--scenario", "paper-small", "--devices", "1", "--servers", "1"]);
    command.args(["--slots", "5", "--slot-ms", "20", "--join-timeout-s", "5"]);
    let (mut controller, uri) = spawn_controller(command, dir.path());
    let mut command = qmec();
    command.env("RUST_LOG", "debug").args(["agent", "device", "--devices", "7", "--controller", &uri]);
    let device_log = dir.path().join("device.log");
    let _device = spawn(command, &device_log);
    let status = wait(&mut controller, Duration::from_secs(20)).expect("the controller gave up within 20 s");
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default();
    assert!(log.contains("only 0/1 devices"), "{log}");
    let device = std::fs::read_to_string(&device_log).unwrap_or_default();
    assert!(device.contains("unknown id 7 (the run has 1)"), "{device}");
}

/// Under TLS a session's hello must name the agent its certificate names:
/// device 1 presenting device 0's (valid) certificate is refused.
#[test]
fn a_device_certificate_cannot_speak_for_another_device() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("certs");
    certs(&tls, 2, 1);
    let borrowed = dir.path().join("borrowed");
    std::fs::create_dir_all(&borrowed).expect("folder");
    for file in std::fs::read_dir(&tls).expect("certs") {
        let path = file.expect("entry").path();
        std::fs::copy(&path, borrowed.join(path.file_name().expect("a name"))).expect("copy");
    }
    for ext in ["pem", "key"] {
        std::fs::copy(tls.join(format!("device-0.{ext}")), borrowed.join(format!("device-1.{ext}"))).expect("copy");
    }
    let mut command = qmec();
    command.args(["agent", "controller", "--scenario", "paper-small", "--devices", "2", "--servers", "1"]);
    command.args(["--slots", "5", "--slot-ms", "20", "--join-timeout-s", "5", "--tls-dir"]).arg(&tls);
    let (mut controller, uri) = spawn_controller(command, dir.path());
    let mut command = qmec();
    command.env("RUST_LOG", "debug").args(["agent", "device", "--devices", "1", "--controller", &uri, "--tls-dir"]);
    command.arg(&borrowed);
    let device_log = dir.path().join("device.log");
    let _device = spawn(command, &device_log);
    let status = wait(&mut controller, Duration::from_secs(20)).expect("the controller gave up within 20 s");
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default();
    assert!(log.contains("only 0/2 devices"), "{log}");
    let device = std::fs::read_to_string(&device_log).unwrap_or_default();
    assert!(device.contains("does not name `device-1`"), "{device}");
}
