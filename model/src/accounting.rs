//! Per-slot accounting: the numbers every run reports, written once so the
//! simulator and the testbed produce the same columns.

use serde::{Deserialize, Serialize};

/// One slot's totals over all devices and servers; a row of `slots.csv`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub slot: u64,
    pub arrived_tasks: u64,
    pub arrived_bits: u64,
    pub dropped_tasks: u64,
    pub completed_tasks: u64,
    pub local_bits: u64,
    pub offloaded_bits: u64,
    pub server_computed_bits: u64,
    /// R(t) = Σ_m (b_m^loc + Σ_s b_ms), bits in the slot.
    pub throughput_bits: u64,
    /// Σ_m P_m · (transmit time)/τ: mean transmit power over the slot (W).
    pub tx_power_w: f64,
    /// Σ_m κ f³ busy_m: mean local compute power over the slot (W).
    pub compute_power_w: f64,
    pub queue_total_bits: f64,
    pub queue_max_bits: f64,
    pub virtual_total_bits: f64,
    pub server_total_bits: f64,
    /// Σ Ψ μ of the decision applied.
    pub dpp_value: f64,
    pub decision_seconds: f64,
    /// The decision's share of the exact LP optimum, on slots where the
    /// policy measured it ([`crate::SlotFigure`]); an empty cell elsewhere.
    #[serde(default)]
    pub lp_share: Option<f64>,
}

impl SlotRecord {
    pub fn power_w(&self) -> f64 {
        self.tx_power_w + self.compute_power_w
    }
}

/// Transmit power averaged over a slot for `bits` sent at `rate_bps`:
/// energy is charged only for bits actually sent.
pub fn transmit_power_w(tx_power_w: f64, bits: u64, rate_bps: f64, slot_seconds: f64) -> f64 {
    if bits == 0 || rate_bps <= 0.0 {
        return 0.0;
    }
    tx_power_w * (bits as f64 / rate_bps) / slot_seconds
}

/// Local compute power averaged over a slot: κ f³ while busy.
pub fn compute_power_w(kappa: f64, cpu_hz: f64, busy_fraction: f64) -> f64 {
    kappa * cpu_hz.powi(3) * busy_fraction
}
