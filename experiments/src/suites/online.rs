//! `online`: does online learning carry the shipped per-link model to what
//! it was not trained on? Three cases, each starting from the shipped model:
//! a size it never saw (M = 1000, S = 50; it learnt from 10 × 3 and
//! 100 × 10), and the paper scenario and its 100 × 10 version with the
//! arrival rate stepping up mid-run (at 10 × 3 the network's own candidates
//! cover the optimum whatever the load, so the larger one is where a shift
//! can show).
//!
//! With greedy's and dpp-greedy's decisions among its candidates the `qnn`
//! critic already reaches about 0.99 of the optimum without learning, so
//! learning shows only on the network's own candidates: the measured arms
//! are the `qnn-alone` ablation learning online and frozen, with the full
//! `qnn` (frozen) as the reference. Every arm measures the share of the LP
//! optimum on the same sampled slots (the frozen arms solve the LP only to
//! measure), in-line, so the runs are reproducible.

use crate::plot::{Chart, Series, line_chart};
use crate::series::write_series_csv;
use crate::{ExperimentError, Section, Settings};
use qmec_model::Scenario;
use qmec_model::scenario::{ArrivalStep, Dynamics};
use qmec_qnn::LearnedPolicy;
use qmec_qnn::online::core::OnlineConfig;
use qmec_qnn::online::{Execution, OnlineStats};
use std::path::Path;

/// Measured slots averaged by the rolling share (and by start and end).
const WINDOW: usize = 20;
/// The share whose first crossing the table reports.
const TARGET: f64 = 0.98;
/// λ after the step, over λ before.
const STEP_FACTOR: f64 = 1.5;
const SEED: u64 = 1;

/// One case: a scenario the shipped model was not trained on.
struct Case {
    stem: &'static str,
    title: String,
    scenario: Scenario,
    slots: u64,
    /// Where the shift happens (0: from the start).
    shift_at: u64,
}

/// One way of running the shipped model.
#[derive(Clone, Copy)]
struct Arm {
    label: &'static str,
    alone: bool,
    learn: bool,
}

const ARMS: [Arm; 3] = [
    Arm { label: "qnn-alone online", alone: true, learn: true },
    Arm { label: "qnn-alone frozen", alone: true, learn: false },
    Arm { label: "qnn frozen (all candidates)", alone: false, learn: false },
];

/// What one run measured.
struct Measured {
    shares: Vec<(u64, f64)>,
    stats: OnlineStats,
    slots: u64,
}

pub fn run(settings: &Settings) -> Result<Section, ExperimentError> {
    let dir = settings.dir("online")?;
    let cases = cases(settings)?;
    let mut section = Section::new("online", "Online learning from the shipped model");
    let c = OnlineConfig::exact_labels(1, 1);
    section.body = format!(
        "Each case starts from the shipped per-link model. Arms: `qnn-alone` (the network's own candidates, no greedy/dpp-greedy/previous) \
         learning online, the same frozen, and the full `qnn` frozen as the reference; with greedy's candidates the full policy is already \
         near the optimum, so learning is measured on the network's own candidates. Learning: an LP every {}th slot (at most {} per {} slots), \
         a round of {} Adam steps (lr {}) on {} replayed states every {} slots, in-line (the simulator's reproducible mode); seed {SEED}. \
         Shares are measured on the same sampled slots for every arm; the rolling share averages the last {WINDOW} measured slots. \
         Worker seconds are the LP and training time of the online arm over its slots, on a shared 2-core machine.\n",
        c.sample_every, c.max_lps, c.window, c.steps, c.lr, c.batch_size, c.train_every
    );
    let mut rows = Vec::new();
    for case in &cases {
        let measured = measure_arms(case)?;
        let series: Vec<Series> = ARMS.iter().zip(&measured).map(|(arm, m)| Series::plain(arm.label, rolling(&m.shares))).collect();
        section.files.push(write_series_csv(&dir.join(format!("{}.csv", case.stem)), "slot", &series)?);
        let title = settings.title(&case.title);
        let chart = Chart { title: &title, x_label: "slot", y_label: "rolling share of the LP optimum", series: &series, floor: None };
        section.files.extend(line_chart(&dir.join(case.stem), &chart)?);
        rows.extend(ARMS.iter().zip(&measured).map(|(arm, m)| row(case, arm, m)));
    }
    section.table(
        &["case", "arm", "share before shift", "share at start", "share at end", "slots to 0.98", "LPs solved / skipped", "worker s/slot (LP + training)"],
        &rows,
    );
    section.files.push(crate::report::write_csv(&dir.join("summary.csv"), &["case", "arm", "before", "start", "end", "slots_to_0.98", "lps", "worker_s_per_slot"], &rows)?);
    Ok(section)
}

fn cases(settings: &Settings) -> Result<Vec<Case>, ExperimentError> {
    let bad = |e: qmec_model::ScenarioError| ExperimentError::io(Path::new("scenario"), e);
    let large = Scenario::paper().resized(1000, 50).map_err(bad)?;
    let medium = Scenario::paper().resized(100, 10).map_err(bad)?;
    Ok(vec![
        Case { stem: "size", title: "M = 1000, S = 50 (unseen size)".into(), scenario: large, slots: settings.slots(1000, 200), shift_at: 0 },
        stepped("shift", Scenario::paper(), settings.slots(4000, 1200)),
        stepped("shift-100x10", medium, settings.slots(2000, 600)),
    ])
}

/// `base` whose λ steps up by [`STEP_FACTOR`] halfway through `slots`.
fn stepped(stem: &'static str, mut scenario: Scenario, slots: u64) -> Case {
    let step = ArrivalStep { from_slot: slots / 2, factor: STEP_FACTOR };
    scenario.name = format!("{}-step", scenario.name);
    scenario.dynamics = Some(Dynamics { period_slots: 1, arrival_amplitude: 0.0, channel_amplitude: 0.0, arrival_step: Some(step) });
    let title = format!("{} × {}, λ × {STEP_FACTOR} from slot {}", scenario.devices, scenario.servers, step.from_slot);
    Case { stem, title, scenario, slots, shift_at: step.from_slot }
}

/// Runs every arm of `case`, one thread each.
fn measure_arms(case: &Case) -> Result<Vec<Measured>, ExperimentError> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = ARMS.iter().map(|&arm| scope.spawn(move || measure(case, arm))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(ExperimentError::io(Path::new(case.stem), "a run panicked"))))
            .collect()
    })
}

fn measure(case: &Case, arm: Arm) -> Result<Measured, ExperimentError> {
    let fail = |e: &dyn std::fmt::Display| ExperimentError::io(Path::new(case.stem), format!("{}: {e}", arm.label));
    let scenario = &case.scenario;
    let loaded = qmec_qnn::shipped::per_link().map_err(|e| fail(&e))?;
    let policy = LearnedPolicy::from_file("qnn", loaded, qmec_qnn::shipped::ORIGIN, scenario).map_err(|e| fail(&e))?;
    let policy = if arm.alone { policy.network_alone() } else { policy };
    let config = OnlineConfig { learn: arm.learn, ..OnlineConfig::exact_labels(scenario.devices, scenario.servers) };
    let mut policy = policy.with_online(config, Execution::Inline, None).map_err(|e| fail(&e))?;
    let (_, records) = qmec_sim::simulate(scenario, SEED, &mut policy, case.slots, |_| {}).map_err(|e| fail(&e))?;
    let shares = records.slots.iter().filter_map(|r| r.lp_share.map(|s| (r.slot, s))).collect();
    let stats = policy.online_stats().unwrap_or_default();
    Ok(Measured { shares, stats, slots: case.slots })
}

/// (slot, mean of the last [`WINDOW`] measured shares up to that slot).
fn rolling(shares: &[(u64, f64)]) -> Vec<(f64, f64)> {
    (0..shares.len())
        .map(|i| {
            let window = &shares[i.saturating_sub(WINDOW - 1)..=i];
            (shares[i].0 as f64, mean(window.iter().map(|(_, s)| *s)))
        })
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 { f64::NAN } else { sum / count as f64 }
}

/// Slots from `from` until the plotted rolling share, once its window is
/// full, is at least [`TARGET`] (0 for a policy already there at `from`; at
/// the start of a run the window takes [`WINDOW`] measured slots to fill).
fn slots_to_target(shares: &[(u64, f64)], from: u64) -> Option<u64> {
    let full = rolling(shares).into_iter().skip(WINDOW - 1);
    full.filter(|(t, _)| *t as u64 >= from).find(|(_, s)| *s >= TARGET).map(|(t, _)| t as u64 - from)
}

fn row(case: &Case, arm: &Arm, m: &Measured) -> Vec<String> {
    let before: Vec<f64> = m.shares.iter().filter(|(t, _)| *t < case.shift_at).map(|(_, s)| *s).collect();
    let after: Vec<f64> = m.shares.iter().filter(|(t, _)| *t >= case.shift_at).map(|(_, s)| *s).collect();
    let tail = |v: &[f64]| mean(v[v.len().saturating_sub(WINDOW)..].iter().copied());
    let head = |v: &[f64]| mean(v[..v.len().min(WINDOW)].iter().copied());
    let share = |x: f64| if x.is_nan() { "—".to_string() } else { format!("{x:.4}") };
    let reached = match slots_to_target(&m.shares, case.shift_at) {
        Some(slots) => slots.to_string(),
        None => format!("not within {}", m.slots - case.shift_at),
    };
    let cost = if arm.learn {
        format!("{:.4} + {:.4}", m.stats.lp_seconds / m.slots as f64, m.stats.train_seconds / m.slots as f64)
    } else {
        format!("{:.4} + 0 (measuring)", m.stats.lp_seconds / m.slots as f64)
    };
    vec![
        case.stem.to_string(),
        arm.label.to_string(),
        share(tail(&before)),
        share(head(&after)),
        share(tail(&after)),
        reached,
        format!("{} / {}", m.stats.counts.lps, m.stats.counts.skipped),
        cost,
    ]
}
