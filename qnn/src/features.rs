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
//!   device–server pair, computed in O(M·S) and free of M and S, so one
//!   trained model reads a 10 × 3 slot and a 1000 × 50 slot alike:
//!   the pair's weight against the slot's typical one, Ψ_ms / (|Ψ_ms| + Ψ̄)
//!   with Ψ̄ the mean positive Ψ (a maximum over M·S pairs would drift with
//!   the size); its standing among the devices competing for server s,
//!   (Ψ_ms − c) / (|Ψ_ms| + c) with c the best other device's Ψ on s
//!   (or 0: leaving the channel idle); its standing among device m's
//!   options, the same against m's best other server (or staying local);
//!   and the queue fill 2·min(1, Q_m / τr_ms) − 1. The standings carry the
//!   "who wins this server" information the per-slot LP turns on, without
//!   the network having to see the other devices;
//! * the **shortlist**: a pair is open when Ψ_ms > 0 and it is among its
//!   device's [`DEVICE_SHORTLIST`] best servers or its server's
//!   [`SERVER_SHORTLIST`] best devices. A pair outside both almost never
//!   carries share in the LP optimum (all its device's better servers and
//!   all its server's better devices would have to be used elsewhere), and
//!   leaving it out keeps a 1000 × 50 slot to a few thousand scored pairs
//!   instead of 50 000;
//! * Ψ itself and the caps the projection needs ([`Links`]).

use crate::projection::Links;
use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Scenario, SystemState};
use serde::{Deserialize, Serialize};

/// Per-link features per pair.
pub const LINK_FEATURES: usize = 4;
/// Best servers per device kept open.
pub const DEVICE_SHORTLIST: usize = 4;
/// Best devices per server kept open.
pub const SERVER_SHORTLIST: usize = 16;

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
    /// u, the queue unit of the scenario's Lyapunov function (bits): the
    /// scale the critic's small LPs are written in.
    pub queue_unit_bits: f64,
    /// The global vector, [`global_len`] long.
    pub global: Vec<f64>,
    /// [`LINK_FEATURES`] per pair, row-major (m, s, feature).
    pub link_features: Vec<f64>,
    /// The best pair weight of each device (first per-link feature): the stay-local score's input.
    pub device_best: Vec<f64>,
}

impl StateInput {
    /// Prepares `state` of `scenario` with the model's `scales`, for every
    /// architecture.
    pub fn new(scenario: &Scenario, state: &SystemState, scales: &FeatureScales) -> StateInput {
        StateInput::prepare(scenario, state, scales, true)
    }

    /// Prepares `state`: everything when `full` (training, export, the
    /// fixed-size networks); otherwise only what a per-pair scorer reads to
    /// decide — no global vector (2M + 2MS + S + 1 logarithms) and the
    /// per-link features of open pairs only (closed ones stay 0), which
    /// halves the preparation of a 1000 × 50 slot.
    pub fn prepare(scenario: &Scenario, state: &SystemState, scales: &FeatureScales, full: bool) -> StateInput {
        let (m_count, s_count) = (state.devices(), state.servers());
        let psi_matrix = dpp_weights(scenario, state);
        let psi = psi_matrix.as_slice().to_vec();
        let top = psi.iter().fold(0.0f64, |a, p| a.max(p.abs()));
        let psi_scale = if top > 0.0 && top.is_finite() { top } else { 1.0 };
        let slot_bits: Vec<f64> = state.rates_bps.as_slice().iter().map(|r| scenario.slot_seconds * r).collect();

        let global = if full { global_vector(state, scales, &psi, psi_scale) } else { Vec::new() };

        let open = shortlist(&psi, m_count, s_count);
        let typical = mean_positive(&psi);
        let col_top = column_tops(&psi, m_count, s_count);
        let mut link_features = vec![0.0; m_count * s_count * LINK_FEATURES];
        let mut device_best = Vec::with_capacity(m_count);
        for m in 0..m_count {
            let row = &psi[m * s_count..(m + 1) * s_count];
            let row_top = top_two(row.iter().copied().enumerate());
            let weight = |v: f64| v / (v.abs() + typical);
            device_best.push(row_top.best.map_or(-1.0, |(_, v)| weight(v)));
            for (s, &v) in row.iter().enumerate() {
                let pair = m * s_count + s;
                if !(full || open[pair]) {
                    continue;
                }
                let fill = if slot_bits[pair] > 0.0 { (state.queue_bits[m].max(0.0) / slot_bits[pair]).min(1.0) } else { 0.0 };
                link_features[pair * LINK_FEATURES..(pair + 1) * LINK_FEATURES].copy_from_slice(&[
                    weight(v),
                    standing(v, col_top[s].rival_of(m)),
                    standing(v, row_top.rival_of(s)),
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
                open,
            },
            psi,
            psi_scale,
            queue_unit_bits: scenario.control.queue_unit_bits,
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

fn global_vector(state: &SystemState, scales: &FeatureScales, psi: &[f64], psi_scale: f64) -> Vec<f64> {
    let squash = |x: f64, scale: f64| (x.max(0.0) / scale).ln_1p();
    let mut global = Vec::with_capacity(global_len(state.devices(), state.servers()));
    global.extend(state.queue_bits.iter().map(|&q| squash(q, scales.queue_bits)));
    global.extend(state.virtual_bits.iter().map(|&h| squash(h, scales.queue_bits)));
    global.extend(state.rates_bps.as_slice().iter().map(|&r| squash(r, scales.rate_bps)));
    global.extend(state.server_bits.iter().map(|&z| squash(z, scales.server_bits)));
    global.extend(psi.iter().map(|p| p / psi_scale));
    global.push(1.0);
    global
}

/// The best and second-best (index, value) of a sequence.
#[derive(Debug, Clone, Copy, Default)]
struct TopTwo {
    best: Option<(usize, f64)>,
    second: Option<(usize, f64)>,
}

impl TopTwo {
    /// The best value among the others than `index`, floored at 0 (the
    /// option of leaving the channel idle, or staying local).
    fn rival_of(&self, index: usize) -> f64 {
        let rival = match self.best {
            Some((i, _)) if i == index => self.second,
            other => other,
        };
        rival.map_or(0.0, |(_, v)| v.max(0.0))
    }

    fn push(&mut self, index: usize, value: f64) {
        match self.best {
            Some((_, b)) if value <= b => {
                if self.second.is_none_or(|(_, v)| value > v) {
                    self.second = Some((index, value));
                }
            }
            _ => {
                self.second = self.best;
                self.best = Some((index, value));
            }
        }
    }
}

fn top_two(values: impl Iterator<Item = (usize, f64)>) -> TopTwo {
    let mut top = TopTwo::default();
    for (i, v) in values {
        top.push(i, v);
    }
    top
}

fn column_tops(psi: &[f64], m_count: usize, s_count: usize) -> Vec<TopTwo> {
    let mut tops = vec![TopTwo::default(); s_count];
    for m in 0..m_count {
        for (s, top) in tops.iter_mut().enumerate() {
            top.push(m, psi[m * s_count + s]);
        }
    }
    tops
}

/// How far `value` stands above `rival` (≥ 0), in [-1, 1]: 1 when the
/// rival is 0, 0 at a tie.
fn standing(value: f64, rival: f64) -> f64 {
    let scale = value.abs() + rival;
    if scale > 0.0 { ((value - rival) / scale).clamp(-1.0, 1.0) } else { 0.0 }
}

/// The mean positive Ψ, or 1 where none is positive.
fn mean_positive(psi: &[f64]) -> f64 {
    let (sum, count) = psi.iter().filter(|&&p| p > 0.0 && p.is_finite()).fold((0.0, 0usize), |(s, c), &p| (s + p, c + 1));
    if count == 0 { 1.0 } else { sum / count as f64 }
}

/// Which pairs are open (see the module docs), row-major.
fn shortlist(psi: &[f64], m_count: usize, s_count: usize) -> Vec<bool> {
    let mut open = vec![false; m_count * s_count];
    let keep_best = |mut pairs: Vec<usize>, keep: usize, open: &mut Vec<bool>| {
        if pairs.len() > keep {
            pairs.select_nth_unstable_by(keep - 1, |&a, &b| psi[b].total_cmp(&psi[a]));
            pairs.truncate(keep);
        }
        for k in pairs {
            open[k] = true;
        }
    };
    for m in 0..m_count {
        let row = (m * s_count..(m + 1) * s_count).filter(|&k| psi[k] > 0.0).collect();
        keep_best(row, DEVICE_SHORTLIST, &mut open);
    }
    for s in 0..s_count {
        let column = (0..m_count).map(|m| m * s_count + s).filter(|&k| psi[k] > 0.0).collect();
        keep_best(column, SERVER_SHORTLIST, &mut open);
    }
    open
}
