//! `qmec compare`: several policies on the same seed. Arrivals and fading come
//! from per-device streams that no decision touches, so every policy faces
//! the very same tasks and channels (common random numbers).

use crate::progress;
use anyhow::{Context, Result};
use qmec_sim::output::{table, write_run};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "paper")]
    scenario: String,
    /// Comma-separated policies; qnn runs the shipped model, other trained
    /// ones as NAME=MODEL_FILE (e.g. qnn=model.json, dl=mlp.json).
    #[arg(long, value_delimiter = ',', default_value = "local,random,greedy,dpp-greedy,lyapunov,qnn")]
    policies: Vec<String>,
    /// Online learning for policies that can (`qnn`, `lydroo`), in-line at
    /// fixed slots so runs are reproducible; `--online false` freezes them.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    online: bool,
    #[arg(long, default_value_t = 2_000)]
    slots: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// If given, one run folder per policy is written below it.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let scenario = super::load_scenario(&args.scenario)?;
    let mut summaries = Vec::new();
    for name in &args.policies {
        let spec = qmec_catalog::PolicySpec::parse(name);
        let dir = args.out.as_ref().map(|out| out.join(&spec.name));
        let spec = super::online(spec, args.online, dir.as_deref());
        let mut policy = super::make_policy(&spec, &scenario, args.seed)?;
        let bar = progress::bar(args.slots, &spec.name);
        let (summary, records) =
            qmec_sim::simulate(&scenario, args.seed, policy.as_mut(), args.slots, |_| bar.inc(1))?;
        bar.finish_and_clear();
        if let Some(dir) = &dir {
            write_run(dir, &scenario, &summary, &records.slots, &records.tasks)
                .with_context(|| format!("writing run folder {}", dir.display()))?;
        }
        summaries.push(summary);
    }
    crate::output::print(table(&summaries))?;
    Ok(())
}
