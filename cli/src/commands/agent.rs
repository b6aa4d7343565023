//! `qmec agent controller|device|server`: the testbed's agents as thin
//! wrappers over their crates, so a launcher can spawn this very binary.

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The controller: slot clock and policy.
    Controller(qmec_controller::Args),
    /// One or more device agents in this process.
    Device(qmec_device_agent::Args),
    /// One server agent.
    Server(qmec_server_agent::Args),
}

pub fn run(command: Command) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match command {
            Command::Controller(args) => {
                qmec_controller::serve::main(args.into_config()?).await?;
            }
            Command::Server(args) => {
                qmec_server_agent::agent::main(args.into_config()?).await?;
            }
            Command::Device(args) => {
                qmec_device_agent::main(args.into_config()?).await?;
            }
        }
        Ok(())
    })
}
