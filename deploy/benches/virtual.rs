//! How fast the virtual runtime runs a testbed: 1,000 slots of 100 ms on
//! the paper scenario at 10, 100 and 1,000 devices (3 servers, greedy, 25
//! devices per process), every core in one process on virtual time. Timed
//! by hand, like the simulator's steady-state bench: each size runs
//! [`REPEATS`] times and the median run is reported, in wall time and in
//! the time the thread spent on a CPU (`/proc/thread-self/schedstat`),
//! which is the figure that compares on a machine shared with other jobs.
//!
//! `cargo bench -p qmec-deploy --bench virtual [-- DEVICES...]`

use qmec_deploy::TestbedConfig;
use std::time::Instant;

const SLOTS: u64 = 1_000;
const SLOT_MS: f64 = 100.0;
const REPEATS: usize = 3;

fn config(devices: usize) -> TestbedConfig {
    TestbedConfig {
        exe: "qmec".into(),
        scenario: "paper".into(),
        devices: Some(devices),
        servers: Some(3),
        policy: "greedy".into(),
        external: Default::default(),
        model: None,
        online: false,
        seed: 1,
        slots: SLOTS,
        slot_ms: SLOT_MS,
        report_deadline: 0.5,
        agents_per_process: 25,
        payload_scale: 1000.0,
        early_reports: false,
        out: std::env::temp_dir().join("qmec-virtual-bench"),
        metrics: None,
        security: Default::default(),
        faults: Vec::new(),
    }
}

fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}

/// One run's wall and on-CPU seconds.
fn timed_run(config: &TestbedConfig) -> (f64, Option<f64>) {
    let (cpu_before, started) = (thread_cpu_seconds(), Instant::now());
    let run = qmec_deploy::virtual_runtime::run(config, None).expect("a virtual run");
    let wall = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
    assert!(run.records.controller.slots.len() as u64 == SLOTS, "the run covered every slot");
    (wall, cpu)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10, 100, 1_000] } else { sizes };
    let virtual_s = SLOTS as f64 * SLOT_MS / 1e3;
    println!("virtual runtime: {SLOTS} slots of {SLOT_MS} ms ({virtual_s} s virtual), paper scenario, 3 servers, greedy; median of {REPEATS}");
    println!("{:>8} {:>10} {:>10} {:>16} {:>16}", "devices", "wall (s)", "cpu (s)", "virtual/wall", "virtual/cpu");
    for devices in sizes {
        let config = config(devices);
        let runs: Vec<(f64, Option<f64>)> = (0..REPEATS).map(|_| timed_run(&config)).collect();
        let wall = median(runs.iter().map(|r| r.0).collect());
        let cpu = runs.iter().map(|r| r.1).collect::<Option<Vec<f64>>>().map(median);
        let cpu_text = cpu.map_or("-".into(), |c| format!("{c:.3}"));
        let ratio_cpu = cpu.map_or("-".into(), |c| format!("{:.0}", virtual_s / c));
        println!("{devices:>8} {wall:>10.3} {cpu_text:>10} {:>16.0} {ratio_cpu:>16}", virtual_s / wall);
    }
}
