//! `qmec testbed`: a local multi-process testbed on loopback — controller,
//! server agents and device agents as separate processes of this binary —
//! with the same run folder as `qmec simulate` plus `testbed.json`.

use crate::output::say;
use anyhow::{Context, Result};
use crate::slot_progress::SlotProgress;
use qmec_sim::output::table;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "paper")]
    scenario: String,
    /// Overrides the scenario's device count.
    #[arg(long)]
    devices: Option<usize>,
    /// Overrides the scenario's server count.
    #[arg(long)]
    servers: Option<usize>,
    /// Policy by name; `qnn` (the default) runs the shipped trained model;
    /// `external=http://HOST:PORT` asks a policy service (qmec.policy.v1)
    /// each slot (not with --runtime virtual).
    #[arg(long, default_value = qmec_catalog::DEFAULT_POLICY)]
    policy: String,
    /// With --policy external=ADDR: the built-in policy that decides each
    /// slot the service answered late, failed or infeasibly.
    #[arg(long, default_value = qmec_controller::external::DEFAULT_FALLBACK)]
    external_fallback: String,
    /// With --policy external=ADDR: the share of the slot's wall time the
    /// service gets to answer.
    #[arg(long, default_value_t = qmec_controller::external::DEFAULT_DEADLINE)]
    external_deadline: f64,
    /// Model file for a trained policy (qnn: overrides the shipped model; dl); a path every agent's
    /// controller can read (inside the run folder for docker).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Online learning in the controller for policies that can (`qnn`,
    /// `lydroo`); `--online false` freezes the model.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    online: bool,
    #[arg(long, default_value_t = 1000)]
    slots: u64,
    /// Wall-clock slot length (ms), independent of the modelled τ.
    #[arg(long, default_value_t = 10.0)]
    slot_ms: f64,
    /// Share of the slot the controller waits for reports.
    #[arg(long, default_value_t = 0.5)]
    report_deadline: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Device agents per OS process.
    #[arg(long, default_value_t = 1)]
    agents_per_process: usize,
    /// Payload bytes on the wire = bits / 8 / scale.
    #[arg(long, default_value_t = 1000.0)]
    payload_scale: f64,
    /// Devices report each slot as soon as the previous one is decided,
    /// ahead of its announcement (shorter slot loops; hides the control round trip).
    #[arg(long)]
    early_reports: bool,
    /// Prometheus metrics: the controller on this address, every other
    /// agent on the ports after it (servers, then device processes).
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    #[arg(long, default_value = "runs/testbed")]
    out: PathBuf,
    /// Where agents run: local processes, one container each, one network
    /// namespace each (root), or every agent's core in this process on
    /// virtual time (`virtual`: a seed replays exactly, in a fraction of
    /// the wall time; link profiles and partitions simulated).
    #[arg(long, value_enum, default_value_t = qmec_deploy::RuntimeKind::Local)]
    runtime: qmec_deploy::RuntimeKind,
    /// Link-profile file (TOML): delay, jitter, loss and rate of the device
    /// and server links (docker, netns and virtual runtimes).
    #[arg(long)]
    link_profile: Option<PathBuf>,
    /// tc netem where the kernel has it (auto), or force one emulator;
    /// `kernel`: links that follow the channel shaped by HTB per device and
    /// server link (netns runtime; rates only where there is no netem).
    #[arg(long, value_enum, default_value_t = qmec_deploy::EmulationChoice::Auto)]
    emulation: qmec_deploy::EmulationChoice,
    /// Tear everything down if the run has not finished after this many seconds.
    #[arg(long, default_value_t = 600.0)]
    deadline_s: f64,
    /// Faults to inject, comma-separated: `kill:server-1@40` (SIGKILL at
    /// slot 40, for good; any agent: the run goes on without a server or a
    /// device process, and ends incomplete without the controller),
    /// `stop:device-1@30+10` (SIGSTOP at slot 30, SIGCONT 10 slots later),
    /// `restart:controller@50+20` (SIGKILL at slot 50, started again 20
    /// slots later), `late:device-0@0` (reports held two slots from slot 0),
    /// `slow:server-0@20` (results held 3/4 of a slot from slot 20),
    /// `partition:server-0@60+20` (cut off from the network for 20 slots;
    /// every runtime but local, whose agents share loopback).
    #[arg(long, default_value = "")]
    faults: String,
    /// Soak: run for this long (e.g. `60s`, `10m`, `2h`) instead of
    /// `--slots`, with the `--faults` schedule applied, and end with the
    /// task-conservation verdict (non-zero exit if it fails).
    #[arg(long, value_parser = parse_duration)]
    soak: Option<std::time::Duration>,
    #[command(flatten)]
    security: qmec_security::SecurityArgs,
}

/// `90`, `90s`, `1500ms`, `10m` or `2h`.
pub(super) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 60s, 10m or 2h"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{text}` (ms, s, m, h)")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

pub fn run(args: Args) -> Result<()> {
    let (config, options) = launch_settings(&args)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let progress = start_progress(&args.out, args.runtime, config.slots);
    let cluster = runtime.block_on(qmec_deploy::run(&config, &options));
    progress.finish();
    let cluster = cluster?;
    report(&args, &cluster)?;
    judge(&args, &cluster.outcome, config.slots)
}

/// The launcher's settings from the flags; a soak turns its duration into
/// slots and gives the deadline room for it.
fn launch_settings(args: &Args) -> Result<(qmec_deploy::TestbedConfig, qmec_deploy::LaunchOptions)> {
    let slots = match args.soak {
        // As many slots as fit in the soak's duration.
        Some(duration) => ((duration.as_secs_f64() * 1e3 / args.slot_ms).ceil() as u64).max(1),
        None => args.slots,
    };
    let deadline_s = match args.soak {
        // Room for joining and draining beyond the soak itself.
        Some(duration) => args.deadline_s.max(duration.as_secs_f64() * 1.5 + 60.0),
        None => args.deadline_s,
    };
    // The controller refuses it too, but before it prints a line the
    // launcher would show: say so here, naming the flag.
    if !(args.external_deadline > 0.0 && args.external_deadline <= 1.0) {
        anyhow::bail!("--external-deadline: must be a share of the slot in (0, 1], got {}", args.external_deadline);
    }
    let config = qmec_deploy::TestbedConfig {
        exe: std::env::current_exe().context("locating the qmec binary")?,
        scenario: args.scenario.clone(),
        devices: args.devices,
        servers: args.servers,
        policy: args.policy.clone(),
        external: qmec_controller::external::ExternalOptions {
            fallback: args.external_fallback.clone(),
            deadline: args.external_deadline,
        },
        model: args.model.clone(),
        online: args.online,
        seed: args.seed,
        slots,
        slot_ms: args.slot_ms,
        report_deadline: args.report_deadline,
        agents_per_process: args.agents_per_process,
        payload_scale: args.payload_scale,
        early_reports: args.early_reports,
        out: args.out.clone(),
        metrics: args.metrics,
        security: args.security.clone().into(),
        faults: qmec_deploy::faults::parse(&args.faults)?,
    };
    let options = qmec_deploy::LaunchOptions {
        runtime: args.runtime,
        link_profile: args.link_profile.clone(),
        emulation: args.emulation,
        deadline: std::time::Duration::from_secs_f64(deadline_s.max(1.0)),
    };
    Ok((config, options))
}

/// Prints the run's figures, how it ran and what its folder holds.
fn report(args: &Args, cluster: &qmec_deploy::LaunchOutcome) -> Result<()> {
    let outcome = &cluster.outcome;
    crate::output::print(table(std::slice::from_ref(&outcome.summary)))?;
    crate::output::print(qmec_deploy::figures_table(&outcome.merged.figures, outcome.summary.devices))?;
    say!(
        "(model latency counts modelled time, slots × τ = {:.0} ms; wall latency is measured on the agents' clocks, {} ms a slot)",
        outcome.scenario.slot_seconds * 1e3,
        args.slot_ms
    )?;
    say!("{:<34}{:>14}", "runtime", format!("{:?}", args.runtime).to_lowercase())?;
    say!("link emulation: {}", cluster.emulation.describe())?;
    if let Some(time) = &cluster.virtual_time {
        say!(
            "virtual time: {:.1} s in {:.3} s of wall time ({:.0}× faster), {} events",
            time.virtual_s,
            time.wall_s,
            time.speedup(),
            time.events
        )?;
    }
    say!("run folder: {}", args.out.display())?;
    crate::output::print(crate::run_folder::listing(&args.out))
}

/// The run's verdict (conservation, whole records), and an error when it
/// failed or when the policy failed on most slots.
fn judge(args: &Args, outcome: &qmec_deploy::TestbedOutcome, slots: u64) -> Result<()> {
    match outcome.verdict() {
        Ok(line) => say!("{line}")?,
        Err(line) => {
            say!("{line}")?;
            anyhow::bail!("the run did not pass: {line}");
        }
    }
    if let Some(duration) = args.soak {
        say!("soak: {slots} slots over {:.0} s, faults `{}`", duration.as_secs_f64(), args.faults)?;
    }
    let figures = &outcome.merged.figures;
    if figures.policy_mostly_failed() {
        anyhow::bail!(
            "policy `{}` failed on {} of the slots, more than {:.0} %: the run measured local computing, not the policy (the controller's log says why)",
            outcome.summary.policy,
            qmec_deploy::policy_failures(figures),
            qmec_deploy::MAX_POLICY_FAILED_SHARE * 100.0
        );
    }
    Ok(())
}

/// What shows how far a run is: a bar that follows the controller's
/// journal where a controller process writes one, else (the virtual
/// runtime, every core in this process) a spinner with the elapsed time.
fn start_progress(out: &std::path::Path, runtime: qmec_deploy::RuntimeKind, slots: u64) -> Progress {
    if runtime == qmec_deploy::RuntimeKind::Virtual {
        let spinner = crate::progress::spinner("virtual");
        spinner.set_message(format!("{slots} slots on virtual time, in this process"));
        return Progress::Spinner(spinner);
    }
    let journal = qmec_controller::records::SlotJournal::path(&out.join("records").join("controller.json"));
    Progress::Journal(SlotProgress::start(journal, slots))
}

#[derive(Debug)]
enum Progress {
    Journal(SlotProgress),
    Spinner(indicatif::ProgressBar),
}

impl Progress {
    fn finish(self) {
        match self {
            Progress::Journal(progress) => progress.finish(),
            Progress::Spinner(spinner) => spinner.finish_and_clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn soak_durations_parse() {
        assert_eq!(super::parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(super::parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(super::parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        for bad in ["", "0s", "5d", "s", "-3s"] {
            assert!(super::parse_duration(bad).is_err(), "{bad}");
        }
    }
}
