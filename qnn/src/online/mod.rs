//! Online learning inside a learned policy: the controller (and the
//! simulator) keep training the network on the states they meet, so a model
//! trained on one size or load adapts to another.
//!
//! Each slot the policy decides first, then hands its [`Online`] the
//! state, its prepared input and the chosen decision. The [`core`] says
//! what to do (solve the LP for this slot? store a label? train?), and the
//! [`worker`] does it. Finished work is taken in at the start and the end
//! of every decision: a trained network replaces the deciding one whole
//! (the worker trained its own copy), so a decision never sees a
//! half-updated network, and a slot's decision always uses the latest
//! weights at its start.
//!
//! **Execution.** The controller runs the work on a worker thread
//! ([`Execution::Thread`]): at most one job in flight, a sampled slot that
//! finds it busy is skipped and counted, and the slot loop never waits.
//! The simulator runs it in-line ([`Execution::Inline`]) at the slots the
//! core picks, so a seed gives the same run on any machine: how far a
//! thread gets between slots depends on the machine's speed and load,
//! which would make every simulated figure irreproducible.

pub mod core;
pub mod worker;

use self::core::{CoreCounts, OnlineConfig, OnlineCore, Plan};
use self::worker::{Executor, Job, LpTask, Outcome, TrainTask};
use crate::candidates::DecisionMode;
use crate::adam::Adam;
use crate::arch::Network;
use crate::candidates::Choice;
use crate::dataset::Sample;
use crate::error::{QnnError, Result};
use crate::features::{FeatureScales, StateInput};
use crate::model_file::{FORMAT_VERSION, ModelFile, ScenarioInfo};
use qmec_model::{Scenario, SlotFigure, SystemState};
use std::path::PathBuf;

pub use self::core::LabelSource;
pub use self::worker::Execution;

/// The model file an online policy keeps rewriting in its run folder.
pub const CHECKPOINT_FILE: &str = "online-model.json";

/// What online learning has done so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnlineStats {
    /// The core's counts (slots, LP solves, skipped slots, samples, rounds).
    pub counts: CoreCounts,
    /// Training rounds whose network was swapped in.
    pub swaps: u64,
    /// Seconds of work spent on LP solves.
    pub lp_seconds: f64,
    /// Seconds of work spent training and writing model files.
    pub train_seconds: f64,
    /// The last round's mean loss.
    pub last_loss: Option<f64>,
    /// Jobs that went wrong, and the last reason.
    pub errors: u64,
    /// The last reason.
    pub last_error: Option<String>,
}

/// A policy's online learner (see the module docs).
#[derive(Debug)]
pub struct Online {
    core: OnlineCore,
    executor: Executor,
    adam: Option<Adam>,
    figures: Vec<SlotFigure>,
    stats: OnlineStats,
    checkpoints: Option<PathBuf>,
}

impl Online {
    /// A learner for a network of `n_params` parameters; model files go to
    /// `checkpoints` (a folder, created if missing) when given.
    pub fn new(config: OnlineConfig, execution: Execution, checkpoints: Option<PathBuf>, n_params: usize) -> Result<Online> {
        if let Some(dir) = &checkpoints {
            std::fs::create_dir_all(dir).map_err(|source| QnnError::Io { path: dir.display().to_string(), source })?;
        }
        let adam = Adam::new(n_params, config.lr);
        let executor = Executor::new(execution)
            .map_err(|source| QnnError::Io { path: "the online worker thread".into(), source })?;
        Ok(Online { core: OnlineCore::new(config)?, executor, adam: Some(adam), figures: Vec::new(), stats: OnlineStats::default(), checkpoints })
    }

    /// What it has done so far.
    pub fn stats(&self) -> OnlineStats {
        OnlineStats { counts: self.core.counts(), ..self.stats.clone() }
    }

    /// The figures gathered since the last call.
    pub fn take_figures(&mut self) -> Vec<SlotFigure> {
        std::mem::take(&mut self.figures)
    }

    /// Takes in finished work: samples, figures, and a trained network,
    /// which replaces `network`.
    pub fn absorb(&mut self, network: &mut Network) {
        for outcome in self.executor.collect() {
            self.take_in(outcome, network);
        }
    }

    fn take_in(&mut self, outcome: Outcome, network: &mut Network) {
        self.stats.lp_seconds += outcome.lp_seconds;
        self.stats.train_seconds += outcome.train_seconds;
        self.figures.extend(outcome.figure);
        if let Some(sample) = outcome.sample {
            self.core.store(sample);
        }
        if let Some((trained, adam, loss)) = outcome.trained {
            *network = trained;
            self.adam = Some(adam);
            self.stats.swaps += 1;
            self.stats.last_loss = Some(loss);
        }
        if let Some(error) = outcome.error {
            self.stats.errors += 1;
            self.stats.last_error = Some(error);
        }
    }

    /// Plans and hands over this slot's work, once `decided` was decided by
    /// `network`.
    pub fn after_decision(&mut self, decided: Decided<'_>, network: &mut Network, scales: &FeatureScales) {
        let mut plan = self.core.plan(decided.state.slot, self.executor.idle());
        if plan.label_choice {
            let (input, choice) = (&decided.input, decided.choice);
            self.core.store(Sample { input: input.clone(), lp_value: choice.value, lp_mu: choice.mu.clone(), norm: input.psi_scale });
        }
        self.core.draw_batches(&mut plan);
        if !plan.needs_worker() {
            return;
        }
        let job = self.job(plan, decided, network, scales);
        if let Err(refused) = self.executor.submit(job) {
            // Only a thread that died refuses: keep the optimiser.
            if let Some(train) = refused.train {
                self.adam = Some(train.adam);
            }
            self.stats.errors += 1;
            self.stats.last_error = Some("the online worker thread is gone".into());
        }
        self.absorb(network);
    }

    fn job(&mut self, plan: Plan, decided: Decided<'_>, network: &Network, scales: &FeatureScales) -> Job {
        let Decided { scenario, state, input, choice } = decided;
        let lp = plan.solve_lp.then(|| Box::new(LpTask {
            slot: state.slot,
            scenario: scenario.clone(),
            state: state.clone(),
            input,
            chosen_value: choice.value,
            label: self.core.config().label,
        }));
        let checkpoint = self.checkpoints.as_ref().filter(|_| plan.checkpoint).map(|dir| {
            let file = ModelFile {
                format_version: FORMAT_VERSION,
                scenario: ScenarioInfo::of(scenario),
                scales: *scales,
                network: network.to_spec(),
                training: None,
                // Online learning trains towards the exact decision, which
                // is the critic's target, whatever the model started as.
                decision: DecisionMode::Critic,
                closed_loop: None,
            };
            (dir.join(CHECKPOINT_FILE), file)
        });
        let train = plan
            .train
            .and_then(|batches| self.adam.take().map(|adam| Box::new(TrainTask { network: network.clone(), adam, batches, checkpoint })));
        Job { lp, train }
    }
}

/// One slot as decided: what the learner needs of it.
#[derive(Debug)]
pub struct Decided<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The slot's state.
    pub state: &'a SystemState,
    /// Its prepared input (moved into the LP job or the label).
    pub input: StateInput,
    /// The decision taken.
    pub choice: &'a Choice,
}
