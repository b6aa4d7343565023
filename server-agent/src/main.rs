//! `qmec-server-agent`: one server agent on its own, from flags or `--config`.

#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "qmec-server-agent", about = "qmec edge server agent")]
struct Cli {
    #[command(flatten)]
    args: qmec_server_agent::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    qmec_proto::agent_process::init_logging("info");
    let records = qmec_server_agent::agent::main(Cli::parse().args.into_config()?).await?;
    tracing::info!(slots = records.slots.len(), "server agent done");
    Ok(())
}
