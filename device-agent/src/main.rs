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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = Cli::parse().args.into_config()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        token.cancel();
    });
    let records = qmec_device_agent::run(config, shutdown).await?;
    tracing::info!(agents = records.devices.len(), "device agents done");
    Ok(())
}
