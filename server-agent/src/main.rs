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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = Cli::parse().args.into_config()?;
    let records = qmec_server_agent::agent::main(config).await?;
    tracing::info!(slots = records.slots.len(), "server agent done");
    Ok(())
}
