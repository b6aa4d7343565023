//! Closed-loop training: tune a trained network on what users judge a run
//! by — tail latency and transmit power over many slots — rather than on
//! the one-slot drift-plus-penalty bound it was first trained towards.
//!
//! The exact DPP decision is optimal only for a bound on one slot; the
//! outcomes that matter (p99 end-to-end latency, power, stability) arise
//! over many slots of queue dynamics, and they are not differentiable in
//! the network's parameters (a percentile of completion times of discrete
//! tasks, through a sort-and-fill decision). The per-link network has only
//! 32 parameters, so a zeroth-order method is cheap enough to be exact
//! about the objective:
//!
//! * **Evolution strategies** (Salimans et al. 2017), antithetic: each
//!   iteration draws `pairs` Gaussian directions ε and runs θ ± σε. The
//!   gradient estimate Σ (c(θ+σε) − c(θ−σε)) ε / (2σ·pairs) feeds Adam.
//! * **Common random numbers**: both members of a pair run on the very
//!   same simulator seeds (the simulator's arrival and fading streams are
//!   per device and untouched by decisions), so their difference measures
//!   the parameters, not the luck of the draw. Each iteration takes fresh
//!   seeds, so the model cannot learn one sample path.
//! * **Cost** of one rollout, on each training size (M, S):
//!   p99 / p99_ref + λ · P_tx / P_ref, plus [`UNSTABLE_PENALTY`] when its
//!   backlog grows ([`qmec_sim::Summary::stable`]): latency counts
//!   completed tasks only, so an unstable controller would otherwise look
//!   fast. The references are `lyapunov`'s figures on the same scenario
//!   and validation seeds, so a cost of 1 + λ reads "as good as lyapunov".
//! * **Decisions** are the network's own ([`DecisionMode::Network`]): the
//!   pairs it would use, filled in its order. Were the DPP critic kept, it
//!   would overrule most changes the outcomes ask for.
//! * **Selection**: the centre θ is scored on held-out validation seeds
//!   at the start, every `eval_every` iterations and at the end; the best
//!   scored θ is returned (the start included), so more budget never
//!   returns a worse model on validation.

use crate::adam::Adam;
use crate::arch::Network;
use crate::candidates::DecisionMode;
use crate::error::{QnnError, Result};
use crate::features::FeatureScales;
use crate::model_file::ModelFile;
use crate::policy::LearnedPolicy;
use qmec_model::Scenario;
use qmec_policies::Lyapunov;
use qmec_sim::Summary;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Added to a rollout's cost when its backlog grows without bound.
pub const UNSTABLE_PENALTY: f64 = 1.0;
/// Validation seeds are drawn from here on, training seeds from
/// [`TRAIN_SEED_BASE`]: disjoint, and far from the small seeds experiments use.
const VALIDATION_SEED_BASE: u64 = 1 << 40;
const TRAIN_SEED_BASE: u64 = 1 << 41;

/// How to train in closed loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoopConfig {
    /// Sizes (M, S) rolled out; empty: the scenario's own.
    pub sizes: Vec<(usize, usize)>,
    /// ES iterations (Adam steps).
    pub iterations: usize,
    /// Antithetic pairs per iteration.
    pub pairs: usize,
    /// Perturbation scale σ, in parameter units.
    pub sigma: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// Slots per rollout.
    pub slots: u64,
    /// Simulator seeds per size for each perturbation (shared by a pair).
    pub rollout_seeds: usize,
    /// Held-out seeds per size for scoring the centre.
    pub val_seeds: usize,
    /// Score the centre every this many iterations (0: only at the end).
    pub eval_every: usize,
    /// λ, the weight of relative transmit power against relative p99.
    pub power_weight: f64,
    /// Seed of the perturbations and of the rollout seeds.
    pub seed: u64,
}

impl Default for ClosedLoopConfig {
    fn default() -> ClosedLoopConfig {
        ClosedLoopConfig {
            sizes: Vec::new(),
            iterations: 60,
            pairs: 8,
            sigma: 0.05,
            lr: 0.02,
            slots: 300,
            rollout_seeds: 2,
            val_seeds: 4,
            eval_every: 10,
            power_weight: 1.0,
            seed: 1,
        }
    }
}

impl ClosedLoopConfig {
    /// Refuses settings no training can run with, naming the setting.
    pub fn validate(&self) -> Result<()> {
        let config = |field: &'static str, reason: &str| Err(QnnError::Config { field, reason: reason.into() });
        if self.iterations == 0 {
            return config("iterations", "must be at least 1");
        }
        if self.pairs == 0 {
            return config("pairs", "must be at least 1");
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return config("sigma", "must be a positive number");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return config("lr", "must be a positive number");
        }
        if self.slots < 20 {
            return config("slots", "must be at least 20 (a p99 needs tasks to complete)");
        }
        if self.rollout_seeds == 0 || self.val_seeds == 0 {
            return config("rollout_seeds", "training and validation each need at least one seed");
        }
        if !(self.power_weight.is_finite() && self.power_weight >= 0.0) {
            return config("power_weight", "must be a non-negative number");
        }
        Ok(())
    }
}

/// The record of closed-loop training kept in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoopInfo {
    /// The settings it was trained with (sizes resolved: never empty).
    pub config: ClosedLoopConfig,
    /// Validation cost of the starting model (network mode).
    pub initial_cost: f64,
    /// Validation cost of the model kept.
    pub final_cost: f64,
    /// Iteration the kept model comes from (0: the start).
    pub kept_iteration: usize,
    /// Wall-clock training time (s).
    pub seconds: f64,
}

/// What `lyapunov` achieves on one size: the cost's normalisers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reference {
    /// M.
    pub devices: usize,
    /// S.
    pub servers: usize,
    /// Mean p99 latency over the validation seeds (s).
    pub p99_s: f64,
    /// Mean transmit power (W).
    pub tx_power_w: f64,
}

/// One size's outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SizeOutcome {
    /// M.
    pub devices: usize,
    /// S.
    pub servers: usize,
    /// Mean p99 latency (s).
    pub p99_s: f64,
    /// Mean transmit power (W).
    pub tx_power_w: f64,
    /// Share of rollouts that stayed stable.
    pub stable_share: f64,
}

/// A parameter vector scored on a set of seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Mean cost over sizes and seeds (lower is better).
    pub cost: f64,
    /// Per size.
    pub sizes: Vec<SizeOutcome>,
}

/// One iteration of training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IterationRecord {
    /// 1-based.
    pub iteration: usize,
    /// Mean cost of the iteration's perturbed rollouts (training seeds).
    pub train_cost: f64,
    /// Validation cost of the centre after this iteration's step, when scored.
    pub val_cost: Option<f64>,
}

/// What closed-loop training returns.
#[derive(Debug, Clone)]
pub struct ClosedLoopReport {
    /// The model file of the kept parameters (decision mode `network`).
    pub model: ModelFile,
    /// The kept network.
    pub network: Network,
    /// Per iteration.
    pub curve: Vec<IterationRecord>,
    /// The starting parameters on the validation seeds.
    pub initial: Evaluation,
    /// The kept parameters on the validation seeds.
    pub kept: Evaluation,
    /// `lyapunov` on the validation seeds.
    pub references: Vec<Reference>,
}

/// One size to roll out, with its normaliser.
#[derive(Debug, Clone)]
struct Arena {
    scenario: Scenario,
    reference: Reference,
}

/// The model being trained: everything a rollout needs but the parameters.
struct Trainee<'a> {
    network: &'a Network,
    scales: FeatureScales,
    arenas: &'a [Arena],
    slots: u64,
    power_weight: f64,
}

impl Trainee<'_> {
    /// The network with `params`, as a network-mode policy.
    fn policy(&self, params: &[f64]) -> Result<LearnedPolicy> {
        let mut network = self.network.clone();
        network.arch_mut().params_mut().copy_from_slice(params);
        network.arch_mut().refresh()?;
        Ok(LearnedPolicy::new(network, self.scales).with_mode(DecisionMode::Network))
    }

    /// Cost of one rollout and its summary.
    fn rollout(&self, params: &[f64], arena: &Arena, seed: u64) -> Result<(f64, Summary)> {
        let mut policy = self.policy(params)?;
        let summary = simulate(&arena.scenario, seed, &mut policy, self.slots)?;
        Ok((cost(&summary, &arena.reference, self.power_weight), summary))
    }

    /// Mean cost of `params` over every arena and `seeds`, with per-size figures.
    fn evaluate(&self, params: &[f64], seeds: &[u64]) -> Result<Evaluation> {
        let jobs: Vec<(&Arena, u64)> = self.arenas.iter().flat_map(|a| seeds.iter().map(move |&s| (a, s))).collect();
        let results = parallel_map(&jobs, |&(arena, seed)| self.rollout(params, arena, seed))?;
        let per_size = seeds.len().max(1) as f64;
        let sizes = self
            .arenas
            .iter()
            .zip(results.chunks(seeds.len().max(1)))
            .map(|(arena, runs)| SizeOutcome {
                devices: arena.scenario.devices,
                servers: arena.scenario.servers,
                p99_s: runs.iter().map(|(_, s)| s.latency.p99_s).sum::<f64>() / per_size,
                tx_power_w: runs.iter().map(|(_, s)| s.tx_power_w).sum::<f64>() / per_size,
                stable_share: runs.iter().filter(|(_, s)| s.stable).count() as f64 / per_size,
            })
            .collect();
        Ok(Evaluation { cost: mean(results.iter().map(|(c, _)| *c)), sizes })
    }

    /// The mean cost of each parameter vector over every arena and `seeds`,
    /// all rollouts at once so every core stays busy.
    fn mean_costs(&self, candidates: &[Vec<f64>], seeds: &[u64]) -> Result<Vec<f64>> {
        let jobs: Vec<(&[f64], &Arena, u64)> = candidates
            .iter()
            .flat_map(|p| self.arenas.iter().flat_map(move |a| seeds.iter().map(move |&s| (p.as_slice(), a, s))))
            .collect();
        let costs = parallel_map(&jobs, |&(params, arena, seed)| self.rollout(params, arena, seed).map(|(c, _)| c))?;
        let per_candidate = (self.arenas.len() * seeds.len()).max(1);
        Ok(costs.chunks(per_candidate).map(|c| mean(c.iter().copied())).collect())
    }
}

/// The cost of one run against its reference (see the module docs).
pub fn cost(summary: &Summary, reference: &Reference, power_weight: f64) -> f64 {
    let relative = |value: f64, by: f64| if by > 0.0 { value / by } else { value };
    let unstable = if summary.stable { 0.0 } else { UNSTABLE_PENALTY };
    relative(summary.latency.p99_s, reference.p99_s) + power_weight * relative(summary.tx_power_w, reference.tx_power_w) + unstable
}

/// The ES gradient of the cost from antithetic pairs: Σ (c⁺ − c⁻) ε / (2σ n).
pub fn antithetic_gradient(directions: &[Vec<f64>], costs: &[(f64, f64)], sigma: f64) -> Vec<f64> {
    let n_params = directions.first().map_or(0, Vec::len);
    let mut grad = vec![0.0; n_params];
    let scale = 1.0 / (2.0 * sigma * directions.len().max(1) as f64);
    for (eps, (plus, minus)) in directions.iter().zip(costs) {
        for (g, e) in grad.iter_mut().zip(eps) {
            *g += (plus - minus) * e * scale;
        }
    }
    grad
}

/// Trains the network of `start` in closed loop on `scenario` (and the
/// sizes `config` names) and returns the best-validating parameters as a
/// network-mode model file. `on_iteration` sees each iteration.
pub fn train_closed_loop(
    scenario: &Scenario,
    start: &(ModelFile, Network),
    config: &ClosedLoopConfig,
    mut on_iteration: impl FnMut(&IterationRecord),
) -> Result<ClosedLoopReport> {
    config.validate()?;
    let started = Instant::now();
    let (file, network) = start;
    let sizes = if config.sizes.is_empty() { vec![(scenario.devices, scenario.servers)] } else { config.sizes.clone() };
    let val_seeds: Vec<u64> = (0..config.val_seeds as u64).map(|k| VALIDATION_SEED_BASE + k).collect();
    let arenas = arenas(scenario, file, network, &sizes, &val_seeds, config.slots)?;
    let trainee = Trainee { network, scales: file.scales, arenas: &arenas, slots: config.slots, power_weight: config.power_weight };

    let mut params = network.arch().params().to_vec();
    let initial = trainee.evaluate(&params, &val_seeds)?;
    let (mut best_cost, mut best_params, mut kept_iteration) = (initial.cost, params.clone(), 0);
    let mut adam = Adam::new(params.len(), config.lr);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut curve = Vec::with_capacity(config.iterations);
    for iteration in 1..=config.iterations {
        let seeds = iteration_seeds(config, iteration);
        let directions: Vec<Vec<f64>> =
            (0..config.pairs).map(|_| (0..params.len()).map(|_| StandardNormal.sample(&mut rng)).collect()).collect();
        let perturbed: Vec<Vec<f64>> = directions
            .iter()
            .flat_map(|eps| [shifted(&params, eps, config.sigma), shifted(&params, eps, -config.sigma)])
            .collect();
        let costs: Vec<(f64, f64)> =
            trainee.mean_costs(&perturbed, &seeds)?.chunks_exact(2).map(|pm| (pm[0], pm[1])).collect();
        let grad = antithetic_gradient(&directions, &costs, config.sigma);
        if grad.iter().any(|g| !g.is_finite()) {
            return Err(QnnError::Diverged { step: iteration, what: "ES gradient" });
        }
        adam.step(&mut params, &grad);
        let score_now = iteration == config.iterations || (config.eval_every > 0 && iteration % config.eval_every == 0);
        let val_cost = if score_now { Some(trainee.evaluate(&params, &val_seeds)?.cost) } else { None };
        if let Some(c) = val_cost.filter(|&c| c < best_cost) {
            (best_cost, best_params, kept_iteration) = (c, params.clone(), iteration);
        }
        let train_cost = mean(costs.iter().flat_map(|&(p, m)| [p, m]));
        let record = IterationRecord { iteration, train_cost, val_cost };
        on_iteration(&record);
        curve.push(record);
    }

    let kept = trainee.evaluate(&best_params, &val_seeds)?;
    let policy = trainee.policy(&best_params)?;
    let network = policy.network().clone();
    let model = ModelFile {
        network: network.to_spec(),
        decision: DecisionMode::Network,
        closed_loop: Some(ClosedLoopInfo {
            config: ClosedLoopConfig { sizes, ..config.clone() },
            initial_cost: initial.cost,
            final_cost: kept.cost,
            kept_iteration,
            seconds: started.elapsed().as_secs_f64(),
        }),
        ..file.clone()
    };
    let references = arenas.iter().map(|a| a.reference).collect();
    Ok(ClosedLoopReport { model, network, curve, initial, kept, references })
}

/// The scenario at each size, checked against the model, with lyapunov's
/// figures on the validation seeds as its reference.
fn arenas(
    scenario: &Scenario,
    file: &ModelFile,
    network: &Network,
    sizes: &[(usize, usize)],
    val_seeds: &[u64],
    slots: u64,
) -> Result<Vec<Arena>> {
    sizes
        .iter()
        .map(|&(m, s)| {
            let sized = if (m, s) == (scenario.devices, scenario.servers) {
                scenario.clone()
            } else {
                scenario.resized(m, s).map_err(|e| QnnError::Config { field: "sizes", reason: e.to_string() })?
            };
            file.check_fits(network, &sized)?;
            let runs = parallel_map(val_seeds, |&seed| simulate(&sized, seed, &mut Lyapunov, slots))?;
            let reference = Reference {
                devices: m,
                servers: s,
                p99_s: mean(runs.iter().map(|r| r.latency.p99_s)),
                tx_power_w: mean(runs.iter().map(|r| r.tx_power_w)),
            };
            Ok(Arena { scenario: sized, reference })
        })
        .collect()
}

fn iteration_seeds(config: &ClosedLoopConfig, iteration: usize) -> Vec<u64> {
    let first = TRAIN_SEED_BASE + config.seed.wrapping_mul(1 << 24) + (iteration * config.rollout_seeds) as u64;
    (0..config.rollout_seeds as u64).map(|k| first + k).collect()
}

fn shifted(params: &[f64], direction: &[f64], by: f64) -> Vec<f64> {
    params.iter().zip(direction).map(|(p, e)| p + by * e).collect()
}

fn simulate(scenario: &Scenario, seed: u64, policy: &mut dyn qmec_model::Policy, slots: u64) -> Result<Summary> {
    qmec_sim::simulate(scenario, seed, policy, slots, |_| {})
        .map(|(summary, _)| summary)
        .map_err(|e| QnnError::Rollout(e.to_string()))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 { f64::NAN } else { sum / count as f64 }
}

/// `f` over `items` on every core; results in order, the first error wins.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len()).max(1);
    let chunk = items.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<R>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(|| part.iter().map(&f).collect())).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(QnnError::Rollout("a rollout thread panicked".into()))))
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_antithetic_gradient_points_up_the_cost() {
        // Cost c(θ) = 3·θ₀ − θ₁: a pair along each axis recovers (3, −1).
        let directions = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let sigma = 0.1;
        let costs = [(3.0 * sigma, -3.0 * sigma), (-sigma, sigma)];
        let grad = antithetic_gradient(&directions, &costs, sigma);
        // Each pair contributes (c⁺ − c⁻)/(2σ·2) = slope / 2.
        assert!((grad[0] - 1.5).abs() < 1e-12 && (grad[1] + 0.5).abs() < 1e-12, "{grad:?}");
    }

    #[test]
    fn nonsense_settings_are_refused_by_name() {
        let bad = ClosedLoopConfig { sigma: 0.0, ..ClosedLoopConfig::default() };
        assert!(matches!(bad.validate(), Err(QnnError::Config { field: "sigma", .. })));
        let bad = ClosedLoopConfig { slots: 5, ..ClosedLoopConfig::default() };
        assert!(matches!(bad.validate(), Err(QnnError::Config { field: "slots", .. })));
        assert!(ClosedLoopConfig::default().validate().is_ok());
    }

    #[test]
    fn training_and_validation_seeds_never_meet() {
        let config = ClosedLoopConfig::default();
        let train: Vec<u64> = (1..=config.iterations).flat_map(|i| iteration_seeds(&config, i)).collect();
        assert!(train.iter().all(|s| *s >= TRAIN_SEED_BASE));
        assert!((VALIDATION_SEED_BASE + config.val_seeds as u64) < TRAIN_SEED_BASE);
    }
}
