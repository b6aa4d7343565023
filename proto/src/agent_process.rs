//! What every qmec process sets up the same way: logs on stderr filtered by
//! `RUST_LOG`, and a shutdown token cancelled on Ctrl-C or SIGTERM (what a
//! launcher, Docker or Kubernetes sends to stop an agent gracefully).

use tokio_util::sync::CancellationToken;

/// Logs to stderr (stdout carries the launcher's lines), at `default`
/// unless `RUST_LOG` says otherwise.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// A token cancelled on Ctrl-C or SIGTERM; call inside a tokio runtime.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    tokio::spawn(cancel_on_signal(token.clone()));
    token
}

async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            token.cancel();
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    token.cancel();
}
