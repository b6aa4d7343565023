//! The engine's word on a stack's tasks, read from `docker stack ps`: which
//! container runs a service's task in a slot, whether the engine is still
//! getting there or has given up on it, and when waiting is pointless. A
//! task the engine refuses (rejected, say, for an image that is no longer
//! there) is never retried under `restart_policy: none`, so it fails the
//! launch at once with the engine's error; a stack whose tasks are still
//! moving (pending, preparing, starting on a loaded machine) is waited for
//! until none of them has changed state for [`STALL_LIMIT`]. Deciding is
//! I/O-free; [`wait`] only polls, and when it gives up gathers what the
//! engine says about the task, its service and the swarm.

use crate::error::{EngineError, ShellError};
use crate::shell;
use std::time::{Duration, Instant};

/// How each task is listed: `docker stack ps --no-trunc --format`.
const FORMAT: &str = "{{.ID}}\t{{.Name}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}";
/// Waiting gives up when no task of the stack changed state for this long.
pub const STALL_LIMIT: Duration = Duration::from_secs(90);
/// And in any case after this long.
pub const WAIT_LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);
const STEP: Duration = Duration::from_secs(30);

/// One task as `docker stack ps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    /// `SERVICE.SLOT`.
    pub name: String,
    /// Lower case: `running`, `shutdown`, …
    pub desired: String,
    /// The current state's first word, lower case (`Running 3 seconds ago`).
    pub state: String,
    pub error: String,
}

impl Task {
    /// The container the engine names after the task.
    pub fn container(&self) -> String {
        format!("{}.{}", self.name, self.id)
    }
}

/// The tasks of a listing in [`FORMAT`]; lines that are not one are skipped.
pub fn parse(listing: &str) -> Vec<Task> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (id, name, desired, current) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
            let state = current.split_whitespace().next()?.to_lowercase();
            let error = fields.next().unwrap_or_default().trim().trim_matches('"').to_string();
            Some(Task { id: id.trim().into(), name: name.trim().into(), desired: desired.trim().to_lowercase(), state, error })
        })
        .collect()
}

/// Where the engine is with the task of one `SERVICE.SLOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its container ran (or runs): this one.
    Started(String),
    /// Not yet: the task's state, or that there is no task yet.
    Waiting(String),
    /// Never will: why.
    Refused(String),
}

/// The verdict on task `name` (`SERVICE.SLOT`) among `tasks`, leaving out
/// the containers in `replaced` (a restarted agent's old ones).
pub fn verdict(tasks: &[Task], name: &str, replaced: &[String]) -> Verdict {
    let candidates: Vec<&Task> = tasks.iter().filter(|t| t.name == name && !replaced.contains(&t.container())).collect();
    // The task the engine means to run, else its last word on the slot.
    let Some(task) = candidates.iter().find(|t| t.desired == "running").or(candidates.first()) else {
        return Verdict::Waiting("no task yet".into());
    };
    match task.state.as_str() {
        "running" | "complete" => Verdict::Started(task.container()),
        // The agent's own exit: its log says why, as on every runtime.
        "failed" if task.error.starts_with("task: non-zero exit") => Verdict::Started(task.container()),
        "new" | "allocated" | "pending" | "assigned" | "accepted" | "ready" | "preparing" | "starting" => {
            Verdict::Waiting(task.state.clone())
        }
        state => {
            let error = if task.error.is_empty() { "no error given" } else { &task.error };
            Verdict::Refused(format!("task {} is {state} ({error})", task.id))
        }
    }
}

/// Whether waiting on a stack still makes sense: it does while some task
/// changes state, for at most [`WAIT_LIMIT`] in all.
#[derive(Debug)]
pub struct Patience {
    since: Instant,
    changed: Instant,
    seen: Vec<(String, String)>,
}

impl Patience {
    pub fn new(now: Instant) -> Self {
        Patience { since: now, changed: now, seen: Vec::new() }
    }

    /// Takes in the stack's tasks at `now`; why to give up, if it is time.
    pub fn observe(&mut self, tasks: &[Task], now: Instant) -> Option<String> {
        let states: Vec<(String, String)> = tasks.iter().map(|t| (t.id.clone(), t.state.clone())).collect();
        if states != self.seen {
            self.seen = states;
            self.changed = now;
        }
        if now.duration_since(self.changed) >= STALL_LIMIT {
            return Some(format!("no task of the stack changed state for {STALL_LIMIT:?}"));
        }
        (now.duration_since(self.since) >= WAIT_LIMIT).then(|| format!("still not started after {WAIT_LIMIT:?}"))
    }
}

/// The tasks of stack `stack`, old ones included.
pub async fn list(stack: &str) -> Result<Vec<Task>, ShellError> {
    Ok(parse(&shell::run("docker", &shell::args(["stack", "ps", "--no-trunc", "--format", FORMAT, stack]), STEP).await?))
}

/// Waits until the engine has started every task in `names` (`SERVICE.SLOT`
/// of stack `stack`, other than the containers in `replaced`); their
/// containers, in that order.
pub async fn wait(stack: &str, names: &[String], replaced: &[String], image: &str) -> Result<Vec<String>, EngineError> {
    let mut patience = Patience::new(Instant::now());
    loop {
        let tasks = list(stack).await?;
        let verdicts: Vec<Verdict> = names.iter().map(|name| verdict(&tasks, name, replaced)).collect();
        let pending = names.iter().zip(&verdicts).find(|(_, v)| !matches!(v, Verdict::Started(_)));
        let Some((name, pending)) = pending else {
            return Ok(verdicts.into_iter().filter_map(|v| if let Verdict::Started(c) = v { Some(c) } else { None }).collect());
        };
        let why = match pending {
            Verdict::Refused(why) => Some(why.clone()),
            _ => patience.observe(&tasks, Instant::now()).map(|gave_up| format!("{gave_up}; it is {}", state_of(pending))),
        };
        if let Some(why) = why {
            let service = name.rsplit_once('.').map_or(name.as_str(), |(service, _)| service);
            return Err(EngineError::NotStarted { task: name.clone(), why, diagnostics: diagnostics(service, image).await });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn state_of(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Waiting(state) | Verdict::Refused(state) | Verdict::Started(state) => state,
    }
}

/// What the engine says about `service`, its image and the swarm, each
/// command's output or why there is none.
async fn diagnostics(service: &str, image: &str) -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut said = vec![format!("load average: {}", load.trim())];
    let commands = [
        shell::args(["service", "ps", "--no-trunc", service]),
        shell::args(["service", "inspect", "--pretty", service]),
        shell::args(["image", "inspect", "--format", "image {{.Id}} present, {{.Size}} bytes", image]),
        shell::args(["node", "ls"]),
        shell::args(["info", "--format", "swarm: {{.Swarm.LocalNodeState}}, {{.Swarm.Nodes}} node(s), error `{{.Swarm.Error}}`"]),
    ];
    for args in commands {
        let said_by = match shell::run("docker", &args, STEP).await {
            Ok(out) => out.trim().to_string(),
            Err(error) => error.to_string(),
        };
        said.push(format!("$ docker {}\n{said_by}", args.join(" ")));
    }
    said.join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // As docker 20.10 lists a stack whose controller was killed and started
    // again, one server still preparing and one refused.
    const LISTING: &str = "\
za2if3ufswron9vqwlnh7xbdl\tq_controller.1\tRunning\tRunning 2 seconds ago\t
yxiasvrqso130pe1ale7jqkrj\tq_controller.1\tShutdown\tFailed 4 seconds ago\t\"task: non-zero exit (137)\"
uioi1bxkej5hze9lu13u6e668\tq_server-0.1\tRunning\tPreparing 25 seconds ago\t
3v33v6w8bn8mpo5sho6ygj57r\tq_server-1.1\tShutdown\tRejected 3 seconds ago\t\"No such image: qmec:1-2\"
dr1cxqkpzkdlhqxybc5eq7umu\tq_devices.2\tShutdown\tFailed 1 second ago\t\"starting container failed: no such file\"
";

    #[test]
    fn a_listing_says_which_task_runs_which_is_on_its_way_and_which_never_will() {
        let tasks = parse(LISTING);
        assert_eq!(tasks.len(), 5);
        assert_eq!(tasks[1].error, "task: non-zero exit (137)");
        assert_eq!(tasks[0].container(), "q_controller.1.za2if3ufswron9vqwlnh7xbdl");
        // The task the engine means to run, not the killed one before it…
        assert_eq!(verdict(&tasks, "q_controller.1", &[]), Verdict::Started(tasks[0].container()));
        // …and after a restart, never the container watched before.
        let old = [tasks[0].container()];
        assert_eq!(verdict(&tasks, "q_controller.1", &old), Verdict::Started(tasks[1].container()));
        assert_eq!(verdict(&tasks, "q_server-0.1", &[]), Verdict::Waiting("preparing".into()));
        assert_eq!(verdict(&tasks, "q_devices.1", &[]), Verdict::Waiting("no task yet".into()));
        let Verdict::Refused(why) = verdict(&tasks, "q_server-1.1", &[]) else { panic!("a rejected task was not refused") };
        assert!(why.contains("rejected") && why.contains("No such image: qmec:1-2"), "{why}");
        // A container that never started is the engine's failure, not the agent's.
        let Verdict::Refused(why) = verdict(&tasks, "q_devices.2", &[]) else { panic!("a failed start was not refused") };
        assert!(why.contains("starting container failed"), "{why}");
    }

    #[test]
    fn patience_lasts_while_tasks_move_and_ends_when_they_stall_or_at_the_limit() {
        let tasks = parse(LISTING);
        let start = Instant::now();
        let mut patience = Patience::new(start);
        assert_eq!(patience.observe(&tasks, start), None);
        let stalled = patience.observe(&tasks, start + STALL_LIMIT).unwrap();
        assert!(stalled.contains("changed state"), "{stalled}");
        // A task that moves on resets the stall, but not the overall limit.
        let mut patience = Patience::new(start);
        let mut moving = tasks.clone();
        let mut at = start;
        while at < start + WAIT_LIMIT - STALL_LIMIT / 2 {
            at += STALL_LIMIT / 2;
            moving[2].state = if moving[2].state == "preparing" { "starting".into() } else { "preparing".into() };
            assert_eq!(patience.observe(&moving, at), None, "gave up at {:?} while a task moved", at - start);
        }
        moving[2].state = "running".into();
        let late = patience.observe(&moving, start + WAIT_LIMIT).unwrap();
        assert!(late.contains("after"), "{late}");
    }
}
