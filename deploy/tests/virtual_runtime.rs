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
    // Another seed is another run.
    let other = dir.path().join("other");
    let mut seeded = config(&other, 200, faults);
    seeded.seed = 8;
    launch(&seeded, &options(Some(&profile)));
    assert_ne!(std::fs::read(other.join("tasks.csv")).ok(), std::fs::read(runs[0].0.join("tasks.csv")).ok());
}

#[test]
fn without_faults_or_link_delay_the_records_are_the_simulators() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = dir.path().join("virtual");
    let config = config(&out, 300, "");
    let outcome = launch(&config, &options(None)).outcome;
    let scenario = outcome.scenario.clone();
    let spec = qmec_catalog::PolicySpec { name: config.policy.clone(), model: None, online: None };
    let mut policy = qmec_catalog::build(&spec, &scenario, config.seed).expect("the policy");
    let (summary, records) = qmec_sim::simulate(&scenario, config.seed, policy.as_mut(), config.slots, |_| {}).expect("simulate");
    assert_eq!(outcome.merged.figures.late_device_reports, 0);
    assert_eq!(outcome.merged.slots.len(), records.slots.len());
    for (bed, sim) in outcome.merged.slots.iter().zip(&records.slots) {
        // Every field but the measured decision time.
        let bed = qmec_model::accounting::SlotRecord { decision_seconds: sim.decision_seconds, ..bed.clone() };
        assert_eq!(&bed, sim, "slot {}", sim.slot);
    }
    let mut tasks = records.tasks.clone();
    tasks.sort_by_key(|t| (t.device, t.task));
    assert_eq!(outcome.merged.tasks, tasks);
    assert_eq!(outcome.summary.tasks, summary.tasks);
}
