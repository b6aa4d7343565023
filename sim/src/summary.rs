//! A run's figures, computed from its records the same way for the simulator
//! and the testbed.

use hdrhistogram::Histogram;
use qmec_model::accounting::SlotRecord;
use qmec_model::task::TaskRecord;
use qmec_model::{Scenario, task::DropReason};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A queue whose total grows by more than this share of the offered load
/// per slot, over the second half of a run, is called unstable.
pub const UNSTABLE_GROWTH_SHARE: f64 = 0.02;

/// Where every task that arrived ended up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conservation {
    pub arrived: u64,
    pub completed: u64,
    /// Still queued at a device or in flight at a server.
    pub queued: u64,
    pub dropped: BTreeMap<String, u64>,
}

impl Conservation {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// arrived = completed + queued + dropped.
    pub fn holds(&self) -> bool {
        self.arrived == self.completed + self.queued + self.dropped_total()
    }

    /// Adds one device's counts.
    pub fn add_device(&mut self, counters: &qmec_model::device::DeviceCounters, open_tasks: u64) {
        self.arrived += counters.arrived_tasks;
        self.completed += counters.completed_tasks;
        self.queued += open_tasks;
        for reason in DropReason::ALL {
            let count = counters.dropped.get(&reason).copied().unwrap_or(0);
            *self.dropped.entry(reason.as_str().into()).or_default() += count;
        }
    }
}

/// End-to-end latency percentiles of completed tasks, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_s: f64,
    pub p50_s: f64,
    pub p95_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

impl LatencySummary {
    pub fn from_latencies(latencies_s: impl IntoIterator<Item = f64>) -> LatencySummary {
        // Microsecond resolution, three significant digits.
        let mut histogram = Histogram::<u64>::new(3).expect("3 significant digits is valid");
        for latency in latencies_s {
            let micros = (latency.max(0.0) * 1e6).round() as u64;
            // Auto-resizing histograms accept every value.
            let _ = histogram.record(micros);
        }
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        let seconds = |v: u64| v as f64 / 1e6;
        LatencySummary {
            count: histogram.len(),
            mean_s: histogram.mean() / 1e6,
            p50_s: seconds(histogram.value_at_quantile(0.50)),
            p95_s: seconds(histogram.value_at_quantile(0.95)),
            p99_s: seconds(histogram.value_at_quantile(0.99)),
            max_s: seconds(histogram.max()),
        }
    }
}

/// The headline figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub policy: String,
    pub scenario: String,
    pub seed: u64,
    pub slots: u64,
    pub devices: usize,
    pub servers: usize,
    /// Mean R(t)/τ over the run (bit/s).
    pub throughput_bps: f64,
    pub tx_power_w: f64,
    pub compute_power_w: f64,
    pub power_w: f64,
    /// Bits served per joule of device energy.
    pub energy_efficiency_bit_per_j: f64,
    /// Mean over slots and devices of Q_m (bits).
    pub queue_mean_bits: f64,
    pub queue_max_bits: f64,
    pub virtual_mean_bits: f64,
    pub server_mean_bits: f64,
    pub server_max_bits: f64,
    /// Least-squares slope of Σ Q over the second half of the run (bits/slot).
    pub backlog_growth_bits_per_slot: f64,
    /// Growth below [`UNSTABLE_GROWTH_SHARE`] of the offered load.
    pub stable: bool,
    /// Arrivals beyond what the system served: the backlog grew without
    /// bound or queue caps dropped tasks.
    pub overloaded: bool,
    pub latency: LatencySummary,
    pub tasks: Conservation,
    pub decision_mean_s: f64,
    pub decision_max_s: f64,
    /// Mean Σ Ψ μ of the decisions.
    pub dpp_mean: f64,
}

impl Summary {
    pub fn build(
        policy: &str,
        scenario: &Scenario,
        seed: u64,
        slots: &[SlotRecord],
        tasks: &[TaskRecord],
        conservation: Conservation,
    ) -> Summary {
        let n = slots.len().max(1) as f64;
        let mean = |f: &dyn Fn(&SlotRecord) -> f64| slots.iter().map(f).sum::<f64>() / n;
        let max = |f: &dyn Fn(&SlotRecord) -> f64| slots.iter().map(f).fold(0.0, f64::max);
        let tau = scenario.slot_seconds;
        let devices = scenario.devices as f64;
        let served_bits: f64 = slots.iter().map(|r| r.throughput_bits as f64).sum();
        let energy_j: f64 = slots.iter().map(|r| r.power_w() * tau).sum();
        let growth = backlog_slope(slots);
        let offered = scenario.offered_bits_per_slot() * devices;
        let stable = offered <= 0.0 || growth < UNSTABLE_GROWTH_SHARE * offered;
        let overloaded = !stable || conservation.dropped_total() > 0;
        Summary {
            policy: policy.into(),
            scenario: scenario.name.clone(),
            seed,
            slots: slots.len() as u64,
            devices: scenario.devices,
            servers: scenario.servers,
            throughput_bps: mean(&|r| r.throughput_bits as f64) / tau,
            tx_power_w: mean(&|r| r.tx_power_w),
            compute_power_w: mean(&|r| r.compute_power_w),
            power_w: mean(&|r| r.power_w()),
            energy_efficiency_bit_per_j: if energy_j > 0.0 { served_bits / energy_j } else { 0.0 },
            queue_mean_bits: mean(&|r| r.queue_total_bits) / devices,
            queue_max_bits: max(&|r| r.queue_max_bits),
            virtual_mean_bits: mean(&|r| r.virtual_total_bits) / devices,
            server_mean_bits: mean(&|r| r.server_total_bits) / scenario.servers as f64,
            server_max_bits: max(&|r| r.server_total_bits),
            backlog_growth_bits_per_slot: growth,
            stable,
            overloaded,
            latency: LatencySummary::from_latencies(tasks.iter().map(TaskRecord::latency_s)),
            tasks: conservation,
            decision_mean_s: mean(&|r| r.decision_seconds),
            decision_max_s: max(&|r| r.decision_seconds),
            dpp_mean: mean(&|r| r.dpp_value),
        }
    }
}

/// Least-squares slope of the total device backlog over the second half.
fn backlog_slope(slots: &[SlotRecord]) -> f64 {
    let half = &slots[slots.len() / 2..];
    if half.len() < 2 {
        return 0.0;
    }
    let n = half.len() as f64;
    let mean_x = half.iter().map(|r| r.slot as f64).sum::<f64>() / n;
    let mean_y = half.iter().map(|r| r.queue_total_bits).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for r in half {
        let dx = r.slot as f64 - mean_x;
        sxy += dx * (r.queue_total_bits - mean_y);
        sxx += dx * dx;
    }
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}
