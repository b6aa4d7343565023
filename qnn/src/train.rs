//! The trainer shared by every architecture.
//!
//! An **epoch** is `batches_per_epoch` mini-batches of `batch_size` states
//! drawn without replacement from the training pool (reshuffled whenever
//! the pool is used up) — not a full pass over the pool. With the defaults
//! (4 × 32 states, a pool of 2 048) 1 000 epochs are 4 000 Adam steps and
//! about 62 passes over the pool, which keeps `--epochs 1000` on the paper
//! scenario within minutes on two cores for every architecture.
//!
//! Each step: scores for the batch, the loss of the chosen [`Objective`]
//! ([`crate::loss`]), the gradient of the mean loss with respect to every
//! parameter (adjoint VJP for circuits, hand-written backprop for dense
//! layers), one Adam step. Every `eval_every` epochs, and at the end, the
//! held-out states are scored by the share of the exact LP optimum that
//! the network's own candidates reach ([`crate::candidates`], without
//! greedy's, dpp-greedy's or the previous slot's).
//!
//! A size-free architecture (per-link) can learn from several sizes at
//! once (`sizes`): the pools are split evenly among them, so one model
//! sees the few-device and the crowded slot alike.

use crate::adam::Adam;
use crate::arch::{ArchKind, Network};
use crate::candidates::{Critic, DEFAULT_MAX_CANDIDATES, DecisionMode};
use crate::dataset::{Sample, collect_states, prepare};
use crate::error::{QnnError, Result};
use crate::features::FeatureScales;
use crate::loss::{dpp_loss, exact_loss};
use crate::model_file::{FORMAT_VERSION, ModelFile, ScenarioInfo, TrainingInfo};
use qmec_model::{Scenario, SystemState};
use serde::{Deserialize, Serialize};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Offset between training and validation rollout seeds.
const VALIDATION_SEED_OFFSET: u64 = 0x5eed_0000_0000;

/// What the network learns to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Rank the exact decision's pairs first ([`exact_loss`]): the
    /// candidates' training target, and the online one.
    Exact,
    /// Maximise the DPP bound of the projected decision ([`dpp_loss`]).
    Dpp,
}

impl Objective {
    /// The CLI / file name.
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Exact => "exact",
            Objective::Dpp => "dpp",
        }
    }

    /// Parses a CLI name.
    pub fn parse(text: &str) -> Result<Objective> {
        match text {
            "exact" => Ok(Objective::Exact),
            "dpp" => Ok(Objective::Dpp),
            other => Err(QnnError::Config { field: "objective", reason: format!("unknown objective `{other}` (known: exact, dpp)") }),
        }
    }

    /// What the training loss of this objective measures, for printing.
    pub fn loss_meaning(self) -> &'static str {
        match self {
            Objective::Exact => "binary cross-entropy of the pair logits against the LP optimum's support",
            Objective::Dpp => "−Σ Ψ μ / max|Ψ| of the projected decision, per state",
        }
    }
}

/// What to train and how.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Architecture.
    pub arch: ArchKind,
    /// Loss.
    pub objective: Objective,
    /// Sizes (M, S) to learn from; empty: the scenario's own. Only a
    /// size-free architecture takes other sizes than the scenario's.
    pub sizes: Vec<(usize, usize)>,
    /// Epochs (see the module docs).
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of initialisation, rollouts and batch order.
    pub seed: u64,
    /// States per mini-batch.
    pub batch_size: usize,
    /// Mini-batches per epoch.
    pub batches_per_epoch: usize,
    /// Training pool size.
    pub train_states: usize,
    /// Held-out states.
    pub val_states: usize,
    /// Validate every this many epochs (0: only at the end).
    pub eval_every: usize,
}

impl TrainConfig {
    /// The defaults for `arch`: 1000 epochs, lr 0.001, seed 1, 4 × 32;
    /// the exact objective for the size-free networks (per-link, pair-mlp), the DPP bound for the fixed-size
    /// networks (the paper's loss).
    pub fn new(arch: ArchKind) -> TrainConfig {
        TrainConfig {
            arch,
            objective: if arch.is_size_free() { Objective::Exact } else { Objective::Dpp },
            sizes: Vec::new(),
            epochs: 1000,
            lr: 1e-3,
            seed: 1,
            batch_size: 32,
            batches_per_epoch: 4,
            train_states: 2048,
            val_states: 512,
            eval_every: 50,
        }
    }

    fn check(&self) -> Result<()> {
        let positive = |field: &'static str, v: usize| {
            if v == 0 { Err(QnnError::Config { field, reason: "must be at least 1".into() }) } else { Ok(()) }
        };
        positive("epochs", self.epochs)?;
        positive("batch_size", self.batch_size)?;
        positive("batches_per_epoch", self.batches_per_epoch)?;
        positive("train_states", self.train_states)?;
        positive("val_states", self.val_states)?;
        if !self.arch.is_size_free() && !self.sizes.is_empty() {
            return Err(QnnError::Config {
                field: "sizes",
                reason: format!("the {} architecture is sized for one (M, S); only per-link and pair-mlp learn from several sizes", self.arch),
            });
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(QnnError::Config { field: "lr", reason: format!("must be a positive number, got {}", self.lr) });
        }
        Ok(())
    }
}

/// One point of the loss curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches ([`Objective::loss_meaning`]).
    pub loss: f64,
    /// Mean held-out share of the LP optimum, where evaluated.
    pub val_share: Option<f64>,
}

/// Share of the LP optimum on held-out states.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    /// Mean over states with a positive optimum.
    pub mean_share: f64,
    /// Mean share of the first candidate alone (the network's ranking,
    /// before the critic).
    pub first_share: f64,
    /// 5th percentile.
    pub p5_share: f64,
    /// States scored.
    pub states: usize,
    /// States left out because their optimum is 0 (nothing worth offloading).
    pub trivial: usize,
}

/// Scores `network` on `samples` by the share of the LP optimum its own
/// candidates reach (a fresh critic per state, so no state sees another's
/// decision).
pub fn validate(network: &Network, samples: &[Sample]) -> Result<Validation> {
    let (mut shares, mut first) = (Vec::with_capacity(samples.len()), Vec::with_capacity(samples.len()));
    for sample in samples.iter().filter(|s| s.has_optimum()) {
        let scores = network.arch().scores(&sample.input)?;
        let choice = Critic::new(DEFAULT_MAX_CANDIDATES, false).choose_from_network(&sample.input, &scores);
        shares.push(choice.value / sample.lp_value);
        first.push(Critic::new(1, false).choose_from_network(&sample.input, &scores).value / sample.lp_value);
    }
    let mut validation = Validation::of(shares, samples.len());
    validation.first_share = mean(&first);
    Ok(validation)
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { f64::NAN } else { values.iter().sum::<f64>() / values.len() as f64 }
}

impl Validation {
    /// Mean, 5th percentile and count of `shares`, out of `total` states.
    pub fn of(mut shares: Vec<f64>, total: usize) -> Validation {
        shares.sort_by(f64::total_cmp);
        let trivial = total - shares.len();
        if shares.is_empty() {
            return Validation { mean_share: f64::NAN, first_share: f64::NAN, p5_share: f64::NAN, states: 0, trivial };
        }
        let p5 = shares[((shares.len() - 1) as f64 * 0.05).round() as usize];
        Validation { mean_share: mean(&shares), first_share: f64::NAN, p5_share: p5, states: shares.len(), trivial }
    }
}

/// The mean loss over `batch` and its gradient.
pub fn batch_gradient(network: &Network, objective: Objective, batch: &[&Sample]) -> Result<(f64, Vec<f64>)> {
    let inputs: Vec<_> = batch.iter().map(|s| &s.input).collect();
    let scale = 1.0 / batch.len().max(1) as f64;
    let mut upstream = |b: usize, scores: &[f64]| {
        let sample = batch[b];
        let (l, mut d) = match objective {
            Objective::Exact => exact_loss(&sample.input, &sample.lp_mu, scores),
            Objective::Dpp => dpp_loss(&sample.input, sample.norm, scores),
        };
        d.iter_mut().for_each(|x| *x *= scale);
        (l * scale, d)
    };
    network.arch().gradient(&inputs, &mut upstream)
}

/// One Adam step of `network` on `batch` (the `step`-th, for the error):
/// the mean loss, refused when it or its gradient is not finite, so a
/// diverging run stops instead of writing NaNs into the model.
pub fn descend(network: &mut Network, adam: &mut Adam, objective: Objective, batch: &[&Sample], step: usize) -> Result<f64> {
    let (loss, grad) = batch_gradient(network, objective, batch)?;
    if !loss.is_finite() {
        return Err(QnnError::Diverged { step, what: "loss" });
    }
    if grad.iter().any(|g| !g.is_finite()) {
        return Err(QnnError::Diverged { step, what: "gradient" });
    }
    adam.step(network.arch_mut().params_mut(), &grad);
    network.arch_mut().refresh()?;
    Ok(loss)
}

/// A trained model and how it got there.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// The model file to save.
    pub model: ModelFile,
    /// The network.
    pub network: Network,
    /// One record per epoch.
    pub curve: Vec<EpochRecord>,
    /// Held-out validation at the end.
    pub validation: Validation,
    /// Held-out validation before training (the initial network).
    pub initial: Validation,
    /// Seconds spent collecting and labelling states.
    pub data_seconds: f64,
    /// Seconds spent in the optimisation loop.
    pub train_seconds: f64,
}

/// States for training and validation, prepared and labelled.
#[derive(Debug, Clone)]
pub struct Data {
    /// Feature scales measured on the training states.
    pub scales: FeatureScales,
    /// Training pool.
    pub train: Vec<Sample>,
    /// Held-out states.
    pub val: Vec<Sample>,
}

/// Collects, scales and labels training and held-out states, split evenly
/// among the configured sizes.
pub fn collect_data(scenario: &Scenario, config: &TrainConfig) -> Result<Data> {
    let sizes = if config.sizes.is_empty() { vec![(scenario.devices, scenario.servers)] } else { config.sizes.clone() };
    let mut per_size = Vec::with_capacity(sizes.len());
    for (i, &(devices, servers)) in sizes.iter().enumerate() {
        let sized = scenario
            .resized(devices, servers)
            .map_err(|e| QnnError::Config { field: "sizes", reason: e.to_string() })?;
        let share = |total: usize| total / sizes.len() + usize::from(i < total % sizes.len());
        let seed = config.seed.wrapping_add(i as u64 * 7919);
        let train = collect_states(&sized, share(config.train_states), seed)?;
        let val = collect_states(&sized, share(config.val_states), seed.wrapping_add(VALIDATION_SEED_OFFSET))?;
        per_size.push((sized, train, val));
    }
    let all_train: Vec<SystemState> = per_size.iter().flat_map(|(_, t, _)| t.iter().cloned()).collect();
    let scales = FeatureScales::measure(&all_train);
    let mut data = Data { scales, train: Vec::new(), val: Vec::new() };
    for (sized, train, val) in &per_size {
        data.train.extend(prepare(sized, train, &scales)?);
        data.val.extend(prepare(sized, val, &scales)?);
    }
    Ok(data)
}

/// Trains an architecture on `scenario`; `on_epoch` sees every record.
pub fn train(scenario: &Scenario, config: &TrainConfig, on_epoch: impl FnMut(&EpochRecord)) -> Result<TrainReport> {
    config.check()?;
    let started = Instant::now();
    let data = collect_data(scenario, config)?;
    let data_seconds = started.elapsed().as_secs_f64();
    train_on(scenario, config, &data, data_seconds, on_epoch)
}

/// Trains on already collected data.
pub fn train_on(
    scenario: &Scenario,
    config: &TrainConfig,
    data: &Data,
    data_seconds: f64,
    mut on_epoch: impl FnMut(&EpochRecord),
) -> Result<TrainReport> {
    config.check()?;
    let started = Instant::now();
    let mut network = Network::init(config.arch, scenario.devices, scenario.servers, config.seed)?;
    let initial = validate(&network, &data.val)?;
    let mut adam = Adam::new(network.arch().params().len(), config.lr);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x0ba7_c4e5);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    order.shuffle(&mut rng);
    let mut cursor = 0;
    let mut curve = Vec::with_capacity(config.epochs);
    let mut step = 0;
    for epoch in 1..=config.epochs {
        let mut epoch_loss = 0.0;
        for _ in 0..config.batches_per_epoch {
            let mut batch = Vec::with_capacity(config.batch_size);
            while batch.len() < config.batch_size.min(data.train.len()) {
                if cursor == order.len() {
                    order.shuffle(&mut rng);
                    cursor = 0;
                }
                batch.push(&data.train[order[cursor]]);
                cursor += 1;
            }
            step += 1;
            epoch_loss += descend(&mut network, &mut adam, config.objective, &batch, step)?;
        }
        let evaluate = epoch == config.epochs || (config.eval_every > 0 && epoch % config.eval_every == 0);
        let val_share = if evaluate { Some(validate(&network, &data.val)?.mean_share) } else { None };
        let record = EpochRecord { epoch, loss: epoch_loss / config.batches_per_epoch as f64, val_share };
        on_epoch(&record);
        curve.push(record);
    }
    let validation = validate(&network, &data.val)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let model = ModelFile {
        format_version: FORMAT_VERSION,
        scenario: ScenarioInfo::of(scenario),
        scales: data.scales,
        network: network.to_spec(),
        training: Some(TrainingInfo {
            objective: config.objective,
            sizes: config.sizes.clone(),
            epochs: config.epochs,
            lr: config.lr,
            seed: config.seed,
            batch_size: config.batch_size,
            batches_per_epoch: config.batches_per_epoch,
            train_states: data.train.len(),
            final_loss: curve.last().map_or(f64::NAN, |r| r.loss),
            validation_mean_share: validation.mean_share,
            validation_p5_share: validation.p5_share,
            seconds: train_seconds + data_seconds,
        }),
        decision: DecisionMode::Critic,
        closed_loop: None,
    };
    Ok(TrainReport { model, network, curve, validation, initial, data_seconds, train_seconds })
}
