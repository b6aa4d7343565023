//! Carries out the online learner's heavy work — exact LP solves, training
//! rounds, model files — either in-line or on a worker thread, off the
//! slot's critical path. What to do is decided elsewhere
//! ([`super::core`]); a [`Job`] holds everything its work needs (its own
//! copy of the network and the optimiser), so the worker shares nothing
//! with the decide path and its result replaces the network whole.

use super::core::LabelSource;
use crate::adam::Adam;
use crate::arch::Network;
use crate::dataset::Sample;
use crate::features::StateInput;
use crate::model_file::ModelFile;
use crate::train::{Objective, descend};
use qmec_model::{Scenario, SlotFigure, SystemState};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::Instant;

/// An exact solve of one slot's LP.
#[derive(Debug)]
pub struct LpTask {
    /// The slot.
    pub slot: u64,
    /// Its scenario.
    pub scenario: Scenario,
    /// Its state.
    pub state: SystemState,
    /// Its prepared input, kept as the sample's input.
    pub input: StateInput,
    /// Σ Ψ μ of the decision taken.
    pub chosen_value: f64,
    /// Whether the LP's decision becomes a training label.
    pub label: LabelSource,
}

/// A training round.
#[derive(Debug)]
pub struct TrainTask {
    /// The network to train (a copy of the deciding one).
    pub network: Network,
    /// Its optimiser state.
    pub adam: Adam,
    /// One mini-batch per Adam step.
    pub batches: Vec<Vec<Arc<Sample>>>,
    /// Where to write the trained network, and the file around it.
    pub checkpoint: Option<(PathBuf, ModelFile)>,
}

/// One slot's work.
#[derive(Debug, Default)]
pub struct Job {
    /// An LP solve, if planned.
    pub lp: Option<Box<LpTask>>,
    /// A training round, if planned.
    pub train: Option<Box<TrainTask>>,
}

/// What a job produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The share of the optimum the slot's decision reached.
    pub figure: Option<SlotFigure>,
    /// The LP-labelled sample to store.
    pub sample: Option<Sample>,
    /// The trained network, its optimiser and the round's mean loss.
    pub trained: Option<(Network, Adam, f64)>,
    /// Seconds spent on the LP solve.
    pub lp_seconds: f64,
    /// Seconds spent training (and writing the model file).
    pub train_seconds: f64,
    /// What went wrong, if anything (the slot loop goes on regardless).
    pub error: Option<String>,
}

/// Does a job's work.
pub fn run_job(job: Job) -> Outcome {
    let mut outcome = Outcome::default();
    if let Some(task) = job.lp {
        let started = Instant::now();
        solve(*task, &mut outcome);
        outcome.lp_seconds = started.elapsed().as_secs_f64();
    }
    if let Some(task) = job.train {
        let started = Instant::now();
        train(*task, &mut outcome);
        outcome.train_seconds = started.elapsed().as_secs_f64();
    }
    outcome
}

fn solve(task: LpTask, outcome: &mut Outcome) {
    let sample = match Sample::labelled(&task.scenario, &task.state, task.input) {
        Ok(sample) => sample,
        Err(e) => {
            outcome.error = Some(format!("slot {}: LP: {e}", task.slot));
            return;
        }
    };
    if sample.has_optimum() {
        outcome.figure = Some(SlotFigure { slot: task.slot, lp_share: task.chosen_value / sample.lp_value });
    }
    if task.label == LabelSource::Lp {
        outcome.sample = Some(sample);
    }
}

fn train(task: TrainTask, outcome: &mut Outcome) {
    let TrainTask { mut network, mut adam, batches, checkpoint } = task;
    let mut losses = 0.0;
    for (step, batch) in batches.iter().enumerate() {
        let batch: Vec<&Sample> = batch.iter().map(Arc::as_ref).collect();
        match descend(&mut network, &mut adam, Objective::Exact, &batch, step + 1) {
            Ok(loss) => losses += loss,
            Err(e) => {
                // The deciding network stays as it was.
                outcome.error = Some(format!("training: {e}"));
                return;
            }
        }
    }
    if let Some((path, mut file)) = checkpoint {
        file.network = network.to_spec();
        if let Err(e) = file.save(&path) {
            outcome.error = Some(format!("checkpoint: {e}"));
        }
    }
    outcome.trained = Some((network, adam, losses / batches.len().max(1) as f64));
}

/// How jobs are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// In the decide call, at the slots the core picks: the same seed gives
    /// the same run, whatever the machine's speed (the simulator's mode).
    Inline,
    /// On a worker thread, one job at a time; the decide call never waits
    /// (the controller's mode).
    Thread,
}

/// Carries jobs out, in-line or on its thread.
#[derive(Debug)]
pub enum Executor {
    /// Results of jobs done in-line, not yet collected.
    Inline(Vec<Outcome>),
    /// The worker thread.
    Thread(Worker),
}

impl Executor {
    /// An executor of the given kind (a thread is started for `Thread`).
    pub fn new(execution: Execution) -> std::io::Result<Executor> {
        Ok(match execution {
            Execution::Inline => Executor::Inline(Vec::new()),
            Execution::Thread => Executor::Thread(Worker::start()?),
        })
    }

    /// Whether a job can be handed over now.
    pub fn idle(&self) -> bool {
        match self {
            Executor::Inline(_) => true,
            Executor::Thread(worker) => !worker.busy,
        }
    }

    /// Hands a job over, or gives it back if the worker cannot take it.
    pub fn submit(&mut self, job: Job) -> Result<(), Job> {
        match self {
            Executor::Inline(done) => {
                done.push(run_job(job));
                Ok(())
            }
            Executor::Thread(worker) => worker.submit(job),
        }
    }

    /// The results finished since the last call, without waiting.
    pub fn collect(&mut self) -> Vec<Outcome> {
        match self {
            Executor::Inline(done) => std::mem::take(done),
            Executor::Thread(worker) => worker.collect(),
        }
    }
}

/// A thread that runs one [`Job`] at a time.
#[derive(Debug)]
pub struct Worker {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Outcome>,
    busy: bool,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    fn start() -> std::io::Result<Worker> {
        // One job in flight: the slot loop never queues work behind work.
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(1);
        let (outbox, results) = std::sync::mpsc::sync_channel::<Outcome>(1);
        let handle = std::thread::Builder::new().name("qmec-online".into()).spawn(move || {
            while let Ok(job) = inbox.recv() {
                if outbox.send(run_job(job)).is_err() {
                    break;
                }
            }
        })?;
        Ok(Worker { jobs: Some(jobs), results, busy: false, handle: Some(handle) })
    }

    fn submit(&mut self, job: Job) -> Result<(), Job> {
        let Some(jobs) = self.jobs.as_ref().filter(|_| !self.busy) else { return Err(job) };
        match jobs.try_send(job) {
            Ok(()) => {
                self.busy = true;
                Ok(())
            }
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(job),
        }
    }

    fn collect(&mut self) -> Vec<Outcome> {
        let mut done = Vec::new();
        loop {
            match self.results.try_recv() {
                Ok(outcome) => {
                    self.busy = false;
                    done.push(outcome);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    // The thread is gone (it panicked): never wait for it.
                    self.busy = true;
                    break;
                }
            }
        }
        done
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the job channel ends the thread after its current job.
        self.jobs = None;
        while self.results.try_recv().is_ok() {}
        if let Some(handle) = self.handle.take() {
            // An outcome left unread would block the thread's send: drain
            // until it has gone.
            while !handle.is_finished() {
                let _ = self.results.recv_timeout(std::time::Duration::from_millis(5));
            }
            let _ = handle.join();
        }
    }
}
