//! Seeded fault exploration on the virtual runtime: many random fault
//! schedules, each a short run, each checked for task and bit conservation
//! and for recovery (every slot run, and once the faults are over the
//! controller hears from everyone it should). A failing schedule is printed
//! with its seed; `QMEC_EXPLORE_SEED=N` replays that one alone, and
//! `QMEC_EXPLORE_COUNT` sets how many are drawn.

use qmec_deploy::TestbedConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SLOTS: u64 = 60;
/// Faults end this many slots before the run does, so recovery shows.
const QUIET_TAIL: u64 = 15;
const DEVICES: usize = 3;
const SERVERS: usize = 2;
const DEFAULT_COUNT: u64 = 1000;

/// A random schedule: up to four faults of any kind, on any agent.
fn draw(seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut faults = Vec::new();
    let mut restarted = false;
    let mut killed = [false; SERVERS];
    for _ in 0..rng.random_range(0..=4) {
        let at = rng.random_range(0..SLOTS - QUIET_TAIL - 12);
        let span = rng.random_range(1..=10);
        let device = rng.random_range(0..DEVICES);
        let server = rng.random_range(0..SERVERS);
        let fault = match rng.random_range(0..7) {
            0 if !killed[server] => {
                killed[server] = true;
                format!("kill:server-{server}@{at}")
            }
            1 if !restarted => {
                restarted = true;
                format!("restart:controller@{at}+{span}")
            }
            2 => format!("stop:device-{device}@{at}+{span}"),
            3 => format!("late:device-{device}@{at}"),
            4 => format!("slow:server-{server}@{at}"),
            5 => format!("partition:device-{device}@{at}+{span}"),
            _ => format!("partition:server-{server}@{at}+{span}"),
        };
        faults.push(fault);
    }
    faults.join(",")
}

fn config(seed: u64, faults: &str) -> TestbedConfig {
    TestbedConfig {
        exe: "qmec".into(),
        scenario: "paper-small".into(),
        devices: Some(DEVICES),
        servers: Some(SERVERS),
        policy: "dpp-greedy".into(),
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
    let run = qmec_deploy::virtual_runtime::run(&config, None).map_err(|e| format!("the run failed: {e}"))?;
    let outcome = qmec_deploy::summarise(&config, run.scenario, &run.records);
    let figures = &outcome.merged.figures;
    let tasks = &outcome.summary.tasks;
    if !tasks.holds() {
        return Err(format!("tasks not conserved: {tasks:?}"));
    }
    if !figures.bits.holds() {
        return Err(format!("bits not conserved: {:?}", figures.bits));
    }
    if figures.slots_run != SLOTS {
        return Err(format!("{} of {SLOTS} slots run", figures.slots_run));
    }
    outcome.verdict()?;
    // After the faults, only devices that report late for good are late,
    // and only servers that are gone or slow.
    let late_devices = faults.matches("late:").count() as u32;
    let (gone, slow) = (faults.matches("kill:").count() as u32, faults.matches("slow:").count() as u32);
    let tail = &run.records.controller.slots;
    for slot in tail.iter().filter(|s| s.slot + 5 >= SLOTS) {
        if slot.late_devices > late_devices || slot.stale_devices > 0 || slot.late_servers > gone + slow {
            return Err(format!("not recovered by slot {}: {slot:?}", slot.slot));
        }
    }
    Ok(())
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
