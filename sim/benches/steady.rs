//! Steady-state simulator speed, timed by hand rather than by criterion:
//! criterion decides how many slots to run, and a simulator whose cost per
//! slot depended on the run's length would give a figure that depends on
//! that choice. Here every figure has a fixed place in the run.
//!
//! `cargo bench -p qmec-sim --bench steady -- [steady] [growth] [output]`
//! (all three when none is named):
//! - `steady`: the paper scenario under greedy and lyapunov; a warm-up of
//!   [`WARM_UP`] slots, then [`WINDOWS`] windows of [`WINDOW`] slots; the
//!   median window in slots/s.
//! - `growth`: greedy from slot 0; the median cost per slot over
//!   [`GROWTH_WINDOWS`] windows of [`GROWTH_WINDOW`] slots from slot 1k,
//!   and the same from slot 200k.
//! - `output`: a run that streams its records to a run folder against a
//!   bare step loop over the same slots; the median of [`OUTPUT_REPEATS`]
//!   time ratios.
//!
//! Rates are given in wall-clock time and, where Linux tells
//! (`/proc/thread-self/schedstat`), in the time the thread was on a CPU: on
//! a machine shared with other jobs the second is the one that compares.

use qmec_model::{Policy, Scenario};
use qmec_policies::classical;
use qmec_sim::Simulator;
use qmec_sim::output::RunWriter;
use std::time::Instant;

const WARM_UP: u64 = 20_000;
const WINDOWS: usize = 10;
const WINDOW: u64 = 10_000;
const GROWTH_WINDOWS: usize = 5;
const GROWTH_WINDOW: u64 = 1_000;
const OUTPUT_SLOTS: u64 = 20_000;
const OUTPUT_REPEATS: usize = 5;
const SEED: u64 = 1;

fn policy(name: &str) -> Box<dyn Policy> {
    classical(name, SEED).expect("a classical policy")
}

/// Wall-clock and on-CPU seconds of some work.
#[derive(Debug, Clone, Copy)]
struct Seconds {
    wall: f64,
    /// This thread's; `None` where the system does not say.
    cpu: Option<f64>,
    /// Every thread's of the process (the run writer's too), at the
    /// kernel's tick resolution.
    process_cpu: Option<f64>,
}

/// The process's user and system time so far, every thread's included.
fn process_cpu_seconds() -> Option<f64> {
    // Clock ticks per second: 100 on Linux (USER_HZ).
    const TICKS: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which ends with the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (user, system): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    Some((user + system) / TICKS)
}

/// This thread's time on a CPU so far, in seconds.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}

fn timed(work: impl FnOnce()) -> Seconds {
    let (cpu_before, process_before, started) = (thread_cpu_seconds(), process_cpu_seconds(), Instant::now());
    work();
    let wall = started.elapsed().as_secs_f64();
    let since = |after: Option<f64>, before: Option<f64>| after.zip(before).map(|(a, b)| a - b);
    Seconds {
        wall,
        cpu: since(thread_cpu_seconds(), cpu_before),
        process_cpu: since(process_cpu_seconds(), process_before),
    }
}

/// Runs `slots` more slots.
fn time_slots(sim: &mut Simulator, policy: &mut dyn Policy, slots: u64) -> Seconds {
    timed(|| {
        for _ in 0..slots {
            std::hint::black_box(sim.step(policy).expect("step"));
        }
    })
}

/// "wall W (cpu C)" for the median rates of `count` units per timing.
fn rates(count: u64, timings: &[Seconds]) -> String {
    let wall = median(timings.iter().map(|t| count as f64 / t.wall).collect());
    let cpu: Option<Vec<f64>> = timings.iter().map(|t| t.cpu.map(|c| count as f64 / c)).collect();
    match cpu {
        Some(cpu) => format!("{wall:.0} wall, {:.0} on-CPU", median(cpu)),
        None => format!("{wall:.0} wall"),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn steady(scenario: &Scenario, name: &str) {
    let mut policy = policy(name);
    let mut sim = Simulator::new(scenario, SEED);
    time_slots(&mut sim, policy.as_mut(), WARM_UP);
    let timings: Vec<Seconds> = (0..WINDOWS).map(|_| time_slots(&mut sim, policy.as_mut(), WINDOW)).collect();
    println!(
        "steady {}/{name}: median slots/s over {WINDOWS} windows of {WINDOW} after {WARM_UP}: {}",
        scenario.name,
        rates(WINDOW, &timings)
    );
}

fn growth(scenario: &Scenario) {
    let mut policy = policy("greedy");
    let mut sim = Simulator::new(scenario, SEED);
    let mut at = 0;
    for mark in [1_000, 200_000] {
        time_slots(&mut sim, policy.as_mut(), mark - at);
        let timings: Vec<Seconds> =
            (0..GROWTH_WINDOWS).map(|_| time_slots(&mut sim, policy.as_mut(), GROWTH_WINDOW)).collect();
        at = mark + GROWTH_WINDOWS as u64 * GROWTH_WINDOW;
        let per_slot = |seconds: Vec<f64>| median(seconds) / GROWTH_WINDOW as f64 * 1e6;
        let cpu: Option<Vec<f64>> = timings.iter().map(|t| t.cpu).collect();
        let cpu = cpu.map(|c| format!(", {:.2} on-CPU", per_slot(c))).unwrap_or_default();
        println!(
            "growth {}/greedy: slots {mark}..{at}, median of {GROWTH_WINDOWS} windows of {GROWTH_WINDOW}: µs/slot {:.2} wall{cpu}",
            scenario.name,
            per_slot(timings.iter().map(|t| t.wall).collect())
        );
    }
}

/// What `qmec simulate` does for its run folder, without the terminal.
fn run_to_folder(scenario: &Scenario, name: &str, dir: &std::path::Path) {
    let mut policy = policy(name);
    let mut writer = RunWriter::create(dir, scenario).expect("a run folder");
    let summary = qmec_sim::simulate_with(scenario, SEED, policy.as_mut(), OUTPUT_SLOTS, |outcome| {
        writer.outcome(&outcome).map_err(Box::<dyn std::error::Error>::from)
    })
    .expect("runs");
    writer.finish(&summary).expect("writes");
}

fn output(scenario: &Scenario, name: &str) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (mut bare, mut folder) = (Vec::new(), Vec::new());
    for _ in 0..OUTPUT_REPEATS {
        let mut policy = policy(name);
        let mut sim = Simulator::new(scenario, SEED);
        bare.push(time_slots(&mut sim, policy.as_mut(), OUTPUT_SLOTS));
        folder.push(timed(|| run_to_folder(scenario, name, dir.path())));
    }
    let ratio = |of: fn(&Seconds) -> Option<f64>| -> Option<f64> {
        let ratios: Option<Vec<f64>> = folder.iter().zip(&bare).map(|(f, b)| Some(of(f)? / of(b)?)).collect();
        ratios.map(median)
    };
    let cpu = ratio(|t| t.cpu).map(|r| format!(", {r:.3} on-CPU (simulating thread)")).unwrap_or_default();
    let process = ratio(|t| t.process_cpu).map(|r| format!(", {r:.3} on-CPU (all threads)")).unwrap_or_default();
    println!(
        "output {}/{name}: run folder / bare loop, {OUTPUT_SLOTS} slots from slot 0, median of {OUTPUT_REPEATS}: {:.3} wall{cpu}{process}; bare slots/s {}",
        scenario.name,
        ratio(|t| Some(t.wall)).unwrap_or(f64::NAN),
        rates(OUTPUT_SLOTS, &bare)
    );
}

fn main() {
    let named: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |part: &str| named.is_empty() || named.iter().any(|n| n == part);
    let paper = Scenario::paper();
    if wants("steady") {
        steady(&paper, "greedy");
        steady(&paper, "lyapunov");
    }
    if wants("growth") {
        growth(&paper);
    }
    if wants("output") {
        output(&paper, "greedy");
    }
}
