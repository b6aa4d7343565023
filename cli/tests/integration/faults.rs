//! Faults injected into the local testbed with the real `qmec` binary
//! (controller, 2 server agents and 3 device agents as OS processes on
//! 127.0.0.1), through `qmec testbed --faults`. Each run is bounded by a
//! timeout that kills its whole process group, and each ends with the
//! task-conservation check: every task that arrived is completed, still
//! queued (at a device, or requeued after its server was lost) or counted
//! as dropped with a reason. These are the faults the operating system
//! carries out (SIGKILL, SIGSTOP, a process started again on the same
//! address); the rest of the schedule (late reports, slow servers,
//! partitions) and thousands of random schedules run on the virtual
//! runtime in `deploy/tests`.

#![forbid(unsafe_code)]

use crate::common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const SCENARIO: &str = "paper-small";
/// Longest a child run may take before its process group is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(40);

/// A column of `slots.csv`, by slot (these files hold no quoted fields).
fn column(path: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let at = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    lines.map(|l| l.split(',').nth(at).and_then(|v| v.parse().ok()).expect("a number")).collect()
}

/// Runs the testbed with `faults` in 20 ms slots; returns its run folder
/// (inside `dir`) and stdout, after checking it succeeded.
fn testbed(dir: &Path, slots: u64, faults: &str) -> (std::path::PathBuf, String) {
    let (out, output) = testbed_output(dir, slots, faults, &[]);
    assert_success(&output, &format!("qmec testbed --faults {faults}"));
    (out, String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs the testbed with `faults` and `extra` flags in 20 ms slots,
/// whatever its exit; its run folder (inside `dir`) and output.
fn testbed_output(dir: &Path, slots: u64, faults: &str, extra: &[&str]) -> (std::path::PathBuf, std::process::Output) {
    let out = dir.join("run");
    let mut command = qmec();
    command.args(["testbed", "--scenario", SCENARIO, "--devices", "3", "--servers", "2", "--slots", &slots.to_string()]);
    command.args(["--slot-ms", "20", "--seed", "1", "--faults", faults, "--out"]);
    command.arg(&out).args(extra);
    (out, run_bounded(command, RUN_TIMEOUT))
}

/// A run that lost an agent for good: it fails, but only after printing
/// the summary and the verdict over the records that exist, and writing
/// the run folder; the tasks those records hold are conserved.
fn assert_incomplete(out: &Path, output: &std::process::Output, lost: &str, gap: &str) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "a run that lost {lost} passed:\n{stdout}");
    assert!(stdout.contains("conservation: holds over the records that exist"), "no verdict in:\n{stdout}");
    assert!(stdout.contains("the run is INCOMPLETE") && stdout.contains(gap), "no `{gap}` in:\n{stdout}");
    assert!(stdout.contains(&format!("agent lost: {lost}")), "{lost} not named in:\n{stdout}");
    let figures = json(&out.join("testbed.json"));
    assert_eq!(figures["lost_agents"][0]["name"], lost, "{figures}");
    let summary = json(&out.join("summary.json"));
    let tasks = &summary["tasks"];
    let dropped: u64 = tasks["dropped"].as_object().expect("drop reasons").values().map(|v| v.as_u64().expect("a count")).sum();
    assert!(u(tasks, "/arrived") > 0, "no task arrived");
    assert_eq!(u(tasks, "/arrived"), u(tasks, "/completed") + u(tasks, "/queued") + dropped, "{tasks}");
    figures
}

/// The controller killed for good at slot 15: the launcher asks the other
/// agents to stop, and the run ends with their records and the
/// controller's journal, saying who died when.
#[test]
fn a_controller_killed_for_good_ends_the_run_with_the_records_that_exist() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, output) = testbed_output(dir.path(), 60, "kill:controller@15", &[]);
    let figures = assert_incomplete(&out, &output, "controller", "the controller's records stop at slot");
    let slot = u(&figures, "/lost_agents/0/slot");
    assert!((14..=17).contains(&slot), "killed at slot {slot}, scheduled at 15");
    assert!(u(&figures, "/slots_run") >= 10, "the journal's slots were not kept: {figures}");
}

/// A device process killed for good: the run goes on to the end for the
/// others, and the verdict says whose records are missing.
#[test]
fn a_device_killed_for_good_is_named_and_the_others_run_to_the_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, output) = testbed_output(dir.path(), 60, "kill:device-1@20", &[]);
    let figures = assert_incomplete(&out, &output, "device-1", "no records from device 1");
    assert_eq!(u(&figures, "/slots_run"), 60, "the run did not go on: {figures}");
}

/// Every server killed: the devices keep computing locally to the end,
/// and their records cover the whole run.
#[test]
fn with_every_server_killed_devices_compute_locally_to_the_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, stdout) = testbed(dir.path(), 60, "kill:server-0@5,kill:server-1@6");
    assert_conserved(&out, &stdout);
    let local = column(&out.join("slots.csv"), "local_bits");
    assert_eq!(local.len(), 60, "slots.csv does not cover the run");
    assert!(local[50..].iter().all(|&bits| bits > 0.0), "devices stopped computing: {local:?}");
}

/// `qmec soak` draws schedules from its seed, runs each and passes them
/// all (on the virtual runtime here: a second for ten runs).
#[test]
fn the_soak_command_runs_seeded_schedules_and_judges_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = qmec();
    command.args(["soak", "--runtime", "virtual", "--seed", "40", "--schedules", "10", "--out"]).arg(dir.path());
    let output = run_bounded(command, RUN_TIMEOUT);
    assert_success(&output, "qmec soak");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.matches(": passed").count(), 10, "{stdout}");
    assert!(stdout.contains("soak: 10 schedules") && stdout.contains("10 passed, 0 failed"), "{stdout}");
}

/// An agent that cannot start (its metrics port is taken) fails the launch
/// at once, named with its error, not after the controller's join timeout.
#[test]
fn an_agent_that_fails_to_start_is_named_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The controller's metrics port is free; server-0's, the next, is taken.
    let (taken, port) = loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = first.local_addr().expect("its address").port();
        if let Ok(next) = std::net::TcpListener::bind(("127.0.0.1", port + 1)) {
            drop(first);
            break (next, port);
        }
    };
    let metrics = format!("127.0.0.1:{port}");
    let (_, output) = testbed_output(dir.path(), 60, "", &["--metrics", &metrics]);
    drop(taken);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the launch passed with a metrics port taken");
    assert!(stderr.contains("server-0 failed") && stderr.contains(&format!("{}", port + 1)), "server-0 and its port not named:\n{stderr}");
}

/// arrived = completed + queued + dropped, from the summary.
fn assert_conserved(out: &Path, stdout: &str) -> Value {
    let summary = json(&out.join("summary.json"));
    let tasks = &summary["tasks"];
    let dropped: u64 = tasks["dropped"].as_object().expect("drop reasons").values().map(|v| v.as_u64().expect("a count")).sum();
    let (arrived, completed, queued) = (u(tasks, "/arrived"), u(tasks, "/completed"), u(tasks, "/queued"));
    assert!(arrived > 0, "no task arrived");
    assert_eq!(arrived, completed + queued + dropped, "tasks not conserved: {tasks}");
    assert!(stdout.contains("conservation: holds"), "no verdict in:\n{stdout}");
    summary
}

#[test]
fn a_killed_server_loses_no_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Server 1 holds each slot's results for 3/4 of a slot, so that the
    // kill finds fragments in flight (a fast server returns them within
    // milliseconds, and a kill between two slots would find none).
    let (out, stdout) = testbed(dir.path(), 120, "slow:server-1@0,kill:server-1@40");
    assert_conserved(&out, &stdout);
    let figures = json(&out.join("testbed.json"));
    assert_eq!(figures["lost_servers"], serde_json::json!([1]), "server-1 not recorded as lost");
    assert_eq!(u(&figures, "/slots_run"), 120, "the run did not go on after the kill");
    // What server-1 held when it died went back to the devices' queues.
    let requeued = u(&figures, "/requeued_fragments");
    assert!(requeued > 0, "no fragment was requeued after the kill");
    // Bits still balance between the devices and the surviving server.
    let bits = &figures["bits"];
    assert_eq!(u(bits, "/device_offloaded_bits"), u(bits, "/server_received_bits"), "{bits}");
    assert_eq!(
        u(bits, "/server_received_bits"),
        u(bits, "/server_computed_bits") + u(bits, "/server_backlog_bits"),
        "{bits}"
    );
    // Tasks keep completing after the kill, and server-0 keeps computing.
    let slots = out.join("slots.csv");
    let completed = column(&slots, "completed_tasks");
    let computed = column(&slots, "server_computed_bits");
    let after: f64 = completed[60..].iter().sum();
    assert!(after > 0.0, "no task completed after the kill");
    assert!(computed[60..].iter().sum::<f64>() > 0.0, "the surviving server computed nothing after the kill");
    // The controller stopped waiting for (and counting on) the dead server.
    assert!(u(&figures, "/late_server_reports") >= 60, "{figures}");
    eprintln!("requeued {requeued} fragments; {after} tasks completed after slot 60");
}

/// The controller is killed with SIGKILL at slot 50 and started again 25
/// slots later on the same address. The agents reconnect with backoff,
/// keep their queues, and the new controller, which kept nothing, picks
/// the run up from their hellos and reports.
#[test]
fn a_restarted_controller_picks_the_run_up_and_loses_no_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, stdout) = testbed(dir.path(), 160, "restart:controller@50+25");
    assert_conserved(&out, &stdout);
    let figures = json(&out.join("testbed.json"));
    let first = u(&figures, "/controller_first_slot");
    // The schedule counts wall time from the controller's run-started
    // line, so the kill lands on slot 50 on an idle machine (51 seen), and
    // earlier when a loaded machine makes the slot clock run late (32 seen).
    assert!((10..=53).contains(&first), "the restarted controller went on at slot {first}, expected 51 or a little less");
    assert_eq!(u(&figures, "/slots_run"), 160, "the run did not reach its last slot");
    let controller = json(&out.join("records/controller.json"));
    assert_eq!(u(&controller, "/first_slot"), first);
    // The killed controller's slots are in the journal the new one appended
    // to: every slot is recorded, but the one the kill may have cut short.
    let recorded = controller["slots"].as_array().expect("slots").len();
    assert!(recorded >= 159, "the controller records hold {recorded} of 160 slots");
    let log = std::fs::read_to_string(out.join("logs/controller.restart-1.log")).expect("the restarted controller's log");
    assert!(log.contains("joined a run in progress"), "{log}");
    for i in 0..3 {
        let records = json(&out.join(format!("records/device-{i}.json")));
        let slots = records["devices"][0]["slots"].as_array().expect("device slots");
        // Every slot was begun and ended on the device: none skipped.
        assert_eq!(slots.len(), 160, "device {i} did not run every slot");
        // At most the slot open at the kill ends without a decision.
        let undecided = slots.iter().filter(|s| s["decided"] != Value::Bool(true)).count();
        assert!(undecided <= 2, "device {i}: {undecided} slots without a decision");
    }
    let completed = column(&out.join("slots.csv"), "completed_tasks");
    let after: f64 = completed[first as usize..].iter().sum();
    assert!(after > 0.0, "no task completed after the restart");
    let bits = &figures["bits"];
    assert_eq!(u(bits, "/device_offloaded_bits"), u(bits, "/server_received_bits"), "{bits}");
    // The restart costs wall time, not work: against the same run without
    // it, as many tasks complete (exactly the same task records when no
    // report was late in either run; within 5 % when some were).
    let (base, base_stdout) = testbed(&dir.path().join("base"), 160, "");
    assert_conserved(&base, &base_stdout);
    let completed = |out: &Path| u(&json(&out.join("summary.json")), "/tasks/completed") as f64;
    let (with_restart, without) = (completed(&out), completed(&base));
    assert!((with_restart - without).abs() <= 0.05 * without, "{with_restart} tasks completed with the restart, {without} without");
    let same = std::fs::read(out.join("tasks.csv")).ok() == std::fs::read(base.join("tasks.csv")).ok();
    eprintln!("controller restarted at slot {first}; {after} tasks completed after it; task records identical to the run without: {same}");
}

/// A server paused with SIGSTOP keeps its streams open, so nothing breaks:
/// each device gives up on it after `SILENT_SLOTS` (25) slots without a
/// result or marker, and requeues what it held.
#[test]
fn a_silent_server_is_given_up_on_and_loses_no_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, stdout) = testbed(dir.path(), 120, "stop:server-1@40+40");
    assert_conserved(&out, &stdout);
    let mut requeued = 0;
    for i in 0..3 {
        let records = json(&out.join(format!("records/device-{i}.json")));
        let device = &records["devices"][0];
        assert_eq!(device["lost_servers"], serde_json::json!([1]), "device {i} did not give up on server 1");
        assert_eq!(u(device, "/silent_servers"), 1, "device {i}");
        requeued += u(device, "/requeued_fragments");
    }
    assert!(requeued > 0, "nothing was requeued from the silent server");
    // Server 1 survived and wrote records: bits balance across processes,
    // counting what it received before the devices gave up on it.
    let bits = &json(&out.join("testbed.json"))["bits"];
    assert_eq!(u(bits, "/device_offloaded_bits"), u(bits, "/server_received_bits"), "{bits}");
    assert_eq!(u(bits, "/server_received_bits"), u(bits, "/server_computed_bits") + u(bits, "/server_backlog_bits"));
    let completed = column(&out.join("slots.csv"), "completed_tasks");
    assert!(completed[70..].iter().sum::<f64>() > 0.0, "no task completed after the devices gave up on server 1");
    eprintln!("silent server: {requeued} fragments requeued");
}

#[test]
fn a_stopped_device_is_decided_on_stale_state_then_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, stdout) = testbed(dir.path(), 100, "stop:device-1@30+10");
    assert_conserved(&out, &stdout);
    let figures = json(&out.join("testbed.json"));
    // Device 1 missed its report deadline for about ten slots: decided on
    // its last report for five, then local.
    let late = u(&figures, "/late_device_reports");
    assert!((5..=40).contains(&late), "late device reports {late}, expected about 10");
    let stale = u(&figures, "/stale_device_slots");
    assert!((1..=late).contains(&stale), "{stale} device-slots decided local, expected about 5 of {late} late");
    // After SIGCONT it reports and is decided again.
    let records = json(&out.join("records/device-1.json"));
    let slots = records["devices"][0]["slots"].as_array().expect("device slots");
    assert_eq!(slots.len(), 100, "device 1 did not catch up on every slot");
    let decided_late = slots.iter().filter(|s| u(s, "/slot") >= 70 && s["decided"] == Value::Bool(true)).count();
    assert!(decided_late >= 20, "device 1 was decided in only {decided_late} of the last 30 slots");
    eprintln!("late device reports {late} ({stale} decided local); device 1 decided in {decided_late} of the last 30 slots");
}

/// `qmec testbed --soak 60s`: 3000 slots of 20 ms with the controller
/// killed at slot 300 and started again 50 slots later, device 1 stopped
/// for 50 slots from slot 500 and server 1 killed at slot 1000; the run
/// must end by itself with the conservation verdict. On the virtual
/// runtime: the soak's schedule and verdict are what is tested here (the
/// tests above kill, stop and restart real processes), and a minute of
/// virtual time takes a second.
#[test]
fn soak_60s_with_faults_conserves_tasks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("soak");
    let mut command = qmec();
    command.args(["testbed", "--runtime", "virtual", "--scenario", SCENARIO, "--devices", "3", "--servers", "2", "--slot-ms", "20"]);
    command.args(["--soak", "60s", "--faults", "restart:controller@300+50,stop:device-1@500+50,kill:server-1@1000", "--out"]).arg(&out);
    let output = run_bounded(command, Duration::from_secs(120));
    assert_success(&output, "qmec testbed --soak 60s");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_conserved(&out, &stdout);
    assert!(stdout.contains("soak: 3000 slots"), "no soak line in:\n{stdout}");
    let figures = json(&out.join("testbed.json"));
    assert_eq!(u(&figures, "/slots_run"), 3000);
    assert_eq!(figures["lost_servers"], serde_json::json!([1]));
    let first = u(&figures, "/controller_first_slot");
    assert!((150..=310).contains(&first), "the controller went on at slot {first}, expected 301 or a little less");
    let late = u(&figures, "/late_device_reports");
    assert!(late >= 25, "late device reports {late} for a 50-slot stop");
    let completed = column(&out.join("slots.csv"), "completed_tasks");
    let last: f64 = completed[2000..].iter().sum();
    assert!(last > 0.0, "no task completed in the last 1000 slots");
    eprintln!(
        "soak: {} fragments requeued, {late} late device reports, {last} tasks completed in the last 1000 slots",
        u(&figures, "/requeued_fragments")
    );
}
