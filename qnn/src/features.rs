//! From a [`SystemState`] to what the networks read.
//!
//! All architectures see the same state, prepared once per slot here:
//!
//! * the **global vector** (paper QNN and MLP): ln(1 + Q_m/q̄), ln(1 + H_m/q̄),
//!   ln(1 + r_ms/r̄), ln(1 + Z_s/z̄), Ψ_ms / max|Ψ| and a constant 1, where
//!   q̄, r̄, z̄ are scales measured on the training states and stored in the
//!   model file. The logarithm keeps the inputs of order one when a queue
//!   runs away, and the constant keeps the overall scale visible to
//!   amplitude encoding (which normalises the vector away). Ψ is part of
//!   the state every policy sees (DESIGN.md, "Policies"); without it the
//!   fixed-size networks never left the all-local decision in training:
//!   under V = 1000 most Ψ_ms are negative, "stay local" is a flat local
//!   optimum of the DPP loss, and recovering the sign of
//!   (Q + H) τ r − V P τ from the raw features gave too weak a gradient;
//! * the **per-link features** (per-link QNN), four numbers in [-1, 1] per
//!   device–server pair, computed in O(M·S):
//!   Ψ̂_ms = Ψ_ms / max|Ψ|; the column margin (Ψ_ms − max(0, max_{m'≠m} Ψ_m's))
//!   / max|Ψ|, i.e. how much better this device is than its best competitor
//!   for the server (or than leaving it idle); the row margin, the same
//!   against the device's other servers and staying local; and the queue
//!   fill 2·min(1, Q_m / τr_ms) − 1. The margins carry the "who wins this
//!   server" information the per-slot LP turns on, without the network
//!   having to see the other devices;
//! * Ψ itself and the caps the projection needs ([`Links`]).

use crate::projection::Links;
use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Scenario, SystemState};
use serde::{Deserialize, Serialize};

/// Per-link features per pair.
pub const LINK_FEATURES: usize = 4;

/// Scales that bring raw bits and rates to order one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureScales {
    /// q̄, bits (for Q and H).
    pub queue_bits: f64,
    /// r̄, bit/s.
    pub rate_bps: f64,
    /// z̄, bits at a server.
    pub server_bits: f64,
}

impl FeatureScales {
    /// Means over `states` (Q and H pooled), each at least 1 so that an
    /// all-zero sample cannot produce a zero scale.
    pub fn measure(states: &[SystemState]) -> FeatureScales {
        let mean = |values: &mut dyn Iterator<Item = f64>| {
            let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
            if count == 0 { 1.0 } else { (sum / count as f64).max(1.0) }
        };
        FeatureScales {
            queue_bits: mean(&mut states.iter().flat_map(|s| s.queue_bits.iter().chain(&s.virtual_bits).copied())),
            rate_bps: mean(&mut states.iter().flat_map(|s| s.rates_bps.as_slice().iter().copied())),
            server_bits: mean(&mut states.iter().flat_map(|s| s.server_bits.iter().copied())),
        }
    }

    /// Every scale finite and positive.
    pub fn is_valid(&self) -> bool {
        [self.queue_bits, self.rate_bps, self.server_bits]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    }
}

/// Length of the global vector for M devices and S servers.
pub fn global_len(devices: usize, servers: usize) -> usize {
    2 * devices + 2 * devices * servers + servers + 1
}

/// One state, prepared for every architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct StateInput {
    /// Caps for the projection.
    pub links: Links,
    /// Ψ_ms, row-major M × S.
    pub psi: Vec<f64>,
    /// max |Ψ_ms| (1 if all are 0).
    pub psi_scale: f64,
    /// The global vector, [`global_len`] long.
    pub global: Vec<f64>,
    /// [`LINK_FEATURES`] per pair, row-major (m, s, feature).
    pub link_features: Vec<f64>,
    /// max_s Ψ̂_ms per device: the stay-local score's input.
    pub device_best: Vec<f64>,
}

impl StateInput {
    /// Prepares `state` of `scenario` with the model's `scales`.
    pub fn new(scenario: &Scenario, state: &SystemState, scales: &FeatureScales) -> StateInput {
        let (m_count, s_count) = (state.devices(), state.servers());
        let psi_matrix = dpp_weights(scenario, state);
        let psi = psi_matrix.as_slice().to_vec();
        let top = psi.iter().fold(0.0f64, |a, p| a.max(p.abs()));
        let psi_scale = if top > 0.0 && top.is_finite() { top } else { 1.0 };
        let slot_bits: Vec<f64> = state.rates_bps.as_slice().iter().map(|r| scenario.slot_seconds * r).collect();

        let squash = |x: f64, scale: f64| (x.max(0.0) / scale).ln_1p();
        let mut global = Vec::with_capacity(global_len(m_count, s_count));
        global.extend(state.queue_bits.iter().map(|&q| squash(q, scales.queue_bits)));
        global.extend(state.virtual_bits.iter().map(|&h| squash(h, scales.queue_bits)));
        global.extend(state.rates_bps.as_slice().iter().map(|&r| squash(r, scales.rate_bps)));
        global.extend(state.server_bits.iter().map(|&z| squash(z, scales.server_bits)));
        global.extend(psi.iter().map(|p| p / psi_scale));
        global.push(1.0);

        // Best and second-best Ψ per column, and per row, for the margins.
        let mut col_top = vec![(f64::NEG_INFINITY, usize::MAX, f64::NEG_INFINITY); s_count];
        for m in 0..m_count {
            for (s, top) in col_top.iter_mut().enumerate() {
                let v = psi[m * s_count + s];
                if v > top.0 {
                    *top = (v, m, top.0);
                } else if v > top.2 {
                    top.2 = v;
                }
            }
        }
        let mut link_features = Vec::with_capacity(m_count * s_count * LINK_FEATURES);
        let mut device_best = Vec::with_capacity(m_count);
        for m in 0..m_count {
            let row = &psi[m * s_count..(m + 1) * s_count];
            let (mut best, mut best_s, mut second) = (f64::NEG_INFINITY, usize::MAX, f64::NEG_INFINITY);
            for (s, &v) in row.iter().enumerate() {
                if v > best {
                    second = best;
                    best = v;
                    best_s = s;
                } else if v > second {
                    second = v;
                }
            }
            device_best.push(best / psi_scale);
            for (s, &v) in row.iter().enumerate() {
                let (c_best, c_arg, c_second) = col_top[s];
                let col_rival = if c_arg == m { c_second } else { c_best }.max(0.0);
                let row_rival = if best_s == s { second } else { best }.max(0.0);
                let fill = if slot_bits[m * s_count + s] > 0.0 {
                    (state.queue_bits[m].max(0.0) / slot_bits[m * s_count + s]).min(1.0)
                } else {
                    0.0
                };
                let clip = |x: f64| x.clamp(-1.0, 1.0);
                link_features.extend_from_slice(&[
                    clip(v / psi_scale),
                    clip((v - col_rival) / psi_scale),
                    clip((v - row_rival) / psi_scale),
                    2.0 * fill - 1.0,
                ]);
            }
        }
        StateInput {
            links: Links {
                devices: m_count,
                servers: s_count,
                slot_bits,
                queue_bits: state.queue_bits.iter().map(|q| q.max(0.0)).collect(),
                open: psi.iter().map(|&p| p > 0.0).collect(),
            },
            psi,
            psi_scale,
            global,
            link_features,
            device_best,
        }
    }

    /// M.
    pub fn devices(&self) -> usize {
        self.links.devices
    }

    /// S.
    pub fn servers(&self) -> usize {
        self.links.servers
    }

    /// The features of pair (m, s).
    pub fn link(&self, m: usize, s: usize) -> &[f64] {
        let k = (m * self.servers() + s) * LINK_FEATURES;
        &self.link_features[k..k + LINK_FEATURES]
    }
}
