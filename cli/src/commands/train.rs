//! `qmec train`: trains a QNN (paper or per-link) or the MLP baseline and
//! writes the model file, its loss curve (CSV and PNG next to it) and the
//! held-out share of the LP optimum its own candidates reach.

use crate::output::say;
use anyhow::{Context, Result};
use crate::progress;
use qmec_qnn::plot::{write_curve_csv, write_curve_png};
use qmec_model::scenario::parse_size;
use qmec_model::Scenario;
use qmec_qnn::train::{Data as TrainData, TrainReport};
use qmec_qnn::{ArchKind, Objective, TrainConfig};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Built-in scenario (paper, paper-small, scaled, overload) or a TOML file.
    #[arg(long, default_value = "paper")]
    scenario: String,
    /// paper, per-link or mlp.
    #[arg(long, default_value = "per-link")]
    arch: String,
    /// exact (rank the LP optimum's pairs first; per-link's default) or dpp
    /// (the DPP bound through the softmax projection; the paper's loss and
    /// the default of paper and mlp).
    #[arg(long)]
    objective: Option<String>,
    /// Sizes to learn from, e.g. 10x3,100x10 (per-link only; default: the scenario's).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<String>,
    /// Epochs; one epoch is --batches-per-epoch mini-batches of --batch-size states.
    #[arg(long, default_value_t = 1000)]
    epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 4)]
    batches_per_epoch: usize,
    /// States in the training pool (from simulator rollouts).
    #[arg(long, default_value_t = 2048)]
    train_states: usize,
    /// Held-out states for validation.
    #[arg(long, default_value_t = 512)]
    val_states: usize,
    /// Validate every this many epochs (0: only at the end).
    #[arg(long, default_value_t = 50)]
    eval_every: usize,
    /// Model file to write; the loss curve goes next to it (.loss.csv, .loss.png).
    #[arg(long, default_value = "model.json")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let scenario = super::load_scenario(&args.scenario)?;
    let config = train_config(&args)?;
    let (data, report) = train_with_progress(&scenario, &config)?;
    report.model.save(&args.out).with_context(|| format!("writing {}", args.out.display()))?;
    let csv = args.out.with_extension("loss.csv");
    let png = args.out.with_extension("loss.png");
    write_curve_csv(&csv, &report.curve)?;
    write_curve_png(&png, &report.curve)?;
    print_report(&scenario, &config, &data, &report)?;
    say!("model               {}", args.out.display())?;
    say!("loss curve          {}, {}", csv.display(), png.display())?;
    Ok(())
}

fn train_config(args: &Args) -> Result<TrainConfig> {
    let arch = ArchKind::parse(&args.arch)?;
    let objective = match &args.objective {
        Some(name) => Objective::parse(name)?,
        None => TrainConfig::new(arch).objective,
    };
    let sizes = args.sizes.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>, _>>().context("--sizes")?;
    Ok(TrainConfig {
        arch,
        objective,
        sizes,
        epochs: args.epochs,
        lr: args.lr,
        seed: args.seed,
        batch_size: args.batch_size,
        batches_per_epoch: args.batches_per_epoch,
        train_states: args.train_states,
        val_states: args.val_states,
        eval_every: args.eval_every,
    })
}

/// Collects the states (a spinner) and trains on them (a bar per epoch
/// with the loss and the latest held-out share).
fn train_with_progress(scenario: &Scenario, config: &TrainConfig) -> Result<(TrainData, TrainReport)> {
    let sizes = if config.sizes.is_empty() {
        format!("{}x{}", scenario.devices, scenario.servers)
    } else {
        config.sizes.iter().map(|(m, s)| format!("{m}x{s}")).collect::<Vec<_>>().join(", ")
    };
    let spinner = progress::spinner("data");
    spinner.set_message(format!(
        "collecting {} training and {} held-out states from rollouts of `{}` at {sizes}",
        config.train_states, config.val_states, scenario.name
    ));
    let started = std::time::Instant::now();
    let data = qmec_qnn::train::collect_data(scenario, config)?;
    let data_seconds = started.elapsed().as_secs_f64();
    spinner.finish_and_clear();
    let bar = progress::bar(config.epochs as u64, config.arch.as_str());
    let mut last_val = None;
    let report = qmec_qnn::train::train_on(scenario, config, &data, data_seconds, |r| {
        if r.val_share.is_some() {
            last_val = r.val_share;
        }
        let val = last_val.map(|v| format!(" val share {:.3}", v)).unwrap_or_default();
        bar.set_message(format!("loss {:.4}{val}", r.loss));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    Ok((data, report))
}

/// What was trained, how long it took, and how good it is: the loss it
/// minimised beside the held-out share it is judged by.
fn print_report(scenario: &Scenario, config: &TrainConfig, data: &TrainData, report: &TrainReport) -> Result<()> {
    let n_params = report.network.arch().params().len();
    say!("architecture        {} ({n_params} parameters)", config.arch)?;
    say!(
        "scenario            {} (M = {}, S = {})",
        scenario.name, scenario.devices, scenario.servers
    )?;
    say!(
        "epochs              {} × {} batches × {} states = {} Adam steps, lr {}",
        config.epochs,
        config.batches_per_epoch,
        config.batch_size,
        config.epochs * config.batches_per_epoch,
        config.lr
    )?;
    say!("data                {:.1} s ({} train, {} held out)", report.data_seconds, data.train.len(), data.val.len())?;
    say!("training            {:.1} s", report.train_seconds)?;
    say!(
        "final training loss {:.4} (the objective it minimised, on the last epoch's batches; lower is better: {})",
        report.curve.last().map_or(f64::NAN, |r| r.loss),
        config.objective.loss_meaning()
    )?;
    say!(
        "held-out share      what the model is judged by (1 = the exact LP optimum; higher is better), on states it never trained on,"
    )?;
    say!(
        "                    the network's own candidates: before {:.3}, after mean {:.4}, 5th percentile {:.4} ({} states, {} with nothing to offload)",
        report.initial.mean_share,
        report.validation.mean_share,
        report.validation.p5_share,
        report.validation.states,
        report.validation.trivial
    )?;
    say!(
        "first candidate     of the LP optimum, the network's ranking alone: before {:.3}, after {:.4}",
        report.initial.first_share, report.validation.first_share
    )?;
    Ok(())
}
