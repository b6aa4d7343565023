//! `qmec simulate`: one policy, one seed, a summary table and a run folder.

use crate::output::say;
use crate::progress;
use anyhow::{Context, Result};
use qmec_sim::output::{RunWriter, table};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Built-in scenario (paper, paper-small, scaled, overload, paper-mobile, paper-trace) or a TOML file.
    #[arg(long, default_value = "paper")]
    scenario: String,
    /// Policy by name; `qnn` (the default) runs the shipped trained model.
    #[arg(long, default_value = qmec_catalog::DEFAULT_POLICY)]
    policy: String,
    /// Model file for a trained policy (qnn: overrides the shipped model; dl).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Online learning for policies that can (`qnn`, `lydroo`), in-line at
    /// fixed slots so the run is reproducible; model files go to the run
    /// folder. `--online false` freezes the model.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    online: bool,
    #[arg(long, default_value_t = 10_000)]
    slots: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run folder to write (scenario.toml, summary.json, slots.csv, tasks.csv).
    #[arg(long, default_value = "runs/simulate")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let scenario = super::load_scenario(&args.scenario)?;
    let spec = qmec_catalog::PolicySpec { name: args.policy.clone(), model: args.model.clone(), online: None };
    let spec = super::online(spec, args.online, Some(&args.out));
    let mut policy = super::make_policy(&spec, &scenario, args.seed)?;
    let bar = progress::bar(args.slots, policy.name());
    let folder = || format!("writing run folder {}", args.out.display());
    // Rows go to disk as the run goes, so memory stays flat in --slots.
    let mut writer = RunWriter::create(&args.out, &scenario).with_context(folder)?;
    let summary = qmec_sim::simulate_with(&scenario, args.seed, policy.as_mut(), args.slots, |outcome| {
        bar.inc(1);
        writer.outcome(&outcome).with_context(folder)
    })?;
    bar.finish_and_clear();
    writer.finish(&summary).with_context(folder)?;
    crate::output::print(table(std::slice::from_ref(&summary)))?;
    say!("run folder: {}", args.out.display())?;
    crate::output::print(crate::run_folder::listing(&args.out))?;
    Ok(())
}
