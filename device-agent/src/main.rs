//! `qmec-device-agent`: device agents on their own, from flags or `--config`.

#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "qmec-device-agent", about = "qmec device agents")]
struct Cli {
    #[command(flatten)]
    args: qmec_device_agent::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    qmec_proto::agent_process::init_logging("info");
    let records = qmec_device_agent::main(Cli::parse().args.into_config()?).await?;
    tracing::info!(agents = records.devices.len(), "device agents done");
    Ok(())
}
