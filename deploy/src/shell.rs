//! External commands (`docker`, `docker-compose`, `ip`, `tc`, `nsenter`)
//! with a time limit each, so no step of a container or namespace testbed
//! can hang a run; errors carry the command line and its stderr.

use crate::error::ShellError;
use std::process::Stdio;
use std::time::Duration;

fn line(program: &str, args: &[String]) -> String {
    std::iter::once(program).chain(args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
}

/// Runs `program args`, returns its stdout; fails on a non-zero exit.
pub async fn run(program: &str, args: &[String], limit: Duration) -> Result<String, ShellError> {
    let command = line(program, args);
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ShellError::Spawn { command: command.clone(), source })?;
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(out) => out.map_err(|source| ShellError::Spawn { command: command.clone(), source })?,
        Err(_) => return Err(ShellError::Timeout { command, limit }),
    };
    if !out.status.success() {
        return Err(ShellError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// For teardown in `Drop`: runs to completion (bounded by `limit`),
/// ignoring failure, logging it.
pub fn run_blocking(program: &str, args: &[String], limit: Duration) {
    let command = line(program, args);
    let child = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            tracing::warn!(%command, %error, "teardown command did not start");
            return;
        }
    };
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                tracing::warn!(%command, %status, "teardown command failed");
                return;
            }
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(%command, "teardown command timed out");
                return;
            }
        }
    }
}

/// `["a", "b"]` → owned arguments.
pub fn args<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
