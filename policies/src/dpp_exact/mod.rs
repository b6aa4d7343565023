//! The exact per-slot drift-plus-penalty solver, built on the LP's shape:
//! one radio and one queue constraint per device, one channel constraint
//! per server, S ≪ M.
//!
//! Column generation over device–server pairs. A small restricted LP (a
//! few pairs per server) is solved by a dense simplex ([`simplex`]), whose
//! channel rows give server prices p. At those prices every device's own
//! subproblem is solved exactly ([`device`]); the Lagrangian bound
//!
//!   D(p) = Σ_s p_s + Σ_m g_m(p)
//!
//! is at least the LP optimum for any p ≥ 0. When D(p) meets the restricted
//! optimum, that optimum is the LP's and D(p) is its certificate; otherwise
//! the pairs the devices want at p join the LP and it is solved again. Pairs
//! only join, so the loop ends (at worst with every pair).
//!
//! The first LP holds each server's best devices by Ψ; each later round
//! starts from the last round's optimal basis, which stays feasible (new
//! pairs enter at 0, and a new device row holds at the old point). A slot
//! starts from nothing: seeding from the last slot's prices was measured
//! slower (channels are redrawn every slot, so old prices mislead).

pub mod device;
pub mod simplex;

use crate::fill::SlotLimits;
use device::best_shares;
use qmec_model::PolicyError;
use simplex::{Basis, DenseLp};
use std::collections::HashMap;

/// A certified gap: D(p) − Σ Ψ μ within this share of max(1, |Σ Ψ μ|).
const GAP_TOL: f64 = 1e-10;
/// Devices per server, best Ψ first, that may seed the first LP.
const SEED_PER_SERVER: usize = 8;
/// How many times over the seeded devices' caps cover each channel.
const SEED_COVER: f64 = 2.0;

/// An optimum with its proof: shares μ (M × S, row-major), Σ Ψ μ, and the
/// Lagrangian bound D(p) at the server prices p, which no feasible μ beats.
#[derive(Debug, Clone, PartialEq)]
pub struct Certified {
    pub mu: Vec<f64>,
    pub value: f64,
    pub bound: f64,
    pub prices: Vec<f64>,
}

impl Certified {
    /// D(p) − Σ Ψ μ: how far from optimal μ can be, at most.
    pub fn gap(&self) -> f64 {
        self.bound - self.value
    }
}

/// A row of the restricted LP by what it limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Row {
    Channel(usize),
    Radio(usize),
    Queue(usize),
}

/// A basis named by pairs and rows, so the next, larger restricted LP of
/// the same slot can start from it.
#[derive(Debug, Clone, Default)]
struct NamedBasis {
    basic: Vec<usize>,
    at_upper: Vec<usize>,
    tight: Vec<Row>,
}

/// One round's restricted optimum: the positive shares (pair, μ), the
/// prices of its channel rows (0 for a server without a pair) and its basis.
#[derive(Debug, Clone, Default)]
struct RoundOptimum {
    shares: Vec<(usize, f64)>,
    prices: Vec<f64>,
    basis: NamedBasis,
}

/// The problem of one slot, checked: weights that cannot help (≤ 0 or not
/// finite) are 0, and every pair's largest share is known.
struct Slot<'a> {
    devices: usize,
    servers: usize,
    weights: Vec<f64>,
    limits: &'a SlotLimits<'a>,
}

/// The optimum of max Σ Ψ μ under the slot's constraints (`weights` Ψ,
/// M × S row-major), certified.
pub fn solve_exact(weights: &[f64], limits: &SlotLimits<'_>) -> Result<Certified, PolicyError> {
    let slot = Slot::new(weights, limits)?;
    let mut member = vec![false; weights.len()];
    let mut pairs = slot.seed();
    pairs.iter().for_each(|&k| member[k] = true);
    let mut basis = NamedBasis::default();
    loop {
        pairs.sort_unstable();
        let RoundOptimum { shares, prices, basis: optimal } = slot.restricted_optimum(&pairs, &basis)?;
        basis = optimal;
        let value = shares.iter().map(|&(k, x)| weights[k] * x).sum::<f64>();
        let (bound, wanted) = slot.price(&prices);
        let fresh: Vec<usize> = wanted.into_iter().filter(|&k| !member[k]).collect();
        if bound - value <= GAP_TOL * value.abs().max(1.0) {
            let mut mu = vec![0.0; weights.len()];
            shares.iter().for_each(|&(k, x)| mu[k] = x);
            return Ok(Certified { mu, value, bound, prices });
        }
        if fresh.is_empty() {
            return Err(PolicyError::Solver(format!("no pair improves on a gap of {} at the restricted optimum", bound - value)));
        }
        fresh.iter().for_each(|&k| member[k] = true);
        pairs.extend(fresh);
    }
}

impl<'a> Slot<'a> {
    fn new(weights: &[f64], limits: &'a SlotLimits<'a>) -> Result<Slot<'a>, PolicyError> {
        let (devices, servers) = (limits.devices(), limits.servers);
        let size = devices * servers;
        let wrong = |field: &str, len: usize| PolicyError::Solver(format!("{field} has {len} entries, expected {size} ({devices} devices × {servers} servers)"));
        if weights.len() != size {
            return Err(wrong("weights", weights.len()));
        }
        if limits.slot_bits.len() != size {
            return Err(wrong("slot_bits", limits.slot_bits.len()));
        }
        if let Some(k) = limits.slot_bits.iter().position(|b| !(b.is_finite() && *b >= 0.0)) {
            return Err(PolicyError::Solver(format!("slot_bits[{k}] = {} is not a finite number ≥ 0", limits.slot_bits[k])));
        }
        if let Some(m) = limits.queue_bits.iter().position(|q| !(q.is_finite() && *q >= 0.0)) {
            return Err(PolicyError::Solver(format!("queue_bits[{m}] = {} is not a finite number ≥ 0", limits.queue_bits[m])));
        }
        let weights = weights.iter().map(|&w| if w.is_finite() && w > 0.0 { w } else { 0.0 }).collect();
        Ok(Slot { devices, servers, weights, limits })
    }

    /// The largest share pair k can take on its own: its radio, and its
    /// device's queue over the bits a whole slot carries.
    fn cap(&self, k: usize) -> f64 {
        let bits = self.limits.slot_bits[k];
        let queue = self.limits.queue_bits[k / self.servers];
        if bits > 0.0 { (queue / bits).min(1.0) } else { 1.0 }
    }

    /// Whether pair k can add to the objective: a positive weight and a
    /// positive [`Slot::cap`].
    fn usable(&self, k: usize) -> bool {
        self.weights[k] > 0.0 && (self.limits.slot_bits[k] <= 0.0 || self.limits.queue_bits[k / self.servers] > 0.0)
    }

    /// The first pairs: each server's best devices by Ψ until their caps
    /// cover the channel [`SEED_COVER`] times, so rivals set its price.
    fn seed(&self) -> Vec<usize> {
        // Gathered device by device, so the arrays are read in order.
        let mut columns: Vec<Vec<usize>> = vec![Vec::new(); self.servers];
        for m in (0..self.devices).filter(|&m| self.limits.queue_bits[m] > 0.0) {
            for (s, column) in columns.iter_mut().enumerate() {
                let k = m * self.servers + s;
                if self.weights[k] > 0.0 {
                    column.push(k);
                }
            }
        }
        let by_weight = |a: &usize, b: &usize| self.weights[*b].total_cmp(&self.weights[*a]);
        let mut pairs = Vec::new();
        for column in &mut columns {
            if column.len() > SEED_PER_SERVER {
                column.select_nth_unstable_by(SEED_PER_SERVER, by_weight);
            }
            let head = column.len().min(SEED_PER_SERVER);
            column[..head].sort_unstable_by(by_weight);
            let mut covered = 0.0;
            for &k in &column[..head] {
                if covered >= SEED_COVER {
                    break;
                }
                covered += self.cap(k);
                pairs.push(k);
            }
        }
        pairs
    }

    /// D(p) and the pairs each device's subproblem uses at p.
    fn price(&self, prices: &[f64]) -> (f64, Vec<usize>) {
        let mut bound: f64 = prices.iter().sum();
        let mut wanted = Vec::new();
        for m in 0..self.devices {
            let row = m * self.servers..(m + 1) * self.servers;
            let best = best_shares(&self.weights[row.clone()], prices, &self.limits.slot_bits[row], self.limits.queue_bits[m]);
            bound += best.value;
            wanted.extend(best.shares.iter().flatten().filter(|(_, share)| *share > 0.0).map(|&(s, _)| m * self.servers + s));
        }
        (bound, wanted)
    }

    /// The LP on `pairs` (sorted), started from `warm` where it fits.
    fn restricted_optimum(&self, pairs: &[usize], warm: &NamedBasis) -> Result<RoundOptimum, PolicyError> {
        let columns: Vec<usize> = pairs.iter().copied().filter(|&k| self.usable(k)).collect();
        let mut prices = vec![0.0; self.servers];
        if columns.is_empty() {
            return Ok(RoundOptimum { prices, ..RoundOptimum::default() });
        }
        let scale = columns.iter().map(|&k| self.weights[k]).fold(0.0, f64::max);
        let (lp, rows) = self.restricted_lp(&columns, scale);
        let vertex = simplex::solve(&lp, &local_basis(warm, &columns, &rows).unwrap_or_default())?;
        let shares = columns.iter().copied().zip(vertex.x).filter(|&(_, x)| x > 0.0).collect();
        for (row, dual) in rows.iter().zip(&vertex.duals) {
            if let Row::Channel(s) = row {
                prices[*s] = dual * scale;
            }
        }
        let basis = NamedBasis {
            basic: vertex.basis.basic.iter().map(|&j| columns[j]).collect(),
            at_upper: vertex.basis.at_upper.iter().map(|&j| columns[j]).collect(),
            tight: vertex.basis.tight_rows.iter().map(|&i| rows[i]).collect(),
        };
        Ok(RoundOptimum { shares, prices, basis })
    }

    /// The restricted LP, weights divided by `scale`: a channel row per
    /// server with a pair, and radio and queue rows only for devices with
    /// two pairs or more (a lone pair's limits are its upper bound). A
    /// queue row is left out where no mix of the pairs can exceed it.
    fn restricted_lp(&self, columns: &[usize], scale: f64) -> (DenseLp, Vec<Row>) {
        let mut rows: Vec<Vec<(usize, f64)>> = Vec::new();
        let mut keys = Vec::new();
        let mut server_rows = vec![None; self.servers];
        for (j, &k) in columns.iter().enumerate() {
            let row = *server_rows[k % self.servers].get_or_insert_with(|| {
                rows.push(Vec::new());
                keys.push(Row::Channel(k % self.servers));
                rows.len() - 1
            });
            rows[row].push((j, 1.0));
        }
        let mut start = 0;
        while start < columns.len() {
            let m = columns[start] / self.servers;
            let end = start + columns[start..].iter().take_while(|&&k| k / self.servers == m).count();
            if end - start >= 2 {
                rows.push((start..end).map(|j| (j, 1.0)).collect());
                keys.push(Row::Radio(m));
                let queue = self.limits.queue_bits[m];
                if columns[start..end].iter().any(|&k| self.limits.slot_bits[k] > queue) {
                    rows.push((start..end).map(|j| (j, self.limits.slot_bits[columns[j]] / queue)).collect());
                    keys.push(Row::Queue(m));
                }
            }
            start = end;
        }
        let (height, width) = (rows.len(), columns.len());
        let mut a = vec![0.0; height * width];
        for (i, row) in rows.iter().enumerate() {
            row.iter().for_each(|&(j, v)| a[i * width + j] = v);
        }
        let lp = DenseLp {
            rows: height,
            cols: width,
            a,
            b: vec![1.0; height],
            c: columns.iter().map(|&k| self.weights[k] / scale).collect(),
            upper: columns.iter().map(|&k| self.cap(k)).collect(),
        };
        (lp, keys)
    }
}

/// `warm` in the columns and rows of this LP; `None` if it names a pair or
/// row this LP lacks.
fn local_basis(warm: &NamedBasis, columns: &[usize], rows: &[Row]) -> Option<Basis> {
    let row_index: HashMap<Row, usize> = rows.iter().enumerate().map(|(i, &r)| (r, i)).collect();
    let column = |k: &usize| columns.binary_search(k).ok();
    Some(Basis {
        basic: warm.basic.iter().map(column).collect::<Option<_>>()?,
        at_upper: warm.at_upper.iter().map(column).collect::<Option<_>>()?,
        tight_rows: warm.tight.iter().map(|r| row_index.get(r).copied()).collect::<Option<_>>()?,
    })
}
