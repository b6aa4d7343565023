//! Where agents run. A [`Runtime`] starts one agent from its argument list
//! and hands back an [`Agent`] that is killed when dropped, so a launcher
//! that returns early (an error, Ctrl-C, a crashed peer) leaves nothing
//! behind.

use crate::error::RuntimeError;
use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

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
    /// The last lines the agent wrote to stderr, kept here as well as in
    /// its log file: a full disk takes the file, and with it the cause.
    tail: LogTail,
}

/// How many of an agent's last log lines a crash report shows.
const TAIL_LINES: usize = 15;

/// The last [`TAIL_LINES`] lines of an agent's stderr, and whether writing
/// them to its log file failed (and why).
#[derive(Debug, Clone, Default)]
struct LogTail(Arc<Mutex<TailLines>>);

#[derive(Debug, Default)]
struct TailLines {
    lines: VecDeque<String>,
    write_error: Option<String>,
    /// The agent closed its stderr: every line is in.
    closed: bool,
}

impl LogTail {
    /// Copies `stderr` line by line into `file` (best effort) and the tail.
    fn follow(&self, stderr: ChildStderr, mut file: std::fs::File) {
        let tail = self.0.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let written = writeln!(file, "{line}");
                let mut kept = tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Err(error) = written {
                    kept.write_error.get_or_insert_with(|| error.to_string());
                }
                if kept.lines.len() == TAIL_LINES {
                    kept.lines.pop_front();
                }
                kept.lines.push_back(line);
            }
            tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner).closed = true;
        });
    }
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

    /// The last lines of the agent's log, for crash reports: once the
    /// agent (which has exited) closed its stderr, or after a second.
    pub async fn log_tail(&self) -> String {
        for _ in 0..100 {
            if self.tail.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).closed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let kept = self.tail.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut tail: Vec<String> = kept.lines.iter().cloned().collect();
        if let Some(error) = &kept.write_error {
            tail.push(format!("(its log {} could not be written: {error})", self.log.display()));
        }
        match tail.is_empty() {
            true => format!("(its log {} is empty)", self.log.display()),
            false => tail.join("\n"),
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
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        let stdout = child.stdout.take().map(BufReader::new);
        let tail = LogTail::default();
        if let Some(stderr) = child.stderr.take() {
            tail.follow(stderr, file);
        }
        Ok(Agent { name: name.to_string(), child, log, container: None, stdout, tail })
    }
}
