//! What every qmec process does the same way: logs on stderr filtered by
//! `RUST_LOG`, lines for the launcher on stdout, a shutdown token
//! cancelled on Ctrl-C or SIGTERM (what a launcher, Docker or Kubernetes
//! sends to stop an agent gracefully), and its records written at the end.
//!
//! Neither stream may panic a process when it is closed or full (a log
//! file on a full disk, `2>/dev/full`): a log line that cannot be written
//! is lost, and a launcher line that cannot be written is an error.

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Logs to stderr (stdout carries the launcher's lines), at `default`
/// unless `RUST_LOG` says otherwise. A write that fails drops the line:
/// tracing's own report of it would go to the same stderr with
/// `eprintln!`, which panics.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false).init();
}

/// Writes `line` and a newline to stdout and flushes it (a launcher reads
/// it as it comes); where stdout is closed or full, the error instead of
/// `println!`'s panic.
pub fn announce(line: impl Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush())
}

/// Writes `line` and a newline to stderr for a person to read; where
/// stderr is closed or full the line is lost, since there is nowhere left
/// to say so (`eprintln!` would panic).
pub fn note(line: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// An agent's records that could not be written, with the path and the cause.
#[derive(Debug, thiserror::Error)]
#[error("writing records {}: {cause}", path.display())]
pub struct RecordsError {
    pub path: PathBuf,
    pub cause: String,
}

/// Writes an agent's `records` to `path` as JSON.
pub fn write_records(path: &Path, records: &impl serde::Serialize) -> Result<(), RecordsError> {
    let error = |cause: String| RecordsError { path: path.to_path_buf(), cause };
    let json = serde_json::to_string(records).map_err(|e| error(e.to_string()))?;
    std::fs::write(path, json).map_err(|e| error(e.to_string()))
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

#[cfg(test)]
mod tests {
    #[test]
    fn records_that_cannot_be_written_are_an_error_naming_the_path_and_cause() {
        let error = super::write_records(std::path::Path::new("/dev/full"), &[1, 2, 3]).err().map(|e| e.to_string());
        let message = error.unwrap_or_default();
        assert!(message.starts_with("writing records /dev/full: ") && message.contains("No space left"), "{message}");
    }
}
