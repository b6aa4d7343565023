//! `qmec`: the one user-facing command. Each subcommand lives in its own
//! module under [`commands`]; this file only parses flags and sets up logs.

#![forbid(unsafe_code)]

mod commands;
mod output;
mod progress;
mod run_folder;
mod slot_progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    qmec_proto::agent_process::init_logging("warn");
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            qmec_proto::agent_process::note(format_args!("error: {error:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}
