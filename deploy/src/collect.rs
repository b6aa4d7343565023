//! Merges the records every agent wrote into what `qmec simulate` produces
//! (slot records, task records, conservation) plus the testbed-only figures:
//! wall-clock latency, decision and slot-loop time, late reports, CPU use.

use qmec_controller::fallback::FallbackCause;
use qmec_controller::records::{ControllerRecords, ControllerSlot};
use qmec_device_agent::records::{DeviceRecords, ProcessRecords, WallStages};
use qmec_linkem::fidelity::{FidelityVerdict, Tolerance, merge_by_link, verdict};
use qmec_model::accounting::SlotRecord;
use qmec_model::task::TaskRecord;
use qmec_proto::process::ProcessUsage;
use qmec_security::certs::devices_name;
use qmec_server_agent::records::ServerRecords;
use qmec_sim::Conservation;
use qmec_sim::summary::{LatencyHistogram, LatencySummary, StageLatency, stage_latencies};
use serde::{Deserialize, Serialize};

/// Every agent's records of one run.
#[derive(Debug, Clone, Default)]
pub struct AgentRecords {
    pub controller: ControllerRecords,
    pub servers: Vec<ServerRecords>,
    pub device_processes: Vec<ProcessRecords>,
    /// Every agent the run lost for good, servers included.
    pub lost_agents: Vec<LostAgent>,
}

impl AgentRecords {
    /// The servers the run lost for good (their records are empty).
    pub fn lost_servers(&self) -> Vec<usize> {
        self.lost_agents.iter().filter_map(|l| crate::plan::server_of(&l.name)).collect()
    }
}

/// An agent the run lost for good: killed by the fault schedule and not
/// started again, or dead on its own. What it had not written is missing
/// from the records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LostAgent {
    pub name: String,
    /// The slot it was lost in, counted in wall time from the run's start.
    pub slot: u64,
    /// The fault schedule's kill, or how it exited.
    pub cause: String,
    /// Killed by the fault schedule (not a failure of the run by itself).
    pub planned: bool,
    /// Its last log lines (none for a scheduled kill).
    pub log_tail: String,
}

impl LostAgent {
    /// `NAME CAUSE at slot N`, as the verdict and errors name it.
    pub fn describe(&self) -> String {
        format!("{} {} at slot {}", self.name, self.cause, self.slot)
    }
}

/// Where the bits went across processes: what devices offloaded, servers
/// received, computed and still hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BitConservation {
    pub device_offloaded_bits: u64,
    /// Of those, bits a device sent and then took back from a server it
    /// gave up on for silence: the server may have received them (a
    /// stopped process reads them when it continues) or not (they died in
    /// a cut connection's buffers); only the server's count can tell.
    #[serde(default)]
    pub device_in_doubt_bits: u64,
    pub server_received_bits: u64,
    pub server_computed_bits: u64,
    pub server_backlog_bits: u64,
}

impl BitConservation {
    /// offloaded = received, up to the bits in doubt, and received =
    /// computed + backlog.
    pub fn holds(&self) -> bool {
        let surely_sent = self.device_offloaded_bits.saturating_sub(self.device_in_doubt_bits);
        (surely_sent..=self.device_offloaded_bits).contains(&self.server_received_bits)
            && self.server_received_bits == self.server_computed_bits + self.server_backlog_bits
    }
}

/// Percentiles of a time series, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
    pub mean_s: f64,
}

impl Percentiles {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Percentiles {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        Percentiles { p50_s: at(0.5), p99_s: at(0.99), max_s: at(1.0), mean_s: v.iter().sum::<f64>() / v.len() as f64 }
    }
}

/// The testbed-only figures (`testbed.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestbedFigures {
    /// Each emulated link's configured against achieved delay, jitter,
    /// rate and loss, and the verdict.
    #[serde(default)]
    pub link_fidelity: LinkFidelity,
    pub slots_run: u64,
    pub slot_ms: f64,
    pub wall_latency: LatencySummary,
    /// The wall latency split into stages along each task's last piece
    /// (`qmec_device_agent::records::WallStages`), in that order.
    #[serde(default)]
    pub wall_stages: Vec<StageLatency>,
    pub decision: Percentiles,
    pub slot_loop: Percentiles,
    pub late_device_reports: u64,
    /// Device-slots decided local because the device had been silent for
    /// more than the controller's `STALE_SLOTS`.
    #[serde(default)]
    pub stale_device_slots: u64,
    pub late_server_reports: u64,
    /// Slots where the controller's policy failed (a non-finite or
    /// infeasible decision) and every device computed locally, and their
    /// share of the slots the controller decided.
    #[serde(default)]
    pub policy_failed_slots: u64,
    #[serde(default)]
    pub policy_failed_share: f64,
    /// Where the policy had a fallback (an external policy): how many
    /// slots it decided itself and why the others fell back.
    #[serde(default)]
    pub fallback: Option<FallbackFigures>,
    pub undelivered_decisions: u64,
    pub undecided_device_slots: u64,
    pub forced_server_slots: u64,
    pub invalid_messages: u64,
    pub payload_bytes: u64,
    /// Fragments (and bits) devices put back in their queues because the
    /// server they went to was lost before returning their results.
    #[serde(default)]
    pub requeued_fragments: u64,
    #[serde(default)]
    pub requeued_bits: u64,
    /// Servers killed mid-run.
    #[serde(default)]
    pub lost_servers: Vec<usize>,
    /// Every agent lost for good, and when.
    #[serde(default)]
    pub lost_agents: Vec<LostAgent>,
    /// Why the records do not cover the whole run (empty when they do):
    /// a task conservation verdict over them is over part of the run only.
    #[serde(default)]
    pub incomplete: Vec<String>,
    /// Where the controller that finished the run started: above 0 when it
    /// was restarted mid-run (its timings cover only the slots from there).
    #[serde(default)]
    pub controller_first_slot: u64,
    /// Across processes; bits sent to a killed server are left out.
    pub bits: BitConservation,
    /// CPU and wall time of each process: the controller, the servers,
    /// then the device processes.
    pub processes: Vec<ProcessFigures>,
}

/// The slots of a policy with a fallback (`--policy external=ADDR`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FallbackFigures {
    /// The fallback policy.
    pub policy: String,
    /// Slots the run's policy decided (the service answered in time, and
    /// feasibly).
    pub answered_slots: u64,
    /// Slots the fallback decided, by cause.
    pub late_slots: u64,
    pub failed_slots: u64,
    pub infeasible_slots: u64,
}

impl FallbackFigures {
    /// The figures of `controller`'s slots, if it had a fallback.
    fn of(controller: &ControllerRecords) -> Option<FallbackFigures> {
        let policy = controller.fallback_policy.clone()?;
        let mut figures = FallbackFigures { policy, ..Default::default() };
        for slot in &controller.slots {
            match slot.fallback {
                None if !slot.policy_failed => figures.answered_slots += 1,
                None => {}
                Some(FallbackCause::Late) => figures.late_slots += 1,
                Some(FallbackCause::Failed) => figures.failed_slots += 1,
                Some(FallbackCause::Infeasible) => figures.infeasible_slots += 1,
            }
        }
        Some(figures)
    }

    /// Slots the fallback decided.
    pub fn fallback_slots(&self) -> u64 {
        self.late_slots + self.failed_slots + self.infeasible_slots
    }
}

/// Beyond this share of slots with a failed policy, a run measured local
/// computing rather than its policy, and it fails.
pub const MAX_POLICY_FAILED_SHARE: f64 = 0.5;

impl TestbedFigures {
    /// Whether the policy failed on more than [`MAX_POLICY_FAILED_SHARE`]
    /// of the slots.
    pub fn policy_mostly_failed(&self) -> bool {
        self.policy_failed_share > MAX_POLICY_FAILED_SHARE
    }
}

/// One process's CPU and wall time, under its agent name. Written as a
/// `[name, usage]` pair in `testbed.json`, as before it had field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "(String, ProcessUsage)", into = "(String, ProcessUsage)")]
pub struct ProcessFigures {
    pub name: String,
    pub usage: ProcessUsage,
}

impl From<(String, ProcessUsage)> for ProcessFigures {
    fn from((name, usage): (String, ProcessUsage)) -> ProcessFigures {
        ProcessFigures { name, usage }
    }
}

impl From<ProcessFigures> for (String, ProcessUsage) {
    fn from(process: ProcessFigures) -> (String, ProcessUsage) {
        (process.name, process.usage)
    }
}

/// The merged run.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub slots: Vec<SlotRecord>,
    /// The controller's own record of each slot (late and stale counts).
    pub controller_slots: Vec<ControllerSlot>,
    /// `device_queues[m]`: device m's Q after each slot (bits). Unlike the
    /// simulator's, without its bits at the servers: server records hold
    /// no per-device backlog.
    pub device_queues: Vec<Vec<f64>>,
    pub tasks: Vec<TaskRecord>,
    pub conservation: Conservation,
    pub figures: TestbedFigures,
}

/// Merges the agents' records, slot by slot: the controller's slots set
/// how many there are, then every device and server adds its share.
pub fn merge(records: &AgentRecords, slot_ms: f64) -> Merged {
    let mut merged = Merged {
        slots: controller_slots(&records.controller),
        controller_slots: records.controller.slots.clone(),
        ..Merged::default()
    };
    let mut wall_latencies = Vec::new();
    let lost_servers = records.lost_servers();
    let mut wall_stages: [LatencyHistogram; WallStages::NAMES.len()] = std::array::from_fn(|_| LatencyHistogram::new());
    for device in records.device_processes.iter().flat_map(|p| &p.devices) {
        add_device(&mut merged, device, &lost_servers);
        wall_latencies.extend(device.wall_latency_us.iter().map(|&us| us as f64 / 1e6));
        for stages in &device.wall_stages {
            for (histogram, us) in wall_stages.iter_mut().zip(stages.micros()) {
                histogram.record(us as f64 / 1e6);
            }
        }
    }
    for server in &records.servers {
        add_server(&mut merged, server);
    }
    for r in &mut merged.slots {
        r.throughput_bits = r.local_bits + r.offloaded_bits;
    }
    merged.tasks.sort_by_key(|t| (t.device, t.task));
    let slots_run = merged.slots.len() as u64;
    let figures = &mut merged.figures;
    figures.lost_servers = lost_servers;
    figures.lost_agents = records.lost_agents.clone();
    figures.slots_run = slots_run;
    figures.slot_ms = slot_ms;
    figures.wall_latency = LatencySummary::from_latencies(wall_latencies);
    figures.wall_stages = stage_latencies(&WallStages::NAMES, &wall_stages);
    add_controller_figures(figures, &records.controller);
    add_device_processes(figures, &records.device_processes);
    figures.link_fidelity = link_fidelity(&records.device_processes);
    merged
}

/// The link fidelity of a run (`qmec_linkem::fidelity`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkFidelity {
    /// One row per link kind and direction, every device's traffic summed.
    pub rows: Vec<FidelityVerdict>,
    /// Links the kernel shapes, one row per device and server: how each
    /// followed its own rates (the rows above sum them; these do not count
    /// toward `ok`, since a link rarely backlogged is not measured).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_link: Vec<FidelityVerdict>,
    /// `None`: nothing was measured (no emulation the agents meter).
    pub ok: Option<bool>,
    pub tolerance: String,
    pub verdict: String,
}

/// What the device processes' emulated links achieved, merged per link
/// kind and direction, and judged against [`Tolerance::STATED`].
pub fn link_fidelity(processes: &[ProcessRecords]) -> LinkFidelity {
    let merged = merge_by_link(processes.iter().flat_map(|p| p.link_measurements.iter().cloned()));
    let tolerance = Tolerance::STATED;
    let rows: Vec<FidelityVerdict> = merged.iter().filter(|m| m.meter.chunks > 0).map(|m| verdict(m, &tolerance)).collect();
    let per_link = processes.iter().flat_map(|p| &p.per_link_measurements).map(|m| verdict(m, &tolerance)).collect();
    let failed: Vec<&str> = rows.iter().filter(|r| !r.ok).map(|r| r.link.as_str()).collect();
    let (ok, verdict) = match (rows.is_empty(), failed.is_empty()) {
        (true, _) => (None, "no link emulation measured (no link profile, or tc netem, which is not metered)".to_string()),
        (false, true) => {
            let partial = rows.iter().filter(|r| r.reason.contains("not measured")).count();
            let note = if partial > 0 { format!(" where measured ({partial} with a quantity not measured)") } else { String::new() };
            (Some(true), format!("OK: {} link directions within tolerance{note}", rows.len()))
        }
        (false, false) => (Some(false), format!("FAILED on {}", failed.join(", "))),
    };
    LinkFidelity { rows, per_link, ok, tolerance: tolerance.describe(), verdict }
}

/// Why `records` do not cover a run of `slots` slots over `devices`
/// devices (nothing when they do): the controller's slots stop early, a
/// device wrote no records, or a device's records stop early.
pub fn gaps(records: &AgentRecords, slots: u64, devices: usize) -> Vec<String> {
    let covered = |last: Option<u64>| last.map_or(0, |slot| slot + 1);
    let mut gaps = Vec::new();
    let controller = covered(records.controller.slots.last().map(|s| s.slot));
    if controller < slots {
        gaps.push(format!("the controller's records stop at slot {controller} of {slots}"));
    }
    let mut seen = vec![false; devices];
    let mut short = Vec::new();
    for device in records.device_processes.iter().flat_map(|p| &p.devices) {
        if let Some(seen) = seen.get_mut(device.device) {
            *seen = true;
        }
        let last = covered(device.slots.last().map(|s| s.slot));
        if last < slots {
            short.push(format!("{} (to slot {last})", device.device));
        }
    }
    let missing: Vec<String> = (0..devices).filter(|&d| !seen[d]).map(|d| d.to_string()).collect();
    if !missing.is_empty() {
        gaps.push(format!("no records from device {}", listing(&missing)));
    }
    if !short.is_empty() {
        gaps.push(format!("the records of device {} stop early", listing(&short)));
    }
    gaps
}

/// `items` joined, the first few only when there are many.
fn listing(items: &[String]) -> String {
    const SHOWN: usize = 5;
    match items.len() {
        n if n > SHOWN => format!("{} and {} more", items[..SHOWN].join(", "), n - SHOWN),
        _ => items.join(", "),
    }
}

/// One slot record per slot the run had, with the controller's figures.
/// A restarted controller recorded only the slots from where it went on:
/// the count comes from its last slot.
fn controller_slots(controller: &ControllerRecords) -> Vec<SlotRecord> {
    let count = controller.slots.last().map_or(0, |s| s.slot + 1);
    let mut slots: Vec<SlotRecord> = (0..count).map(|slot| SlotRecord { slot, ..Default::default() }).collect();
    for c in &controller.slots {
        if let Some(r) = slots.get_mut(c.slot as usize) {
            r.dpp_value = c.dpp_value;
            r.decision_seconds = c.decision_s;
            r.lp_share = c.lp_share;
        }
    }
    slots
}

/// One device's slots, tasks, counters and figures.
fn add_device(merged: &mut Merged, device: &DeviceRecords, lost_servers: &[usize]) {
    for d in &device.slots {
        let Some(r) = merged.slots.get_mut(d.slot as usize) else { continue };
        r.arrived_tasks += d.arrived_tasks;
        r.arrived_bits += d.arrived_bits;
        r.dropped_tasks += d.dropped_tasks;
        r.completed_tasks += d.completed_tasks;
        r.local_bits += d.local_bits;
        r.offloaded_bits += d.offloaded_bits;
        r.tx_power_w += d.tx_power_w;
        r.compute_power_w += d.compute_power_w;
        let q = d.queue_bits as f64;
        r.queue_total_bits += q;
        r.queue_max_bits = r.queue_max_bits.max(q);
        r.virtual_total_bits += d.virtual_bits;
    }
    record_device_queue(merged, device);
    merged.tasks.extend(device.tasks.iter().cloned());
    merged.conservation.add_device(&device.counters, device.open_tasks);
    let figures = &mut merged.figures;
    figures.undecided_device_slots += device.undecided_slots;
    figures.payload_bytes += device.payload_bytes;
    figures.requeued_fragments += device.requeued_fragments;
    figures.requeued_bits += device.requeued_bits;
    let (offloaded, in_doubt) = offloaded_to_live_servers(device, lost_servers);
    figures.bits.device_offloaded_bits += offloaded;
    figures.bits.device_in_doubt_bits += in_doubt;
}

/// Device `device`'s Q after each of the run's slots (0 where it
/// recorded none), at its id in `merged.device_queues`.
fn record_device_queue(merged: &mut Merged, device: &DeviceRecords) {
    if merged.device_queues.len() <= device.device {
        merged.device_queues.resize(device.device + 1, Vec::new());
    }
    let mut queue = vec![0.0; merged.slots.len()];
    for d in &device.slots {
        if let Some(q) = queue.get_mut(d.slot as usize) {
            *q = d.queue_bits as f64;
        }
    }
    merged.device_queues[device.device] = queue;
}

/// The bits a device offloaded that the servers which wrote records
/// received, and how many of them are in doubt: what was not requeued, and
/// what was requeued after the server may have received it (a server given
/// up on for silence) unless the uplink never sent it; a killed server's
/// share is left out. A device that did not count by server offloaded to
/// all of them.
fn offloaded_to_live_servers(device: &DeviceRecords, lost_servers: &[usize]) -> (u64, u64) {
    if device.offloaded_bits_by_server.is_empty() {
        return (device.counters.offloaded_bits, 0);
    }
    let by_server = device.offloaded_bits_by_server.iter().enumerate();
    by_server.filter(|(s, _)| !lost_servers.contains(s)).fold((0, 0), |(offloaded, in_doubt), (s, bits)| {
        let requeued = device.requeued_bits_by_server.get(s).copied().unwrap_or(0);
        let unsent = device.unsent_bits_by_server.get(s).copied().unwrap_or(0);
        let sent_then_requeued = requeued.saturating_sub(unsent);
        (offloaded + bits + sent_then_requeued, in_doubt + sent_then_requeued)
    })
}

/// One server's slots, counters and process figures.
fn add_server(merged: &mut Merged, server: &ServerRecords) {
    let figures = &mut merged.figures;
    for s in &server.slots {
        let Some(r) = merged.slots.get_mut(s.slot as usize) else { continue };
        r.server_computed_bits += s.computed_bits;
        r.server_total_bits += s.backlog_bits as f64;
        figures.forced_server_slots += u64::from(s.forced);
    }
    figures.bits.server_received_bits += server.counters.received_bits;
    figures.bits.server_computed_bits += server.counters.computed_bits;
    figures.bits.server_backlog_bits += server.backlog_bits;
    figures.invalid_messages += server.invalid_messages;
    figures.processes.push(ProcessFigures { name: crate::plan::server_name(server.server), usage: server.usage.clone() });
}

/// The controller's timings and counts; its process goes first.
fn add_controller_figures(figures: &mut TestbedFigures, controller: &ControllerRecords) {
    figures.controller_first_slot = controller.first_slot;
    figures.decision = Percentiles::of(controller.slots.iter().map(|s| s.decision_s));
    figures.slot_loop = Percentiles::of(controller.slots.iter().map(|s| s.slot_loop_s));
    figures.late_device_reports = controller.slots.iter().map(|s| u64::from(s.late_devices)).sum();
    figures.stale_device_slots = controller.slots.iter().map(|s| u64::from(s.stale_devices)).sum();
    figures.late_server_reports = controller.slots.iter().map(|s| u64::from(s.late_servers)).sum();
    figures.undelivered_decisions = controller.slots.iter().map(|s| u64::from(s.undelivered)).sum();
    figures.policy_failed_slots = controller.slots.iter().filter(|s| s.policy_failed).count() as u64;
    if !controller.slots.is_empty() {
        figures.policy_failed_share = figures.policy_failed_slots as f64 / controller.slots.len() as f64;
    }
    figures.fallback = FallbackFigures::of(controller);
    figures.invalid_messages += controller.invalid_messages;
    figures.processes.insert(0, ProcessFigures { name: "controller".into(), usage: controller.usage.clone() });
}

/// Each device-agent process's usage, under its process name.
fn add_device_processes(figures: &mut TestbedFigures, processes: &[ProcessRecords]) {
    for process in processes {
        let ids = process.devices.iter().map(|d| d.device);
        let range = ids.clone().min().unwrap_or(0)..ids.max().map_or(0, |last| last + 1);
        figures.processes.push(ProcessFigures { name: devices_name(&range), usage: process.usage.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmec_controller::records::ControllerSlot;
    use qmec_device_agent::records::DeviceSlot;
    use qmec_server_agent::records::ServerSlot;

    #[test]
    fn percentiles_are_ordered() {
        let p = Percentiles::of((1..=100).map(f64::from));
        assert_eq!((p.p50_s, p.p99_s, p.max_s), (51.0, 99.0, 100.0));
        assert_eq!(Percentiles::of([]), Percentiles::default());
    }

    #[test]
    fn bits_must_balance() {
        let mut bits = BitConservation {
            device_offloaded_bits: 10,
            device_in_doubt_bits: 0,
            server_received_bits: 10,
            server_computed_bits: 7,
            server_backlog_bits: 3,
        };
        assert!(bits.holds());
        bits.server_backlog_bits = 2;
        assert!(!bits.holds());
        // 4 bits in doubt: the servers received 6 to 10 of the 10.
        (bits.device_in_doubt_bits, bits.server_backlog_bits) = (4, 3);
        for (received, holds) in [(5, false), (6, true), (10, true), (11, false)] {
            (bits.server_received_bits, bits.server_computed_bits) = (received, received - 3);
            assert_eq!(bits.holds(), holds, "{received} received");
        }
    }

    /// Three devices in two processes, two servers (server 1 killed), a
    /// controller restarted at slot 1.
    fn sample() -> AgentRecords {
        let controller = ControllerRecords {
            policy: "p".into(),
            first_slot: 1,
            slots: (1..4)
                .map(|slot| ControllerSlot {
                    slot,
                    decision_s: 0.001 * slot as f64,
                    slot_loop_s: 0.01 * slot as f64,
                    late_devices: 1,
                    stale_devices: 2,
                    late_servers: 3,
                    undelivered: 1,
                    dpp_value: 2.5 * slot as f64,
                    lp_share: Some(0.5),
                    policy_failed: slot >= 2,
                    ..Default::default()
                })
                .collect(),
            invalid_messages: 4,
            ..Default::default()
        };
        let device = |device: usize, by_server: Vec<u64>| DeviceRecords {
            device,
            slots: (0..5)
                .map(|slot| DeviceSlot {
                    slot,
                    arrived_tasks: 2,
                    arrived_bits: 100 + slot,
                    dropped_tasks: 1,
                    completed_tasks: 1,
                    local_bits: 30,
                    offloaded_bits: 40 + device as u64,
                    tx_power_w: 0.5,
                    compute_power_w: 0.25,
                    queue_bits: 10 * slot + device as u64,
                    virtual_bits: 1.5,
                    decided: true,
                })
                .collect(),
            wall_latency_us: vec![1000, 2000 + device as u64 * 100, 5000],
            open_tasks: 2,
            undecided_slots: 1,
            payload_bytes: 99,
            requeued_fragments: 2,
            requeued_bits: 7,
            offloaded_bits_by_server: by_server,
            requeued_bits_by_server: vec![3, 4],
            unsent_bits_by_server: vec![1],
            ..Default::default()
        };
        let server = |server: usize| ServerRecords {
            server,
            slots: (0..4)
                .map(|slot| ServerSlot { slot, computed_bits: 11, backlog_bits: 5, forced: slot == 2, ..Default::default() })
                .collect(),
            backlog_bits: 6,
            invalid_messages: 1,
            ..Default::default()
        };
        AgentRecords {
            controller,
            servers: vec![server(0), server(1)],
            device_processes: vec![
                ProcessRecords { devices: vec![device(0, vec![50, 60]), device(1, vec![])], ..Default::default() },
                ProcessRecords { devices: vec![device(2, vec![10, 20])], ..Default::default() },
            ],
            lost_agents: vec![LostAgent { name: "server-1".into(), cause: "killed".into(), planned: true, ..Default::default() }],
        }
    }

    #[test]
    fn fallback_slots_are_counted_by_cause_only_for_a_policy_with_a_fallback() {
        let causes = [None, Some(FallbackCause::Late), Some(FallbackCause::Late), Some(FallbackCause::Failed), Some(FallbackCause::Infeasible), None];
        let slots = causes.iter().enumerate().map(|(t, &fallback)| ControllerSlot { slot: t as u64, fallback, policy_failed: t == 5, ..Default::default() });
        let mut controller = ControllerRecords { slots: slots.collect(), ..Default::default() };
        assert_eq!(FallbackFigures::of(&controller), None, "no fallback, no figures");
        controller.fallback_policy = Some("dpp-greedy".into());
        let figures = FallbackFigures::of(&controller).expect("a fallback, so figures");
        let want = FallbackFigures { policy: "dpp-greedy".into(), answered_slots: 1, late_slots: 2, failed_slots: 1, infeasible_slots: 1 };
        assert_eq!(figures, want, "slot 5 failed outright: neither answered nor fallen back");
        assert_eq!(figures.fallback_slots(), 4);
    }

    #[test]
    fn a_run_fails_when_its_policy_failed_on_more_than_half_the_slots() {
        let run = |share| TestbedFigures { policy_failed_share: share, ..Default::default() };
        assert!(!run(0.0).policy_mostly_failed());
        assert!(!run(0.5).policy_mostly_failed(), "half is not more than half");
        assert!(run(0.51).policy_mostly_failed());
        assert!(run(1.0).policy_mostly_failed());
    }

    #[test]
    fn gaps_name_every_way_the_records_fall_short_of_the_run() {
        let mut records = sample();
        assert_eq!(gaps(&records, 4, 3), [] as [String; 0], "slots 0..4 of 4, devices 0..3: whole");
        assert_eq!(gaps(&records, 6, 3), [
            "the controller's records stop at slot 4 of 6",
            "the records of device 0 (to slot 5), 1 (to slot 5), 2 (to slot 5) stop early",
        ]);
        records.device_processes.pop();
        records.device_processes[0].devices[1].slots.truncate(2);
        assert_eq!(gaps(&records, 4, 3), ["no records from device 2", "the records of device 1 (to slot 2) stop early"]);
        let many: Vec<String> = (0..8).map(|i| i.to_string()).collect();
        assert_eq!(listing(&many), "0, 1, 2, 3, 4 and 3 more");
    }

    #[test]
    fn merge_adds_every_agent_and_leaves_a_killed_servers_share_out() {
        let merged = merge(&sample(), 20.0);
        assert_eq!(merged.slots.len(), 4, "slots up to the controller's last");
        assert!(merged.slots.iter().all(|r| r.arrived_tasks == 6 && r.throughput_bits == 213));
        let figures = &merged.figures;
        assert_eq!((figures.slots_run, figures.controller_first_slot, figures.lost_servers.clone()), (4, 1, vec![1]));
        assert_eq!((figures.forced_server_slots, figures.invalid_messages), (2, 6));
        assert_eq!((figures.policy_failed_slots, figures.policy_failed_share), (2, 2.0 / 3.0));
        // Device 0: 50 + 3 requeued - 1 unsent to server 0, server 1 lost;
        // device 1 counted no bits by server; device 2: 10 + 3 - 1.
        assert_eq!((figures.bits.device_offloaded_bits, figures.bits.device_in_doubt_bits), (64, 4));
        let names: Vec<&str> = figures.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["controller", "server-0", "server-1", "devices-0-1", "device-2"]);
        // testbed.json keeps each process as a [name, usage] pair.
        let json = serde_json::to_value(figures).unwrap_or_default();
        assert_eq!(json["processes"][1][0], "server-0");
        let back: TestbedFigures = serde_json::from_value(json).unwrap_or_default();
        assert_eq!(&back, figures);
    }
}
