//! Merges the records every agent wrote into what `qmec simulate` produces
//! (slot records, task records, conservation) plus the testbed-only figures:
//! wall-clock latency, decision and slot-loop time, late reports, CPU use.

use qmec_controller::records::ControllerRecords;
use qmec_device_agent::records::ProcessRecords;
use qmec_model::accounting::SlotRecord;
use qmec_model::task::TaskRecord;
use qmec_proto::process::ProcessUsage;
use qmec_server_agent::records::ServerRecords;
use qmec_sim::Conservation;
use qmec_sim::summary::LatencySummary;
use serde::{Deserialize, Serialize};

/// Every agent's records of one run.
#[derive(Debug, Clone, Default)]
pub struct AgentRecords {
    pub controller: ControllerRecords,
    pub servers: Vec<ServerRecords>,
    pub device_processes: Vec<ProcessRecords>,
    /// Servers killed mid-run (their records are empty).
    pub lost_servers: Vec<usize>,
}

/// Where the bits went across processes: what devices offloaded, servers
/// received, computed and still hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BitConservation {
    pub device_offloaded_bits: u64,
    pub server_received_bits: u64,
    pub server_computed_bits: u64,
    pub server_backlog_bits: u64,
}

impl BitConservation {
    /// offloaded = received and received = computed + backlog.
    pub fn holds(&self) -> bool {
        self.device_offloaded_bits == self.server_received_bits
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
    pub slots_run: u64,
    pub slot_ms: f64,
    pub wall_latency: LatencySummary,
    pub decision: Percentiles,
    pub slot_loop: Percentiles,
    pub late_device_reports: u64,
    /// Device-slots decided local because the device had been silent for
    /// more than the controller's `STALE_SLOTS`.
    #[serde(default)]
    pub stale_device_slots: u64,
    pub late_server_reports: u64,
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
    /// Where the controller that finished the run started: above 0 when it
    /// was restarted mid-run (its timings cover only the slots from there).
    #[serde(default)]
    pub controller_first_slot: u64,
    /// Across processes; bits sent to a killed server are left out.
    pub bits: BitConservation,
    /// name → CPU and wall time of each process.
    pub processes: Vec<(String, ProcessUsage)>,
}

/// The merged run.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub slots: Vec<SlotRecord>,
    pub tasks: Vec<TaskRecord>,
    pub conservation: Conservation,
    pub figures: TestbedFigures,
}

/// Merges the agents' records, slot by slot.
pub fn merge(records: &AgentRecords, slot_ms: f64) -> Merged {
    let controller = &records.controller;
    // A restarted controller recorded only the slots from where it went on.
    let count = controller.slots.last().map_or(0, |s| s.slot as usize + 1);
    let mut slots: Vec<SlotRecord> = (0..count as u64).map(|slot| SlotRecord { slot, ..Default::default() }).collect();
    for c in &controller.slots {
        if let Some(r) = slots.get_mut(c.slot as usize) {
            r.dpp_value = c.dpp_value;
            r.decision_seconds = c.decision_s;
            r.lp_share = c.lp_share;
        }
    }
    let mut merged = Merged::default();
    let mut wall_latencies = Vec::new();
    let figures = &mut merged.figures;
    let devices = records.device_processes.iter().flat_map(|p| &p.devices);
    for device in devices {
        for d in &device.slots {
            let Some(r) = slots.get_mut(d.slot as usize) else { continue };
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
        merged.tasks.extend(device.tasks.iter().cloned());
        wall_latencies.extend(device.wall_latency_us.iter().map(|&us| us as f64 / 1e6));
        merged.conservation.add_device(&device.counters, device.open_tasks);
        figures.undecided_device_slots += device.undecided_slots;
        figures.payload_bytes += device.payload_bytes;
        figures.requeued_fragments += device.requeued_fragments;
        figures.requeued_bits += device.requeued_bits;
        figures.bits.device_offloaded_bits += if device.offloaded_bits_by_server.is_empty() {
            device.counters.offloaded_bits
        } else {
            // What each server that wrote records received from it: what
            // was not requeued, and what was requeued after it received
            // it (a server given up on for silence) unless the uplink never
            // sent it; a killed server's share is left out.
            let by_server = device.offloaded_bits_by_server.iter().enumerate();
            by_server
                .filter(|(s, _)| !records.lost_servers.contains(s))
                .map(|(s, bits)| {
                    let requeued = device.requeued_bits_by_server.get(s).copied().unwrap_or(0);
                    let unsent = device.unsent_bits_by_server.get(s).copied().unwrap_or(0);
                    (bits + requeued).saturating_sub(unsent)
                })
                .sum()
        };
    }
    for server in &records.servers {
        for s in &server.slots {
            let Some(r) = slots.get_mut(s.slot as usize) else { continue };
            r.server_computed_bits += s.computed_bits;
            r.server_total_bits += s.backlog_bits as f64;
            figures.forced_server_slots += u64::from(s.forced);
        }
        figures.bits.server_received_bits += server.counters.received_bits;
        figures.bits.server_computed_bits += server.counters.computed_bits;
        figures.bits.server_backlog_bits += server.backlog_bits;
        figures.invalid_messages += server.invalid_messages;
        figures.processes.push((format!("server-{}", server.server), server.usage.clone()));
    }
    for r in &mut slots {
        r.throughput_bits = r.local_bits + r.offloaded_bits;
    }
    merged.tasks.sort_by_key(|t| (t.device, t.task));
    figures.lost_servers = records.lost_servers.clone();
    figures.controller_first_slot = controller.first_slot;
    figures.slots_run = count as u64;
    figures.slot_ms = slot_ms;
    figures.wall_latency = LatencySummary::from_latencies(wall_latencies);
    figures.decision = Percentiles::of(controller.slots.iter().map(|s| s.decision_s));
    figures.slot_loop = Percentiles::of(controller.slots.iter().map(|s| s.slot_loop_s));
    figures.late_device_reports = controller.slots.iter().map(|s| u64::from(s.late_devices)).sum();
    figures.stale_device_slots = controller.slots.iter().map(|s| u64::from(s.stale_devices)).sum();
    figures.late_server_reports = controller.slots.iter().map(|s| u64::from(s.late_servers)).sum();
    figures.undelivered_decisions = controller.slots.iter().map(|s| u64::from(s.undelivered)).sum();
    figures.invalid_messages += controller.invalid_messages;
    figures.processes.insert(0, ("controller".into(), controller.usage.clone()));
    for process in &records.device_processes {
        let ids = process.devices.iter().map(|d| d.device);
        let range = ids.clone().min().unwrap_or(0)..ids.max().map_or(0, |last| last + 1);
        figures.processes.push((crate::plan::devices_name(&range), process.usage.clone()));
    }
    merged.slots = slots;
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

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
            server_received_bits: 10,
            server_computed_bits: 7,
            server_backlog_bits: 3,
        };
        assert!(bits.holds());
        bits.server_backlog_bits = 2;
        assert!(!bits.holds());
    }
}
