//! What a server agent records: per slot, the bits computed and the backlog
//! once that slot's fragments were in; and its counters at the end.

use qmec_model::server::ServerCounters;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSlot {
    pub slot: u64,
    pub computed_bits: u64,
    /// Z_s after every fragment sent in this slot was accepted.
    pub backlog_bits: u64,
    pub load: f64,
    /// The marker wait passed before every device's fragments were in.
    pub forced: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRecords {
    pub server: usize,
    pub slots: Vec<ServerSlot>,
    pub counters: ServerCounters,
    pub backlog_bits: u64,
    pub payload_bytes: u64,
    pub invalid_messages: u64,
    pub usage: qmec_proto::process::ProcessUsage,
}
