//! `qmec scenario show NAME`: prints a built-in scenario as TOML to start from.

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a built-in scenario (paper, paper-small, scaled, overload, paper-mobile, paper-trace) or a file, resolved, as TOML.
    Show { name: String },
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Show { name } => {
            crate::output::print(super::load_scenario(&name)?.to_toml())?;
            Ok(())
        }
    }
}
