//! The trainer shared by every architecture.
//!
//! An **epoch** is `batches_per_epoch` mini-batches of `batch_size` states
//! drawn without replacement from the training pool (reshuffled whenever
//! the pool is used up) — not a full pass over the pool. With the defaults
//! (4 × 32 states, a pool of 2 048) 1 000 epochs are 4 000 Adam steps and
//! about 62 passes over the pool, which keeps `--epochs 1000` on the paper
//! scenario within minutes on two cores for every architecture.
//!
//! Each step: scores for the batch, the DPP loss through the projection
//! ([`crate::loss`]), the gradient of the mean loss with respect to every
//! parameter (adjoint VJP for circuits, hand-written backprop for dense
//! layers), one Adam step. Every `eval_every` epochs, and at the end, the
//! held-out states are scored by the share of the exact LP optimum reached.

use crate::adam::Adam;
use crate::arch::{ArchKind, Network};
use crate::dataset::{Sample, collect_states, prepare};
use crate::error::{QnnError, Result};
use crate::features::FeatureScales;
use crate::loss::{decide, dpp_loss, dpp_value};
use crate::model_file::{FORMAT_VERSION, ModelFile, ScenarioInfo, TrainingInfo};
use qmec_model::Scenario;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Offset between training and validation rollout seeds.
const VALIDATION_SEED_OFFSET: u64 = 0x5eed_0000_0000;

/// What to train and how.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Architecture.
    pub arch: ArchKind,
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
    /// The defaults for `arch`: 1000 epochs, lr 0.001, seed 1, 4 × 32.
    pub fn new(arch: ArchKind) -> TrainConfig {
        TrainConfig {
            arch,
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
    /// Mean training loss over the epoch's batches (−share of the LP optimum).
    pub loss: f64,
    /// Mean held-out share of the LP optimum, where evaluated.
    pub val_share: Option<f64>,
}

/// Share of the LP optimum on held-out states.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    /// Mean over states with a positive optimum.
    pub mean_share: f64,
    /// 5th percentile.
    pub p5_share: f64,
    /// States scored.
    pub states: usize,
    /// States left out because their optimum is 0 (nothing worth offloading).
    pub trivial: usize,
}

/// Scores `arch` on `samples`.
pub fn validate(network: &Network, samples: &[Sample]) -> Result<Validation> {
    let mut shares = Vec::with_capacity(samples.len());
    for sample in samples.iter().filter(|s| s.has_optimum()) {
        let mu = decide(network.arch(), &sample.input)?;
        shares.push(dpp_value(&sample.input, &mu) / sample.lp_value);
    }
    shares.sort_by(f64::total_cmp);
    let trivial = samples.len() - shares.len();
    if shares.is_empty() {
        return Ok(Validation { mean_share: f64::NAN, p5_share: f64::NAN, states: 0, trivial });
    }
    let p5 = shares[((shares.len() - 1) as f64 * 0.05).round() as usize];
    Ok(Validation {
        mean_share: shares.iter().sum::<f64>() / shares.len() as f64,
        p5_share: p5,
        states: shares.len(),
        trivial,
    })
}

/// The mean loss over `batch` and its gradient.
pub fn batch_gradient(network: &Network, batch: &[&Sample]) -> Result<(f64, Vec<f64>)> {
    let inputs: Vec<_> = batch.iter().map(|s| &s.input).collect();
    let scale = 1.0 / batch.len().max(1) as f64;
    let mut upstream = |b: usize, scores: &[f64]| {
        let (l, mut d) = dpp_loss(&batch[b].input, batch[b].norm, scores);
        d.iter_mut().for_each(|x| *x *= scale);
        (l * scale, d)
    };
    network.arch().gradient(&inputs, &mut upstream)
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

/// Collects, scales and labels training and held-out states.
pub fn collect_data(scenario: &Scenario, config: &TrainConfig) -> Result<Data> {
    let train_states = collect_states(scenario, config.train_states, config.seed)?;
    let val_states = collect_states(scenario, config.val_states, config.seed.wrapping_add(VALIDATION_SEED_OFFSET))?;
    let scales = FeatureScales::measure(&train_states);
    Ok(Data {
        train: prepare(scenario, &train_states, &scales)?,
        val: prepare(scenario, &val_states, &scales)?,
        scales,
    })
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
            let (loss, grad) = batch_gradient(&network, &batch)?;
            step += 1;
            if !loss.is_finite() {
                return Err(QnnError::Diverged { step, what: "loss" });
            }
            if grad.iter().any(|g| !g.is_finite()) {
                return Err(QnnError::Diverged { step, what: "gradient" });
            }
            adam.step(network.arch_mut().params_mut(), &grad);
            network.arch_mut().refresh()?;
            epoch_loss += loss;
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
    };
    Ok(TrainReport { model, network, curve, validation, initial, data_seconds, train_seconds })
}
