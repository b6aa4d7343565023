//! A run's figures, computed from its records the same way for the simulator
//! and the testbed.

use hdrhistogram::Histogram;
use qmec_model::accounting::SlotRecord;
use qmec_model::task::{STAGES, TaskRecord};
use qmec_model::{Scenario, task::DropReason};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A queue that grows by more than this share of its offered load per
/// slot, over the second half of a run, is called unstable: the total
/// device backlog against the whole system's load, and each device's
/// waiting bits against that device's load (so a starved device cannot
/// hide behind the others' short queues).
pub const UNSTABLE_GROWTH_SHARE: f64 = 0.02;

/// The device whose backlog grew fastest over the second half of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceGrowth {
    pub device: usize,
    /// Least-squares slope of the device's waiting bits over the second
    /// half (bits/slot).
    pub growth_bits_per_slot: f64,
    /// Whether that growth stays below [`UNSTABLE_GROWTH_SHARE`] of the
    /// device's offered load. (A slower pile-up, such as `greedy`'s work
    /// queueing at the servers at about 3 kbit a slot, passes: telling it
    /// from a queue still settling towards its O(V) level needs longer runs
    /// than most take.)
    #[serde(default)]
    pub stable: bool,
}

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
        let mut histogram = LatencyHistogram::new();
        for latency in latencies_s {
            histogram.record(latency);
        }
        histogram.summary()
    }
}

/// One stage's share of task latency ([`qmec_model::task::STAGES`]), over
/// every completed task (a task whose critical path skips the stage counts
/// as 0 there), so the stages' means add up to the latency's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageLatency {
    pub stage: String,
    #[serde(flatten)]
    pub latency: LatencySummary,
}

/// Latencies gathered one at a time, in memory that grows with the range of
/// the values, not their number.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> LatencyHistogram {
        // Microsecond resolution, three significant digits.
        LatencyHistogram { histogram: Histogram::<u64>::new(3).expect("3 significant digits is valid") }
    }

    pub fn record(&mut self, latency_s: f64) {
        let micros = round_non_negative(latency_s.max(0.0) * 1e6);
        // Auto-resizing histograms accept every value.
        let _ = self.histogram.record(micros);
    }

    pub fn summary(&self) -> LatencySummary {
        let histogram = &self.histogram;
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

/// `x.round() as u64` for `x ≥ 0` (or NaN), without a call to `round`:
/// x86-64's baseline has no instruction for it, and a run records seven
/// latencies a task and writes eight times. Below 2⁵² the whole part and the remainder are exact.
pub(crate) fn round_non_negative(x: f64) -> u64 {
    const EXACT_BELOW: f64 = 4_503_599_627_370_496.0;
    if x < EXACT_BELOW {
        let whole = x as u64;
        whole + u64::from(x - whole as f64 >= 0.5)
    } else {
        x.round() as u64
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
    /// The device whose waiting bits grew fastest (none in a run without
    /// per-device records).
    #[serde(default)]
    pub worst_device: Option<DeviceGrowth>,
    /// Total growth below [`UNSTABLE_GROWTH_SHARE`] of the offered load,
    /// and every device's below that share of its own.
    pub stable: bool,
    /// Arrivals beyond what the system served: the backlog grew without
    /// bound or queue caps dropped tasks.
    pub overloaded: bool,
    pub latency: LatencySummary,
    /// The latency split into stages along each task's critical path, in
    /// the order of [`qmec_model::task::STAGES`].
    #[serde(default)]
    pub stages: Vec<StageLatency>,
    pub tasks: Conservation,
    pub decision_mean_s: f64,
    pub decision_max_s: f64,
    /// Mean Σ Ψ μ of the decisions.
    pub dpp_mean: f64,
}

impl Summary {
    /// The figures of a run from all its records. `device_queues[m]` is
    /// device m's waiting bits after each slot, in slot order: Q_m and,
    /// where known (the simulator), its bits queued at the servers; empty
    /// where there are no per-device records.
    pub fn build(
        policy: &str,
        scenario: &Scenario,
        seed: u64,
        slots: &[SlotRecord],
        device_queues: &[Vec<f64>],
        tasks: &[TaskRecord],
        conservation: Conservation,
    ) -> Summary {
        let mut builder = SummaryBuilder::new(scenario, slots.len() as u64);
        for (t, record) in slots.iter().enumerate() {
            builder.add_slot(record, device_queues.iter().map(|queue| queue.get(t).copied().unwrap_or(0.0)));
        }
        builder.add_tasks(tasks);
        builder.finish(policy, scenario, seed, conservation)
    }
}

/// A run's figures gathered record by record, in memory that does not grow
/// with the run: what a run that streams its records to disk keeps. The sums
/// run in slot order, so they equal those over a whole list of records.
#[derive(Debug, Clone)]
pub struct SummaryBuilder {
    /// Slots the run has: the backlog slope is fitted over the second half.
    run_slots: u64,
    slot_seconds: f64,
    slots: u64,
    throughput_bits: f64,
    tx_power_w: f64,
    compute_power_w: f64,
    power_w: f64,
    energy_j: f64,
    queue_total_bits: f64,
    queue_max_bits: f64,
    virtual_total_bits: f64,
    server_total_bits: f64,
    server_max_bits: f64,
    decision_seconds: f64,
    decision_max_seconds: f64,
    dpp_value: f64,
    backlog: SlopeFit,
    /// Per device, its waiting bits' slope over the second half.
    device_backlogs: Vec<SlopeFit>,
    latency: LatencyHistogram,
    stages: [LatencyHistogram; STAGES.len()],
}

impl SummaryBuilder {
    /// A builder for a run of `run_slots` slots of `scenario`.
    pub fn new(scenario: &Scenario, run_slots: u64) -> SummaryBuilder {
        // -0.0, as `Iterator::sum` starts, so that empty and all-zero sums
        // come out the same as theirs.
        SummaryBuilder {
            run_slots,
            slot_seconds: scenario.slot_seconds,
            slots: 0,
            throughput_bits: -0.0,
            tx_power_w: -0.0,
            compute_power_w: -0.0,
            power_w: -0.0,
            energy_j: -0.0,
            queue_total_bits: -0.0,
            queue_max_bits: 0.0,
            virtual_total_bits: -0.0,
            server_total_bits: -0.0,
            server_max_bits: 0.0,
            decision_seconds: -0.0,
            decision_max_seconds: 0.0,
            dpp_value: -0.0,
            backlog: SlopeFit::default(),
            device_backlogs: Vec::new(),
            latency: LatencyHistogram::new(),
            stages: std::array::from_fn(|_| LatencyHistogram::new()),
        }
    }

    /// The next slot's record, in slot order, with each device's waiting
    /// bits after it (none where there are no per-device records).
    pub fn add_slot(&mut self, r: &SlotRecord, device_waiting: impl IntoIterator<Item = f64>) {
        self.throughput_bits += r.throughput_bits as f64;
        self.tx_power_w += r.tx_power_w;
        self.compute_power_w += r.compute_power_w;
        self.power_w += r.power_w();
        self.energy_j += r.power_w() * self.slot_seconds;
        self.queue_total_bits += r.queue_total_bits;
        self.queue_max_bits = self.queue_max_bits.max(r.queue_max_bits);
        self.virtual_total_bits += r.virtual_total_bits;
        self.server_total_bits += r.server_total_bits;
        self.server_max_bits = self.server_max_bits.max(r.server_total_bits);
        self.decision_seconds += r.decision_seconds;
        self.decision_max_seconds = self.decision_max_seconds.max(r.decision_seconds);
        self.dpp_value += r.dpp_value;
        if self.slots >= self.run_slots / 2 {
            self.backlog.add(r.slot as f64, r.queue_total_bits);
            for (m, waiting) in device_waiting.into_iter().enumerate() {
                if m == self.device_backlogs.len() {
                    self.device_backlogs.push(SlopeFit::default());
                }
                self.device_backlogs[m].add(r.slot as f64, waiting);
            }
        }
        self.slots += 1;
    }

    /// Tasks completed, in any order.
    pub fn add_tasks<'a>(&mut self, tasks: impl IntoIterator<Item = &'a TaskRecord>) {
        for task in tasks {
            self.latency.record(task.latency_s());
            for (histogram, seconds) in self.stages.iter_mut().zip(task.stage_seconds()) {
                histogram.record(seconds);
            }
        }
    }

    pub fn finish(&self, policy: &str, scenario: &Scenario, seed: u64, conservation: Conservation) -> Summary {
        let n = self.slots.max(1) as f64;
        let tau = scenario.slot_seconds;
        let devices = scenario.devices as f64;
        let energy_j = self.energy_j;
        let growth = self.backlog.slope();
        let per_device = scenario.offered_bits_per_slot();
        let worst_device = self.worst_device(per_device);
        let stable = is_stable(growth, per_device * devices) && worst_device.is_none_or(|w| w.stable);
        let overloaded = !stable || conservation.dropped_total() > 0;
        Summary {
            policy: policy.into(),
            scenario: scenario.name.clone(),
            seed,
            slots: self.slots,
            devices: scenario.devices,
            servers: scenario.servers,
            throughput_bps: self.throughput_bits / n / tau,
            tx_power_w: self.tx_power_w / n,
            compute_power_w: self.compute_power_w / n,
            power_w: self.power_w / n,
            energy_efficiency_bit_per_j: if energy_j > 0.0 { self.throughput_bits / energy_j } else { 0.0 },
            queue_mean_bits: self.queue_total_bits / n / devices,
            queue_max_bits: self.queue_max_bits,
            virtual_mean_bits: self.virtual_total_bits / n / devices,
            server_mean_bits: self.server_total_bits / n / scenario.servers as f64,
            server_max_bits: self.server_max_bits,
            backlog_growth_bits_per_slot: growth,
            worst_device,
            stable,
            overloaded,
            latency: self.latency.summary(),
            stages: stage_latencies(&STAGES, &self.stages),
            tasks: conservation,
            decision_mean_s: self.decision_seconds / n,
            decision_max_s: self.decision_max_seconds,
            dpp_mean: self.dpp_value / n,
        }
    }
}

impl SummaryBuilder {
    /// The device to report: the first unstable one if any, else the one
    /// whose waiting bits grew fastest over the second half.
    fn worst_device(&self, offered_per_slot: f64) -> Option<DeviceGrowth> {
        self.device_backlogs
            .iter()
            .enumerate()
            .map(|(device, fit)| {
                let growth_bits_per_slot = fit.slope();
                DeviceGrowth { device, growth_bits_per_slot, stable: is_stable(growth_bits_per_slot, offered_per_slot) }
            })
            .max_by(|a, b| b.stable.cmp(&a.stable).then(a.growth_bits_per_slot.total_cmp(&b.growth_bits_per_slot)))
    }
}

/// Each stage's summary, named by `names` in order.
pub fn stage_latencies(names: &[&str], histograms: &[LatencyHistogram]) -> Vec<StageLatency> {
    (names.iter().zip(histograms))
        .map(|(stage, histogram)| StageLatency { stage: (*stage).into(), latency: histogram.summary() })
        .collect()
}

/// A backlog growing `growth` bits a slot under `offered` bits a slot of load.
fn is_stable(growth: f64, offered: f64) -> bool {
    offered <= 0.0 || growth < UNSTABLE_GROWTH_SHARE * offered
}

/// Least-squares slope of y over x, fitted one point at a time (Welford's
/// co-moment updates: no list of points, and no cancellation between large
/// sums).
#[derive(Debug, Clone, Copy, Default)]
struct SlopeFit {
    n: f64,
    mean_x: f64,
    mean_y: f64,
    /// Σ (x − x̄)(y − ȳ) and Σ (x − x̄)² over the points so far.
    sxy: f64,
    sxx: f64,
}

impl SlopeFit {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        let dx = x - self.mean_x;
        self.mean_x += dx / self.n;
        self.mean_y += (y - self.mean_y) / self.n;
        self.sxy += dx * (y - self.mean_y);
        self.sxx += dx * (x - self.mean_x);
    }

    /// 0 with fewer than two points or no spread in x.
    fn slope(&self) -> f64 {
        if self.n >= 2.0 && self.sxx > 0.0 { self.sxy / self.sxx } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-pass fit the summary used before it was built one record at
    /// a time.
    fn two_pass_slope(points: &[(f64, f64)]) -> f64 {
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (x, y) in points {
            sxy += (x - mean_x) * (y - mean_y);
            sxx += (x - mean_x) * (x - mean_x);
        }
        sxy / sxx
    }

    #[test]
    fn rounding_without_round_rounds_as_round_does() {
        let below = |x: f64| f64::from_bits(x.to_bits() - 1);
        let mut values = vec![0.0, -0.0, 0.5, 1.5, 2.5, 1e6, 4_503_599_627_370_496.0, 1e300, f64::INFINITY, f64::NAN];
        values.extend([0.5, 1.5, 2.5, 4_503_599_627_370_496.0, 1e6].map(below));
        values.extend((0..100_000u64).map(|i| (i * 7_919) as f64 / 3_571.0));
        for x in values {
            assert_eq!(round_non_negative(x), x.round() as u64, "{x:e}");
        }
    }

    #[test]
    fn the_one_pass_slope_matches_the_two_pass_fit() {
        // A large level, a small trend and noise: where a naive Σxy − n x̄ ȳ
        // would cancel away the trend.
        let points: Vec<(f64, f64)> = (5_000..10_000u64)
            .map(|slot| {
                let x = slot as f64;
                let noise = ((slot * 7_919) % 1_000) as f64 - 500.0;
                (x, 3e9 + 12.5 * x + noise)
            })
            .collect();
        let mut fit = SlopeFit::default();
        for &(x, y) in &points {
            fit.add(x, y);
        }
        let expected = two_pass_slope(&points);
        assert!((fit.slope() - expected).abs() <= 1e-9 * expected.abs(), "{} vs {expected}", fit.slope());
        assert_eq!(SlopeFit::default().slope(), 0.0, "no points, no slope");
    }

    #[test]
    fn a_summary_built_record_by_record_equals_one_built_from_the_list() {
        let scenario = Scenario::paper();
        let slots: Vec<SlotRecord> = (0..9u64)
            .map(|slot| SlotRecord {
                slot,
                throughput_bits: 1_000 * slot,
                tx_power_w: 0.1 + slot as f64 * 0.01,
                queue_total_bits: (slot * slot) as f64,
                server_total_bits: 7.0 * slot as f64,
                ..SlotRecord::default()
            })
            .collect();
        let tasks: Vec<TaskRecord> = (0..5u64)
            .map(|task| TaskRecord {
                device: 0,
                task,
                bits: 10,
                offloaded_bits: 0,
                fragments: 1,
                arrival_s: 0.0,
                completion_s: 0.01 * (task + 1) as f64,
                queue_s: 0.002,
                upload_s: 0.003,
                server_wait_s: 0.0,
                server_compute_s: 0.01 * (task + 1) as f64 - 0.006,
                return_s: 0.001,
                local_compute_s: 0.0,
            })
            .collect();
        let whole = Summary::build("p", &scenario, 1, &slots, &[], &tasks, Conservation::default());
        let mut builder = SummaryBuilder::new(&scenario, slots.len() as u64);
        for (record, task) in slots.iter().zip(tasks.iter().map(Some).chain(std::iter::repeat(None))) {
            builder.add_slot(record, []);
            builder.add_tasks(task);
        }
        assert_eq!(builder.finish("p", &scenario, 1, Conservation::default()), whole);
        assert_eq!(whole.latency.count, 5);
        let stage = |name: &str| &whole.stages.iter().find(|s| s.stage == name).expect("a stage").latency;
        assert_eq!(stage("upload").count, 5);
        assert!((stage("upload").p50_s - 0.003).abs() < 1e-5, "to the histogram's 3 digits");
        let means: f64 = whole.stages.iter().map(|s| s.latency.mean_s).sum();
        assert!((means - whole.latency.mean_s).abs() < 1e-6, "stage means add up to the latency's");
        assert!(whole.backlog_growth_bits_per_slot > 0.0, "a rising backlog has a positive slope");
    }

    /// Device m's waiting bits `queues[m][t]` fed through a builder.
    fn worst_of(queues: &[Vec<f64>], offered_per_device: f64) -> Option<DeviceGrowth> {
        let slots = queues[0].len();
        let mut builder = SummaryBuilder::new(&Scenario::paper(), slots as u64);
        for t in 0..slots {
            builder.add_slot(&SlotRecord { slot: t as u64, ..SlotRecord::default() }, queues.iter().map(|q| q[t]));
        }
        builder.worst_device(offered_per_device)
    }

    #[test]
    fn a_starved_device_is_named_even_when_the_others_drain() {
        let flat = vec![1e5; 200];
        let starved: Vec<f64> = (0..200).map(|t| 4e5 * t as f64).collect();
        let worst = worst_of(&[flat.clone(), starved, flat], 5e5).expect("three devices");
        assert_eq!(worst.device, 1);
        assert!(!worst.stable);
        assert!((worst.growth_bits_per_slot - 4e5).abs() < 1e-3);
    }

    #[test]
    fn a_device_growing_by_two_percent_of_its_load_is_unstable_and_only_the_second_half_counts() {
        let growing = |per_slot: f64| (0..1_000).map(|t| per_slot * t as f64).collect::<Vec<f64>>();
        assert!(!worst_of(&[growing(10_001.0)], 5e5).expect("one device").stable);
        assert!(worst_of(&[growing(9_999.0)], 5e5).expect("one device").stable);
        assert!(worst_of(&[vec![0.0; 100]], 5e5).expect("one device").stable, "an empty queue");
        let late_drain: Vec<f64> = (0..100).map(|t| if t < 50 { 1e6 * t as f64 } else { 3.0 * t as f64 }).collect();
        assert!((worst_of(&[late_drain], 5e5).expect("one device").growth_bits_per_slot - 3.0).abs() < 1e-9);
    }
}
