//! `qmec experiment NAME|all`: the papers' comparisons as CSV, plots and a
//! claim-by-claim markdown report.

use crate::output::say;
use anyhow::{Context, Result};
use qmec_experiments::{QUICK_MODE_NOTE, Settings, run_set, shown_verdict, suites::NAMES, write_report};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An experiment name, or `all`.
    name: String,
    /// Seeds per point (95 % intervals are shown from 3 seeds on).
    #[arg(long)]
    seeds: Option<u64>,
    /// Short runs, 2 seeds, small training budgets: indicative figures in
    /// seconds (release build; 84 s for a debug build), marked as such.
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value = "report")]
    out: PathBuf,
}

pub fn run_command(args: Args) -> Result<()> {
    let settings = Settings::new(
        args.out.clone(),
        args.seeds.unwrap_or(if args.quick { 2 } else { 5 }),
        args.quick,
        Some(std::env::current_exe().context("locating the qmec binary")?),
    );
    let names: Vec<&str> = if args.name == "all" { NAMES.to_vec() } else { vec![args.name.as_str()] };
    if args.quick {
        say!(
            "{QUICK_MODE_NOTE}: short runs, {} seed(s), small training budgets; run without --quick to test the papers' claims",
            settings.seeds
        )?;
    }
    let sections = run_set(&names, &settings).context("running experiments")?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = write_report(&args.out, &sections, &command, args.quick)?;
    for claim in sections.iter().flat_map(|s| &s.claims) {
        say!("[{}] {}: {}", shown_verdict(claim.verdict, args.quick), claim.claim, claim.measured)?;
    }
    say!("report: {}", report.display())?;
    Ok(())
}
