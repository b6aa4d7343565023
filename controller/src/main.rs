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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = Cli::parse().args.into_config()?;
    let records = qmec_controller::serve::main(config).await?;
    tracing::info!(slots = records.slots.len(), "controller done");
    Ok(())
}
