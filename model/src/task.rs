//! Tasks and their fragments. A task arrives whole at a device and may be
//! served in fragments, locally and on several servers; it completes when its
//! last fragment is computed, and its latency is completion − arrival.
//!
//! Each fragment carries the model times at which its stages ended, and a
//! completed task's record splits its latency along the fragment that
//! finished last (its critical path) into waiting in the device queue,
//! upload, waiting at the server, server compute, result return and local
//! compute: the stages telescope, so they sum to completion − arrival.

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
    /// When it left the device queue (the start of the slot that sent it).
    pub sent_s: f64,
    /// When its last bit reached the server: the device's one radio sends
    /// a slot's fragments server after server, each at r_ms.
    pub uploaded_s: f64,
}

/// When each stage of one fragment's path ended, in model time. A piece
/// computed locally starts computing when it leaves the queue and has no
/// upload, server wait or return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FragmentTimes {
    pub offloaded: bool,
    pub sent_s: f64,
    pub uploaded_s: f64,
    /// Its first bit was computed.
    pub started_s: f64,
    /// Its last bit was computed.
    pub computed_s: f64,
    /// Its result was back at the device.
    pub done_s: f64,
}

impl FragmentTimes {
    /// A piece computed locally from `started_s` to `computed_s`.
    pub fn local(started_s: f64, computed_s: f64) -> FragmentTimes {
        FragmentTimes {
            offloaded: false,
            sent_s: started_s,
            uploaded_s: started_s,
            started_s,
            computed_s,
            done_s: computed_s,
        }
    }
}

/// An offloaded fragment whose result is back at the device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FragmentDone {
    pub device: usize,
    pub task: TaskId,
    pub times: FragmentTimes,
}

/// The stages of a task's latency, in the order of [`TaskRecord::stage_seconds`].
pub const STAGES: [&str; 6] = ["queue", "upload", "server_wait", "server_compute", "return", "local_compute"];

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
    /// The latency along the fragment that finished last (seconds): in the
    /// device queue until it was sent or computed locally,
    pub queue_s: f64,
    /// its upload,
    pub upload_s: f64,
    /// waiting at the server until its first bit was computed,
    pub server_wait_s: f64,
    /// computing at the server (pauses between slots included),
    pub server_compute_s: f64,
    /// the result's way back,
    pub return_s: f64,
    /// or, for a piece computed locally, its local compute.
    pub local_compute_s: f64,
}

impl TaskRecord {
    /// Device `device`'s task `task` of `bits`, completed along `last` (the
    /// fragment that finished last).
    pub fn completed(device: usize, task: TaskId, bits: u64, arrival_s: f64, last: &FragmentTimes) -> TaskRecord {
        let compute_s = last.computed_s - last.started_s;
        let (server_compute_s, local_compute_s) = if last.offloaded { (compute_s, 0.0) } else { (0.0, compute_s) };
        TaskRecord {
            device,
            task,
            bits,
            offloaded_bits: 0,
            fragments: 0,
            arrival_s,
            completion_s: last.done_s,
            queue_s: last.sent_s - arrival_s,
            upload_s: last.uploaded_s - last.sent_s,
            server_wait_s: last.started_s - last.uploaded_s,
            server_compute_s,
            return_s: last.done_s - last.computed_s,
            local_compute_s,
        }
    }

    pub fn latency_s(&self) -> f64 {
        self.completion_s - self.arrival_s
    }

    /// The stages named by [`STAGES`], in that order.
    pub fn stage_seconds(&self) -> [f64; 6] {
        [self.queue_s, self.upload_s, self.server_wait_s, self.server_compute_s, self.return_s, self.local_compute_s]
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
