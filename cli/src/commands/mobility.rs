//! `qmec mobility`: a mobile scenario's trajectories and each device's best
//! server over a run, as figures and CSV.

use crate::output::say;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A scenario with a [mobility] section: built-in (paper-mobile, paper-trace) or a TOML file.
    #[arg(long, default_value = "paper-mobile")]
    scenario: String,
    #[arg(long, default_value_t = 600)]
    slots: u64,
    /// The run seed: the same seed draws the same paths as `simulate` and `testbed`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder for trajectories.csv, trajectories.png/.svg and best_server.png/.svg.
    #[arg(long, default_value = "runs/mobility")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let scenario = super::load_scenario(&args.scenario)?;
    // The paper's 10 devices over 600 slots, drawn twice, take about 0.2 s
    // (debug build): no progress bar.
    let tracks = qmec_experiments::mobility::tracks(&scenario, args.seed, args.slots)?;
    let written = qmec_experiments::mobility::write(&tracks, &args.out)
        .with_context(|| format!("writing mobility figures to {}", args.out.display()))?;
    for path in written {
        say!("{}", path.display())?;
    }
    Ok(())
}
