//! The local testbed end to end: the real `qmec` binary starts a controller,
//! 2 server agents and 3 device agents as OS processes on 127.0.0.1, runs
//! 100 slots of `paper-small` and writes its run folder; `qmec simulate`
//! runs the same seed in process. One testbed run is shared by the tests
//! that read it; every child run is bounded by a timeout that kills its
//! whole process group.
//!
//! Agreement with the simulator: when no report was late (and every slot
//! was decided and computed on time), the testbed must reproduce the
//! simulator exactly: every column of `slots.csv` but the measured decision
//! time, every task record, and the summary. When some reports were late
//! (a loaded machine), late devices are decided on stale state, so only a
//! tolerance holds: throughput within [`THROUGHPUT_TOLERANCE`] and mean
//! device backlog within [`BACKLOG_TOLERANCE`], provided at most
//! [`MAX_LATE_SHARE`] of the reports were late. Measured on this scenario:
//! 9 % of device reports late gave 0.0 % / +7.5 %, 13 % gave -1.2 % / +14 %,
//! 66 % gave -4.7 % / +61 %.

#![forbid(unsafe_code)]

use crate::common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SLOTS: u64 = 100;
const SEED: u64 = 1;
const SCENARIO: &str = "paper-small";
/// Longest a child run may take before its process group is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Relative throughput difference allowed when some reports were late.
const THROUGHPUT_TOLERANCE: f64 = 0.05;
/// Relative difference of the mean device backlog allowed when some
/// reports were late (backlog reacts more: a stale Q shifts later slots).
const BACKLOG_TOLERANCE: f64 = 0.25;
/// Beyond this share of late reports the testbed is too slow for the
/// comparison to mean anything, and the test fails.
const MAX_LATE_SHARE: f64 = 0.10;

struct Runs {
    _dir: tempfile::TempDir,
    testbed: PathBuf,
    simulate: PathBuf,
}

/// One testbed run and one simulator run of the same scenario and seed.
fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let testbed = dir.path().join("testbed");
        let simulate = dir.path().join("simulate");
        let mut command = qmec();
        command.args(["testbed", "--scenario", SCENARIO, "--slots", &SLOTS.to_string(), "--seed", &SEED.to_string()]);
        command.args(["--slot-ms", "20", "--report-deadline", "0.5", "--out"]).arg(&testbed);
        assert_success(&run_bounded(command, RUN_TIMEOUT), "qmec testbed");
        let mut command = qmec();
        command.args(["simulate", "--scenario", SCENARIO, "--slots", &SLOTS.to_string(), "--seed", &SEED.to_string()]);
        command.arg("--out").arg(&simulate);
        assert_success(&run_bounded(command, RUN_TIMEOUT), "qmec simulate");
        Runs { _dir: dir, testbed, simulate }
    })
}

/// A CSV file as its header and rows (these files hold no quoted fields).
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("a header").split(',').map(str::to_string).collect();
    (header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

/// Reports that missed the controller's deadline, and slots that ran
/// without their decision or allocation.
fn late_reports(figures: &Value) -> u64 {
    [
        "/late_device_reports",
        "/late_server_reports",
        "/undelivered_decisions",
        "/undecided_device_slots",
        "/forced_server_slots",
    ]
    .iter()
    .map(|p| u(figures, p))
    .sum()
}

#[test]
fn testbed_runs_every_slot_and_writes_the_simulator_folder() {
    let runs = runs();
    for file in ["scenario.toml", "summary.json", "slots.csv", "tasks.csv", "testbed.json", "controller_slots.csv"] {
        assert!(runs.testbed.join(file).is_file(), "the run folder lacks {file}");
    }
    let summary = json(&runs.testbed.join("summary.json"));
    assert_eq!((u(&summary, "/devices"), u(&summary, "/servers")), (3, 2));
    assert_eq!(u(&summary, "/slots"), SLOTS);
    let figures = json(&runs.testbed.join("testbed.json"));
    assert_eq!(u(&figures, "/slots_run"), SLOTS);
    assert_eq!(csv(&runs.testbed.join("slots.csv")).1.len() as u64, SLOTS);
    assert_eq!(csv(&runs.testbed.join("controller_slots.csv")).1.len() as u64, SLOTS);
    assert_eq!(u(&figures, "/invalid_messages"), 0);
    // Every process reported its CPU use.
    let processes = figures["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 1 + 2 + 3, "controller, 2 servers, 3 device processes");
    for process in processes {
        assert!(f(process, "/1/wall_s") > 0.0, "{process}");
    }
    assert!(u(&figures, "/payload_bytes") > 0, "real payload bytes went over the wire");
}

#[test]
fn testbed_conserves_tasks_and_bits_across_processes() {
    let runs = runs();
    let summary = json(&runs.testbed.join("summary.json"));
    let dropped: u64 =
        summary["tasks"]["dropped"].as_object().expect("dropped").values().filter_map(Value::as_u64).sum();
    let (arrived, completed, queued) =
        (u(&summary, "/tasks/arrived"), u(&summary, "/tasks/completed"), u(&summary, "/tasks/queued"));
    assert!(arrived > 0 && completed > 0);
    assert_eq!(arrived, completed + queued + dropped, "tasks arrived = completed + queued + dropped");
    let (_, tasks) = csv(&runs.testbed.join("tasks.csv"));
    assert_eq!(tasks.len() as u64, completed, "one task record per completed task");

    let figures = json(&runs.testbed.join("testbed.json"));
    let offloaded = u(&figures, "/bits/device_offloaded_bits");
    let received = u(&figures, "/bits/server_received_bits");
    let computed = u(&figures, "/bits/server_computed_bits");
    let backlog = u(&figures, "/bits/server_backlog_bits");
    assert!(offloaded > 0, "the policy offloaded something");
    assert_eq!(offloaded, received, "every bit a device sent reached a server");
    assert_eq!(received, computed + backlog, "servers computed or still hold every bit");

    // The per-slot records add up to the same totals.
    let (header, slots) = csv(&runs.testbed.join("slots.csv"));
    let column = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    let sum = |name: &str| slots.iter().map(|r| r[column(name)].parse::<u64>().expect(name)).sum::<u64>();
    assert_eq!(sum("arrived_tasks"), arrived);
    assert_eq!(sum("completed_tasks"), completed);
    assert_eq!(sum("offloaded_bits"), offloaded);
    assert_eq!(sum("server_computed_bits"), computed);
}

#[test]
fn testbed_latency_figures_are_positive_and_ordered() {
    let runs = runs();
    let summary = json(&runs.testbed.join("summary.json"));
    let figures = json(&runs.testbed.join("testbed.json"));
    for (name, latency) in [("modelled", &summary["latency"]), ("wall-clock", &figures["wall_latency"])] {
        let [p50, p95, p99, max] = ["/p50_s", "/p95_s", "/p99_s", "/max_s"].map(|p| f(latency, p));
        assert!(0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max, "{name} latency not ordered: {latency}");
        assert!(max < 60.0, "{name} latency beyond a minute: {latency}");
        assert_eq!(u(latency, "/count"), u(&summary, "/tasks/completed"), "{name}: one latency per completed task");
    }
    for name in ["decision", "slot_loop"] {
        let [p50, p99, max] = ["/p50_s", "/p99_s", "/max_s"].map(|p| f(&figures[name], p));
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{name} not ordered: {}", figures[name]);
    }
    // A slot's loop ends after its decision, and within the slot.
    assert!(f(&figures, "/slot_loop/p50_s") >= f(&figures, "/decision/p50_s"));
    assert!(f(&figures, "/slot_loop/max_s") < 0.020 * 2.0, "a slot loop ran past two slots");
}

#[test]
fn testbed_tasks_break_their_latency_into_stages_that_sum_to_it() {
    let runs = runs();
    let (header, tasks) = csv(&runs.testbed.join("tasks.csv"));
    let column = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("tasks.csv lacks {name}"));
    let value = |row: &[String], name: &str| row[column(name)].parse::<f64>().unwrap_or_else(|e| panic!("{name}: {e}"));
    let stages = ["queue_s", "upload_s", "server_wait_s", "server_compute_s", "return_s", "local_compute_s"];
    assert!(!tasks.is_empty());
    for row in &tasks {
        let latency = value(row, "completion_s") - value(row, "arrival_s");
        let parts: Vec<f64> = stages.iter().map(|stage| value(row, stage)).collect();
        assert!(parts.iter().all(|&p| p >= -1e-9), "a negative stage: {row:?}");
        let sum: f64 = parts.iter().sum();
        // Each of the eight times is written to the nanosecond.
        let written_to_the_nanosecond = 8.0 * 0.5e-9;
        assert!(
            (sum - latency).abs() <= written_to_the_nanosecond + 1e-12 * latency.max(1.0),
            "stages sum to {sum}, latency {latency}: {row:?}"
        );
    }
    assert!(tasks.iter().any(|row| value(row, "upload_s") > 0.0), "no task's critical path was offloaded");
    let summary = json(&runs.testbed.join("summary.json"));
    let summarised = summary["stages"].as_array().expect("stages in summary.json");
    assert_eq!(summarised.len(), stages.len());
    for (stage, name) in summarised.iter().zip(stages) {
        assert_eq!(format!("{}_s", stage["stage"].as_str().expect("a name")), name);
        assert_eq!(u(stage, "/count"), u(&summary, "/tasks/completed"), "{name}: one value per completed task");
    }
    // Wall clock: each device's stages sum to its measured latency, task by task.
    let figures = json(&runs.testbed.join("testbed.json"));
    let wall = figures["wall_stages"].as_array().expect("wall_stages in testbed.json");
    let names: Vec<&str> = wall.iter().filter_map(|s| s["stage"].as_str()).collect();
    assert_eq!(names, ["queue", "transfer", "server_wait", "server_hold"]);
    let records = std::fs::read_dir(runs.testbed.join("records")).expect("records");
    let mut checked = 0;
    for file in records.filter_map(Result::ok).map(|e| e.path()) {
        if !file.file_name().is_some_and(|n| n.to_string_lossy().starts_with("device")) {
            continue;
        }
        for device in json(&file)["devices"].as_array().expect("devices").iter() {
            let latencies = device["wall_latency_us"].as_array().expect("wall_latency_us");
            let stages = device["wall_stages"].as_array().expect("wall_stages");
            assert_eq!(stages.len(), latencies.len(), "one breakdown per wall latency");
            for (stage, latency) in stages.iter().zip(latencies) {
                let sum: u64 = ["queue_us", "transfer_us", "server_wait_us", "server_hold_us"].iter().map(|k| stage[k].as_u64().expect(k)).sum();
                assert_eq!(Some(sum), latency.as_u64(), "{stage}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, u(&summary, "/tasks/completed"), "every completed task's wall stages");
}

#[test]
fn testbed_agrees_with_the_simulator() {
    let runs = runs();
    let figures = json(&runs.testbed.join("testbed.json"));
    let late = late_reports(&figures);
    let (bed, sim) = (json(&runs.testbed.join("summary.json")), json(&runs.simulate.join("summary.json")));
    if late == 0 {
        // Exact: the same slots, bit for bit, but for the measured decision time.
        let (bed_header, bed_slots) = csv(&runs.testbed.join("slots.csv"));
        let (sim_header, sim_slots) = csv(&runs.simulate.join("slots.csv"));
        assert_eq!(bed_header, sim_header);
        let measured = bed_header.iter().position(|h| h == "decision_seconds").expect("decision_seconds");
        for (bed_row, sim_row) in bed_slots.iter().zip(&sim_slots) {
            for (i, name) in bed_header.iter().enumerate().filter(|(i, _)| *i != measured) {
                assert_eq!(bed_row[i], sim_row[i], "slot {}: {name} differs", sim_row[0]);
            }
        }
        assert_eq!(bed_slots.len(), sim_slots.len());
        // The same tasks, with the same modelled arrival and completion times.
        let sorted = |path: PathBuf| {
            let mut rows = csv(&path).1;
            rows.sort();
            rows
        };
        assert_eq!(sorted(runs.testbed.join("tasks.csv")), sorted(runs.simulate.join("tasks.csv")));
        let (mut bed, mut sim) = (bed, sim);
        // Decision times are measured; the worst device's growth counts its
        // bits queued at the servers in the simulator, which the servers'
        // records do not break down by device (the device is the same).
        assert_eq!(bed["worst_device"]["device"], sim["worst_device"]["device"], "a different worst device");
        for key in ["decision_mean_s", "decision_max_s", "worst_device"] {
            bed.as_object_mut().expect("summary").remove(key);
            sim.as_object_mut().expect("summary").remove(key);
        }
        assert_eq!(bed, sim, "summaries differ");
    } else {
        let reports = SLOTS * (3 + 2);
        let share = late as f64 / reports as f64;
        assert!(
            share <= MAX_LATE_SHARE,
            "{late} of {reports} reports late or slots undecided: this machine is too slow for a 20 ms slot"
        );
        for (key, tolerance) in [("/throughput_bps", THROUGHPUT_TOLERANCE), ("/queue_mean_bits", BACKLOG_TOLERANCE)] {
            let (b, s) = (f(&bed, key), f(&sim, key));
            let difference = (b - s).abs() / s.abs().max(1.0);
            assert!(
                difference <= tolerance,
                "{key}: testbed {b}, simulator {s}, {difference:.3} > {tolerance} ({late} late)"
            );
        }
    }
}

#[test]
fn testbed_reports_a_crashed_agent_and_leaves_no_process_behind() {
    // The controller binds, then fails on the unknown policy: the launcher
    // must say so with the controller's log, stop every agent, and exit.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = qmec();
    command.args(["testbed", "--scenario", SCENARIO, "--slots", "10", "--policy", "no-such-policy", "--out"]);
    command.arg(dir.path());
    use std::os::unix::process::CommandExt;
    command.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("starting qmec");
    let pgid = child.id();
    let output = {
        let started = Instant::now();
        let mut child = child;
        loop {
            if child.try_wait().expect("waiting").is_some() {
                break child.wait_with_output().expect("output");
            }
            if started.elapsed() > RUN_TIMEOUT {
                kill_group(pgid, "KILL");
                panic!("the launcher did not exit within {RUN_TIMEOUT:?} after its controller failed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a crashed controller must fail the run");
    assert!(stderr.contains("controller failed"), "the crash is named: {stderr}");
    assert!(stderr.contains("no-such-policy"), "the controller's log tail is shown: {stderr}");
    assert_eq!(stderr.matches("unknown policy `no-such-policy`").count(), 1, "the reason is printed once: {stderr}");
    // Give the kernel a moment to reap, then nothing of the group is left.
    let deadline = Instant::now() + Duration::from_secs(5);
    while group_alive(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!group_alive(pgid), "agents outlived the launcher");
}

/// One GET of `/metrics` at `port`; the body, or None if nothing answers.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut socket = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    socket.write_all(b"GET /metrics HTTP/1.1\r\nhost: qmec\r\n\r\n").ok()?;
    let mut response = String::new();
    socket.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// The value of the sample `sample` (name and labels) on a metrics page.
fn sample(page: &str, sample: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_agent_serves_prometheus_metrics_during_the_run() {
    // Above the kernel's ephemeral range, so other tests' port-0 binds do
    // not take these; per test process, so parallel runs do not collide.
    let base = 20_000 + (std::process::id() % 9_000) as u16;
    // Plan order: controller, servers, then device processes.
    let expected = [
        "qmec_slots_total",
        "qmec_server_slots_total",
        "qmec_server_slots_total",
        "qmec_device_slots_total{device=\"0\"}",
        "qmec_device_slots_total{device=\"1\"}",
        "qmec_device_slots_total{device=\"2\"}",
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = qmec();
    command.args(["testbed", "--scenario", SCENARIO, "--devices", "3", "--servers", "2", "--slots", "100"]);
    command.args(["--slot-ms", "40", "--metrics", &format!("127.0.0.1:{base}"), "--out"]).arg(dir.path());
    let run = std::thread::spawn(move || run_bounded(command, RUN_TIMEOUT));
    // Scrape until every agent has shown a slot it ran.
    let mut seen: Vec<Option<f64>> = vec![None; expected.len()];
    let give_up = Instant::now() + RUN_TIMEOUT;
    while seen.iter().any(Option::is_none) && Instant::now() < give_up && !run.is_finished() {
        for (i, name) in expected.iter().enumerate() {
            if seen[i].is_none() {
                seen[i] = scrape(base + i as u16).and_then(|page| sample(&page, name)).filter(|slots| *slots > 0.0);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = run.join().expect("the run thread");
    assert_success(&output, "qmec testbed --metrics");
    for (name, slots) in expected.iter().zip(&seen) {
        assert!(slots.is_some(), "no agent page showed `{name}` above 0 while the run went on: {seen:?}");
    }
}
