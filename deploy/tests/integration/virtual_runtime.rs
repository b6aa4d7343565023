//! The virtual runtime against its promises: a seed replays byte for byte,
//! with no faults and no link delay its records are the simulator's, and
//! the whole fault schedule runs there.

use qmec_deploy::{EmulationChoice, LaunchOptions, LaunchOutcome, RuntimeKind, TestbedConfig};
use std::path::Path;
use std::time::Duration;

fn config(out: &Path, slots: u64, faults: &str) -> TestbedConfig {
    TestbedConfig {
        exe: "qmec".into(),
        scenario: "paper-small".into(),
        devices: Some(3),
        servers: Some(2),
        policy: "dpp-greedy".into(),
        external: Default::default(),
        model: None,
        online: false,
        seed: 7,
        slots,
        slot_ms: 100.0,
        report_deadline: 0.5,
        agents_per_process: 1,
        payload_scale: 1000.0,
        early_reports: false,
        out: out.to_path_buf(),
        metrics: None,
        security: Default::default(),
        faults: qmec_deploy::faults::parse(faults).expect("a valid schedule"),
    }
}

fn options(profile: Option<&Path>) -> LaunchOptions {
    LaunchOptions {
        runtime: RuntimeKind::Virtual,
        link_profile: profile.map(Path::to_path_buf),
        emulation: EmulationChoice::Auto,
        deadline: Duration::from_secs(600),
    }
}

fn launch(config: &TestbedConfig, options: &LaunchOptions) -> LaunchOutcome {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(qmec_deploy::run(config, options)).expect("the virtual run")
}

const RECORDS: [&str; 5] = ["slots.csv", "tasks.csv", "summary.json", "testbed.json", "controller_slots.csv"];

#[test]
fn a_seed_replays_byte_for_byte_under_faults_and_jitter() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let profile = dir.path().join("links.toml");
    std::fs::write(&profile, "seed = 3\n[device]\ndelay_ms = 12.0\njitter_ms = 5.0\nloss_percent = 1.0\nrate_mbit = 20.0\n")
        .expect("the profile");
    let faults = "restart:controller@40+20,kill:server-1@100,stop:device-2@70+10,late:device-0@5,slow:server-0@20,partition:server-0@130+10";
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let out = dir.path().join(name);
            let outcome = launch(&config(&out, 200, faults), &options(Some(&profile)));
            (out, outcome)
        })
        .collect();
    for file in RECORDS {
        let (a, b) = (std::fs::read(runs[0].0.join(file)).expect(file), std::fs::read(runs[1].0.join(file)).expect(file));
        assert!(a == b, "{file} differs between two runs of the same seed");
    }
    let figures = &runs[0].1.outcome.merged.figures;
    assert_eq!(figures.lost_servers, [1]);
    assert!(figures.controller_first_slot > 0, "the controller was restarted");
    assert!(figures.late_device_reports > 150, "device 0 reports late from slot 5: {}", figures.late_device_reports);
    assert!(runs[0].1.outcome.summary.tasks.holds(), "{:?}", runs[0].1.outcome.summary.tasks);
    assert!(figures.bits.holds(), "{:?}", figures.bits);
    assert_eq!((figures.policy_failed_slots, figures.policy_failed_share), (0, 0.0), "dpp-greedy never fails");
    // Another seed is another run.
    let other = dir.path().join("other");
    let mut seeded = config(&other, 200, faults);
    seeded.seed = 8;
    launch(&seeded, &options(Some(&profile)));
    assert_ne!(std::fs::read(other.join("tasks.csv")).ok(), std::fs::read(runs[0].0.join("tasks.csv")).ok());
}

/// Device links slower than a slot (20 ms up, 5 ms down, jitter, and now
/// and then a loss that holds a connection a retransmission long) on 10 ms
/// slots, as `deploy/examples/links.toml` on the CLI's default slot: what
/// is still on its way when the controller finishes arrives and is counted
/// before the servers stop, so the bits the devices offloaded are the bits
/// the servers received, computed or hold.
#[test]
fn bits_are_conserved_when_links_delay_messages_past_the_runs_end() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let profile = dir.path().join("links.toml");
    let links = "seed = 7\n[device]\ndelay_ms = 20.0\njitter_ms = 2.0\nloss_percent = 0.5\nrate_mbit = 50.0\n\
                 [device.down]\ndelay_ms = 5.0\n[server]\ndelay_ms = 1.0\n";
    std::fs::write(&profile, links).expect("the profile");
    let config = TestbedConfig { slot_ms: 10.0, ..config(&dir.path().join("run"), 300, "") };
    let outcome = launch(&config, &options(Some(&profile))).outcome;
    let figures = &outcome.merged.figures;
    assert!(figures.bits.device_offloaded_bits > 0, "nothing offloaded: a weak check");
    assert!(figures.bits.holds(), "{:?}", figures.bits);
    assert!(outcome.summary.tasks.holds(), "{:?}", outcome.summary.tasks);
    assert!(figures.incomplete.is_empty(), "{:?}", figures.incomplete);
}

/// The same slots and tasks as `qmec simulate` for `policy` on `scenario`,
/// bit for bit but the measured decision time.
fn agrees_with_the_simulator(scenario: &str, policy: &str, online: bool) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut config = config(&dir.path().join("virtual"), 300, "");
    (config.scenario, config.policy, config.online) = (scenario.to_string(), policy.to_string(), online);
    let outcome = launch(&config, &options(None)).outcome;
    let scenario = outcome.scenario.clone();
    let spec = qmec_catalog::PolicySpec { name: config.policy.clone(), model: None, online: None };
    let spec = if online {
        spec.learning(qmec_catalog::OnlineSpec { execution: qmec_catalog::Execution::Inline, learn: true, checkpoints: None })
    } else {
        spec
    };
    let mut policy = qmec_catalog::build(&spec, &scenario, config.seed).expect("the policy");
    let (summary, records) = qmec_sim::simulate(&scenario, config.seed, policy.as_mut(), config.slots, |_| {}).expect("simulate");
    assert_eq!(outcome.merged.figures.late_device_reports, 0);
    assert!(records.slots.iter().map(|s| s.offloaded_bits).sum::<u64>() > 0, "the policy offloaded nothing: a weak comparison");
    assert_eq!(outcome.merged.slots.len(), records.slots.len());
    for (bed, sim) in outcome.merged.slots.iter().zip(&records.slots) {
        let bed = qmec_model::accounting::SlotRecord { decision_seconds: sim.decision_seconds, ..bed.clone() };
        assert_eq!(&bed, sim, "{}: slot {}", config.policy, sim.slot);
    }
    let mut tasks = records.tasks.clone();
    tasks.sort_by_key(|t| (t.device, t.task));
    assert_eq!(outcome.merged.tasks, tasks);
    assert_eq!(outcome.summary.tasks, summary.tasks);
}

#[test]
fn without_faults_or_link_delay_the_records_are_the_simulators() {
    agrees_with_the_simulator("paper-small", "dpp-greedy", false);
    // The shipped QNN, learning online inside its decide call as the
    // simulator's does.
    agrees_with_the_simulator("paper-small", "qnn", true);
}

/// Moving devices: every agent recomputes its path loss from the same
/// seeded trajectory (random waypoint) or the same trace as the simulator.
#[test]
fn a_mobile_scenario_gives_the_simulators_records() {
    for scenario in ["paper-mobile", "paper-trace"] {
        assert!(qmec_model::Scenario::builtin(scenario).expect(scenario).mobility.is_some());
        agrees_with_the_simulator(scenario, "dpp-greedy", false);
    }
}

/// A device whose every report is held two slots is late in every slot,
/// and still decided, on its last known state (moved here from the
/// real-process fault tests: no operating system is involved).
#[test]
fn a_device_that_reports_late_every_slot_is_decided_on_stale_state() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = dir.path().join("late");
    let outcome = launch(&config(&out, 100, "late:device-0@0"), &options(None)).outcome;
    assert!(outcome.summary.tasks.holds(), "{:?}", outcome.summary.tasks);
    assert_eq!(outcome.merged.figures.late_device_reports, 100, "one late report a slot, from device 0 only");
    assert_eq!(outcome.merged.figures.stale_device_slots, 0, "two slots late is not stale");
    assert_eq!(outcome.merged.figures.undecided_device_slots, 0, "every slot of every device was decided");
}

/// Servers that hold each slot's results 3/4 of a slot raise the mean
/// latency by at least a third of that, and lose nothing.
#[test]
fn slow_servers_raise_latency_and_lose_no_task() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = |name: &str, faults: &str| launch(&config(&dir.path().join(name), 100, faults), &options(None)).outcome;
    let (base, slow) = (run("base", ""), run("slow", "slow:server-0@0,slow:server-1@0"));
    assert!(base.summary.tasks.holds() && slow.summary.tasks.holds());
    let (base, slow) = (base.merged.figures.wall_latency.mean_s, slow.merged.figures.wall_latency.mean_s);
    let delay_s = qmec_deploy::faults::SLOW_RESULT_SLOTS * 0.1;
    assert!(slow > base + delay_s / 3.0, "mean latency {base:.4} s without, {slow:.4} s with slow servers");
}

/// The controller and a device process killed for good: the run ends with
/// the records that exist (the controller's journal up to its death, the
/// other devices' records up to the stop the others were asked for), names
/// both, and says the run is incomplete instead of "holds".
#[test]
fn agents_killed_for_good_leave_an_incomplete_run_that_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outcome = launch(&config(dir.path(), 60, "kill:device-1@20,kill:controller@40"), &options(None)).outcome;
    let figures = &outcome.merged.figures;
    let lost: Vec<(&str, u64)> = figures.lost_agents.iter().map(|l| (l.name.as_str(), l.slot)).collect();
    assert_eq!(lost, [("device-1", 20), ("controller", 40)]);
    assert_eq!(figures.incomplete, [
        "the controller's records stop at slot 40 of 60",
        "no records from device 1",
        "the records of device 0 (to slot 40), 2 (to slot 40) stop early",
    ]);
    assert!(outcome.summary.tasks.holds(), "tasks not conserved over the records that exist");
    let verdict = outcome.verdict().expect_err("an incomplete run does not pass");
    assert!(verdict.starts_with("conservation: holds over the records that exist"), "{verdict}");
}

#[test]
fn an_external_policy_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = TestbedConfig { policy: "external=http://127.0.0.1:50070".into(), ..config(dir.path(), 10, "") };
    let Err(error) = qmec_deploy::virtual_runtime::run(&config, None) else { panic!("the virtual runtime ran an external policy") };
    let error = error.to_string();
    assert!(error.contains("--policy external=http://127.0.0.1:50070: the virtual runtime cannot call out"), "{error}");
}

#[test]
fn an_emulated_run_reports_link_fidelity_that_passes() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let profile = dir.path().join("links.toml");
    std::fs::write(&profile, "seed = 5\n[device]\ndelay_ms = 20.0\njitter_ms = 5.0\nloss_percent = 1.0\nrate_mbit = 20.0\n")
        .expect("the profile");
    let out = dir.path().join("run");
    launch(&config(&out, 150, ""), &options(Some(&profile)));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("testbed.json")).expect("testbed.json")).expect("valid JSON");
    let fidelity = &json["link_fidelity"];
    let rows = fidelity["rows"].as_array().expect("link_fidelity rows");
    let links: Vec<&str> = rows.iter().filter_map(|r| r["link"].as_str()).collect();
    for link in ["device→controller up", "device→controller down", "device→server up", "device→server down"] {
        assert!(links.contains(&link), "no row for {link}: {links:?}");
    }
    for row in rows {
        assert_eq!(row["ok"], true, "{row}");
        assert!((row["configured"]["delay_ms"].as_f64().expect("delay measured") - 20.0).abs() < 1e-6, "{row}");
    }
    assert_eq!(fidelity["ok"], true, "{fidelity}");
    // Without a profile the run says so rather than passing.
    let plain = dir.path().join("plain");
    launch(&config(&plain, 20, ""), &options(None));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plain.join("testbed.json")).expect("testbed.json")).expect("valid JSON");
    assert_eq!(json["link_fidelity"]["ok"], serde_json::Value::Null);
    assert!(json["link_fidelity"]["verdict"].as_str().is_some_and(|v| v.starts_with("no link emulation")));
}

/// Moving devices whose links up to the servers follow their modelled
/// channel: the run conserves tasks and bits, its device→server up rate is
/// measured (the paced fragments queue on the link, whose rate is the
/// paced one) and within tolerance of the rate in force for each chunk,
/// and that rate is the channel's, not fixed: it lies inside the span of
/// the devices' modelled rates over the run, scaled as the uplink paces.
#[test]
fn links_that_follow_a_moving_channel_conserve_and_keep_their_rate() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/links-channel.toml");
    let out = dir.path().join("run");
    let mut config = config(&out, 150, "");
    // Fragments of 5–15 kbit of payload, large against their framing (at
    // the default 1000 a fragment's framing alone outweighs its payload).
    (config.scenario, config.payload_scale) = ("paper-mobile".into(), 10.0);
    let outcome = launch(&config, &options(Some(Path::new(profile))));
    assert!(outcome.outcome.summary.tasks.holds(), "{:?}", outcome.outcome.summary.tasks);
    assert!(outcome.outcome.merged.figures.bits.holds(), "{:?}", outcome.outcome.merged.figures.bits);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("testbed.json")).expect("testbed.json")).expect("valid JSON");
    let rows = json["link_fidelity"]["rows"].as_array().expect("link_fidelity rows");
    let up = rows.iter().find(|r| r["link"] == "device→server up").expect("a device→server up row");
    assert_eq!(up["ok"], true, "{up}");
    let configured = up["configured"]["rate_mbit"].as_f64().expect("the rate measured") * 1e6;
    // The paced link rate of every device's every slot to every server.
    let scenario = outcome.outcome.scenario.clone();
    let wall_per_modelled = qmec_device_agent::DEFAULT_TX_FRACTION * config.slot_ms / 1e3 / scenario.slot_seconds;
    let (mut low, mut high) = (f64::MAX, 0.0_f64);
    for device in 0..scenario.devices {
        let mut model = qmec_model::device::DeviceModel::new(&scenario, config.seed, device);
        for _ in 0..config.slots {
            for h in model.begin_slot() {
                let rate = qmec_model::channel::shannon_rate(&scenario.channel, scenario.device.tx_power_w, h);
                let link = rate / (config.payload_scale * wall_per_modelled);
                (low, high) = (low.min(link), high.max(link));
            }
        }
    }
    assert!(high > 1.5 * low, "the channel hardly moved: {low:.0} to {high:.0} bit/s");
    assert!(configured > low && configured < high, "{configured:.0} bit/s configured, outside the channel's {low:.0} to {high:.0}");
}
