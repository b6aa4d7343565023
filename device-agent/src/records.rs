//! What a device agent records: per slot its share of the slot record, every
//! completed task (modelled times) and its wall-clock latency and stages,
//! and its counters at the end for the conservation check.

use qmec_model::device::DeviceCounters;
use qmec_model::task::TaskRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceSlot {
    pub slot: u64,
    pub arrived_tasks: u64,
    pub arrived_bits: u64,
    pub dropped_tasks: u64,
    /// Tasks whose last piece was computed in this slot (locally, or at a
    /// server in its computing slot), as the simulator counts them.
    pub completed_tasks: u64,
    pub local_bits: u64,
    pub offloaded_bits: u64,
    pub tx_power_w: f64,
    pub compute_power_w: f64,
    /// Q after the slot (arrivals admitted).
    pub queue_bits: u64,
    pub virtual_bits: f64,
    /// A decision arrived for this slot (else everything was local).
    pub decided: bool,
}

/// A task's wall-clock latency (µs) split along the piece that completed
/// it: in the device queue until the slot that sent (or computed) it ended,
/// then for an offloaded piece the transfer (uplink pacing and the network
/// both ways: what the server's own measures leave), waiting at the server
/// for its slot's computing, and held there until the result left. The
/// stages sum to the task's wall latency exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WallStages {
    pub queue_us: u64,
    pub transfer_us: u64,
    pub server_wait_us: u64,
    pub server_hold_us: u64,
}

impl WallStages {
    /// The stages' names, in the order of [`WallStages::micros`].
    pub const NAMES: [&str; 4] = ["queue", "transfer", "server_wait", "server_hold"];

    pub fn micros(&self) -> [u64; 4] {
        [self.queue_us, self.transfer_us, self.server_wait_us, self.server_hold_us]
    }

    pub fn total_us(&self) -> u64 {
        self.micros().iter().sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecords {
    pub device: usize,
    pub slots: Vec<DeviceSlot>,
    pub tasks: Vec<TaskRecord>,
    /// Wall-clock latency of each completed task (µs): its modelled arrival,
    /// placed in the slot as this agent saw the slot begin, → last result.
    pub wall_latency_us: Vec<u64>,
    /// The same latencies split into stages (one per entry of
    /// `wall_latency_us`, in its order).
    #[serde(default)]
    pub wall_stages: Vec<WallStages>,
    pub counters: DeviceCounters,
    pub open_tasks: u64,
    pub undecided_slots: u64,
    pub payload_bytes: u64,
    /// Fragments (and their bits) sent to a server that was lost before
    /// their results came back, put back at the head of the queue.
    #[serde(default)]
    pub requeued_fragments: u64,
    #[serde(default)]
    pub requeued_bits: u64,
    /// Servers whose offload stream broke during the run.
    #[serde(default)]
    pub lost_servers: Vec<usize>,
    /// Per server, the bits offloaded to it whose fragments were not
    /// requeued (what that server received from this device).
    #[serde(default)]
    pub offloaded_bits_by_server: Vec<u64>,
    /// Per server, the bits requeued from it (it received them).
    #[serde(default)]
    pub requeued_bits_by_server: Vec<u64>,
    /// Servers given up on for silence (their stream still open).
    #[serde(default)]
    pub silent_servers: u64,
    /// Per server, bits of fragments the uplink never sent because the
    /// server was lost first (they were requeued).
    #[serde(default)]
    pub unsent_bits_by_server: Vec<u64>,
}

/// Every agent of one process and that process's CPU use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecords {
    pub devices: Vec<DeviceRecords>,
    pub usage: qmec_proto::process::ProcessUsage,
    /// What this process's emulated links achieved, per link kind and
    /// direction (empty without userspace emulation).
    #[serde(default)]
    pub link_measurements: Vec<qmec_linkem::fidelity::LinkMeasurement>,
    /// Links the kernel shapes: each device's link up to each server on
    /// its own (`device→server up, device D to server-S`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_link_measurements: Vec<qmec_linkem::fidelity::LinkMeasurement>,
}
