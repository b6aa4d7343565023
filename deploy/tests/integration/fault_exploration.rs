//! Seeded fault exploration on the virtual runtime: many random fault
//! schedules, each a short run, each checked for task and bit conservation
//! and for recovery (every slot run, and once the faults are over the
//! controller hears from everyone it should). A failing schedule is printed
//! with its seed; `QMEC_EXPLORE_SEED=N` replays that one alone, and
//! `QMEC_EXPLORE_COUNT` sets how many are drawn.

use qmec_deploy::soak::{self, Shape};
use qmec_deploy::{RuntimeKind, TestbedConfig};

const SLOTS: u64 = 60;
const DEVICES: usize = 3;
const SERVERS: usize = 2;
const DEFAULT_COUNT: u64 = 1000;

/// The schedule of `seed`, as `qmec soak` draws it for the virtual runtime.
fn draw(seed: u64) -> String {
    soak::draw(seed, Shape { slots: SLOTS, devices: DEVICES, servers: SERVERS }, RuntimeKind::Virtual)
}

fn config(seed: u64, faults: &str) -> TestbedConfig {
    TestbedConfig {
        exe: "qmec".into(),
        scenario: "paper-small".into(),
        devices: Some(DEVICES),
        servers: Some(SERVERS),
        policy: "dpp-greedy".into(),
        external: Default::default(),
        model: None,
        online: false,
        seed,
        slots: SLOTS,
        slot_ms: 100.0,
        report_deadline: 0.5,
        agents_per_process: 1,
        payload_scale: 1000.0,
        early_reports: seed.is_multiple_of(2),
        out: "unused".into(),
        metrics: None,
        security: Default::default(),
        faults: qmec_deploy::faults::parse(faults).expect("drawn schedules parse"),
    }
}

/// What is wrong with the run of `seed`, if anything.
fn explore(seed: u64) -> Result<(), String> {
    let faults = draw(seed);
    let config = config(seed, &faults);
    let mut run = qmec_deploy::virtual_runtime::run(&config, None).map_err(|e| format!("the run failed: {e}"))?;
    let outcome = qmec_deploy::summarise(&config, run.scenario, &mut run.records);
    soak::judge(&outcome, &faults, SLOTS)
}

#[test]
fn random_fault_schedules_conserve_tasks_and_recover() {
    let seeds: Vec<u64> = match std::env::var("QMEC_EXPLORE_SEED") {
        Ok(seed) => vec![seed.parse().expect("QMEC_EXPLORE_SEED is a number")],
        Err(_) => {
            let count = std::env::var("QMEC_EXPLORE_COUNT").ok().and_then(|c| c.parse().ok()).unwrap_or(DEFAULT_COUNT);
            (0..count).collect()
        }
    };
    let failures: Vec<String> = seeds
        .iter()
        .filter_map(|&seed| explore(seed).err().map(|why| format!("seed {seed} (`{}`): {why}", draw(seed))))
        .collect();
    println!("explored {} fault schedules on the virtual runtime", seeds.len());
    assert!(
        failures.is_empty(),
        "{} of {} schedules failed; replay one with QMEC_EXPLORE_SEED=N:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}
