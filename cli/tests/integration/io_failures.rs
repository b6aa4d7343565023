//! I/O that fails is an error, never a panic: a command whose stdout or
//! stderr is full (`/dev/full`) or whose output path cannot be written
//! exits 1 with the path and the cause, not 101 with a panic message.

#![forbid(unsafe_code)]

use crate::common;

use common::*;
use std::fs::File;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A panic's exit status.
const PANIC: i32 = 101;

fn full() -> Stdio {
    Stdio::from(File::options().write(true).open("/dev/full").expect("/dev/full"))
}

/// Runs `command` with its output captured but for what `setup` redirects.
fn output(mut command: Command, setup: impl FnOnce(&mut Command)) -> Output {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    setup(&mut command);
    let child = command.spawn().expect("starting qmec");
    // Every command here ends within a second or two; a hang fails below.
    let started = std::time::Instant::now();
    let output = child.wait_with_output().expect("waiting for qmec");
    assert!(started.elapsed() < Duration::from_secs(60), "qmec took {:?}", started.elapsed());
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_full_stdout_is_an_error_naming_stdout_not_a_panic() {
    let mut command = qmec();
    command.args(["scenario", "show", "paper"]);
    let out = output(command, |c| {
        c.stdout(full());
    });
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("writing stdout") && stderr(&out).contains("No space left"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn help_onto_a_full_stdout_does_not_panic() {
    let mut command = qmec();
    command.args(["agent", "controller", "--help"]);
    let out = output(command, |c| {
        c.stdout(full());
    });
    assert_ne!(out.status.code(), Some(PANIC), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn an_error_onto_a_full_stderr_exits_1_not_101() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [&["scenario", "show", "no-such-scenario"][..], &["agent", "controller", "--scenario", "no-such-scenario"]] {
        let mut command = qmec();
        command.args(args).env("RUST_LOG", "debug").current_dir(dir.path());
        let out = output(command, |c| {
            c.stderr(full());
        });
        assert_eq!(out.status.code(), Some(1), "qmec {args:?}");
    }
}

#[test]
fn an_output_path_that_cannot_be_written_is_named_with_its_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Under a regular file, so that even root cannot write there.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("a file");
    let out_dir = file.join("run");
    let mut command = qmec();
    command.args(["simulate", "--scenario", "paper-small", "--policy", "local", "--slots", "3", "--out"]).arg(&out_dir);
    let out = run_bounded(command, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains(&out_dir.display().to_string()) && said.contains("Not a directory"), "{said}");
}

#[test]
fn a_testbed_whose_controller_cannot_write_its_records_fails_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    // A folder where the controller's records file goes: refused even to root.
    let records = out.join("records").join("controller.json");
    std::fs::create_dir_all(&records).expect("the folder in the way");
    let mut command = qmec();
    command.args(["testbed", "--scenario", "paper-small", "--devices", "2", "--servers", "1", "--policy", "local"]);
    command.args(["--slots", "5", "--slot-ms", "20", "--out"]).arg(&out);
    let output = run_bounded(command, Duration::from_secs(60));
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    // The controller exits 1 (not a panic's 101) and the run fails naming
    // the records file, with the controller's own last log line, which
    // says why.
    assert!(said.contains("controller") && said.contains("exit status: 1"), "{said}");
    assert!(said.contains("last log lines") && said.contains("writing records"), "{said}");
    assert!(said.contains(&records.display().to_string()) && said.contains("Is a directory"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}

#[test]
fn a_huge_input_is_quoted_cut_short() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A 5 MB scenario line (the value is quoted in TOML's message too), and
    // a 100 kB scenario name (quoted by the error and its context).
    let scenario = dir.path().join("huge.toml");
    std::fs::write(&scenario, format!("name = {}\n", "7".repeat(5_000_000))).expect("the scenario");
    for name in [scenario.display().to_string(), "x".repeat(100_000)] {
        let mut command = qmec();
        command.args(["scenario", "show", &name]);
        let out = run_bounded(command, Duration::from_secs(60));
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{}", &said[..said.len().min(2000)]);
        assert!(said.len() < 2_000, "{} bytes on stderr: {}", said.len(), &said[..2000]);
        assert!(said.contains(" bytes)"), "{said}");
    }
}

/// A 200 KiB tmpfs, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts one (root only); why not, where it cannot.
    fn mount(at: &std::path::Path) -> Result<SmallDisk, String> {
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=200k", "tmpfs"]).arg(at).output();
        match status {
            Ok(out) if out.status.success() => Ok(SmallDisk(at.to_path_buf())),
            Ok(out) => Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
            Err(error) => Err(format!("mount is not usable: {error}")),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The run folder on a disk that fills up mid-run: the testbed fails with
/// exit 1, and the agents' own words (`writing records PATH: No space left
/// on device`) reach the user although their log files could not hold
/// them: the launcher keeps each agent's last lines as well.
#[test]
fn a_full_disk_fails_the_testbed_with_the_agents_own_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = match SmallDisk::mount(dir.path()) {
        Ok(disk) => disk,
        Err(reason) if std::env::var_os("CI").is_some() => panic!("CI is set but this machine cannot run the test: {reason}"),
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let mut command = qmec();
    command.args(["testbed", "--scenario", "paper-small", "--devices", "3", "--servers", "2", "--policy", "greedy"]);
    command.args(["--slots", "300", "--slot-ms", "20", "--out"]).arg(disk.0.join("run"));
    let output = run_bounded(command, Duration::from_secs(90));
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("No space left on device") && said.contains("writing records"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}
