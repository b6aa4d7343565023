//! What the controller records: per slot, the decision time, the slot-loop
//! time (slot start → every decision handed to its stream), the late reports
//! and the value of the decision. Written as JSON at shutdown.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerSlot {
    pub slot: u64,
    pub decision_s: f64,
    pub slot_loop_s: f64,
    pub late_devices: u32,
    /// Devices silent for more than `STALE_SLOTS` slots, decided local.
    #[serde(default)]
    pub stale_devices: u32,
    pub late_servers: u32,
    /// Decisions that could not be handed to a device or server stream.
    pub undelivered: u32,
    /// Σ Ψ μ of the decision.
    pub dpp_value: f64,
    /// The policy failed and everything was computed locally.
    pub policy_failed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerRecords {
    pub policy: String,
    pub seed: u64,
    /// The slot this controller started at: 0, or where a restarted
    /// controller picked the run up.
    #[serde(default)]
    pub first_slot: u64,
    pub slots: Vec<ControllerSlot>,
    pub invalid_messages: u64,
    pub usage: qmec_proto::process::ProcessUsage,
}
