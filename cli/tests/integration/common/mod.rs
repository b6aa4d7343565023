//! Helpers shared by the tests that drive the real `qmec` binary: bounded
//! runs in a process group of their own, and reading run folders.

#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn qmec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qmec"))
}

/// Runs `command` in a process group of its own; on timeout the whole group
/// (the launcher and every agent it started) is killed and the test fails.
pub fn run_bounded(mut command: Command, timeout: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    command.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("starting qmec");
    let pid = child.id();
    let started = Instant::now();
    loop {
        if child.try_wait().expect("waiting for qmec").is_some() {
            return child.wait_with_output().expect("reading qmec's output");
        }
        if started.elapsed() > timeout {
            // CONT first: a stopped agent would otherwise stay stopped.
            kill_group(pid, "CONT");
            kill_group(pid, "KILL");
            let output = child.wait_with_output().expect("reading qmec's output");
            panic!(
                "qmec did not finish within {timeout:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg("--").arg(format!("-{pgid}")).status();
}

/// Whether any process of group `pgid` is still alive.
pub fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}); stdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn u(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("no integer at {pointer} in {value}"))
}

pub fn f(value: &Value, pointer: &str) -> f64 {
    value.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("no number at {pointer} in {value}"))
}
