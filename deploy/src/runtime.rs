//! Where agents run. A [`Runtime`] starts one agent from its argument list
//! and hands back an [`Agent`] that is killed when dropped, so a launcher
//! that returns early (an error, Ctrl-C, a crashed peer) leaves nothing
//! behind.

use crate::error::RuntimeError;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// One running agent.
#[derive(Debug)]
pub struct Agent {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    /// The container the agent runs in, when `child` only watches it
    /// (`docker start -a`): a signal to `child` would not reach the agent,
    /// so faults go through `docker kill`.
    pub container: Option<String>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Agent {
    /// Waits for the agent's listening line and returns the address.
    pub async fn listening(&mut self) -> Result<String, RuntimeError> {
        self.line(qmec_proto::LISTENING_PREFIX).await
    }

    /// Waits for the controller's line saying the run started; the slot.
    pub async fn run_started(&mut self) -> Result<String, RuntimeError> {
        self.line(qmec_proto::RUN_STARTED_PREFIX).await
    }

    /// Reads stdout up to the first line starting with `prefix`; the rest
    /// of that line.
    async fn line(&mut self, prefix: &str) -> Result<String, RuntimeError> {
        let no_line = || RuntimeError::NoLine { name: self.name.clone(), prefix: prefix.trim().to_string() };
        let stdout = self.stdout.as_mut().ok_or_else(no_line)?;
        let mut line = String::new();
        loop {
            line.clear();
            let read = stdout.read_line(&mut line).await.map_err(|_| no_line())?;
            if read == 0 {
                return Err(no_line());
            }
            if let Some(rest) = line.trim().strip_prefix(prefix.trim()) {
                return Ok(rest.trim().to_string());
            }
        }
    }

    /// The last lines of the agent's log, for crash reports.
    pub fn log_tail(&self) -> String {
        let text = match std::fs::read_to_string(&self.log) {
            Ok(text) => text,
            Err(error) => return format!("(its log {} could not be read: {error})", self.log.display()),
        };
        let lines: Vec<&str> = text.lines().collect();
        match lines.is_empty() {
            true => format!("(its log {} is empty)", self.log.display()),
            false => lines[lines.len().saturating_sub(15)..].join("\n"),
        }
    }
}

/// Starts agents somewhere.
pub trait Runtime {
    fn start(&mut self, name: &str, args: &[String]) -> Result<Agent, RuntimeError>;
}

/// Agents as child processes of this one, each running `exe` with its
/// arguments, stderr into `logs/NAME.log`.
#[derive(Debug, Clone)]
pub struct LocalProcesses {
    pub exe: PathBuf,
    pub logs: PathBuf,
}

impl Runtime for LocalProcesses {
    fn start(&mut self, name: &str, args: &[String]) -> Result<Agent, RuntimeError> {
        let spawn_err = |source| RuntimeError::Spawn { name: name.to_string(), source };
        std::fs::create_dir_all(&self.logs).map_err(spawn_err)?;
        let log = self.logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(spawn_err)?;
        let mut child = Command::new(&self.exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        let stdout = child.stdout.take().map(BufReader::new);
        Ok(Agent { name: name.to_string(), child, log, container: None, stdout })
    }
}
