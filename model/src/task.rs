//! Tasks and their fragments. A task arrives whole at a device and may be
//! served in fragments, locally and on several servers; it completes when its
//! last fragment is computed, and its latency is completion − arrival.

use crate::scenario::SizeDistribution;
use rand::Rng;
use rand_distr::{Distribution, Exp, Poisson};
use serde::{Deserialize, Serialize};

/// Unique per device; (device, id) is unique in a run.
pub type TaskId = u64;

/// A piece of a task's bits on its way to, or queued at, a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub device: usize,
    pub task: TaskId,
    pub bits: u64,
}

/// A fragment whose last bit was computed at `done_s` (result delivered).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FragmentDone {
    pub device: usize,
    pub task: TaskId,
    pub done_s: f64,
}

/// One completed task, as written to the per-task CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub device: usize,
    pub task: TaskId,
    pub bits: u64,
    pub offloaded_bits: u64,
    pub fragments: u32,
    pub arrival_s: f64,
    pub completion_s: f64,
}

impl TaskRecord {
    pub fn latency_s(&self) -> f64 {
        self.completion_s - self.arrival_s
    }
}

/// Why a task was dropped rather than served. Every task ends completed,
/// still queued, or dropped with one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// The device queue was at its cap when the task arrived.
    DeviceQueueFull,
}

impl DropReason {
    pub const ALL: [DropReason; 1] = [DropReason::DeviceQueueFull];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::DeviceQueueFull => "device-queue-full",
        }
    }
}

/// Number of tasks arriving in one slot: Poisson(λ).
pub fn sample_arrival_count(rate: f64, rng: &mut impl Rng) -> u64 {
    match Poisson::new(rate) {
        Ok(poisson) => poisson.sample(rng) as u64,
        // λ = 0 (validated non-negative and finite otherwise).
        Err(_) => 0,
    }
}

/// One task's size in bits, at least 1.
pub fn sample_task_bits(dist: &SizeDistribution, rng: &mut impl Rng) -> u64 {
    match *dist {
        SizeDistribution::Fixed { bits } => bits,
        SizeDistribution::Uniform { min, max } => rng.random_range(min..=max),
        SizeDistribution::Exponential { mean, max } => {
            let exp = Exp::new(1.0 / mean).unwrap_or_else(|_| Exp::new(1.0).expect("rate 1 is valid"));
            (exp.sample(rng).round() as u64).clamp(1, max)
        }
    }
}
