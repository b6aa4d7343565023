//! What online learning decides, with no I/O, no threads and no clock: which
//! slots get an exact LP solve, which are skipped for want of budget, when a
//! training round is due and on which mini-batches, which samples the
//! replay buffer keeps. The policy asks it once per slot and carries out
//! its [`Plan`] (in-line or on the worker thread, [`super::worker`]); the
//! same answers come back whichever carries them out, so the tests drive it
//! directly with canned slots.
//!
//! * **Sampling.** Every `sample_every`-th slot is a candidate for an LP
//!   solve. It is started only if the worker is idle (at most one job in
//!   flight) and fewer than `max_lps` solves started in the last `window`
//!   slots; otherwise the slot is skipped and counted.
//! * **Labels.** With [`LabelSource::Lp`] the LP's exact decision is the
//!   target (the `qnn` policy); with [`LabelSource::Critic`] every slot's
//!   chosen decision is (LyDROO, which has no exact labels), and the LP
//!   solves only measure the share of the optimum.
//! * **Replay.** A FIFO buffer of `capacity` samples: the oldest goes
//!   first, so after a shift the buffer turns over to the new regime within
//!   `capacity` labels.
//! * **Training.** Every `train_every` slots, once `min_samples` are
//!   stored and the worker is idle, a round of `steps` Adam steps on
//!   mini-batches of `batch_size` drawn uniformly (with replacement, seeded)
//!   from the buffer; a round that finds the worker busy waits for the next
//!   slot. Every `checkpoint_every`-th round also writes a model file.

use crate::dataset::Sample;
use crate::error::{QnnError, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::sync::Arc;

/// Where the training targets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// The exact LP decision of sampled slots.
    Lp,
    /// The critic's chosen decision of every slot (LyDROO).
    Critic,
}

/// The settings of online learning.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineConfig {
    /// Where training targets come from.
    pub label: LabelSource,
    /// Train (true) or only measure the share of the optimum (a frozen
    /// model, the experiment's reference).
    pub learn: bool,
    /// An LP solve is wanted every this many slots.
    pub sample_every: u64,
    /// At most this many LP solves start within any `window` slots.
    pub max_lps: usize,
    /// The window of the LP budget, in slots.
    pub window: u64,
    /// A training round every this many slots.
    pub train_every: u64,
    /// Adam steps per round.
    pub steps: usize,
    /// States per mini-batch.
    pub batch_size: usize,
    /// Replay buffer capacity, in samples.
    pub capacity: usize,
    /// No training before the buffer holds this many samples.
    pub min_samples: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// A model file every this many rounds (0: never).
    pub checkpoint_every: u64,
    /// Seed of the mini-batch draws.
    pub seed: u64,
}

/// Pairs (M·S summed over samples) the replay buffer may hold: a sample
/// keeps about 70 bytes per pair, so this is about 300 MB.
pub const PAIR_BUDGET: usize = 1 << 22;

impl OnlineConfig {
    /// The `qnn` policy's settings: exact labels every 4th slot, at most 8
    /// solves per 32 slots, a round of 2 steps on 16 states every 8 slots.
    pub fn exact_labels(devices: usize, servers: usize) -> OnlineConfig {
        OnlineConfig {
            label: LabelSource::Lp,
            learn: true,
            sample_every: 4,
            max_lps: 8,
            window: 32,
            train_every: 8,
            steps: 2,
            batch_size: 16,
            capacity: capacity_for(256, devices, servers),
            min_samples: 8,
            lr: 1e-3,
            checkpoint_every: 5,
            seed: 1,
        }
    }

    /// LyDROO's settings (Bi et al.: memory 1024, a round every 10 slots,
    /// batches of 128 — ours 64, as our samples are whole slots), the
    /// critic's winners as labels; the LP measures every 4th slot.
    pub fn critic_labels(devices: usize, servers: usize) -> OnlineConfig {
        OnlineConfig {
            label: LabelSource::Critic,
            train_every: 10,
            steps: 1,
            batch_size: 64,
            capacity: capacity_for(1024, devices, servers),
            min_samples: 16,
            lr: 1e-2,
            ..OnlineConfig::exact_labels(devices, servers)
        }
    }

    fn check(&self) -> Result<()> {
        let positive = |field: &'static str, v: u64| {
            if v == 0 { Err(QnnError::Config { field, reason: "must be at least 1".into() }) } else { Ok(()) }
        };
        positive("online.sample_every", self.sample_every)?;
        positive("online.max_lps", self.max_lps as u64)?;
        positive("online.window", self.window)?;
        positive("online.train_every", self.train_every)?;
        positive("online.steps", self.steps as u64)?;
        positive("online.batch_size", self.batch_size as u64)?;
        positive("online.capacity", self.capacity as u64)?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(QnnError::Config { field: "online.lr", reason: format!("must be a positive number, got {}", self.lr) });
        }
        Ok(())
    }
}

/// `wanted` samples, or fewer where M·S would take the buffer past
/// [`PAIR_BUDGET`], and at least 16.
pub fn capacity_for(wanted: usize, devices: usize, servers: usize) -> usize {
    (PAIR_BUDGET / (devices * servers).max(1)).clamp(16, wanted.max(16))
}

/// What to do in one slot.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Solve the LP for this slot's state.
    pub solve_lp: bool,
    /// Store this slot's chosen decision as a label.
    pub label_choice: bool,
    /// Run a training round on these mini-batches (each `batch_size` long).
    pub train: Option<Vec<Vec<Arc<Sample>>>>,
    /// Write a model file after the round.
    pub checkpoint: bool,
}

impl Plan {
    /// Whether the plan needs the worker.
    pub fn needs_worker(&self) -> bool {
        self.solve_lp || self.train.is_some()
    }
}

/// Counts kept by the core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreCounts {
    /// Slots planned.
    pub slots: u64,
    /// LP solves started.
    pub lps: u64,
    /// Sampled slots skipped (worker busy or budget spent).
    pub skipped: u64,
    /// Samples stored.
    pub stored: u64,
    /// Training rounds started.
    pub rounds: u64,
}

/// The online learner's decisions (see the module docs).
#[derive(Debug)]
pub struct OnlineCore {
    config: OnlineConfig,
    buffer: VecDeque<Arc<Sample>>,
    recent_lps: VecDeque<u64>,
    train_due: bool,
    rng: ChaCha8Rng,
    counts: CoreCounts,
}

impl OnlineCore {
    /// A core with `config`, checked.
    pub fn new(config: OnlineConfig) -> Result<OnlineCore> {
        config.check()?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x0411_11e0);
        Ok(OnlineCore { buffer: VecDeque::with_capacity(config.capacity), recent_lps: VecDeque::new(), train_due: false, rng, counts: CoreCounts::default(), config })
    }

    /// The settings.
    pub fn config(&self) -> &OnlineConfig {
        &self.config
    }

    /// The counts so far.
    pub fn counts(&self) -> CoreCounts {
        self.counts
    }

    /// The plan for `slot`, given whether the worker can take a job.
    pub fn plan(&mut self, slot: u64, worker_idle: bool) -> Plan {
        self.counts.slots += 1;
        while self.recent_lps.front().is_some_and(|&t| t + self.config.window <= slot) {
            self.recent_lps.pop_front();
        }
        let mut plan = Plan {
            label_choice: self.config.learn && self.config.label == LabelSource::Critic,
            ..Plan::default()
        };
        if slot.is_multiple_of(self.config.sample_every) {
            if worker_idle && self.recent_lps.len() < self.config.max_lps {
                plan.solve_lp = true;
                self.recent_lps.push_back(slot);
                self.counts.lps += 1;
            } else {
                self.counts.skipped += 1;
            }
        }
        if self.config.learn && slot.is_multiple_of(self.config.train_every) {
            self.train_due = true;
        }
        // The label of this very slot counts towards the minimum.
        let available = self.buffer.len() + usize::from(plan.label_choice);
        if self.train_due && worker_idle && available >= self.config.min_samples.max(1) {
            self.train_due = false;
            self.counts.rounds += 1;
            plan.checkpoint = self.config.checkpoint_every > 0 && self.counts.rounds.is_multiple_of(self.config.checkpoint_every);
            plan.train = Some(Vec::new());
        }
        plan
    }

    /// Stores a labelled sample, evicting the oldest when full.
    pub fn store(&mut self, sample: Sample) {
        if self.buffer.len() == self.config.capacity {
            self.buffer.pop_front();
        }
        self.buffer.push_back(Arc::new(sample));
        self.counts.stored += 1;
    }

    /// Fills a plan's training round with its mini-batches (after this
    /// slot's label is stored).
    pub fn draw_batches(&mut self, plan: &mut Plan) {
        let Some(batches) = plan.train.as_mut() else { return };
        if self.buffer.is_empty() {
            plan.train = None;
            return;
        }
        for _ in 0..self.config.steps {
            let batch = (0..self.config.batch_size)
                .map(|_| Arc::clone(&self.buffer[self.rng.random_range(0..self.buffer.len())]))
                .collect();
            batches.push(batch);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::features::{FeatureScales, StateInput};
    use qmec_model::{Matrix, Scenario, SystemState};

    fn config() -> OnlineConfig {
        OnlineConfig {
            sample_every: 2,
            max_lps: 2,
            window: 10,
            train_every: 4,
            steps: 3,
            batch_size: 5,
            capacity: 3,
            min_samples: 2,
            ..OnlineConfig::exact_labels(2, 1)
        }
    }

    fn sample(tag: f64) -> Sample {
        let scenario = Scenario::paper();
        let state = SystemState::new(&scenario, 0, vec![tag; 10], vec![0.0; 10], Matrix::zeros(10, 3), Matrix::from_fn(10, 3, |_, _| 1e-6));
        let scales = FeatureScales { queue_bits: 1.0, rate_bps: 1.0, server_bits: 1.0 };
        Sample { input: StateInput::new(&scenario, &state, &scales), lp_value: tag, lp_mu: vec![0.0; 30], norm: 1.0 }
    }

    #[test]
    fn lps_are_sampled_within_the_budget_and_skipped_slots_are_counted() {
        let mut core = OnlineCore::new(config()).unwrap();
        let solved: Vec<u64> = (0..24).filter(|&t| core.plan(t, true).solve_lp).collect();
        // Every 2nd slot wanted, at most 2 per 10 slots.
        assert_eq!(solved, [0, 2, 10, 12, 20, 22]);
        assert_eq!(core.counts().skipped, 6);
        // A busy worker starts nothing and skips the sampled slot.
        let mut busy = OnlineCore::new(config()).unwrap();
        assert!(!busy.plan(0, false).solve_lp);
        assert_eq!(busy.counts().skipped, 1);
    }

    #[test]
    fn training_waits_for_samples_and_an_idle_worker_then_draws_its_batches() {
        let mut core = OnlineCore::new(config()).unwrap();
        assert!(core.plan(0, true).train.is_none(), "no samples yet");
        core.store(sample(1.0));
        core.store(sample(2.0));
        assert!(core.plan(1, false).train.is_none(), "the round is due but the worker is busy");
        let mut plan = core.plan(2, true);
        assert!(plan.train.is_some(), "the due round runs at the next idle slot");
        core.draw_batches(&mut plan);
        let batches = plan.train.unwrap();
        assert_eq!((batches.len(), batches[0].len()), (3, 5));
        assert!(core.plan(3, true).train.is_none(), "one round per train_every slots");
        assert!(core.plan(4, true).train.is_some());
    }

    #[test]
    fn the_buffer_evicts_its_oldest_sample() {
        let mut core = OnlineCore::new(config()).unwrap();
        for tag in 1..=5 {
            core.store(sample(f64::from(tag)));
        }
        let kept: Vec<f64> = core.buffer.iter().map(|s| s.lp_value).collect();
        assert_eq!(kept, [3.0, 4.0, 5.0]);
        assert_eq!(core.counts().stored, 5);
    }

    #[test]
    fn critic_labels_are_asked_for_every_slot_and_a_frozen_core_never_trains() {
        let mut lydroo = OnlineCore::new(OnlineConfig { label: LabelSource::Critic, ..config() }).unwrap();
        assert!((0..5).all(|t| lydroo.plan(t, true).label_choice));
        let mut frozen = OnlineCore::new(OnlineConfig { learn: false, ..config() }).unwrap();
        frozen.store(sample(1.0));
        frozen.store(sample(1.0));
        assert!((0..20).all(|t| frozen.plan(t, true).train.is_none()));
        assert!(frozen.plan(20, true).solve_lp, "it still measures");
    }

    #[test]
    fn a_bad_setting_is_refused_by_name() {
        let err = OnlineCore::new(OnlineConfig { window: 0, ..config() }).unwrap_err();
        assert!(err.to_string().contains("online.window"), "{err}");
        assert_eq!(capacity_for(256, 1000, 50), 83);
        assert_eq!(capacity_for(256, 10, 3), 256);
    }
}
