//! `qmec evaluate`: each policy's share of the exact per-slot optimum and
//! its decision time, per size, on held-out states — the one number every
//! learned policy is judged by, measured where it will run.

use crate::progress;
use anyhow::{Context, Result};
use qmec_catalog::PolicySpec;
use qmec_experiments::evaluate::{self, Config, DEFAULT_STATES, Progress};
use qmec_model::Scenario;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sizes DEVICESxSERVERS of the paper scenario, e.g. 10x3,100x10,1000x50
    /// (default, unless --scenarios is given).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<String>,
    /// Built-in scenarios or TOML files, evaluated after the sizes.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Comma-separated policies by catalog name; trained ones other than the
    /// shipped qnn as NAME=MODEL_FILE.
    #[arg(long, value_delimiter = ',', default_value = "qnn,qnn-alone,dpp-greedy,greedy")]
    policies: Vec<String>,
    /// Model file for qnn and qnn-alone in place of the shipped model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Held-out states per size (each also solved exactly: about 50 ms per
    /// state at 1000x50).
    #[arg(long, default_value_t = DEFAULT_STATES, value_parser = at_least_one)]
    states: usize,
    /// Seeds the held-out rollouts (offset away from every training seed)
    /// and any randomness of the policies.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One JSON entry per (size, policy) on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// The sizes evaluated when neither --sizes nor --scenarios is given.
const DEFAULT_SIZES: [&str; 3] = ["10x3", "100x10", "1000x50"];

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{text}` is not a whole number of states of at least 1")),
    }
}

pub fn run(args: Args) -> Result<()> {
    let scenarios = scenarios(&args)?;
    let policies: Vec<PolicySpec> = args.policies.iter().map(|p| PolicySpec::parse(p)).collect();
    let config = Config { policies, states: args.states, seed: args.seed };
    let config = match &args.model {
        Some(model) => config.with_qnn_model(model),
        None => config,
    };
    let bar = progress::bar(evaluate::steps(&scenarios, &config), "evaluate");
    let rows = evaluate::evaluate(&scenarios, &config, |event| match event {
        Progress::Collecting { scenario } => bar.set_prefix(scenario),
        Progress::Step => bar.inc(1),
    });
    bar.finish_and_clear();
    let rows = rows.context("evaluating")?;
    let text = if args.json {
        serde_json::to_string_pretty(&rows).context("writing JSON")? + "\n"
    } else {
        evaluate::table(&rows)
    };
    // Written, not printed: a closed pipe (`| head`) is an error to report, not a panic.
    std::io::stdout().lock().write_all(text.as_bytes()).context("writing to stdout")
}

fn scenarios(args: &Args) -> Result<Vec<Scenario>> {
    let paper = Scenario::paper();
    let sizes: Vec<&str> = if args.sizes.is_empty() && args.scenarios.is_empty() {
        DEFAULT_SIZES.to_vec()
    } else {
        args.sizes.iter().map(String::as_str).collect()
    };
    let mut scenarios = sizes
        .into_iter()
        .map(|size| evaluate::sized(&paper, size).context("--sizes"))
        .collect::<Result<Vec<_>>>()?;
    for name in &args.scenarios {
        scenarios.push(super::load_scenario(name).context("--scenarios")?);
    }
    Ok(scenarios)
}
