//! How close each policy comes to the exact per-slot optimum on states no
//! model was trained or selected on, and how long it takes to decide: the
//! logic behind `qmec evaluate`.
//!
//! Every learned policy is judged by the share of the drift-plus-penalty LP
//! optimum Σ Ψ μ* it reaches; a share is only defined where that optimum is
//! positive, so states with nothing worth offloading are left out (as in the
//! trainer's validation). Per scenario, the states come from one set of
//! simulator rollouts under the trainer's behaviour mix
//! ([`qmec_qnn::dataset::collect_states`]), seeded in a range no training
//! or validation rollout uses ([`EVALUATION_SEED_OFFSET`]); the LP is
//! solved once per state and every policy then decides the same states in
//! rollout order, because policies keep state between slots (the critic's
//! previous-slot candidate and its adaptive K). Decision time is the wall time of one
//! [`Policy::decide`] call; the LP's is the time of solving it.

use qmec_catalog::{CatalogError, PolicySpec};
use qmec_model::lyapunov::{dpp_value, dpp_weights};
use qmec_model::scenario::{ScenarioError, parse_size};
use qmec_model::{Policy, PolicyError, Scenario, SystemState};
use qmec_qnn::candidates::WinCounts;
use qmec_qnn::dataset::{EVALUATION_SEED_OFFSET, TRIVIAL_OPTIMUM};
use qmec_qnn::{LearnedPolicy, QnnError, Validation};
use qmec_policies::solve_dpp_lp;
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Between the seeds of successive scenarios, so sizes do not share rollouts.
const SCENARIO_SEED_STRIDE: u64 = 7919;
/// States per scenario unless asked otherwise: enough for a stable 5th
/// percentile, and about ten seconds of LPs at 1000 × 50.
pub const DEFAULT_STATES: usize = 200;
/// The policy column of the exact LP's row.
pub const LP_ROW: &str = "lp";

/// What to evaluate on each scenario.
#[derive(Debug, Clone)]
pub struct Config {
    pub policies: Vec<PolicySpec>,
    /// Held-out states per scenario.
    pub states: usize,
    /// Seeds the rollouts (offset by [`EVALUATION_SEED_OFFSET`], away from
    /// every training and validation seed) and any randomness of the
    /// policies.
    pub seed: u64,
}

impl Config {
    /// `model` in place of the shipped model for every `qnn` and
    /// `qnn-alone` that names no model of its own.
    pub fn with_qnn_model(mut self, model: &Path) -> Config {
        for spec in self.policies.iter_mut().filter(|p| matches!(p.name.as_str(), "qnn" | "qnn-alone") && p.model.is_none()) {
            spec.model = Some(model.to_path_buf());
        }
        self
    }
}

/// One (scenario, policy) result; the exact LP has a row of its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `MxS`.
    pub size: String,
    pub scenario: String,
    pub policy: String,
    /// The model file a learned policy ran, where one was given (`None`:
    /// the shipped model, or a policy without one).
    pub model: Option<String>,
    /// Share of the LP optimum over states with a positive optimum.
    pub mean_share: f64,
    pub p5_share: f64,
    pub min_share: f64,
    /// Above 1 only if a decision beat the exact optimum: a bug, shown
    /// rather than hidden.
    pub max_share: f64,
    /// States with a positive optimum (the ones scored).
    pub states: usize,
    /// Per-slot decision time, over every evaluated state.
    pub decision_median_s: f64,
    pub decision_mean_s: f64,
    /// The LP's median solve time on the same states.
    pub lp_decision_median_s: f64,
    /// Which kind of candidate won, for learned policies.
    pub wins: Option<WinCounts>,
}

/// What the evaluation is doing, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Rollouts for this scenario's states have started (no steps until done).
    Collecting { scenario: String },
    /// One state solved or decided.
    Step,
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// A size that does not parse; the reason names it.
    #[error(transparent)]
    Size(ScenarioError),
    #[error("size `{text}`: {reason}")]
    Resize { text: String, reason: ScenarioError },
    #[error("at least one state per scenario is needed")]
    NoStates,
    #[error("at least one policy is needed")]
    NoPolicies,
    #[error("{scenario}: collecting states: {reason}")]
    States { scenario: String, reason: QnnError },
    #[error("{scenario}: the exact LP: {reason}")]
    Lp { scenario: String, reason: PolicyError },
    #[error("{scenario}: {reason}")]
    Catalog { scenario: String, reason: Box<CatalogError> },
    #[error("{scenario}: policy `{policy}`: {reason}")]
    Decide { scenario: String, policy: String, reason: PolicyError },
}

/// `base` resized to a size written `MxS`.
pub fn sized(base: &Scenario, text: &str) -> Result<Scenario, EvaluateError> {
    let (devices, servers) = parse_size(text).map_err(EvaluateError::Size)?;
    base.resized(devices, servers).map_err(|reason| EvaluateError::Resize { text: text.into(), reason })
}

/// Total progress steps of [`evaluate`]: one per state for the LP and for
/// each policy.
pub fn steps(scenarios: &[Scenario], config: &Config) -> u64 {
    (scenarios.len() * config.states * (config.policies.len() + 1)) as u64
}

/// The LP's row, then one row per policy, for each scenario in turn.
pub fn evaluate(scenarios: &[Scenario], config: &Config, mut progress: impl FnMut(Progress)) -> Result<Vec<Row>, EvaluateError> {
    if config.states == 0 {
        return Err(EvaluateError::NoStates);
    }
    if config.policies.is_empty() {
        return Err(EvaluateError::NoPolicies);
    }
    let mut rows = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let seed = EVALUATION_SEED_OFFSET.wrapping_add(config.seed).wrapping_add(index as u64 * SCENARIO_SEED_STRIDE);
        rows.extend(evaluate_scenario(scenario, seed, config, &mut progress)?);
    }
    Ok(rows)
}

/// One scenario's rows, on states from rollouts seeded by `seed`.
fn evaluate_scenario(scenario: &Scenario, seed: u64, config: &Config, progress: &mut impl FnMut(Progress)) -> Result<Vec<Row>, EvaluateError> {
    progress(Progress::Collecting { scenario: scenario.name.clone() });
    let states = qmec_qnn::dataset::collect_states(scenario, config.states, seed)
        .map_err(|reason| EvaluateError::States { scenario: scenario.name.clone(), reason })?;
    let optima = solve_all(scenario, &states, progress)?;
    let lp_times: Vec<Duration> = optima.iter().map(|o| o.time).collect();
    let lp_median = median(&lp_times);
    let lp_shares = optima.iter().filter(|o| o.positive).map(|_| 1.0).collect();
    let mut rows = vec![row(scenario, LP_ROW, None, lp_shares, &lp_times, lp_median, None)];
    for spec in &config.policies {
        let mut contender = Contender::build(spec, scenario, config.seed)
            .map_err(|reason| EvaluateError::Catalog { scenario: scenario.name.clone(), reason: Box::new(reason) })?;
        let (shares, times) = contender.run(scenario, &states, &optima, progress)?;
        let model = spec.model.as_ref().map(|p| p.display().to_string());
        rows.push(row(scenario, &spec.name, model, shares, &times, lp_median, contender.wins()));
    }
    Ok(rows)
}

/// One state's exact optimum.
struct Optimum {
    value: f64,
    /// Whether the optimum is positive, so a share of it is defined.
    positive: bool,
    time: Duration,
}

fn solve_all(scenario: &Scenario, states: &[SystemState], progress: &mut impl FnMut(Progress)) -> Result<Vec<Optimum>, EvaluateError> {
    states
        .iter()
        .map(|state| {
            let started = Instant::now();
            let (_, value) =
                solve_dpp_lp(scenario, state).map_err(|reason| EvaluateError::Lp { scenario: scenario.name.clone(), reason })?;
            let time = started.elapsed();
            let scale = dpp_weights(scenario, state).as_slice().iter().fold(0.0f64, |a, w| a.max(w.abs()));
            progress(Progress::Step);
            Ok(Optimum { value, positive: value > TRIVIAL_OPTIMUM * scale, time })
        })
        .collect()
}

/// A policy under evaluation, keeping a learned one's own type so that its
/// candidates' wins can be read.
enum Contender {
    Learned(Box<LearnedPolicy>),
    Other(Box<dyn Policy>),
}

impl Contender {
    fn build(spec: &PolicySpec, scenario: &Scenario, seed: u64) -> Result<Contender, CatalogError> {
        Ok(match qmec_catalog::build_learned(spec, scenario)? {
            Some(learned) => Contender::Learned(Box::new(learned)),
            None => Contender::Other(qmec_catalog::build(spec, scenario, seed)?),
        })
    }

    fn policy(&mut self) -> &mut dyn Policy {
        match self {
            Contender::Learned(learned) => learned.as_mut(),
            Contender::Other(policy) => policy.as_mut(),
        }
    }

    fn wins(&self) -> Option<WinCounts> {
        match self {
            Contender::Learned(learned) => Some(learned.wins().clone()),
            Contender::Other(_) => None,
        }
    }

    /// Decides every state in order: the shares of the states with a
    /// positive optimum, and every decision's time.
    fn run(
        &mut self,
        scenario: &Scenario,
        states: &[SystemState],
        optima: &[Optimum],
        progress: &mut impl FnMut(Progress),
    ) -> Result<(Vec<f64>, Vec<Duration>), EvaluateError> {
        let policy = self.policy();
        let name = policy.name().to_string();
        let fail = |reason| EvaluateError::Decide { scenario: scenario.name.clone(), policy: name.clone(), reason };
        let (mut shares, mut times) = (Vec::new(), Vec::with_capacity(states.len()));
        for (state, optimum) in states.iter().zip(optima) {
            let started = Instant::now();
            let decision = policy.decide(scenario, state).map_err(fail)?;
            times.push(started.elapsed());
            // A decision that breaks a constraint would earn a share it cannot have.
            decision.check(scenario, state).map_err(fail)?;
            if optimum.positive {
                shares.push(dpp_value(&dpp_weights(scenario, state), &decision.offload) / optimum.value);
            }
            progress(Progress::Step);
        }
        Ok((shares, times))
    }
}

fn row(
    scenario: &Scenario,
    policy: &str,
    model: Option<String>,
    shares: Vec<f64>,
    times: &[Duration],
    lp_median: f64,
    wins: Option<WinCounts>,
) -> Row {
    let min_share = shares.iter().copied().reduce(f64::min).unwrap_or(f64::NAN);
    let max_share = shares.iter().copied().reduce(f64::max).unwrap_or(f64::NAN);
    let validation = Validation::of(shares, times.len());
    Row {
        size: format!("{}x{}", scenario.devices, scenario.servers),
        scenario: scenario.name.clone(),
        policy: policy.into(),
        model,
        mean_share: validation.mean_share,
        p5_share: validation.p5_share,
        min_share,
        max_share,
        states: validation.states,
        decision_median_s: median(times),
        decision_mean_s: mean_seconds(times),
        lp_decision_median_s: lp_median,
        wins,
    }
}

fn median(times: &[Duration]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2].as_secs_f64(),
        n => (sorted[n / 2 - 1] + sorted[n / 2]).as_secs_f64() / 2.0,
    }
}

fn mean_seconds(times: &[Duration]) -> f64 {
    if times.is_empty() { f64::NAN } else { times.iter().sum::<Duration>().as_secs_f64() / times.len() as f64 }
}

/// The rows as an aligned table for the terminal.
pub fn table(rows: &[Row]) -> String {
    let headers = ["size", "policy", "mean share", "p5 share", "min share", "states", "decide p50", "decide mean", "LP p50", "wins"];
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            [
                r.size.clone(),
                r.model.as_ref().map_or_else(|| r.policy.clone(), |m| format!("{}={m}", r.policy)),
                format!("{:.4}", r.mean_share),
                format!("{:.4}", r.p5_share),
                format!("{:.4}", r.min_share),
                r.states.to_string(),
                duration(r.decision_median_s),
                duration(r.decision_mean_s),
                duration(r.lp_decision_median_s),
                r.wins.as_ref().map_or_else(|| "—".into(), describe_wins),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| cells.iter().map(|c| c[i].chars().count()).chain([headers[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let mut line = |values: &[&str]| {
        let padded: Vec<String> = values.iter().zip(&widths).map(|(v, &w)| format!("{v:<w$}")).collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&headers);
    for row in &cells {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// Seconds as µs, ms or s, whichever reads best.
pub fn duration(seconds: f64) -> String {
    match seconds {
        s if s.is_nan() => "—".into(),
        s if s < 1e-3 => format!("{:.1} µs", s * 1e6),
        s if s < 1.0 => format!("{:.2} ms", s * 1e3),
        s => format!("{s:.2} s"),
    }
}

/// `network 180 (by rank 150/20/10) · dpp-greedy 15 · previous 5 · greedy 0`.
fn describe_wins(wins: &WinCounts) -> String {
    let ranks: Vec<String> = wins.network_by_rank.iter().map(u64::to_string).collect();
    format!(
        "network {} (by rank {}) · dpp-greedy {} · previous {} · greedy {} · failed candidates {}",
        wins.network(),
        ranks.join("/"),
        wins.dpp_greedy,
        wins.previous,
        wins.greedy,
        wins.failed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(names: &[&str], states: usize) -> Config {
        Config { policies: names.iter().map(|n| PolicySpec::named(*n)).collect(), states, seed: 3 }
    }

    fn small() -> Vec<Scenario> {
        let paper = Scenario::paper();
        vec![sized(&paper, "3x2").expect("size"), sized(&paper, "10x3").expect("size")]
    }

    #[test]
    fn shares_lie_within_the_optimum_and_the_lp_row_reaches_it() {
        let scenarios = small();
        let config = config(&["qnn", "qnn-alone", "dpp-greedy", "greedy"], 24);
        let mut steps_seen = 0;
        let rows = evaluate(&scenarios, &config, |p| steps_seen += u64::from(p == Progress::Step)).expect("evaluates");
        assert_eq!(steps_seen, steps(&scenarios, &config));
        assert_eq!(rows.len(), 2 * 5);
        for row in &rows {
            assert!(row.states > 0 && row.states <= 24, "{row:?}");
            assert!(row.min_share <= row.p5_share && row.min_share <= row.mean_share, "{row:?}");
            assert!(row.max_share <= 1.0 + 1e-9, "{row:?}");
            assert!(row.decision_median_s >= 0.0 && row.lp_decision_median_s >= 0.0, "{row:?}");
            let learned = row.policy.starts_with("qnn");
            assert_eq!(row.wins.as_ref().map(WinCounts::total), learned.then_some(24), "{row:?}");
            if row.policy != "greedy" {
                assert!(row.min_share > 0.0, "{row:?}");
            }
        }
        for lp in rows.iter().filter(|r| r.policy == LP_ROW) {
            assert_eq!((lp.mean_share, lp.min_share, lp.max_share), (1.0, 1.0, 1.0));
        }
        let alone = rows.iter().filter(|r| r.policy == "qnn-alone");
        assert!(alone.flat_map(|r| r.wins.as_ref()).all(|w| w.network() == w.total()));
    }

    #[test]
    fn the_same_seed_evaluates_the_same_states() {
        let scenarios = &small()[..1];
        let strip = |rows: Vec<Row>| rows.into_iter().map(|r| (r.policy, r.mean_share, r.min_share, r.states, r.wins)).collect::<Vec<_>>();
        let config = config(&["qnn", "dpp-greedy"], 12);
        let first = evaluate(scenarios, &config, |_| {}).expect("evaluates");
        let second = evaluate(scenarios, &config, |_| {}).expect("evaluates");
        assert_eq!(strip(first), strip(second));
    }

    #[test]
    fn rows_serialise_with_every_field() {
        let rows = evaluate(&small()[..1], &config(&["qnn", "dpp-greedy"], 8), |_| {}).expect("evaluates");
        let json = serde_json::to_value(&rows).expect("serialises");
        let entries = json.as_array().expect("a list");
        assert_eq!(entries.len(), 3);
        for entry in entries {
            for field in ["size", "policy", "mean_share", "p5_share", "min_share", "states", "decision_median_s", "decision_mean_s", "lp_decision_median_s", "wins"] {
                assert!(entry.get(field).is_some(), "{field} missing from {entry}");
            }
            assert_eq!(entry["size"], "3x2");
            assert_eq!(entry["wins"].is_null(), entry["policy"] != "qnn", "{entry}");
        }
        assert!(table(&rows).lines().count() == 4);
    }

    #[test]
    fn bad_input_is_refused_with_its_reason() {
        let paper = Scenario::paper();
        assert!(matches!(sized(&paper, "10by3"), Err(EvaluateError::Size(_))));
        assert!(matches!(evaluate(std::slice::from_ref(&paper), &config(&["qnn"], 0), |_| {}), Err(EvaluateError::NoStates)));
        assert!(matches!(evaluate(std::slice::from_ref(&paper), &config(&[], 4), |_| {}), Err(EvaluateError::NoPolicies)));
        let unknown = evaluate(&[paper], &config(&["no-such-policy"], 4), |_| {}).expect_err("unknown policy");
        assert!(unknown.to_string().contains("no-such-policy"), "{unknown}");
    }

    #[test]
    fn a_model_file_replaces_the_shipped_one_for_qnn_only() {
        let mut config = config(&["qnn", "qnn-alone", "dpp-greedy"], 1);
        config.policies.push(PolicySpec::parse("qnn=own.json"));
        let config = config.with_qnn_model(Path::new("m.json"));
        let models: Vec<Option<&str>> = config.policies.iter().map(|p| p.model.as_ref().and_then(|m| m.to_str())).collect();
        assert_eq!(models, [Some("m.json"), Some("m.json"), None, Some("own.json")]);
    }

    #[test]
    fn durations_read_in_the_fitting_unit() {
        assert_eq!(duration(12.34e-6), "12.3 µs");
        assert_eq!(duration(4.567e-3), "4.57 ms");
        assert_eq!(duration(2.0), "2.00 s");
        assert_eq!(duration(f64::NAN), "—");
    }
}
