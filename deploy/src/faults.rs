//! Fault schedules for a testbed: `kill:server-1@40` sends SIGKILL to
//! the agent process `server-1` at slot 40, for good (any agent: a killed
//! device process takes its records with it, a killed controller ends the
//! run, which is then reported incomplete); `stop:device-1@30+10` pauses a
//! process with SIGSTOP at slot 30 and resumes it with SIGCONT 10 slots
//! later; `late:device-0@0` makes device 0 hold every report from slot 0
//! on for two slot lengths (it reports late every slot);
//! `slow:server-0@20` makes server 0 wait 3/4 of a slot before returning
//! each slot's results from slot 20 on; `restart:controller@50+20` sends
//! SIGKILL to the controller at slot 50 and starts it again, on the same
//! address with the same settings, 20 slots later; `partition:server-0@60+20`
//! cuts server 0 off from every other agent at slot 60 for 20 slots (its
//! link goes down in its namespace, its container leaves the docker
//! network, or on the virtual runtime its traffic waits until the cut heals).
//! Entries are separated by commas. Slots are counted in wall time
//! (slot × slot length) from the controller's run-started line (its clock
//! starts once every agent has joined), so a fault lands within a slot or
//! so of its slot (faults after a controller restart land later in slots
//! by the outage: the schedule keeps counting wall time). `device-N` names the process that runs device N.

use crate::config::{Fault, FaultKind};
use crate::error::FaultError;
use std::time::Duration;

/// How long a late device holds each report, in slots: past the next
/// slot's report deadline even for a report sent ahead of its announcement.
pub const LATE_REPORT_SLOTS: f64 = 2.0;
/// How long a slow server holds each slot's results, in slots.
pub const SLOW_RESULT_SLOTS: f64 = 0.75;

/// Parses a comma-separated schedule; an empty string is no faults.
pub fn parse(schedule: &str) -> Result<Vec<Fault>, FaultError> {
    schedule.split(',').map(str::trim).filter(|e| !e.is_empty()).map(parse_one).collect()
}

fn parse_one(entry: &str) -> Result<Fault, FaultError> {
    let err = |reason: &str| FaultError { entry: entry.to_string(), reason: reason.to_string() };
    let (kind, rest) = entry.split_once(':').ok_or_else(|| err("no `:` after the kind"))?;
    let (target, when) = rest.split_once('@').ok_or_else(|| err("no `@SLOT`"))?;
    if target.is_empty() || !target.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(err("the target must be an agent name like server-1 or device-0"));
    }
    let number = |s: &str| s.parse::<u64>().map_err(|_| err("slots must be whole numbers"));
    let (kind, at_slot) = match kind {
        // Any agent: the run goes on without a server or a device process,
        // and ends with the records that exist without the controller.
        "kill" => (FaultKind::Kill, number(when)?),
        "stop" | "restart" | "partition" => {
            if kind == "restart" && target != "controller" {
                return Err(err("only the controller is restarted (agents keep state the run needs)"));
            }
            if kind == "partition" && !(target.starts_with("server-") || target.starts_with("device")) {
                return Err(err("only server and device agents are partitioned"));
            }
            let (at, slots) = when.split_once('+').ok_or_else(|| err("this kind needs @SLOT+SLOTS"))?;
            let slots = number(slots)?;
            if slots == 0 {
                return Err(err("the outage lasts at least one slot"));
            }
            let kind = match kind {
                "stop" => FaultKind::Stop { slots },
                "restart" => FaultKind::Restart { slots },
                _ => FaultKind::Partition { slots },
            };
            (kind, number(at)?)
        }
        "late" => {
            if !target.starts_with("device") {
                return Err(err("only device agents report late"));
            }
            (FaultKind::Late, number(when)?)
        }
        "slow" => {
            if !target.starts_with("server-") {
                return Err(err("only server agents answer slowly"));
            }
            (FaultKind::Slow, number(when)?)
        }
        _ => return Err(err("unknown kind")),
    };
    Ok(Fault { kind, target: target.to_string(), at_slot })
}

/// The agent process name `target` refers to among the run's agents:
/// itself, or for `device-N` the device process that runs device N
/// (`devices-A-B` runs A..=B).
pub fn resolve(target: &str, names: &[String]) -> Option<String> {
    if names.iter().any(|n| n == target) {
        return Some(target.to_string());
    }
    let device: usize = target.strip_prefix("device-")?.parse().ok()?;
    names.iter().find(|name| runs_device(name, device)).cloned()
}

fn runs_device(name: &str, device: usize) -> bool {
    let Some((first, last)) = name.strip_prefix("devices-").and_then(|range| range.split_once('-')) else { return false };
    matches!((first.parse::<usize>(), last.parse::<usize>()), (Ok(first), Ok(last)) if (first..=last).contains(&device))
}

/// One step of a schedule, at an offset from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub after: Duration,
    pub agent: String,
    pub step: Step,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Send(Signal),
    /// Start the (killed) agent again with its first arguments.
    Start,
    /// Cut the agent off from the network for this many slots.
    Cut { slots: u64 },
    /// Join the cut agent to the network again (the cut's end, for the
    /// runtimes whose network does not heal by itself).
    Heal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Kill,
    Stop,
    Cont,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// The steps of a schedule, in time order.
pub fn actions(faults: &[Fault], names: &[String], slot: Duration) -> Result<Vec<Action>, FaultError> {
    let mut actions = Vec::new();
    for fault in faults {
        let agent = resolve(&fault.target, names).ok_or_else(|| FaultError {
            entry: fault.target.clone(),
            reason: format!("no such agent (agents: {})", names.join(", ")),
        })?;
        let at = slot * fault.at_slot as u32;
        let mut push = |after, step| actions.push(Action { after, agent: agent.clone(), step });
        match fault.kind {
            FaultKind::Kill => push(at, Step::Send(Signal::Kill)),
            FaultKind::Stop { slots } => {
                push(at, Step::Send(Signal::Stop));
                push(at + slot * slots as u32, Step::Send(Signal::Cont));
            }
            FaultKind::Restart { slots } => {
                push(at, Step::Send(Signal::Kill));
                push(at + slot * slots as u32, Step::Start);
            }
            FaultKind::Partition { slots } => {
                push(at, Step::Cut { slots });
                push(at + slot * slots as u32, Step::Heal);
            }
            FaultKind::Late | FaultKind::Slow => {}
        }
    }
    actions.sort_by_key(|a| a.after);
    Ok(actions)
}

/// The extra flags agent `name` is started with (late and slow faults).
pub fn agent_args(faults: &[Fault], name: &str, names: &[String], slot_ms: f64) -> Vec<String> {
    let mut args = Vec::new();
    for fault in faults {
        if resolve(&fault.target, names).as_deref() != Some(name) {
            continue;
        }
        let (flags, slots) = match fault.kind {
            FaultKind::Late => (["--report-delay-ms", "--report-delay-from"], LATE_REPORT_SLOTS),
            FaultKind::Slow => (["--result-delay-ms", "--result-delay-from"], SLOW_RESULT_SLOTS),
            FaultKind::Kill | FaultKind::Stop { .. } | FaultKind::Restart { .. } | FaultKind::Partition { .. } => continue,
        };
        args.extend([flags[0].to_string(), (slots * slot_ms).to_string(), flags[1].to_string(), fault.at_slot.to_string()]);
    }
    args
}

/// Sends the signal named `signal` (`KILL`, `TERM`, …) to process `pid`.
pub fn send(pid: u32, signal: &str) -> std::io::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status()?;
    if status.success() { Ok(()) } else { Err(std::io::Error::other(format!("kill -{signal} {pid} failed"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse() {
        let faults = parse("kill:server-1@40, stop:device-1@30+10").expect("valid");
        assert_eq!(faults[0], Fault { kind: FaultKind::Kill, target: "server-1".into(), at_slot: 40 });
        assert_eq!(faults[1], Fault { kind: FaultKind::Stop { slots: 10 }, target: "device-1".into(), at_slot: 30 });
        assert!(parse("").expect("empty is valid").is_empty());
        for bad in ["kill:server-1", "stop:device-1@30", "boom:server-1@3", "kill:devices 0@3", "stop:x@1+0", "kill:server-1@-1",
            "restart:server-0@3+2", "restart:controller@3", "restart:controller@3+0"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn targets_resolve_and_actions_are_ordered() {
        let names: Vec<String> = ["controller", "server-0", "server-1", "devices-0-1", "devices-2-3"].map(String::from).into();
        assert_eq!(resolve("device-3", &names).as_deref(), Some("devices-2-3"));
        assert_eq!(resolve("device-9", &names), None);
        let names: Vec<String> = ["controller", "server-0", "server-1", "device-0", "device-1"].map(String::from).into();
        assert_eq!(resolve("device-1", &names).as_deref(), Some("device-1"));
        let faults = parse("stop:device-0@5+10,kill:server-1@8").expect("valid");
        let slot = Duration::from_millis(20);
        let actions = actions(&faults, &names, slot).expect("known agents");
        let order: Vec<(u64, Step)> = actions.iter().map(|a| (a.after.as_millis() as u64, a.step)).collect();
        let send = Step::Send;
        assert_eq!(order, vec![(100, send(Signal::Stop)), (160, send(Signal::Kill)), (300, send(Signal::Cont))]);
        let restart = super::actions(&parse("restart:controller@5+3").expect("valid"), &names, slot).expect("known");
        let order: Vec<(u64, Step)> = restart.iter().map(|a| (a.after.as_millis() as u64, a.step)).collect();
        assert_eq!(order, vec![(100, send(Signal::Kill)), (160, Step::Start)]);
        assert!(super::actions(&parse("kill:server-7@1").expect("valid"), &names, slot).is_err());
        let faults = parse("late:device-1@3,slow:server-0@7").expect("valid");
        assert!(super::actions(&faults, &names, slot).expect("known agents").is_empty());
        assert_eq!(agent_args(&faults, "device-1", &names, 20.0), ["--report-delay-ms", "40", "--report-delay-from", "3"]);
        assert_eq!(agent_args(&faults, "server-0", &names, 20.0), ["--result-delay-ms", "15", "--result-delay-from", "7"]);
        assert!(agent_args(&faults, "server-1", &names, 20.0).is_empty());
        assert!(parse("late:server-0@1").is_err() && parse("slow:device-0@1").is_err());
        let cut = parse("partition:server-1@8+4,partition:device-3@2+1").expect("valid");
        assert_eq!(cut[0].kind, FaultKind::Partition { slots: 4 });
        let names: Vec<String> = ["controller", "server-0", "server-1", "devices-0-1", "devices-2-3"].map(String::from).into();
        let steps: Vec<Step> = super::actions(&cut, &names, slot).expect("known agents").iter().map(|a| a.step).collect();
        assert_eq!(steps, [Step::Cut { slots: 1 }, Step::Heal, Step::Cut { slots: 4 }, Step::Heal]);
        for bad in ["partition:controller@3+2", "partition:server-0@3", "partition:server-0@3+0"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
