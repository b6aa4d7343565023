//! Measurements side by side, for `qmec qubo`: every solver on the same
//! instance with its cost, optimality gap against the exact optimum (where
//! enumeration is affordable) and wall time; and the baseline study that
//! sets the QUBO selection against the heuristics and a learned baseline on
//! the same instances and seeds.

use crate::aigc::{AigcConfig, AigcInstance};
use crate::build::AssignmentQubo;
use crate::error::QuboError;
use crate::problem::SelectionProblem;
use crate::rng::FastRng;
use crate::solver::exact::{ExactBits, ExactOneHot, MAX_EXACT_VARIABLES, one_hot_states};
use crate::solver::{Solution, Solver, by_name};
use serde::Serialize;
use std::time::Instant;

/// One solver on one instance.
#[derive(Debug, Clone, Serialize)]
pub struct SolverRow {
    pub solver: String,
    pub devices: usize,
    pub servers: usize,
    pub variables: usize,
    /// Total latency (s) = QUBO energy of the returned assignment.
    pub cost: f64,
    /// (cost − optimum) / optimum, where the optimum is known.
    pub gap: Option<f64>,
    pub seconds: f64,
    pub raw_feasible: bool,
    pub repaired_devices: usize,
}

/// Enumeration budget for the reference optimum (one-hot states).
pub const EXACT_STATES: u64 = 50_000_000;

/// The exact optimum when enumeration is affordable.
pub fn exact_optimum(aq: &AssignmentQubo) -> Option<Solution> {
    let states = one_hot_states(aq.devices(), aq.servers());
    if states.is_some_and(|n| n <= EXACT_STATES) {
        return ExactOneHot {
            max_states: EXACT_STATES,
        }
        .solve(aq)
        .ok();
    }
    if aq.qubo().variables() <= MAX_EXACT_VARIABLES {
        return ExactBits::default().solve(aq).ok();
    }
    None
}

/// Runs one solver and times it.
pub fn time_solver(
    solver: &mut dyn Solver,
    aq: &AssignmentQubo,
    optimum: Option<f64>,
) -> Result<SolverRow, QuboError> {
    let start = Instant::now();
    let s = solver.solve(aq)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(SolverRow {
        solver: solver.name().into(),
        devices: aq.devices(),
        servers: aq.servers(),
        variables: aq.qubo().variables(),
        cost: s.cost,
        gap: optimum.map(|o| if o > 0.0 { (s.cost - o) / o } else { 0.0 }),
        seconds,
        raw_feasible: s.raw_feasible,
        repaired_devices: s.repaired_devices,
    })
}

/// The AIGC instance and its QUBO for (M, S, seed) with default ranges.
pub fn instance(
    devices: usize,
    servers: usize,
    seed: u64,
) -> Result<(AigcInstance, AssignmentQubo), QuboError> {
    let inst = AigcInstance::random(&AigcConfig::default(), devices, servers, seed)?;
    let aq = AssignmentQubo::new(inst.selection_problem()?)?;
    Ok((inst, aq))
}

/// Every named solver on one instance; a solver that refuses the size is
/// reported as an error row by the caller.
pub fn solver_rows(
    aq: &AssignmentQubo,
    names: &[String],
    seed: u64,
) -> Vec<(String, Result<SolverRow, QuboError>)> {
    let optimum = exact_optimum(aq).map(|s| s.cost);
    names
        .iter()
        .map(|name| (name.clone(), solve_named(name, aq, optimum, seed)))
        .collect()
}

/// The solver called `name`, timed on `aq`.
fn solve_named(
    name: &str,
    aq: &AssignmentQubo,
    optimum: Option<f64>,
    seed: u64,
) -> Result<SolverRow, QuboError> {
    by_name(name, seed).and_then(|mut s| time_solver(s.as_mut(), aq, optimum))
}

/// A baseline or solver in the latency study.
#[derive(Debug, Clone, Serialize)]
pub struct StudyRow {
    pub method: String,
    pub devices: usize,
    pub servers: usize,
    /// Mean over instances of the mean per-request latency (s).
    pub mean_latency: f64,
    /// Standard deviation over instances of the per-request latency (s).
    pub std_latency: f64,
    /// Mean over instances of the gap to the best method on that instance.
    pub mean_gap_to_best: f64,
    /// Worst gap to the best method on any instance.
    pub worst_gap_to_best: f64,
}

/// The methods of the study.
pub const STUDY_METHODS: [&str; 5] = ["qubo-sa", "greedy", "nearest", "random", "bandit-rl"];

/// Per-device latency under an assignment: its own latency plus the load
/// the others on its server put on it; these sum to the total cost.
fn device_latency(p: &SelectionProblem, a: &[usize], m: usize) -> f64 {
    let s = a[m];
    p.linear(m, s)
        + a.iter()
            .enumerate()
            .filter(|(o, t)| *o != m && **t == s)
            .map(|(o, _)| p.load(o, s))
            .sum::<f64>()
}

/// Independent ε-greedy learners, the usual multi-agent RL baseline for
/// distributed server selection: each device keeps a value per server,
/// plays `episodes` rounds against the others, observes only its own
/// latency and updates by a constant step; the final choice is greedy.
pub fn bandit_rl(p: &SelectionProblem, episodes: usize, seed: u64) -> Vec<usize> {
    let (m_count, s_count) = (p.devices(), p.servers());
    let mut rng = FastRng::new(seed);
    let mut value = vec![0.0; m_count * s_count];
    let mut tried = vec![false; m_count * s_count];
    let argmin = |value: &[f64], m: usize| {
        (0..s_count)
            .min_by(|&a, &b| value[m * s_count + a].total_cmp(&value[m * s_count + b]))
            .unwrap_or(0)
    };
    let mut a = vec![0usize; m_count];
    for e in 0..episodes {
        let epsilon = 0.3 * (1.0 - e as f64 / episodes as f64) + 0.01;
        for (m, choice) in a.iter_mut().enumerate() {
            // Untried options first (optimism), then ε-greedy.
            *choice = match (0..s_count).find(|s| !tried[m * s_count + s]) {
                Some(s) => s,
                None if rng.unit() < epsilon => rng.below(s_count),
                None => argmin(&value, m),
            };
        }
        for m in 0..m_count {
            let k = m * s_count + a[m];
            let observed = device_latency(p, &a, m);
            value[k] = if tried[k] {
                value[k] + 0.1 * (observed - value[k])
            } else {
                observed
            };
            tried[k] = true;
        }
    }
    (0..m_count).map(|m| argmin(&value, m)).collect()
}

/// Runs every study method on `instances` random instances of (M, S).
pub fn baseline_study(
    devices: usize,
    servers: usize,
    instances: u64,
    seed: u64,
) -> Result<Vec<StudyRow>, QuboError> {
    let mut per_method: Vec<Vec<(f64, f64)>> = vec![Vec::new(); STUDY_METHODS.len()];
    for k in 0..instances {
        let (_, aq) = instance(devices, servers, seed.wrapping_add(k))?;
        let p = aq.problem();
        let mut costs = Vec::with_capacity(STUDY_METHODS.len());
        for method in STUDY_METHODS {
            let cost = match method {
                "qubo-sa" => by_name("sa", seed + k)?.solve(&aq)?.cost,
                "greedy" => by_name("greedy", seed + k)?.solve(&aq)?.cost,
                "nearest" => p.cost_unchecked(&p.separable_choice()),
                "random" => {
                    // The mean of 100 uniform random assignments.
                    let mut rng = FastRng::new(seed ^ k);
                    (0..100)
                        .map(|_| {
                            let a: Vec<usize> = (0..devices).map(|_| rng.below(servers)).collect();
                            p.cost_unchecked(&a)
                        })
                        .sum::<f64>()
                        / 100.0
                }
                _ => p.cost_unchecked(&bandit_rl(p, 300, seed + k)),
            };
            costs.push(cost);
        }
        let best = costs.iter().copied().fold(f64::INFINITY, f64::min);
        for (slot, c) in per_method.iter_mut().zip(&costs) {
            slot.push((c / devices as f64, (c - best) / best));
        }
    }
    Ok(STUDY_METHODS
        .iter()
        .zip(per_method)
        .map(|(method, v)| {
            let n = v.len() as f64;
            let mean = v.iter().map(|x| x.0).sum::<f64>() / n;
            let var = v.iter().map(|x| (x.0 - mean).powi(2)).sum::<f64>() / n;
            StudyRow {
                method: (*method).into(),
                devices,
                servers,
                mean_latency: mean,
                std_latency: var.sqrt(),
                mean_gap_to_best: v.iter().map(|x| x.1).sum::<f64>() / n,
                worst_gap_to_best: v.iter().map(|x| x.1).fold(0.0, f64::max),
            }
        })
        .collect())
}

/// Whether a solver is within its reach on an M × S instance, for the size
/// ladder: textbook QAOA to 20 qubits, QAOA-XY to 400 000 one-hot states,
/// exact enumeration within its own limits.
pub fn within_reach(solver: &str, devices: usize, servers: usize) -> bool {
    let states = one_hot_states(devices, servers);
    match solver {
        "exact" => devices * servers <= MAX_EXACT_VARIABLES,
        "exact-onehot" => states.is_some_and(|k| k <= EXACT_STATES),
        "qaoa" => devices * servers <= 20,
        "qaoa-xy" | "qaoa-xy-complete" => states.is_some_and(|k| k <= 400_000),
        _ => true,
    }
}

/// The table header matching [`format_row`].
pub fn header() -> String {
    format!(
        "{:<17} {:>6} {:>6} {:>14} {:>10} {:>11} {:>9} {:>8}",
        "solver", "M×S", "vars", "total lat. (s)", "gap", "time (s)", "feasible", "repairs"
    )
}

/// What the table's columns mean, printed under it.
pub fn legend() -> String {
    format!(
        "total lat.: the sum over all requests of upload, queueing, generation and download latency (the QUBO's \
         energy), not a mean; gap: to the exact optimum, `–` where none is known (more than {EXACT_STATES} \
         one-hot assignments and more than {MAX_EXACT_VARIABLES} binary variables: too many to enumerate); \
         time: the solver's wall time; feasible: one server per request before repair; repairs: requests reassigned"
    )
}

/// One table line, or why the solver was skipped.
pub fn format_row(name: &str, row: &Result<SolverRow, QuboError>) -> String {
    match row {
        Ok(r) => format!(
            "{:<17} {:>6} {:>6} {:>14.6} {:>10} {:>11.6} {:>9} {:>8}",
            r.solver,
            format!("{}×{}", r.devices, r.servers),
            r.variables,
            r.cost,
            r.gap.map_or("–".into(), |g| format!("{:.3}%", 100.0 * g)),
            r.seconds,
            if r.raw_feasible { "yes" } else { "no" },
            r.repaired_devices
        ),
        Err(e) => format!("{name:<17} skipped: {e}"),
    }
}

/// Parses `MxS`.
pub fn parse_size(text: &str) -> Result<(usize, usize), QuboError> {
    let bad = || QuboError::Size(format!("size `{text}` is not MxS"));
    let (m, s) = text.split_once('x').ok_or_else(bad)?;
    Ok((
        m.trim().parse().map_err(|_| bad())?,
        s.trim().parse().map_err(|_| bad())?,
    ))
}

/// What the ladder reports as it goes: the step it starts (a solver can
/// take minutes at the larger sizes) and each finished table line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LadderEvent<'a> {
    Solving { devices: usize, servers: usize, step: &'a str },
    Line(&'a str),
}

/// The size ladder: every solver within reach on one instance per size,
/// reported as it goes; with `export_dir`, each instance as dimod JSON and
/// qbsolv plus `qmec_results.json` for the neal peer script.
pub fn ladder(
    sizes: &[(usize, usize)],
    seed: u64,
    solvers: &[String],
    export_dir: Option<&std::path::Path>,
    mut report: impl FnMut(LadderEvent),
) -> Result<Vec<SolverRow>, QuboError> {
    let io = |e: std::io::Error| QuboError::Format(e.to_string());
    if let Some(dir) = export_dir {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut all = Vec::new();
    report(LadderEvent::Line(&header()));
    for &(m, s) in sizes {
        let (_, aq) = instance(m, s, seed)?;
        let names: Vec<String> = solvers
            .iter()
            .filter(|n| within_reach(n, m, s))
            .cloned()
            .collect();
        if let Some(dir) = export_dir {
            let stem = format!("M{m}_S{s}_seed{seed}");
            std::fs::write(dir.join(format!("{stem}.json")), aq.qubo().to_dimod_json())
                .map_err(io)?;
            std::fs::write(dir.join(format!("{stem}.qubo")), aq.qubo().to_qbsolv()).map_err(io)?;
        }
        let solving = |step| LadderEvent::Solving { devices: m, servers: s, step };
        report(solving("exact optimum (the reference for gaps)"));
        let optimum = exact_optimum(&aq).map(|s| s.cost);
        for name in &names {
            report(solving(name));
            let row = solve_named(name, &aq, optimum, seed);
            report(LadderEvent::Line(&format_row(name, &row)));
            all.extend(row.ok());
        }
    }
    if let Some(dir) = export_dir {
        let text =
            serde_json::to_string_pretty(&all).map_err(|e| QuboError::Format(e.to_string()))?;
        std::fs::write(dir.join("qmec_results.json"), text).map_err(io)?;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solver_rows_report_zero_gap_for_exact_and_errors_for_oversize() {
        let (_, aq) = instance(4, 3, 2).expect("valid");
        let names: Vec<String> = ["exact", "greedy", "sa"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows = solver_rows(&aq, &names, 1);
        let exact = rows[0].1.as_ref().expect("small");
        assert_eq!(exact.gap, Some(0.0));
        assert!(
            rows.iter()
                .all(|(_, r)| r.as_ref().is_ok_and(|r| r.gap.is_some_and(|g| g >= -1e-12)))
        );
        let (_, big) = instance(13, 2, 2).expect("valid");
        assert!(solver_rows(&big, &["exact".to_string()], 1)[0].1.is_err());
    }

    #[test]
    fn device_latencies_sum_to_the_cost_and_the_study_ranks_methods() {
        let (_, aq) = instance(6, 3, 4).expect("valid");
        let p = aq.problem();
        let a = bandit_rl(p, 100, 3);
        let sum: f64 = (0..6).map(|m| device_latency(p, &a, m)).sum();
        assert!((sum - p.cost_unchecked(&a)).abs() < 1e-9);
        let rows = baseline_study(6, 3, 3, 0).expect("runs");
        let qubo = &rows[0];
        let random = rows.iter().find(|r| r.method == "random").expect("present");
        assert!(qubo.mean_latency < random.mean_latency);
        assert!(rows.iter().all(|r| r.mean_gap_to_best >= 0.0));
    }
}
