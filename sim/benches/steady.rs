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
//! - `growth`: greedy from slot 0; slots/s in the [`GROWTH_WINDOW`]-slot
//!   windows that start at slot 1k and at slot 200k.
//! - `output`: a run that streams its records to a run folder against a
//!   bare step loop over the same slots; the median of [`OUTPUT_REPEATS`]
//!   time ratios.

use qmec_model::{Policy, Scenario};
use qmec_policies::classical;
use qmec_sim::Simulator;
use std::time::Instant;

const WARM_UP: u64 = 20_000;
const WINDOWS: usize = 10;
const WINDOW: u64 = 10_000;
const GROWTH_WINDOW: u64 = 1_000;
const OUTPUT_SLOTS: u64 = 20_000;
const OUTPUT_REPEATS: usize = 5;
const SEED: u64 = 1;

fn policy(name: &str) -> Box<dyn Policy> {
    classical(name, SEED).expect("a classical policy")
}

/// Seconds to run `slots` more slots.
fn time_slots(sim: &mut Simulator, policy: &mut dyn Policy, slots: u64) -> f64 {
    let started = Instant::now();
    for _ in 0..slots {
        std::hint::black_box(sim.step(policy).expect("step"));
    }
    started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn steady(scenario: &Scenario, name: &str) {
    let mut policy = policy(name);
    let mut sim = Simulator::new(scenario, SEED);
    time_slots(&mut sim, policy.as_mut(), WARM_UP);
    let rates: Vec<f64> =
        (0..WINDOWS).map(|_| WINDOW as f64 / time_slots(&mut sim, policy.as_mut(), WINDOW)).collect();
    let (low, high) = rates.iter().fold((f64::MAX, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
    println!(
        "steady {}/{name}: median {:.0} slots/s over {WINDOWS} windows of {WINDOW} after {WARM_UP} (min {low:.0}, max {high:.0})",
        scenario.name,
        median(rates.clone()),
    );
}

fn growth(scenario: &Scenario) {
    let mut policy = policy("greedy");
    let mut sim = Simulator::new(scenario, SEED);
    let marks = [1_000, 200_000];
    let mut at = 0;
    for mark in marks {
        time_slots(&mut sim, policy.as_mut(), mark - at);
        let seconds = time_slots(&mut sim, policy.as_mut(), GROWTH_WINDOW);
        at = mark + GROWTH_WINDOW;
        println!(
            "growth {}/greedy: slots {mark}..{at}: {:.0} slots/s ({:.2} µs/slot)",
            scenario.name,
            GROWTH_WINDOW as f64 / seconds,
            seconds / GROWTH_WINDOW as f64 * 1e6
        );
    }
}

/// What `qmec simulate` does for its run folder, without the terminal.
fn run_to_folder(scenario: &Scenario, name: &str, dir: &std::path::Path) -> f64 {
    let mut policy = policy(name);
    let started = Instant::now();
    let (summary, records) =
        qmec_sim::simulate(scenario, SEED, policy.as_mut(), OUTPUT_SLOTS, |_| {}).expect("runs");
    qmec_sim::output::write_run(dir, scenario, &summary, &records.slots, &records.tasks).expect("writes");
    started.elapsed().as_secs_f64()
}

fn output(scenario: &Scenario, name: &str) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut ratios = Vec::new();
    let mut bare_rates = Vec::new();
    for _ in 0..OUTPUT_REPEATS {
        let mut policy = policy(name);
        let mut sim = Simulator::new(scenario, SEED);
        let bare = time_slots(&mut sim, policy.as_mut(), OUTPUT_SLOTS);
        let folder = run_to_folder(scenario, name, dir.path());
        ratios.push(folder / bare);
        bare_rates.push(OUTPUT_SLOTS as f64 / bare);
    }
    println!(
        "output {}/{name}: run folder / bare loop over {OUTPUT_SLOTS} slots from slot 0: median ratio {:.3} of {OUTPUT_REPEATS} (bare median {:.0} slots/s)",
        scenario.name,
        median(ratios),
        median(bare_rates)
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
