//! One module per experiment; [`run`] dispatches by name.

mod baselines;
mod closed_loop;
pub mod convergence;
mod dynamic;
mod heatmap;
mod latency_cdf;
mod online;
mod qubo;
mod scaling;
mod vsweep;

use crate::runner::Run;
use crate::stats::{Estimate, estimate};
use crate::{ExperimentError, Section, Settings};
use qmec_sim::Summary;

/// Every experiment, in the order `all` runs them.
pub const NAMES: [&str; 9] =
    ["convergence", "baselines", "vsweep", "scaling", "dynamic", "heatmap", "latency-cdf", "qubo", "closed-loop"];

/// Experiments run only by name, outside `all`: `online` spends minutes at
/// M = 1000, S = 50 even with `--quick`.
pub const BY_NAME_ONLY: [&str; 1] = ["online"];

pub fn run(name: &str, settings: &Settings) -> Result<Section, ExperimentError> {
    match name {
        "convergence" => convergence::run(settings),
        "baselines" => baselines::run(settings),
        "vsweep" => vsweep::run(settings),
        "scaling" => scaling::run(settings),
        "dynamic" => dynamic::run(settings),
        "heatmap" => heatmap::run(settings),
        "qubo" => qubo::run(settings),
        "latency-cdf" => latency_cdf::run(settings),
        "closed-loop" => closed_loop::run(settings),
        "online" => online::run(settings),
        other => Err(ExperimentError::Unknown(other.into())),
    }
}

/// A summary figure of the given runs (one per seed), with its interval.
fn across_seeds(runs: &[&Run], metric: impl Fn(&Summary) -> f64) -> Estimate {
    estimate(&runs.iter().map(|r| metric(&r.summary)).collect::<Vec<_>>())
}

/// Relative change of `ours` against `reference`, in percent.
fn percent_change(ours: f64, reference: f64) -> f64 {
    100.0 * (ours - reference) / reference.abs()
}
