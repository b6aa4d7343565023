//! `closed-loop`: can a learned controller beat the one-slot bound on what
//! users measure? The shipped per-link QNN is tuned in closed loop on p99
//! latency and transmit power over simulator rollouts
//! ([`qmec_qnn::closed_loop`]), then run beside `lyapunov` at several V
//! (its latency–power trade-off curve), `dpp-greedy` and the shipped `qnn`,
//! on the paper scenario and at 100×10.
//!
//! The model is trained here, from the shipped weights, so the section
//! shows what the method does rather than what a committed file holds:
//! `--quick` with a small budget (a few iterations on the paper size),
//! a full run with a budget of 40 iterations × 6 pairs on both sizes
//! (the same model `qmec train-closed-loop` writes with that budget:
//! training is seeded and deterministic). Measured on 2 CPU cores shared
//! with other builds: `--quick` 18 s; a full run (5 seeds, 2000 slots)
//! 346 s and 613 s, about half of it training.
//!
//! It is trained and run at V = [`TRAIN_V`]: there the DPP weights leave
//! most pairs open, so the network can both drop transmissions (power)
//! and reorder them (latency); at the paper's V = 1000 few pairs are
//! open and the network could only transmit less. The shipped weights
//! deciding on their own at that V (`qnn-network`) are run too, so the
//! table separates what the decision mode gives from what training adds.

use super::across_seeds;
use crate::plot::{Chart, Series, line_chart};
use crate::report::write_csv;
use crate::runner::{Job, Run, run_all};
use crate::stats::Estimate;
use crate::{Claim, ExperimentError, Section, Settings, Verdict};
use indicatif::{ProgressBar, ProgressStyle};
use qmec_catalog::PolicySpec;
use qmec_model::Scenario;
use qmec_qnn::candidates::DecisionMode;
use qmec_qnn::closed_loop::{ClosedLoopConfig, ClosedLoopReport, train_closed_loop};
use qmec_qnn::{ModelFile, Network};
use qmec_sim::Summary;
use std::path::{Path, PathBuf};

/// The V values `lyapunov` is run at: its trade-off curve.
const LYAPUNOV_VS: [f64; 4] = [100.0, 300.0, 1000.0, 3000.0];
/// The sizes (M, S) compared: the paper's and a larger one.
const SIZES: [(usize, usize); 2] = [(10, 3), (100, 10)];
/// Label of the tuned model in tables and figures.
const LABEL: &str = "qnn-closed-loop";
/// Label of the shipped weights in network mode, before tuning.
const START_LABEL: &str = "qnn-network";
/// V the tuned model is trained and run at (see the module docs).
pub const TRAIN_V: f64 = 100.0;

/// One controller of the comparison on one size.
struct Entry {
    label: String,
    policy: PolicySpec,
    scenario: Scenario,
}

pub fn run(settings: &Settings) -> Result<Section, ExperimentError> {
    let dir = settings.dir("closed-loop")?;
    let mut base = Scenario::paper();
    base.control.v = TRAIN_V;
    let config = training_config(settings.quick);
    let report = train(&base, &config)?;
    let model = dir.join(format!("{LABEL}.json"));
    report.model.save(&model).map_err(|e| ExperimentError::io(&model, e))?;
    let start = dir.join(format!("{START_LABEL}.json"));
    let start_file = ModelFile { decision: DecisionMode::Network, ..shipped()?.0 };
    start_file.save(&start).map_err(|e| ExperimentError::io(&start, e))?;

    let slots = settings.slots(2000, 300);
    let mut section = Section::new("closed-loop", "Closed-loop QNN: beyond the one-slot bound");
    section.body = describe(&base, &config, &report, slots, settings.seeds);
    section.files.push(model.clone());
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    for (m, s) in SIZES {
        let scenario = sized(&base, m, s)?;
        let entries = entries(&scenario, &model, &start);
        let runs = run_entries(&entries, settings, slots)?;
        let per_entry: Vec<&[Run]> = runs.chunks(settings.seed_list().len()).collect();
        let figures: Vec<Figures> = per_entry.iter().map(|r| Figures::of(r)).collect();
        rows.extend(entries.iter().zip(&figures).map(|(entry, f)| row(&scenario, entry, f)));
        section.files.extend(frontier_chart(&dir.join(format!("p99_vs_power_{m}x{s}")), &settings.title_over_runs(&format!("p99 latency against transmit power, {m}x{s}"), settings.seed_list().len()), &entries, &figures)?);
        verdicts.push(goal_met(&scenario, &entries, &figures));
    }
    let headers = ["size", "controller", "V", "p99 latency (ms)", "mean latency (ms)", "tx power (W)", "total power (W)", "mean Q (kbit)", "mean Z (Mbit)", "stable runs"];
    section.files.push(write_csv(&dir.join("closed_loop.csv"), &headers, &rows)?);
    section.table(&headers, &rows);
    section.claims.push(claim(&verdicts));
    Ok(section)
}

/// The training budget: small with `--quick`, the library default otherwise.
fn training_config(quick: bool) -> ClosedLoopConfig {
    if quick {
        ClosedLoopConfig { iterations: 6, pairs: 4, slots: 200, rollout_seeds: 1, val_seeds: 2, eval_every: 3, ..ClosedLoopConfig::default() }
    } else {
        ClosedLoopConfig {
            sizes: SIZES.to_vec(),
            iterations: 40,
            pairs: 6,
            rollout_seeds: 1,
            val_seeds: 3,
            eval_every: 5,
            ..ClosedLoopConfig::default()
        }
    }
}

fn train(scenario: &Scenario, config: &ClosedLoopConfig) -> Result<ClosedLoopReport, ExperimentError> {
    let start = shipped()?;
    let bar = ProgressBar::new(config.iterations as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] iteration {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(LABEL);
    let report = train_closed_loop(scenario, &start, config, |_| bar.inc(1))
        .map_err(|e| ExperimentError::Train { model: LABEL.into(), reason: e.to_string() })?;
    bar.finish_and_clear();
    Ok(report)
}

fn shipped() -> Result<(ModelFile, Network), ExperimentError> {
    qmec_qnn::shipped::per_link().map_err(|e| ExperimentError::Train { model: LABEL.into(), reason: e.to_string() })
}

fn describe(base: &Scenario, config: &ClosedLoopConfig, report: &ClosedLoopReport, slots: u64, seeds: u64) -> String {
    let sizes = if config.sizes.is_empty() { vec![(base.devices, base.servers)] } else { config.sizes.clone() };
    let kept = report.model.closed_loop.as_ref().map_or(0, |c| c.kept_iteration);
    let seconds = report.model.closed_loop.as_ref().map_or(0.0, |c| c.seconds);
    format!(
        "`{LABEL}` starts from the shipped per-link QNN and decides on its own (decision mode `network`: the pairs \
         it would use, in its order; no DPP critic). It is tuned by antithetic evolution strategies with common \
         random numbers on cost = p99/p99_lyapunov + {lambda}·P_tx/P_tx,lyapunov (+{pen} if unstable), at V = {v}, on \
         sizes {sizes:?}: {it} iterations × {pairs} pairs × {rs} seeds × {rslots} slots, σ = {sigma}, Adam lr {lr}, \
         {secs:.0} s. Validation cost (lower is better): start {c0:.4}, kept {c1:.4} (iteration {kept}).\n\n\
         Comparison: {slots} slots, seeds 1–{seeds}; `lyapunov` at V ∈ {vs:?}; `dpp-greedy`, the shipped `qnn` \
         (critic), `{START_LABEL}` (the shipped weights deciding alone, untuned) and `{LABEL}` at V = {v}. \
         Intervals: 95 % over seeds. \"Stable\" judges the device queues Q; Z is the mean backlog per server: at \
         100x10 the servers keep the paper's 20 GHz each, so offloaded work can outrun their CPUs, and latency \
         then grows with the run's length whatever the decisions.\n",
        lambda = config.power_weight,
        pen = qmec_qnn::closed_loop::UNSTABLE_PENALTY,
        v = base.control.v,
        it = config.iterations,
        pairs = config.pairs,
        rs = config.rollout_seeds,
        rslots = config.slots,
        sigma = config.sigma,
        lr = config.lr,
        secs = seconds,
        c0 = report.initial.cost,
        c1 = report.kept.cost,
        vs = LYAPUNOV_VS,
    )
}

fn sized(base: &Scenario, m: usize, s: usize) -> Result<Scenario, ExperimentError> {
    if (m, s) == (base.devices, base.servers) {
        return Ok(base.clone());
    }
    base.resized(m, s).map_err(|e| ExperimentError::Train { model: LABEL.into(), reason: e.to_string() })
}

/// lyapunov at each V, then dpp-greedy, qnn, the untuned network-mode
/// model and the tuned one at the scenario's V.
fn entries(scenario: &Scenario, model: &Path, start: &Path) -> Vec<Entry> {
    let at_v = |v: f64| {
        let mut s = scenario.clone();
        s.control.v = v;
        s
    };
    let lyapunov = LYAPUNOV_VS.iter().map(|&v| Entry { label: "lyapunov".into(), policy: PolicySpec::named("lyapunov"), scenario: at_v(v) });
    let others = [
        ("dpp-greedy", PolicySpec::named("dpp-greedy")),
        ("qnn", PolicySpec::named("qnn")),
        (START_LABEL, PolicySpec { name: "qnn".into(), model: Some(PathBuf::from(start)), online: None }),
        (LABEL, PolicySpec { name: "qnn".into(), model: Some(PathBuf::from(model)), online: None }),
    ]
    .into_iter()
    .map(|(label, policy)| Entry { label: label.into(), policy, scenario: scenario.clone() });
    lyapunov.chain(others).collect()
}

fn run_entries(entries: &[Entry], settings: &Settings, slots: u64) -> Result<Vec<Run>, ExperimentError> {
    let jobs = entries
        .iter()
        .flat_map(|e| {
            settings.seed_list().into_iter().map(move |seed| Job {
                scenario: e.scenario.clone(),
                policy: e.policy.clone(),
                seed,
                slots,
                keep_decisions: false,
            })
        })
        .collect();
    Ok(run_all("closed-loop", jobs)?)
}

/// One controller's figures across seeds.
struct Figures {
    p99_ms: Estimate,
    mean_ms: Estimate,
    tx_power_w: Estimate,
    total_power_w: Estimate,
    backlog_kbit: Estimate,
    server_mbit: Estimate,
    stable: usize,
    runs: usize,
    /// p99 of each seed's run (ms), in seed order: runs on one seed share
    /// their arrivals and channels, so seeds can be compared pairwise.
    p99_by_seed: Vec<f64>,
}

impl Figures {
    fn of(runs: &[Run]) -> Figures {
        let of: Vec<&Run> = runs.iter().collect();
        Figures {
            p99_ms: across_seeds(&of, |s: &Summary| s.latency.p99_s * 1e3),
            mean_ms: across_seeds(&of, |s| s.latency.mean_s * 1e3),
            tx_power_w: across_seeds(&of, |s| s.tx_power_w),
            total_power_w: across_seeds(&of, |s| s.power_w),
            backlog_kbit: across_seeds(&of, |s| s.queue_mean_bits / 1e3),
            server_mbit: across_seeds(&of, |s| s.server_mean_bits / 1e6),
            stable: runs.iter().filter(|r| r.summary.stable).count(),
            runs: runs.len(),
            p99_by_seed: runs.iter().map(|r| r.summary.latency.p99_s * 1e3).collect(),
        }
    }
}

fn row(scenario: &Scenario, entry: &Entry, f: &Figures) -> Vec<String> {
    vec![
        format!("{}x{}", scenario.devices, scenario.servers),
        entry.label.clone(),
        format!("{}", entry.scenario.control.v),
        f.p99_ms.display(1),
        f.mean_ms.display(1),
        f.tx_power_w.display(4),
        f.total_power_w.display(3),
        f.backlog_kbit.display(1),
        f.server_mbit.display(1),
        format!("{}/{}", f.stable, f.runs),
    ]
}

/// p99 latency against transmit power: lyapunov's V curve and a point per other controller.
fn frontier_chart(
    stem: &Path,
    title: &str,
    entries: &[Entry],
    figures: &[Figures],
) -> Result<Vec<PathBuf>, ExperimentError> {
    let point = |f: &Figures| f.p99_ms.plotted(f.tx_power_w.mean);
    let mut lyapunov: Vec<_> = entries.iter().zip(figures).filter(|(e, _)| e.label == "lyapunov").map(|(_, f)| point(f)).collect();
    lyapunov.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut series = vec![Series { label: format!("lyapunov, V ∈ {LYAPUNOV_VS:?}"), points: lyapunov }];
    series.extend(
        entries.iter().zip(figures).filter(|(e, _)| e.label != "lyapunov").map(|(e, f)| Series { label: e.label.clone(), points: vec![point(f)] }),
    );
    Ok(line_chart(stem, &Chart { title, x_label: "transmit power (W)", y_label: "p99 latency (ms)", series: &series, floor: Some(0.0) })?)
}

/// Whether the tuned model is stable in every run and beats some lyapunov
/// V on p99 (intervals apart) at equal or lower transmit power; with the
/// sentence that says so.
fn goal_met(scenario: &Scenario, entries: &[Entry], figures: &[Figures]) -> (bool, String) {
    let size = format!("{}x{}", scenario.devices, scenario.servers);
    let Some(ours) = entries.iter().zip(figures).find(|(e, _)| e.label == LABEL).map(|(_, f)| f) else {
        return (false, format!("{size}: no {LABEL} runs"));
    };
    let stable = ours.stable == ours.runs;
    let beaten: Vec<String> = entries
        .iter()
        .zip(figures)
        .filter(|(e, f)| e.label == "lyapunov" && f.tx_power_w.mean >= ours.tx_power_w.mean && ours.p99_ms.high() < f.p99_ms.low())
        .map(|(e, _)| format!("V = {}", e.scenario.control.v))
        .collect();
    let paired: Vec<String> = entries
        .iter()
        .zip(figures)
        .filter(|(e, _)| e.label == "lyapunov")
        .map(|(e, f)| {
            let lower = ours.p99_by_seed.iter().zip(&f.p99_by_seed).filter(|(o, l)| o < l).count();
            format!("V = {}: {lower}/{}", e.scenario.control.v, ours.p99_by_seed.len())
        })
        .collect();
    let text = format!(
        "{size}: p99 {} ms at {} W transmit, {} W total, stable {}/{}; lyapunov beaten at {}; seeds with a lower p99 \
         than lyapunov's on the same seed: {}",
        ours.p99_ms.display(1),
        ours.tx_power_w.display(4),
        ours.total_power_w.display(3),
        ours.stable,
        ours.runs,
        if beaten.is_empty() { "no V".to_string() } else { beaten.join(", ") },
        paired.join(", ")
    );
    (stable && !beaten.is_empty(), text)
}

fn claim(verdicts: &[(bool, String)]) -> Claim {
    let met = !verdicts.is_empty() && verdicts.iter().all(|(ok, _)| *ok);
    Claim {
        source: "qmec issue 3",
        claim: format!("a stable closed-loop QNN ({LABEL}) with lower p99 latency than lyapunov at equal or lower transmit power"),
        measured: verdicts.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("; "),
        verdict: if met { Verdict::Reproduced } else { Verdict::NotReproduced },
        why: "on every size: stable in all runs, and for some V lyapunov's mean transmit power is at least ours while \
              its p99 interval lies wholly above ours. The cost trained on weighs transmit power only; total power \
              (transmit + local CPU) is in the table"
            .into(),
    }
}
