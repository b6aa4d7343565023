//! Watching a running testbed, whatever runs its agents: wait until every
//! agent has exited, fail on the first that fails (with the tail of its
//! log), on Ctrl-C and at an optional deadline, and carry out the fault
//! schedule on time. An agent this launcher killed on purpose may exit
//! badly; one it starts again is watched like the first.

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

/// Starts the agent named by the argument again (a `restart` fault).
pub type StartAgain<'a> = &'a mut dyn FnMut(&str) -> Result<Agent, DeployError>;

/// Waits (at most `limit`) until the controller says its slot clock has
/// started, so that a fault schedule counts slots from there. A controller
/// that fails first is left for [`supervise`] to report.
pub async fn wait_for_run_start(controller: &mut Agent, limit: Duration) {
    match tokio::time::timeout(limit, controller.run_started()).await {
        Ok(Ok(slot)) => tracing::info!(slot, "the run started"),
        Ok(Err(error)) => tracing::warn!(%error, "no run-started line"),
        Err(_) => tracing::warn!(?limit, "the run did not start in time"),
    }
}

/// Starts agent `name` of `plans` again with `start`, which gets a log
/// name of its own for the new process and the agent's index in `plans`;
/// the new agent keeps its name in the schedule and the records.
pub fn start_again<'a>(
    plans: &'a [AgentPlan],
    mut start: impl FnMut(&str, usize) -> Result<Agent, DeployError> + 'a,
) -> impl FnMut(&str) -> Result<Agent, DeployError> + 'a {
    let mut starts = 0;
    move |name| {
        let i = plans.iter().position(|p| p.name == name).ok_or_else(|| {
            DeployError::Fault(FaultError { entry: name.to_string(), reason: "no such agent".into() })
        })?;
        starts += 1;
        let mut agent = start(&format!("{name}.restart-{starts}"), i)?;
        agent.name = name.to_string();
        Ok(agent)
    }
}

/// Runs until every agent in `agents` has exited; returns the names of the
/// agents it killed and did not start again.
pub async fn supervise(
    agents: &mut [Agent],
    mut actions: Vec<Action>,
    start_again: StartAgain<'_>,
    deadline: Option<Duration>,
) -> Result<Vec<String>, DeployError> {
    let started = tokio::time::Instant::now();
    let give_up = deadline.map(|d| started + d);
    actions.reverse(); // the next one last
    let mut killed = Vec::new();
    let mut done = vec![false; agents.len()];
    loop {
        while let Some(action) = actions.last().filter(|a| started + a.after <= tokio::time::Instant::now()) {
            let action = action.clone();
            actions.pop();
            if let Some(i) = agents.iter().position(|a| a.name == action.agent) {
                act(&action, &mut agents[i], &mut done[i], &mut killed, start_again).await?;
            }
        }
        for (agent, done) in agents.iter_mut().zip(done.iter_mut()).filter(|(_, d)| !**d) {
            if let Ok(Some(status)) = agent.child.try_wait() {
                if !status.success() && !killed.contains(&agent.name) {
                    return Err(DeployError::Crashed {
                        name: agent.name.clone(),
                        status: status.to_string(),
                        tail: agent.log_tail(),
                    });
                }
                *done = true;
            }
        }
        if done.iter().all(|d| *d) {
            return Ok(killed);
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
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
}

/// One step of the fault schedule on `agent`.
async fn act(
    action: &Action,
    agent: &mut Agent,
    done: &mut bool,
    killed: &mut Vec<String>,
    start_again: StartAgain<'_>,
) -> Result<(), DeployError> {
    match action.step {
        Step::Send(signal) => {
            let Some(pid) = agent.child.id().filter(|_| !*done) else { return Ok(()) };
            tracing::warn!(agent = %agent.name, signal = signal.name(), "fault injected");
            let sent = match &agent.container {
                Some(container) => {
                    let args = shell::args(["kill", "--signal", signal.name(), container]);
                    shell::run("docker", &args, DOCKER_KILL_LIMIT).await.map(drop).map_err(std::io::Error::other)
                }
                None => faults::send(pid, signal),
            };
            sent.map_err(|source| DeployError::Signal { name: agent.name.clone(), source })?;
            if signal == Signal::Kill {
                killed.push(agent.name.clone());
            }
        }
        Step::Start if killed.contains(&agent.name) => {
            tracing::warn!(agent = %agent.name, "starting a killed agent again");
            // The old process is reaped first, so that its exit is not
            // taken for the new one's.
            let _ = agent.child.wait().await;
            *agent = start_again(&action.agent)?;
            *done = false;
            killed.retain(|name| *name != action.agent);
        }
        Step::Start => {}
        // Refused before the run starts: see `faults::unsupported`.
        Step::Cut { .. } => {}
    }
    Ok(())
}
