//! The papers' comparisons, run as experiments that write CSV, PNG and SVG
//! figures and a markdown report listing every quantitative claim beside
//! qmec's measurement and a verdict.
//!
//! # Layout
//! - [`stats`]: means, 95 % intervals over seeds, least-squares fits.
//! - [`plot`]: line charts with confidence bands and heatmaps (plotters).
//! - [`mobility`]: a mobile scenario's trajectories and best servers, drawn.
//! - [`runner`]: many (policy, seed) simulations on every core.
//! - [`series`]: per-slot records turned into plotted series across seeds.
//! - [`suites`]: one module per experiment.
//! - [`report`]: claims, verdicts and the markdown report.
//! - [`evaluate`]: every policy's share of the exact LP optimum and its
//!   decision time on held-out states, per size (`qmec evaluate`).

#![forbid(unsafe_code)]

pub mod evaluate;
pub mod mobility;
pub mod plot;
pub mod report;
pub mod runner;
pub mod series;
pub mod stats;
pub mod suites;

use qmec_catalog::PolicySpec;
use std::path::{Path, PathBuf};

pub use report::{Claim, QUICK_MODE_NOTE, Section, Verdict, shown_verdict, write_report};

/// The catalog's name (and the experiments' label) of the shipped QNN: the
/// QNN every experiment compares, and the one the paper's claims are
/// tested on.
pub const SHIPPED_QNN: &str = "qnn";

/// What every experiment is given.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Folder for all files; each experiment writes into `out/NAME/`.
    pub out: PathBuf,
    pub seeds: u64,
    /// Short runs and small budgets: indicative figures in seconds.
    pub quick: bool,
    /// Learned policies to compare beside the classical ones: the shipped
    /// `qnn` by default ([`Settings::new`]), then whatever `convergence`
    /// trains.
    pub learned: Vec<PolicySpec>,
    /// The `qmec` binary, for experiments that run the testbed.
    pub qmec_binary: Option<PathBuf>,
}

impl Settings {
    /// Settings that compare the shipped QNN beside the classical baselines.
    pub fn new(out: PathBuf, seeds: u64, quick: bool, qmec_binary: Option<PathBuf>) -> Settings {
        Settings { out, seeds, quick, learned: vec![PolicySpec::named(SHIPPED_QNN)], qmec_binary }
    }

    /// A figure's title; in quick mode a second line says the figure is
    /// indicative.
    pub fn title(&self, title: &str) -> String {
        if self.quick { format!("{title}\n{QUICK_MODE_NOTE}") } else { title.to_string() }
    }

    /// The title of a figure whose points are means over `runs` runs (one
    /// per seed): with too few for an interval, a line says it has no band.
    pub fn title_over_runs(&self, title: &str, runs: usize) -> String {
        let mut title = self.title(title);
        if runs < stats::MIN_SAMPLES_FOR_INTERVAL {
            let min = stats::MIN_SAMPLES_FOR_INTERVAL;
            let sep = if self.quick { "; " } else { "\n" };
            title.push_str(&format!("{sep}mean of {runs} run(s) per point: no 95 % band (it needs {min})"));
        }
        title
    }

    /// `full` slots normally, `quick` slots with `--quick`.
    pub fn slots(&self, full: u64, quick: u64) -> u64 {
        if self.quick { quick } else { full }
    }

    pub fn seed_list(&self) -> Vec<u64> {
        (1..=self.seeds.max(1)).collect()
    }

    /// The classical baselines (dpp-greedy and the exact LP among them)
    /// followed by the learned policies.
    pub fn policies(&self) -> Vec<PolicySpec> {
        qmec_policies::CLASSICAL
            .into_iter()
            .map(PolicySpec::named)
            .chain(self.learned.iter().cloned())
            .collect()
    }

    fn dir(&self, experiment: &str) -> Result<PathBuf, ExperimentError> {
        let dir = self.out.join(experiment);
        std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::io(&dir, e))?;
        Ok(dir)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("unknown experiment `{0}` (known: {known})", known = suites::NAMES.iter().chain(&suites::BY_NAME_ONLY).copied().collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error(transparent)]
    Run(#[from] runner::RunError),
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    #[error("training {model}: {reason}")]
    Train { model: String, reason: String },
    #[error("writing {path}: {reason}")]
    Io { path: PathBuf, reason: String },
}

impl ExperimentError {
    pub fn io(path: &Path, error: impl std::fmt::Display) -> ExperimentError {
        ExperimentError::Io { path: path.to_path_buf(), reason: error.to_string() }
    }
}

/// Runs one experiment by name.
pub fn run(name: &str, settings: &Settings) -> Result<Section, ExperimentError> {
    suites::run(name, settings)
}

/// Runs experiments in order; once `convergence` has trained models, the
/// experiments after it compare them beside the classical policies.
pub fn run_set(names: &[&str], settings: &Settings) -> Result<Vec<Section>, ExperimentError> {
    let mut settings = settings.clone();
    let mut sections = Vec::new();
    for name in names {
        sections.push(run(name, &settings)?);
        if *name == "convergence" {
            settings.learned.extend(suites::convergence::trained_policies(&settings));
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiments_compare_the_shipped_qnn_and_dpp_greedy_by_default() {
        let settings = Settings::new(PathBuf::from("out"), 2, true, None);
        let names: Vec<String> = settings.policies().iter().map(runner::label).collect();
        assert_eq!(names, ["local", "random", "greedy", "dpp-greedy", "lyapunov", SHIPPED_QNN]);
        let built = settings.policies().iter().map(|p| qmec_catalog::build(p, &qmec_model::Scenario::paper(), 1)).collect::<Result<Vec<_>, _>>();
        assert!(built.is_ok(), "every default policy builds from the catalog");
    }

    #[test]
    fn models_trained_in_convergence_keep_labels_apart_from_the_shipped_qnn() {
        let out = std::env::temp_dir().join(format!("qmec-labels-{}", std::process::id()));
        let settings = Settings::new(out.clone(), 1, true, None);
        let models = out.join("convergence").join("models");
        std::fs::create_dir_all(&models).expect("temp dir");
        for stem in ["qnn-paper-trained", "qnn-per-link-trained", "dl"] {
            std::fs::write(models.join(format!("{stem}.json")), "{}").expect("model file");
        }
        let labels: Vec<String> = suites::convergence::trained_policies(&settings).iter().map(runner::label).collect();
        let _ = std::fs::remove_dir_all(&out);
        assert_eq!(labels, ["qnn-paper-trained", "qnn-per-link-trained", "dl"]);
        assert!(!labels.iter().any(|l| l == SHIPPED_QNN));
    }
}
