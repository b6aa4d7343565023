//! `qmec train-closed-loop`: tunes a trained per-link QNN on multi-slot
//! outcomes (p99 latency and transmit power over simulator rollouts) by
//! evolution strategies, and writes a model file whose decisions are the
//! network's own. The method and why: `qmec_qnn::closed_loop`.

use crate::output::say;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use qmec_model::scenario::parse_size;
use qmec_qnn::closed_loop::{ClosedLoopConfig, Evaluation, train_closed_loop};
use qmec_qnn::model_file::ModelFile;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Built-in scenario (paper, paper-small, scaled, overload) or a TOML file.
    #[arg(long, default_value = "paper")]
    scenario: String,
    /// V of the scenario trained on (default: the scenario's).
    #[arg(long)]
    v: Option<f64>,
    /// Sizes rolled out, e.g. 10x3,100x10 (default: the scenario's).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<String>,
    /// Model to start from (default: the shipped per-link model).
    #[arg(long)]
    from: Option<PathBuf>,
    /// Evolution-strategy iterations (Adam steps).
    #[arg(long, default_value_t = ClosedLoopConfig::default().iterations)]
    iterations: usize,
    /// Antithetic perturbation pairs per iteration.
    #[arg(long, default_value_t = ClosedLoopConfig::default().pairs)]
    pairs: usize,
    /// Perturbation scale σ (parameter units).
    #[arg(long, default_value_t = ClosedLoopConfig::default().sigma)]
    sigma: f64,
    /// Adam learning rate.
    #[arg(long, default_value_t = ClosedLoopConfig::default().lr)]
    lr: f64,
    /// Slots per rollout.
    #[arg(long, default_value_t = ClosedLoopConfig::default().slots)]
    slots: u64,
    /// Simulator seeds per size for each perturbation pair (common to both members).
    #[arg(long, default_value_t = ClosedLoopConfig::default().rollout_seeds)]
    rollout_seeds: usize,
    /// Held-out seeds per size for scoring the centre.
    #[arg(long, default_value_t = ClosedLoopConfig::default().val_seeds)]
    val_seeds: usize,
    /// Score the centre every this many iterations (0: only at the end).
    #[arg(long, default_value_t = ClosedLoopConfig::default().eval_every)]
    eval_every: usize,
    /// λ: weight of transmit power (relative to lyapunov's) against p99 latency (relative to lyapunov's).
    #[arg(long, default_value_t = ClosedLoopConfig::default().power_weight)]
    power_weight: f64,
    #[arg(long, default_value_t = ClosedLoopConfig::default().seed)]
    seed: u64,
    /// Model file to write.
    #[arg(long, default_value = "closed-loop.json")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let mut scenario = super::load_scenario(&args.scenario)?;
    if let Some(v) = args.v {
        scenario.control.v = v;
        scenario.validate().context("--v")?;
    }
    let sizes = args.sizes.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>, _>>().context("--sizes")?;
    let start = match &args.from {
        Some(path) => ModelFile::load(path)?,
        None => qmec_qnn::shipped::per_link()?,
    };
    let config = ClosedLoopConfig {
        sizes,
        iterations: args.iterations,
        pairs: args.pairs,
        sigma: args.sigma,
        lr: args.lr,
        slots: args.slots,
        rollout_seeds: args.rollout_seeds,
        val_seeds: args.val_seeds,
        eval_every: args.eval_every,
        power_weight: args.power_weight,
        seed: args.seed,
    };
    let bar = ProgressBar::new(config.iterations as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("closed loop");
    let mut last_val = None;
    let report = train_closed_loop(&scenario, &start, &config, |r| {
        last_val = r.val_cost.or(last_val);
        let val = last_val.map(|v| format!(" val cost {v:.4}")).unwrap_or_default();
        bar.set_message(format!("train cost {:.4}{val}", r.train_cost));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    report.model.save(&args.out).with_context(|| format!("writing {}", args.out.display()))?;

    say!("scenario            {} (V = {}), sizes {}", scenario.name, scenario.control.v, sizes_text(&report.kept))?;
    say!(
        "budget              {} iterations × {} pairs × {} seeds × {} slots, σ {}, lr {}, λ {}",
        config.iterations, config.pairs, config.rollout_seeds, config.slots, config.sigma, config.lr, config.power_weight
    )?;
    for reference in &report.references {
        say!(
            "lyapunov {:>3}x{:<3}    p99 {:.1} ms, tx power {:.4} W (the cost's references)",
            reference.devices,
            reference.servers,
            reference.p99_s * 1e3,
            reference.tx_power_w
        )?;
    }
    print_evaluation("start (network)", &report.initial)?;
    print_evaluation("kept", &report.kept)?;
    if let Some(info) = &report.model.closed_loop {
        say!("kept iteration      {} of {} ({:.1} s)", info.kept_iteration, info.config.iterations, info.seconds)?;
    }
    say!("model               {}", args.out.display())?;
    Ok(())
}

fn sizes_text(evaluation: &Evaluation) -> String {
    evaluation.sizes.iter().map(|s| format!("{}x{}", s.devices, s.servers)).collect::<Vec<_>>().join(", ")
}

fn print_evaluation(label: &str, evaluation: &Evaluation) -> Result<()> {
    say!("{label:<20}validation cost {:.4}", evaluation.cost)?;
    for size in &evaluation.sizes {
        say!(
            "  {:>3}x{:<3}           p99 {:.1} ms, tx power {:.4} W, stable {:.0} %",
            size.devices,
            size.servers,
            size.p99_s * 1e3,
            size.tx_power_w,
            size.stable_share * 100.0
        )?;
    }
    Ok(())
}
