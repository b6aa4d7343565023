//! Runs many (policy, seed) simulations on every core and keeps what the
//! experiments plot: the summary, the per-slot records and the latencies.

use indicatif::{ProgressBar, ProgressStyle};
use qmec_catalog::PolicySpec;
use qmec_model::Scenario;
use qmec_model::accounting::SlotRecord;
use qmec_sim::Summary;
use std::sync::Mutex;

/// How a policy is named in figures and tables: its name, or for a trained
/// policy its model file's stem (several trained models may share a name).
pub fn label(spec: &PolicySpec) -> String {
    spec.model
        .as_ref()
        .and_then(|path| path.file_stem())
        .map_or_else(|| spec.name.clone(), |stem| stem.to_string_lossy().into_owned())
}

/// One simulated run.
#[derive(Debug, Clone)]
pub struct Run {
    pub policy: String,
    pub seed: u64,
    pub summary: Summary,
    pub slots: Vec<SlotRecord>,
    /// (completion slot, latency in seconds) of every completed task.
    pub latencies: Vec<(u64, f64)>,
    /// μ of each slot, when asked for (heatmaps).
    pub decisions: Vec<Vec<f64>>,
}

/// One unit of work.
#[derive(Debug, Clone)]
pub struct Job {
    pub scenario: Scenario,
    pub policy: PolicySpec,
    pub seed: u64,
    pub slots: u64,
    pub keep_decisions: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("policy `{policy}`: {reason}")]
    Policy { policy: String, reason: String },
}

/// Runs every job, in parallel, with a progress bar; results in job order.
pub fn run_all(label: &str, jobs: Vec<Job>) -> Result<Vec<Run>, RunError> {
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} runs, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len().max(1));
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<Run, RunError>>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = {
                    let Ok(mut next) = next.lock() else { return };
                    let index = *next;
                    *next += 1;
                    index
                };
                let Some(job) = jobs.get(index) else { return };
                let result = run_one(job);
                if let Ok(mut results) = results.lock() {
                    results[index] = Some(result);
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(RunError::Policy { policy: "?".into(), reason: "worker died".into() })))
        .collect()
}

/// One simulation.
pub fn run_one(job: &Job) -> Result<Run, RunError> {
    let fail = |reason: String| RunError::Policy { policy: label(&job.policy), reason };
    let mut policy = qmec_catalog::build(&job.policy, &job.scenario, job.seed).map_err(|e| fail(e.to_string()))?;
    let mut decisions = Vec::new();
    let (summary, records) = qmec_sim::simulate(&job.scenario, job.seed, policy.as_mut(), job.slots, |outcome| {
        if job.keep_decisions {
            decisions.push(outcome.decision.offload.as_slice().to_vec());
        }
    })
    .map_err(|e| fail(e.to_string()))?;
    let tau = job.scenario.slot_seconds;
    let latencies = records
        .tasks
        .iter()
        .map(|t| ((t.completion_s / tau).floor() as u64, t.latency_s()))
        .collect();
    Ok(Run { policy: label(&job.policy), seed: job.seed, summary, slots: records.slots, latencies, decisions })
}
