//! Watching a running testbed, whatever runs its agents: wait until every
//! agent has exited, carry out the fault schedule on time, and stop on
//! Ctrl-C and at an optional deadline. An agent that fails before the run
//! starts fails the launch at once (with the tail of its log). One lost
//! during the run — killed by the schedule and not started again, or dead
//! on its own — is written down with its slot, cause and last log lines,
//! and the run goes on without it; without a controller it cannot, so the
//! others are asked to stop and write their records. Either way the run
//! ends with the records that exist.

use crate::collect::LostAgent;
use crate::error::{DeployError, FaultError};
use crate::faults::{self, Action, Signal, Step};
use crate::plan::AgentPlan;
use crate::runtime::Agent;
use crate::shell;
use std::time::Duration;

/// Longest a `docker kill` may take to deliver a fault's signal.
const DOCKER_KILL_LIMIT: Duration = Duration::from_secs(10);

/// How long a launcher waits for the controller's clock to start: the
/// controller's own join timeout (60 s by default) and then some.
pub const JOIN_LIMIT: Duration = Duration::from_secs(70);

/// How long agents asked to stop (the controller is gone) get to write
/// their records before they are killed.
const WIND_DOWN_LIMIT: Duration = Duration::from_secs(15);

/// After the controller finished the run, the slots and the extra time
/// the other agents get to end on their own: a device waits up to 10 slots
/// and 3 s for its last results, a server a few marker waits and 2 s; twice
/// that covers a loaded machine. An agent still running then never heard
/// the finish (its session broke at the end and keeps reopening to nobody).
const AFTER_FINISH_SLOTS: u32 = 20;
const AFTER_FINISH_EXTRA: Duration = Duration::from_secs(10);

/// How often exits are looked for.
const POLL: Duration = Duration::from_millis(5);

/// The name every runtime gives the controller agent.
const CONTROLLER: &str = "controller";

/// An agent started again, once its runtime has it running (an engine may
/// take a while to schedule it).
pub type Restarted = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Agent, DeployError>>>>;

/// Starts the agent named by the argument again (a `restart` fault).
pub type StartAgain<'a> = &'a mut dyn FnMut(&str) -> Restarted;

/// A runtime's network, as a partition fault sees it: the command (program
/// and arguments) that takes an agent's link down or brings it up again.
pub trait Links {
    fn command(&self, agent: &str, up: bool) -> Option<(String, Vec<String>)>;
}

/// How long a link command may take.
const LINK_LIMIT: Duration = Duration::from_secs(10);

/// What supervision carries out besides watching: the fault schedule, with
/// what it needs (a way to start agents again, the runtime's links), and
/// the run's limits.
pub struct Schedule<'a> {
    pub actions: Vec<Action>,
    pub start_again: StartAgain<'a>,
    pub links: Option<&'a dyn Links>,
    pub deadline: Option<Duration>,
    /// The slot length the schedule counts in.
    pub slot: Duration,
}

/// Waits (at most `limit`) until the controller says its slot clock has
/// started, so that a fault schedule counts slots from there. Any agent
/// that fails first (a port taken, a bad flag) fails the launch at once,
/// named, with its last log lines, instead of leaving the controller to
/// time out on a device that never joins.
pub async fn wait_for_run_start(agents: &mut [Agent], limit: Duration) -> Result<(), DeployError> {
    let Some(at) = agents.iter().position(|a| a.name == CONTROLLER) else { return Ok(()) };
    let (before, rest) = agents.split_at_mut(at);
    let Some((controller, after)) = rest.split_first_mut() else { return Ok(()) };
    let started = tokio::select! {
        started = tokio::time::timeout(limit, controller.run_started()) => started,
        crashed = first_failure(before.iter_mut().chain(after.iter_mut()).collect()) => return Err(crashed),
    };
    match started {
        Ok(Ok(slot)) => tracing::info!(slot, "the run started"),
        // The controller closed its output: if it failed, say so now.
        Ok(Err(error)) => match tokio::time::timeout(Duration::from_secs(1), controller.child.wait()).await {
            Ok(Ok(status)) if !status.success() => return Err(crashed(controller, &status).await),
            _ => tracing::warn!(%error, "no run-started line"),
        },
        Err(_) => tracing::warn!(?limit, "the run did not start in time"),
    }
    Ok(())
}

/// The first of `agents` to exit badly, as the launch's error.
async fn first_failure(mut agents: Vec<&mut Agent>) -> DeployError {
    loop {
        for agent in agents.iter_mut() {
            if let Ok(Some(status)) = agent.child.try_wait()
                && !status.success()
            {
                return crashed(agent, &status).await;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn crashed(agent: &Agent, status: &std::process::ExitStatus) -> DeployError {
    DeployError::Crashed { name: agent.name.clone(), status: status.to_string(), tail: agent.log_tail().await }
}

/// Starts agent `name` of `plans` again with `start`, which gets a log
/// name of its own for the new process and the agent's index in `plans`;
/// the new agent keeps its name in the schedule and the records.
pub fn start_again<'a>(
    plans: &'a [AgentPlan],
    mut start: impl FnMut(&str, usize) -> Restarted + 'a,
) -> impl FnMut(&str) -> Restarted + 'a {
    let mut starts = 0;
    move |name| {
        let Some(i) = plans.iter().position(|p| p.name == name) else {
            return at_once(Err(DeployError::Fault(FaultError { entry: name.to_string(), reason: "no such agent".into() })));
        };
        starts += 1;
        let started = start(&format!("{name}.restart-{starts}"), i);
        let name = name.to_string();
        Box::pin(async move {
            let mut agent = started.await?;
            agent.name = name;
            Ok(agent)
        })
    }
}

/// A start that is over when it returns (a process spawned, a container
/// started), as a [`Restarted`].
pub fn at_once(started: Result<Agent, DeployError>) -> Restarted {
    Box::pin(std::future::ready(started))
}

/// The run as supervision sees it: which agents are done, which were lost.
struct Watch {
    started: tokio::time::Instant,
    slot: Duration,
    done: Vec<bool>,
    lost: Vec<LostAgent>,
    /// When the controller exited after finishing the run.
    finished_at: Option<tokio::time::Instant>,
}

impl Watch {
    /// The slot the run is in now, counted in wall time.
    fn slot_now(&self) -> u64 {
        (self.started.elapsed().as_secs_f64() / self.slot.as_secs_f64().max(1e-9)) as u64
    }

    fn is_lost(&self, name: &str) -> bool {
        self.lost.iter().any(|l| l.name == name)
    }

    async fn lose(&mut self, agent: &Agent, cause: String, planned: bool) {
        let log_tail = if planned { String::new() } else { agent.log_tail().await };
        let slot = self.slot_now();
        match planned {
            true => tracing::warn!(agent = %agent.name, slot, "fault injected: killed"),
            false => tracing::warn!(agent = %agent.name, slot, %cause, "agent lost; the run goes on without it"),
        }
        self.lost.push(LostAgent { name: agent.name.clone(), slot, cause, planned, log_tail });
    }
}

/// Runs until every agent in `agents` has exited, carrying out
/// `schedule`; returns the agents lost for good.
pub async fn supervise(agents: &mut [Agent], schedule: Schedule<'_>) -> Result<Vec<LostAgent>, DeployError> {
    let Schedule { mut actions, start_again, links, deadline, slot } = schedule;
    let started = tokio::time::Instant::now();
    let give_up = deadline.map(|d| started + d);
    actions.reverse(); // the next one last
    let mut watch = Watch { started, slot, done: vec![false; agents.len()], lost: Vec::new(), finished_at: None };
    loop {
        while let Some(action) = actions.last().filter(|a| started + a.after <= tokio::time::Instant::now()) {
            let action = action.clone();
            actions.pop();
            if let Some(i) = agents.iter().position(|a| a.name == action.agent) {
                act(&action, i, agents, &mut watch, start_again, links).await?;
            }
        }
        for (i, agent) in agents.iter_mut().enumerate() {
            if watch.done[i] {
                continue;
            }
            if let Ok(Some(status)) = agent.child.try_wait() {
                if !status.success() && !watch.is_lost(&agent.name) {
                    watch.lose(agent, format!("died ({status})"), false).await;
                }
                if status.success() && agent.name == CONTROLLER {
                    watch.finished_at = Some(tokio::time::Instant::now());
                }
                watch.done[i] = true;
            }
        }
        let running: Vec<&str> =
            agents.iter().zip(&watch.done).filter(|(_, done)| !**done).map(|(a, _)| a.name.as_str()).collect();
        let pending_start = actions.iter().any(|a| a.agent == CONTROLLER && a.step == Step::Start);
        match why_stop_the_rest(&running, &watch, pending_start, tokio::time::Instant::now()) {
            Some(Ending::ControllerLost) => wind_down(agents, &mut watch, None).await,
            Some(Ending::FinishUnheard { after }) => {
                let cause = format!("still running {after:?} after the controller finished the run (the finish never reached it); asked to stop");
                wind_down(agents, &mut watch, Some(cause)).await
            }
            None => {}
        }
        if watch.done.iter().all(|d| *d) {
            return Ok(watch.lost);
        }
        let past_deadline = async {
            match give_up {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Err(DeployError::Interrupted),
            () = past_deadline => return Err(DeployError::Deadline(deadline.unwrap_or_default())),
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Why supervision must end the run itself.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The controller is lost and no restart of it is still to come.
    ControllerLost,
    /// The controller finished the run this long ago and agents still run.
    FinishUnheard { after: Duration },
}

/// Whether the agents named `running` must be stopped by supervision,
/// because nobody else will end the run for them; `pending_start`: a
/// restart of the controller is still to come.
fn why_stop_the_rest(running: &[&str], watch: &Watch, pending_start: bool, now: tokio::time::Instant) -> Option<Ending> {
    if !running.iter().any(|name| *name != CONTROLLER) || pending_start {
        return None;
    }
    if watch.is_lost(CONTROLLER) {
        return Some(Ending::ControllerLost);
    }
    let after = now.saturating_duration_since(watch.finished_at?);
    (after >= watch.slot * AFTER_FINISH_SLOTS + AFTER_FINISH_EXTRA).then_some(Ending::FinishUnheard { after })
}

/// Asks every agent still running to stop (they write their records on
/// SIGTERM), and kills the ones that have not after [`WIND_DOWN_LIMIT`].
/// With `unheard`, every agent still running is counted lost for that
/// reason: it should have ended by itself.
async fn wind_down(agents: &mut [Agent], watch: &mut Watch, unheard: Option<String>) {
    match &unheard {
        None => tracing::warn!("the controller is gone for good; asking every agent to stop and write its records"),
        Some(_) => tracing::warn!("the controller finished the run but agents still run; asking them to stop and write their records"),
    }
    for (i, agent) in agents.iter_mut().enumerate() {
        if watch.done[i] {
            continue;
        }
        if let Some(cause) = &unheard {
            watch.lose(agent, cause.clone(), false).await;
        }
        if let Err(error) = signal(agent, "TERM").await {
            tracing::warn!(agent = %agent.name, %error, "could not ask it to stop");
        }
    }
    for (i, agent) in agents.iter_mut().enumerate() {
        if watch.done[i] {
            continue;
        }
        match tokio::time::timeout(WIND_DOWN_LIMIT, agent.child.wait()).await {
            // Lost already (the controller itself, or an agent that never
            // heard the finish): only reaped here.
            Ok(_) if watch.is_lost(&agent.name) => {}
            Ok(Ok(status)) if !status.success() => watch.lose(agent, format!("died while stopping ({status})"), false).await,
            Ok(_) => {}
            Err(_) => {
                let _ = agent.child.kill().await;
                if !watch.is_lost(&agent.name) {
                    watch.lose(agent, format!("did not stop within {WIND_DOWN_LIMIT:?} of being asked; killed"), false).await;
                }
            }
        }
        watch.done[i] = true;
    }
}

/// Sends the signal named `name` to `agent`: through `docker kill` when it
/// runs in a container, straight to its process otherwise.
async fn signal(agent: &Agent, name: &str) -> std::io::Result<()> {
    match (&agent.container, agent.child.id()) {
        (Some(container), _) => {
            let args = shell::args(["kill", "--signal", name, container]);
            shell::run("docker", &args, DOCKER_KILL_LIMIT).await.map(drop).map_err(std::io::Error::other)
        }
        (None, Some(pid)) => faults::send(pid, name),
        (None, None) => Ok(()),
    }
}

/// One step of the fault schedule on agent `i`.
async fn act(
    action: &Action,
    i: usize,
    agents: &mut [Agent],
    watch: &mut Watch,
    start_again: StartAgain<'_>,
    links: Option<&dyn Links>,
) -> Result<(), DeployError> {
    let agent = &mut agents[i];
    match action.step {
        Step::Send(sig) => {
            if watch.done[i] {
                return Ok(());
            }
            tracing::warn!(agent = %agent.name, signal = sig.name(), "fault injected");
            signal(agent, sig.name()).await.map_err(|source| DeployError::Signal { name: agent.name.clone(), source })?;
            if sig == Signal::Kill {
                watch.lose(agent, "killed by the fault schedule (SIGKILL)".into(), true).await;
            }
        }
        Step::Start if watch.is_lost(&agent.name) => {
            tracing::warn!(agent = %agent.name, "starting a killed agent again");
            // The old process is reaped first, so that its exit is not
            // taken for the new one's.
            let _ = agent.child.wait().await;
            *agent = start_again(&action.agent).await?;
            watch.done[i] = false;
            watch.lost.retain(|lost| lost.name != action.agent);
        }
        Step::Start => {}
        Step::Cut { .. } | Step::Heal => {
            let up = action.step == Step::Heal;
            // A runtime without links had the fault refused before the run.
            let Some((program, args)) = links.and_then(|links| links.command(&agent.name, up)) else { return Ok(()) };
            tracing::warn!(agent = %agent.name, "fault injected: link {}", if up { "up again" } else { "cut" });
            shell::run(&program, &args, LINK_LIMIT).await.map_err(|e| DeployError::Signal {
                name: agent.name.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const SLOT: Duration = Duration::from_millis(100);

    fn watch(finished_at: Option<Instant>, lost: &[&str]) -> Watch {
        let lost = lost
            .iter()
            .map(|name| LostAgent { name: name.to_string(), slot: 0, cause: "died".into(), planned: false, log_tail: String::new() })
            .collect();
        Watch { started: Instant::now(), slot: SLOT, done: Vec::new(), lost, finished_at }
    }

    #[test]
    fn agents_that_outlive_a_finished_controller_are_stopped_after_the_grace() {
        let finished = Instant::now();
        let grace = SLOT * AFTER_FINISH_SLOTS + AFTER_FINISH_EXTRA;
        let watch = watch(Some(finished), &[]);
        let running = ["device-0", "server-1"];
        assert_eq!(why_stop_the_rest(&running, &watch, false, finished + grace / 2), None, "still inside the grace");
        let late = finished + grace + Duration::from_millis(1);
        assert_eq!(
            why_stop_the_rest(&running, &watch, false, late),
            Some(Ending::FinishUnheard { after: grace + Duration::from_millis(1) })
        );
        assert_eq!(why_stop_the_rest(&[], &watch, false, late), None, "nobody left to stop");
    }

    #[test]
    fn a_lost_controller_ends_the_run_unless_a_restart_is_still_to_come() {
        let now = Instant::now();
        let lost = watch(None, &[CONTROLLER]);
        assert_eq!(why_stop_the_rest(&["device-0"], &lost, false, now), Some(Ending::ControllerLost));
        assert_eq!(why_stop_the_rest(&["device-0"], &lost, true, now), None);
        assert_eq!(why_stop_the_rest(&["device-0", CONTROLLER], &watch(None, &[]), false, now), None, "a running controller ends the run itself");
    }
}
