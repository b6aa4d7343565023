//! Container and namespace testbeds with an emulated network: 3 devices and
//! 2 servers, once with plain links and once with a 20 ms one-way delay on
//! every device link; the delay must raise the end-to-end (wall) latency
//! p50 by at least 40 ms (a slot's report travels up and its decision down
//! before the device may send; results come back down). Then each runtime
//! under mutual TLS with the faults it takes. Where Docker or
//! network namespaces are missing the test is skipped with the reason,
//! unless `CI` is set, where that is a failure.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const DELAY_MS: f64 = 20.0;

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Fails under CI, else prints why the test does not run. True: go on.
fn capable(check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(reason) if in_ci() => panic!("CI is set but this machine cannot run the test: {reason}"),
        Err(reason) => {
            eprintln!("skipped: {reason}");
            false
        }
    }
}

fn command_works(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Err(format!("`{program}` is not usable: {e}")),
    }
}

fn netns_available() -> Result<(), String> {
    let ns = format!("qmec-test-probe-{}", std::process::id());
    command_works("ip", &["netns", "add", &ns])?;
    command_works("ip", &["netns", "del", &ns])
}

fn docker_available() -> Result<(), String> {
    command_works("docker", &["info", "--format", "{{.ServerVersion}}"])?;
    command_works("docker-compose", &["version", "--short"])
}

struct Run {
    p50_ms: f64,
    /// (device, task) → wall latency in ms.
    tasks: HashMap<(u64, u64), f64>,
    emulation: String,
}

fn testbed(runtime: &str, profile: Option<&Path>, out: &Path) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmec"));
    cmd.args(["testbed", "--runtime", runtime, "--devices", "3", "--servers", "2", "--slots", "40"]);
    cmd.args(["--slot-ms", "100", "--report-deadline", "0.7", "--deadline-s", "90", "--out"]).arg(out);
    if let Some(profile) = profile {
        cmd.arg("--link-profile").arg(profile);
    }
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "qmec testbed --runtime {runtime} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("wall latency p50") && stdout.contains("link emulation:"), "{stdout}");
    let figures: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("testbed.json")).unwrap()).unwrap();
    let count = figures["wall_latency"]["count"].as_u64().unwrap();
    assert!(count > 200, "only {count} tasks completed");
    let emulation: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("emulation.json")).unwrap()).unwrap();
    // Every run says its link fidelity; the userspace emulator's is measured.
    assert!(stdout.contains("link fidelity: "), "{stdout}");
    if emulation["mode"] == "userspace" {
        let rows = figures["link_fidelity"]["rows"].as_array().unwrap();
        assert!(rows.iter().any(|r| r["achieved"]["delay_ms"].is_number()), "{}", figures["link_fidelity"]);
    }
    let mut tasks = HashMap::new();
    for device in 0..3 {
        let path = out.join("records").join(format!("device-{device}.json"));
        let records: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for agent in records["devices"].as_array().unwrap() {
            let ids = agent["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_u64().unwrap());
            let latencies = agent["wall_latency_us"].as_array().unwrap().iter().map(|l| l.as_f64().unwrap() / 1e3);
            for (id, latency) in ids.zip(latencies) {
                tasks.insert((agent["device"].as_u64().unwrap(), id), latency);
            }
        }
    }
    Run {
        p50_ms: figures["wall_latency"]["p50_s"].as_f64().unwrap() * 1e3,
        tasks,
        emulation: emulation["mode"].as_str().unwrap().to_string(),
    }
}

fn delay_raises_latency(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let profile: PathBuf = dir.path().join("links.toml");
    std::fs::write(&profile, format!("[device]\ndelay_ms = {DELAY_MS}\n")).unwrap();
    let plain = testbed(runtime, None, &dir.path().join("plain"));
    let delayed = testbed(runtime, Some(&profile), &dir.path().join("delayed"));
    assert_eq!(plain.emulation, "off");
    let expected = if qmec_linkem::netem::support().has_netem() { "netem" } else { "userspace" };
    assert_eq!(delayed.emulation, expected);
    let mut shifts: Vec<f64> =
        plain.tasks.iter().filter_map(|(k, a)| delayed.tasks.get(k).map(|b| b - a)).collect();
    shifts.sort_by(f64::total_cmp);
    let paired = shifts[shifts.len() / 2];
    let raise = delayed.p50_ms - plain.p50_ms;
    println!(
        "{runtime} ({}): wall latency p50 {:.1} ms plain, {:.1} ms with {DELAY_MS} ms one-way on device links: +{raise:.1} ms (median per-task shift {paired:.1} ms)",
        delayed.emulation, plain.p50_ms, delayed.p50_ms
    );
    assert!(raise >= 2.0 * DELAY_MS, "p50 rose by {raise:.1} ms only (per-task median {paired:.1} ms)");
    assert!(raise < 2.0 * DELAY_MS + 100.0, "p50 rose by {raise:.1} ms: more than the delay explains");
}

#[test]
fn a_virtual_run_with_the_example_profile_prints_its_link_fidelity() {
    let dir = tempfile::tempdir().unwrap();
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples/links.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_qmec"))
        .args(["testbed", "--runtime", "virtual", "--devices", "3", "--servers", "2", "--slots", "100", "--link-profile", profile])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("link fidelity (configured → achieved)") && stdout.contains("device→controller up"), "{stdout}");
    assert!(stdout.contains("link fidelity: OK"), "{stdout}");
}

#[test]
fn netns_device_link_delay_raises_latency_p50() {
    if capable(netns_available()) {
        delay_raises_latency("netns");
    }
}

/// Real device agents whose links up to the servers follow their moving
/// channel, in namespaces: the run says it took the userspace emulator and
/// why, conserves its tasks, and the emulator delivered the rates it set
/// slot by slot (the device→server up verdict's rate check, measured). The
/// links run at 0.2 of each modelled bit/s, 80 % of the paced rate (payload
/// scale 10, 0.4 of each 100 ms slot for a modelled slot of 100 ms), so
/// each slot's fragments queue on them and their rate shows.
#[test]
fn netns_links_that_follow_the_channel_deliver_the_rates_they_set() {
    if !capable(netns_available()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = following_run(dir.path(), &["--payload-scale", "10"]);
    assert_eq!(run.emulation["mode"], "userspace", "{}", run.emulation);
    assert!(run.emulation["why"].as_str().unwrap().contains("follows the modelled channel"), "{}", run.emulation);
    let up = run.up_link();
    assert!(up["chunks"].as_u64().unwrap() > 100, "{up}");
    // The rate is what following the channel sets. Delay and jitter say
    // how promptly a loaded host wakes the emulator on its 1 ms timer (two
    // runs of five here missed the 2 ms jitter band): not judged here.
    assert!(up["achieved"]["rate_mbit"].is_number() && !up["reason"].as_str().unwrap().contains("rate "), "{up}");
}

/// The same links shaped by the kernel (`--emulation kernel`: an HTB class
/// per device and server on each device process's `eth0`, changed each
/// slot through its `tc -batch` child; this host has no netem, so delay is
/// then not emulated and the run says so). Payload scale 2, so that the
/// busier links stay backlogged long enough for their own rate to be
/// measured: every link measured is within tolerance of the rates it was
/// set, and so are all together.
#[test]
fn netns_kernel_links_that_follow_the_channel_deliver_the_rates_they_set() {
    if !capable(netns_available()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = following_run(dir.path(), &["--payload-scale", "2", "--emulation", "kernel"]);
    assert_eq!(run.emulation["mode"], "kernel", "{}", run.emulation);
    if run.emulation["netem"] == false {
        let why = run.emulation["why"].as_str().unwrap();
        assert!(why.contains("delay, jitter and loss are not emulated"), "{}", run.emulation);
        assert!(run.stdout.contains("link emulation: kernel") && run.stdout.contains("not emulated"), "{}", run.stdout);
    }
    let up = run.up_link();
    assert!(up["achieved"]["rate_mbit"].is_number() && !up["reason"].as_str().unwrap().contains("rate "), "{up}");
    let fidelity = &run.figures["link_fidelity"];
    let links = fidelity["per_link"].as_array().unwrap();
    assert_eq!(links.len(), 6, "a link per device and server: {fidelity}");
    let measured: Vec<&serde_json::Value> = links.iter().filter(|l| l["achieved"]["rate_mbit"].is_number()).collect();
    for link in &measured {
        println!("{}: {} → {} Mbit/s", link["link"], link["configured"]["rate_mbit"], link["achieved"]["rate_mbit"]);
        assert!(link["ok"] == true, "{link}");
    }
    assert!(measured.len() >= 2, "too few links measured: {fidelity}");
}

/// What a channel-following netns run left: its output, emulation.json and
/// testbed.json.
struct FollowingRun {
    stdout: String,
    emulation: serde_json::Value,
    figures: serde_json::Value,
}

impl FollowingRun {
    fn up_link(&self) -> &serde_json::Value {
        let rows = self.figures["link_fidelity"]["rows"].as_array().unwrap();
        let up = rows.iter().find(|r| r["link"] == "device→server up").unwrap();
        println!("device→server up: {up}");
        up
    }
}

/// A netns run of `paper-mobile` (3 devices, 2 servers, 40 slots of 100
/// ms) whose device links follow the channel at 0.2 of each modelled bit/s
/// with 5 ms of delay, with `extra` flags; checks it conserved its tasks.
fn following_run(dir: &Path, extra: &[&str]) -> FollowingRun {
    let profile = dir.join("links.toml");
    std::fs::write(&profile, "[device]\ndelay_ms = 5.0\n[device.follow_channel]\nscale = 0.2\n").unwrap();
    let out = dir.join("run");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmec"));
    cmd.args(["testbed", "--runtime", "netns", "--scenario", "paper-mobile", "--devices", "3", "--servers", "2"]);
    cmd.args(["--slots", "40", "--slot-ms", "100", "--deadline-s", "60"]).args(extra).arg("--link-profile");
    let output = cmd.arg(&profile).arg("--out").arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("conservation: holds"), "{stdout}");
    let read = |name: &str| serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap();
    FollowingRun { stdout, emulation: read("emulation.json"), figures: read("testbed.json") }
}

/// A testbed on `runtime` under mutual TLS and a token (certificates from
/// `qmec certs`), with the fault schedule `faults`; returns testbed.json
/// and the run folder after checking the run conserved its tasks.
fn secure_testbed_with_faults(runtime: &str, faults: &str, dir: &Path) -> (serde_json::Value, PathBuf) {
    let certs = dir.join("certs");
    let status = Command::new(env!("CARGO_BIN_EXE_qmec"))
        .args(["certs", "--devices", "3", "--servers", "2", "--out"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(status.status.success(), "qmec certs: {}", String::from_utf8_lossy(&status.stderr));
    let out = dir.join(runtime);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmec"));
    cmd.args(["testbed", "--runtime", runtime, "--scenario", "paper-small", "--devices", "3", "--servers", "2"]);
    cmd.args(["--slots", "150", "--slot-ms", "20", "--deadline-s", "90", "--faults", faults, "--tls-dir"]).arg(&certs);
    cmd.arg("--token-file").arg(certs.join("token")).arg("--out").arg(&out);
    // The agents inherit it (where the runtime passes the environment on)
    // and log how their sessions are secured.
    cmd.env("RUST_LOG", "info");
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "qmec testbed --runtime {runtime} --faults {faults} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("conservation: holds"), "{stdout}");
    let figures = serde_json::from_str(&std::fs::read_to_string(out.join("testbed.json")).unwrap()).unwrap();
    (figures, out)
}

/// Namespaces take the whole fault schedule: the controller restarted and
/// a server killed, under mutual TLS and a token, and no task is lost.
#[test]
fn netns_under_tls_survives_a_controller_restart_and_a_server_kill() {
    if capable(netns_available()) {
        let dir = tempfile::tempdir().unwrap();
        let (figures, out) = secure_testbed_with_faults("netns", "restart:controller@40+20,kill:server-1@100", dir.path());
        // The device loaded its certificate (the controller refuses a
        // session without one, so the run finishing proves the rest). How
        // rustls words the broken session varies with timing: a missing
        // close_notify or a plain reset.
        let log = std::fs::read_to_string(out.join("logs/device-0.log")).unwrap();
        assert!(log.contains("mutual TLS"), "device 0 did not load its certificate:\n{log}");
        let first = figures["controller_first_slot"].as_u64().unwrap();
        // The kill goes through the engine's CLI, which on a loaded machine
        // lands a few 20 ms slots after the fault's slot 40 (47 once in a
        // full test run); the restart ends at slot 60.
        assert!((10..=55).contains(&first), "the restarted controller went on at slot {first}, expected a little after 40");
        assert_eq!(figures["lost_servers"], serde_json::json!([1]));
        assert_eq!(figures["slots_run"].as_u64(), Some(150));
        println!("netns under TLS: controller went on at slot {first}, {} fragments requeued", figures["requeued_fragments"]);
    }
}

/// A column of `controller_slots.csv`, by slot.
fn controller_column(out: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(out.join("controller_slots.csv")).unwrap();
    let mut lines = text.lines();
    let at = lines.next().unwrap().split(',').position(|h| h == name).unwrap();
    lines.map(|l| l.split(',').nth(at).unwrap().parse().unwrap()).collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Server 0's link goes down for 20 slots of 50 ms and comes back: no task
/// is lost, and once TCP retransmits (its timer backs off while the link
/// is down, so up to about a second after the heal) the server reports on
/// time again and the slot loop is back at its baseline. Before, the
/// devices that gave up on the server left it waiting a slot for their
/// markers every slot: late, and a slow slot loop, to the end of the run.
#[test]
fn netns_partition_heals_and_reports_return_to_baseline() {
    if !capable(netns_available()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("netns");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmec"));
    cmd.args(["testbed", "--runtime", "netns", "--scenario", "paper-small", "--devices", "3", "--servers", "2"]);
    cmd.args(["--policy", "dpp-greedy", "--slots", "150", "--slot-ms", "50", "--deadline-s", "90"]);
    cmd.args(["--faults", "partition:server-0@40+20", "--out"]).arg(&out);
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("conservation: holds ("), "{stdout}");
    let late = controller_column(&out, "late_servers");
    let during: f64 = late[40..60].iter().sum();
    assert!(during > 0.0, "the cut did not make server 0 late: {late:?}");
    let last_late = late.iter().rposition(|&l| l > 0.0).unwrap_or(0);
    assert!(last_late < 60 + 25, "server reports still late at slot {last_late}, the cut healed at 60: {late:?}");
    let slot_loop = controller_column(&out, "slot_loop_s");
    let (before, after) = (median(slot_loop[5..40].to_vec()), median(slot_loop[90..].to_vec()));
    assert!(after < 3.0 * before + 1e-3, "slot loop p50 {:.2} ms after the heal, {:.2} ms before", after * 1e3, before * 1e3);
    println!("netns partition: last late server report at slot {last_late}; slot loop p50 {:.2} ms before, {:.2} ms after", before * 1e3, after * 1e3);
}

#[test]
fn docker_device_link_delay_raises_latency_p50() {
    if capable(docker_available()) {
        delay_raises_latency("docker");
        // Containers see only the run folder: the certificates and token
        // travel there. The whole fault schedule works in containers too:
        // signals go through `docker kill`, a restart starts the
        // controller's container again and a partition takes server 0's
        // container off the network and back.
        let dir = tempfile::tempdir().unwrap();
        let faults = "late:device-0@0,restart:controller@40+20,stop:device-1@70+10,partition:server-0@20+5,kill:server-1@100";
        let (figures, out) = secure_testbed_with_faults("docker", faults, dir.path());
        let compose = std::fs::read_to_string(out.join("docker-compose.yml")).unwrap();
        assert!(compose.contains("/out/tls") && compose.contains("/out/token"), "{compose}");
        assert!(!out.join("tls/ca.key").exists(), "the CA's signing key was copied into the run folder");
        let first = figures["controller_first_slot"].as_u64().unwrap();
        // The kill goes through the engine's CLI, which on a loaded machine
        // lands a few 20 ms slots after the fault's slot 40 (47 once in a
        // full test run); the restart ends at slot 60.
        assert!((10..=55).contains(&first), "the restarted controller went on at slot {first}, expected a little after 40");
        assert_eq!(figures["lost_servers"], serde_json::json!([1]));
        assert_eq!(figures["slots_run"].as_u64(), Some(150));
        // Device 0 is late in every slot, before the restart and after.
        let late = figures["late_device_reports"].as_u64().unwrap();
        assert!(late >= 140, "late device reports {late}");
        println!("docker under TLS: controller went on at slot {first}, {late} late device reports");
        // The image is per binary build; do not leave one per build behind.
        if let Ok(tag) = qmec_deploy::image::tag_for(Path::new(env!("CARGO_BIN_EXE_qmec"))) {
            let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
        }
    }
}
