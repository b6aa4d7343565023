//! `qmec-controller`: the controller on its own, from flags or `--config`.

#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "qmec-controller", about = "qmec controller: slot clock and policy")]
struct Cli {
    #[command(flatten)]
    args: qmec_controller::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    qmec_proto::agent_process::init_logging("info");
    let records = qmec_controller::serve::main(Cli::parse().args.into_config()?).await?;
    tracing::info!(slots = records.slots.len(), "controller done");
    Ok(())
}
