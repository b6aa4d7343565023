//! After a run, whatever ran it: every agent's records read from the run
//! folder ([`read_records`]), merged by [`crate::collect`] and summarised
//! ([`summarise`]) into the same run folder `qmec simulate` writes
//! (summary, slot and task records) plus the testbed-only figures
//! ([`write`]); [`finish`] does all three. A backend that holds its
//! agents' records in memory calls the last two.

use crate::collect::{self, AgentRecords, LinkFidelity, LostAgent, Merged, TestbedFigures};
use qmec_controller::records::{ControllerRecords, SlotJournal};
use crate::config::TestbedConfig;
use crate::emulation::Emulation;
use crate::error::DeployError;
use crate::plan::{AgentPlan, Role};
use qmec_model::Scenario;
use qmec_sim::Summary;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A finished testbed run.
#[derive(Debug)]
pub struct TestbedOutcome {
    pub scenario: Scenario,
    pub summary: Summary,
    pub merged: Merged,
}

/// A finished run as the launcher hands it back, whatever ran it: the
/// outcome and the link emulation it had.
#[derive(Debug)]
pub struct LaunchOutcome {
    pub outcome: TestbedOutcome,
    pub emulation: Emulation,
    /// What a run on the virtual runtime cost in wall time.
    pub virtual_time: Option<VirtualFigures>,
}

/// What a virtual run cost: how much virtual time it covered, in how much
/// wall time, through how many events (`virtual.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualFigures {
    pub virtual_s: f64,
    pub wall_s: f64,
    pub events: u64,
}

impl VirtualFigures {
    /// Virtual seconds per wall second.
    pub fn speedup(&self) -> f64 {
        if self.wall_s > 0.0 { self.virtual_s / self.wall_s } else { f64::INFINITY }
    }
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DeployError> {
    let err = |message: String| DeployError::Records { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(e.to_string()))
}

/// Gathers every agent's records from `out/records` and writes the run
/// folder: what a backend whose agents wrote their records calls last.
/// `lost` are the agents the run lost for good (their records are missing
/// or end early).
pub fn finish(
    config: &TestbedConfig,
    scenario: Scenario,
    out: &Path,
    plans: &[AgentPlan],
    lost: Vec<LostAgent>,
) -> Result<TestbedOutcome, DeployError> {
    let mut records = read_records(out, plans, &lost).map_err(|error| after_losses(error, &lost))?;
    records.lost_agents = lost;
    let outcome = summarise(config, scenario, &mut records);
    write(out, &outcome, &records)?;
    remove_empty_logs(&out.join("logs"));
    Ok(outcome)
}

/// `error`, with the cause and last log lines of every agent that died on
/// its own (not by the fault schedule), which most likely explain it.
fn after_losses(error: DeployError, lost: &[LostAgent]) -> DeployError {
    let died: Vec<String> = lost
        .iter()
        .filter(|l| !l.planned)
        .map(|l| format!("{}; last log lines:\n{}", l.describe(), l.log_tail))
        .collect();
    match died.is_empty() {
        true => error,
        false => DeployError::AfterLosses { records: Box::new(error), losses: died.join("\n") },
    }
}

/// Removes the agents' logs that stayed empty (most do: agents log only
/// warnings), and `logs/` itself when nothing is left, so the run folder
/// holds only files with something in them. Best effort: a log that cannot
/// be removed is only clutter.
fn remove_empty_logs(logs: &Path) {
    let Ok(entries) = std::fs::read_dir(logs) else { return };
    for entry in entries.flatten() {
        if entry.metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    // Fails, as it should, while a non-empty log remains.
    let _ = std::fs::remove_dir(logs);
}

/// Every agent's records from `out/records/NAME.json` (NAME from
/// `plans`). A server in `lost` wrote none: what it held is lost to the
/// bit balance (its fragments were requeued by the devices). A lost device
/// process wrote none either: its devices are missing. A lost controller's
/// slots come from its journal, up to where it died.
pub fn read_records(out: &Path, plans: &[AgentPlan], lost: &[LostAgent]) -> Result<AgentRecords, DeployError> {
    let records_dir = out.join("records");
    let file = |plan: &AgentPlan| records_dir.join(format!("{}.json", plan.name));
    let mut records = AgentRecords::default();
    for plan in plans {
        let is_lost = lost.iter().any(|l| l.name == plan.name);
        match plan.role {
            Role::Controller if is_lost => records.controller = journaled(&file(plan))?,
            Role::Controller => records.controller = read(&file(plan))?,
            Role::Server(server) if is_lost => {
                records.servers.push(qmec_server_agent::records::ServerRecords { server, ..Default::default() });
            }
            Role::Server(_) => records.servers.push(read(&file(plan))?),
            Role::Devices(_) if is_lost && !file(plan).exists() => {}
            Role::Devices(_) => records.device_processes.push(read(&file(plan))?),
        }
    }
    Ok(records)
}

/// The records of a controller that died: its records file if it wrote
/// one, else the slots its journal holds.
fn journaled(path: &Path) -> Result<ControllerRecords, DeployError> {
    if path.exists() {
        return read(path);
    }
    let slots = SlotJournal::read_beside(path)
        .map_err(|e| DeployError::Records { path: SlotJournal::path(path), message: e.to_string() })?;
    Ok(ControllerRecords { slots, ..ControllerRecords::default() })
}

/// The run the agents' records add up to: merged slot by slot and
/// summarised as `qmec simulate` summarises, with what the records miss
/// of the whole run.
pub fn summarise(config: &TestbedConfig, scenario: Scenario, records: &mut AgentRecords) -> TestbedOutcome {
    // A controller that died wrote only its journal.
    if records.controller.policy.is_empty() {
        (records.controller.policy, records.controller.seed) = (config.policy.clone(), config.seed);
    }
    let mut merged = collect::merge(records, config.slot_ms);
    merged.figures.incomplete = collect::gaps(records, config.slots, scenario.devices);
    let summary = Summary::build(
        &records.controller.policy,
        &scenario,
        config.seed,
        &merged.slots,
        &merged.device_queues,
        &merged.tasks,
        merged.conservation.clone(),
    );
    TestbedOutcome { scenario, summary, merged }
}

impl TestbedOutcome {
    /// The run's verdict, one line: `Ok` when tasks are conserved over
    /// records that cover the whole run and no agent failed; `Err` (the
    /// run must not pass) otherwise. Never "holds" over records that stop
    /// early.
    pub fn verdict(&self) -> Result<String, String> {
        let c = &self.summary.tasks;
        let counts = format!("arrived {} = completed {} + queued {} + dropped {}", c.arrived, c.completed, c.queued, c.dropped_total());
        let figures = &self.merged.figures;
        let failed = figures.lost_agents.iter().filter(|l| !l.planned).map(LostAgent::describe);
        let mut problems = figures.incomplete.clone();
        problems.extend(failed);
        match (c.holds(), problems.is_empty()) {
            (true, true) => Ok(format!("conservation: holds ({counts})")),
            (false, true) => Err(format!("conservation: FAILED ({counts})")),
            (holds, false) => Err(format!(
                "conservation: {} over the records that exist ({counts}), but the run is INCOMPLETE: {}",
                if holds { "holds" } else { "FAILED" },
                problems.join("; ")
            )),
        }
    }
}

/// Writes the run folder: what `qmec simulate` writes, and the testbed figures.
pub fn write(out: &Path, outcome: &TestbedOutcome, records: &AgentRecords) -> Result<(), DeployError> {
    let (merged, scenario) = (&outcome.merged, &outcome.scenario);
    qmec_sim::output::write_run(out, scenario, &outcome.summary, &merged.slots, &merged.tasks)?;
    write_figures(out, &merged.figures, records)
}

/// Writes `testbed.json` and the controller's per-slot timings.
pub fn write_figures(out: &Path, figures: &TestbedFigures, records: &AgentRecords) -> Result<(), DeployError> {
    let io = |path: PathBuf| move |source| DeployError::Io { path, source };
    let path = out.join("testbed.json");
    let json = serde_json::to_string_pretty(figures).unwrap_or_default();
    std::fs::write(&path, json).map_err(io(path.clone()))?;
    let path = out.join("controller_slots.csv");
    let mut writer = csv::Writer::from_path(&path)
        .map_err(|e| DeployError::Records { path: path.clone(), message: e.to_string() })?;
    for slot in &records.controller.slots {
        writer.serialize(slot).map_err(|e| DeployError::Records { path: path.clone(), message: e.to_string() })?;
    }
    writer.flush().map_err(io(path))
}

/// The slots where the policy failed and their share, as `N (P %)`.
pub fn policy_failures(figures: &TestbedFigures) -> String {
    format!("{} ({:.0} %)", figures.policy_failed_slots, figures.policy_failed_share * 100.0)
}

/// The testbed-only lines printed under the summary table. Wall-clock
/// figures say so: the summary above it counts model time (slots × τ).
pub fn figures_table(figures: &TestbedFigures, devices: usize) -> String {
    let ms = |s: f64| format!("{:.3}", s * 1e3);
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(format!("{label:<34}{value:>14}").trim_end());
        out.push('\n');
    };
    line("wall latency p50 (ms, measured)", ms(figures.wall_latency.p50_s));
    line("wall latency p95 (ms, measured)", ms(figures.wall_latency.p95_s));
    line("wall latency p99 (ms, measured)", ms(figures.wall_latency.p99_s));
    line("wall latency max (ms, measured)", ms(figures.wall_latency.max_s));
    for stage in &figures.wall_stages {
        let l = &stage.latency;
        line(&format!("  {} p50/p95/p99 (ms)", stage.stage), format!("{}/{}/{}", ms(l.p50_s), ms(l.p95_s), ms(l.p99_s)));
    }
    line("decision p50 / p99 (ms)", format!("{} / {}", ms(figures.decision.p50_s), ms(figures.decision.p99_s)));
    line("slot loop p50 / p99 (ms)", format!("{} / {}", ms(figures.slot_loop.p50_s), ms(figures.slot_loop.p99_s)));
    line("slot loop max (ms)", ms(figures.slot_loop.max_s));
    line("late device reports", late_reports(figures.late_device_reports, figures.slots_run * devices as u64));
    line("device-slots decided local (stale)", figures.stale_device_slots.to_string());
    line("late server reports", figures.late_server_reports.to_string());
    line("policy failed (slots, share)", policy_failures(figures));
    if let Some(fallback) = &figures.fallback {
        line("policy answered (slots)", fallback.answered_slots.to_string());
        line("fallback policy", fallback.policy.clone());
        line("fallback: late (slots)", fallback.late_slots.to_string());
        line("fallback: failed (slots)", fallback.failed_slots.to_string());
        line("fallback: infeasible (slots)", fallback.infeasible_slots.to_string());
    }
    line("slots without a decision", figures.undecided_device_slots.to_string());
    if figures.requeued_fragments > 0 {
        line("fragments requeued (lost server)", figures.requeued_fragments.to_string());
        line("bits requeued (lost server)", figures.requeued_bits.to_string());
    }
    for lost in &figures.lost_agents {
        line(&format!("agent lost: {}", lost.name), format!("slot {}", lost.slot));
        line(&format!("  {}", lost.cause), String::new());
        for log_line in lost.log_tail.lines() {
            line(&format!("  | {log_line}"), String::new());
        }
    }
    if figures.controller_first_slot > 0 {
        line("controller restarted; went on at slot", figures.controller_first_slot.to_string());
    }
    line("payload sent (MB)", format!("{:.2}", figures.payload_bytes as f64 / 1e6));
    line("bits conserved across processes", if figures.bits.holds() { "yes".into() } else { "NO".into() });
    for process in &figures.processes {
        let mib = process.usage.peak_rss_kib as f64 / 1024.0;
        let cpu = process.usage.cpu_share() * 100.0;
        line(&format!("cpu / peak memory {}", process.name), format!("{cpu:.1} % / {mib:.0} MiB"));
    }
    out.push_str(&fidelity_table(&figures.link_fidelity));
    out
}

/// The link fidelity rows (configured → achieved) and the verdict line.
/// A failed verdict is shown, not made the run's failure: the run's
/// verdict says whether its records are whole and conserved, which a link
/// that missed its profile does not change; it changes what the run's
/// figures stand for, which this line says.
pub fn fidelity_table(fidelity: &LinkFidelity) -> String {
    let mut out = String::new();
    let show = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    if !fidelity.rows.is_empty() {
        out.push_str("link fidelity (configured → achieved)   delay ms      jitter ms     rate Mbit/s    loss %\n");
    }
    for row in &fidelity.rows {
        let (c, a) = (&row.configured, &row.achieved);
        let pair = |c: String, a: String| format!("{c} → {a}");
        let loss = |v: Option<f64>| v.map(|v| v * 100.0);
        out.push_str(&format!(
            "  {:<24}{:>4} {:>13} {:>13} {:>15} {:>11}\n",
            row.link,
            if row.ok { "ok" } else { "FAIL" },
            pair(show(c.delay_ms, 1), show(a.delay_ms, 1)),
            pair(show(c.jitter_ms, 1), show(a.jitter_ms, 1)),
            pair(show(c.rate_mbit, 1), show(a.rate_mbit, 1)),
            pair(show(loss(c.loss), 1), show(loss(a.loss), 1)),
        ));
        if row.reason != "within tolerance" {
            out.push_str(&format!("    {}\n", row.reason));
        }
    }
    out.push_str(&format!("link fidelity: {}\n", fidelity.verdict));
    if !fidelity.per_link.is_empty() {
        out.push_str(&format!("  {}\n", per_link_line(&fidelity.per_link)));
    }
    if fidelity.ok.is_some() {
        out.push_str(&format!("  tolerance: {}\n", fidelity.tolerance));
    }
    out
}

/// The links the kernel shapes, each on its own: how many had their rate
/// measured, how many of those within tolerance, and the median and
/// largest rate error.
fn per_link_line(links: &[qmec_linkem::fidelity::FidelityVerdict]) -> String {
    let mut errors: Vec<f64> = links
        .iter()
        .filter_map(|v| Some((v.achieved.rate_mbit? / v.configured.rate_mbit? - 1.0).abs() * 100.0))
        .collect();
    errors.sort_by(f64::total_cmp);
    let within = links.iter().filter(|v| v.ok && v.achieved.rate_mbit.is_some()).count();
    let (measured, total) = (errors.len(), links.len());
    match (errors.get(measured / 2), errors.last()) {
        (Some(median), Some(max)) => format!(
            "per link: rate measured on {measured} of {total} links, {within} within tolerance; rate error median {median:.1} %, max {max:.1} %"
        ),
        _ => format!("per link: rate measured on none of {total} links (none backlogged long enough)"),
    }
}

/// A share of late reports above this is worth acting on: the controller
/// then decides that many device-slots on stale state.
pub const LATE_SHARE_WORTH_ACTING_ON: f64 = 0.01;

/// `late` of `reports` device reports, with their share and a judgement:
/// "10 of 10,000 (0.10 %): fine".
pub fn late_reports(late: u64, reports: u64) -> String {
    let share = if reports > 0 { late as f64 / reports as f64 } else { 0.0 };
    let judgement = if share <= LATE_SHARE_WORTH_ACTING_ON {
        "fine (≤ 1 %)"
    } else {
        "high (> 1 %): raise --slot-ms or --report-deadline"
    };
    format!("{} of {} ({:.2} %): {judgement}", thousands(late), thousands(reports), share * 100.0)
}

/// `10000` as `10,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{late_reports, remove_empty_logs};

    #[test]
    fn late_reports_come_with_their_share_and_a_judgement() {
        assert_eq!(late_reports(10, 10_000), "10 of 10,000 (0.10 %): fine (≤ 1 %)");
        assert_eq!(late_reports(0, 0), "0 of 0 (0.00 %): fine (≤ 1 %)");
        assert!(late_reports(300, 1_000).starts_with("300 of 1,000 (30.00 %): high"));
    }

    #[test]
    fn only_empty_logs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        std::fs::write(logs.join("empty.log"), "").unwrap();
        std::fs::write(logs.join("said.log"), "warning").unwrap();
        remove_empty_logs(&logs);
        assert!(!logs.join("empty.log").exists() && logs.join("said.log").exists());
        std::fs::remove_file(logs.join("said.log")).unwrap();
        std::fs::write(logs.join("empty.log"), "").unwrap();
        remove_empty_logs(&logs);
        assert!(!logs.exists(), "a folder of empty logs goes too");
    }
}
