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
use simplex::{Basis, DenseLp, Vertex};
use std::cell::RefCell;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The buffers of a solve and its rounds, each filled anew when used: a
/// slot solves a few small LPs, and allocating their pieces each time cost
/// more than solving them. Each thread keeps one from solve to solve.
#[derive(Debug, Default)]
struct Rounds {
    /// Whether each pair is in the restricted LP, and those pairs.
    member: Vec<bool>,
    pairs: Vec<usize>,
    /// Per server, the devices that may seed the first LP.
    seed_columns: Vec<Vec<usize>>,
    /// The restricted LP's columns: the usable pairs, sorted.
    columns: Vec<usize>,
    lp: DenseLp,
    /// What each row of `lp` limits, and the row of each channel, radio and
    /// queue (by server, by device) where `lp` has one.
    rows: Vec<Row>,
    channel_row: Vec<Option<usize>>,
    radio_row: Vec<Option<usize>>,
    queue_row: Vec<Option<usize>>,
    simplex: simplex::Scratch,
    /// The last round's basis, in this round's columns and rows.
    start: Basis,
    vertex: Vertex,
    /// The round's restricted optimum: the positive shares (pair, μ), the
    /// prices of its channel rows (0 for a server without a pair) and its
    /// basis by name.
    shares: Vec<(usize, f64)>,
    prices: Vec<f64>,
    basis: NamedBasis,
    /// The pairs the devices' subproblems use at the round's prices.
    wanted: Vec<usize>,
}

/// The problem of one slot, checked: weights that cannot help (≤ 0 or not
/// finite) are 0, and every pair's largest share is known.
struct Slot<'a> {
    devices: usize,
    servers: usize,
    weights: Vec<f64>,
    limits: &'a SlotLimits<'a>,
}

thread_local! {
    /// Each thread's buffers. They live here rather than in the policy:
    /// [`solve_exact`] is a free function, and `Lyapunov` a unit value.
    static ROUNDS: RefCell<Rounds> = RefCell::new(Rounds::default());
}

/// The optimum of max Σ Ψ μ under the slot's constraints (`weights` Ψ,
/// M × S row-major), certified.
pub fn solve_exact(weights: &[f64], limits: &SlotLimits<'_>) -> Result<Certified, PolicyError> {
    let slot = Slot::new(weights, limits)?;
    ROUNDS.with_borrow_mut(|rounds| slot.solve(rounds))
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

    /// Column generation from [`Slot::seed`] until the bound meets the
    /// restricted optimum.
    fn solve(&self, rounds: &mut Rounds) -> Result<Certified, PolicyError> {
        let size = self.weights.len();
        // A slot starts from nothing (see the module's notes).
        rounds.basis.clear();
        self.seed(rounds);
        rounds.member.clear();
        rounds.member.resize(size, false);
        let mut pairs = std::mem::take(&mut rounds.pairs);
        pairs.iter().for_each(|&k| rounds.member[k] = true);
        let solved = loop {
            pairs.sort_unstable();
            if let Err(e) = self.restricted_optimum(&pairs, rounds) {
                break Err(e);
            }
            let value = rounds.shares.iter().map(|&(k, x)| self.weights[k] * x).sum::<f64>();
            let bound = self.price(&rounds.prices, &mut rounds.wanted);
            if bound - value <= GAP_TOL * value.abs().max(1.0) {
                let mut mu = vec![0.0; size];
                rounds.shares.iter().for_each(|&(k, x)| mu[k] = x);
                break Ok(Certified { mu, value, bound, prices: rounds.prices.clone() });
            }
            let before = pairs.len();
            for &k in &rounds.wanted {
                if !rounds.member[k] {
                    rounds.member[k] = true;
                    pairs.push(k);
                }
            }
            if pairs.len() == before {
                break Err(PolicyError::Solver(format!("no pair improves on a gap of {} at the restricted optimum", bound - value)));
            }
        };
        rounds.pairs = pairs;
        solved
    }

    /// The first pairs, into `rounds.pairs`: each server's best devices by
    /// Ψ until their caps cover the channel [`SEED_COVER`] times, so rivals
    /// set its price.
    fn seed(&self, rounds: &mut Rounds) {
        // Gathered device by device, so the arrays are read in order.
        let columns = &mut rounds.seed_columns;
        columns.iter_mut().for_each(Vec::clear);
        columns.resize_with(self.servers, Vec::new);
        for m in (0..self.devices).filter(|&m| self.limits.queue_bits[m] > 0.0) {
            for (s, column) in columns.iter_mut().enumerate() {
                let k = m * self.servers + s;
                if self.weights[k] > 0.0 {
                    column.push(k);
                }
            }
        }
        let by_weight = |a: &usize, b: &usize| self.weights[*b].total_cmp(&self.weights[*a]);
        let pairs = &mut rounds.pairs;
        pairs.clear();
        for column in columns.iter_mut() {
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
    }

    /// D(p), and into `wanted` the pairs each device's subproblem uses at p.
    fn price(&self, prices: &[f64], wanted: &mut Vec<usize>) -> f64 {
        let mut bound: f64 = prices.iter().sum();
        wanted.clear();
        for m in 0..self.devices {
            let row = m * self.servers..(m + 1) * self.servers;
            let best = best_shares(&self.weights[row.clone()], prices, &self.limits.slot_bits[row], self.limits.queue_bits[m]);
            bound += best.value;
            wanted.extend(best.shares.iter().flatten().filter(|(_, share)| *share > 0.0).map(|&(s, _)| m * self.servers + s));
        }
        bound
    }

    /// The LP on `pairs` (sorted), started from the last round's basis
    /// where it fits; its optimum is left in `rounds`.
    fn restricted_optimum(&self, pairs: &[usize], rounds: &mut Rounds) -> Result<(), PolicyError> {
        rounds.columns.clear();
        rounds.columns.extend(pairs.iter().copied().filter(|&k| self.usable(k)));
        rounds.prices.clear();
        rounds.prices.resize(self.servers, 0.0);
        rounds.shares.clear();
        if rounds.columns.is_empty() {
            rounds.basis.clear();
            return Ok(());
        }
        let scale = rounds.columns.iter().map(|&k| self.weights[k]).fold(0.0, f64::max);
        self.restricted_lp(rounds, scale);
        if !rounds.local_basis() {
            rounds.start = Basis::default();
        }
        let Rounds { columns, lp, rows, simplex, start, vertex, shares, prices, basis, .. } = rounds;
        simplex.solve(lp, start, vertex)?;
        shares.extend(columns.iter().copied().zip(vertex.x.iter().copied()).filter(|&(_, x)| x > 0.0));
        for (row, dual) in rows.iter().zip(&vertex.duals) {
            if let Row::Channel(s) = row {
                prices[*s] = dual * scale;
            }
        }
        basis.basic.clear();
        basis.basic.extend(vertex.basis.basic.iter().map(|&j| columns[j]));
        basis.at_upper.clear();
        basis.at_upper.extend(vertex.basis.at_upper.iter().map(|&j| columns[j]));
        basis.tight.clear();
        basis.tight.extend(vertex.basis.tight_rows.iter().map(|&i| rows[i]));
        Ok(())
    }

    /// The restricted LP on `rounds.columns`, weights divided by `scale`: a
    /// channel row per server with a pair, and radio and queue rows only for
    /// devices with two pairs or more (a lone pair's limits are its upper
    /// bound). A queue row is left out where no mix of the pairs can exceed
    /// it.
    fn restricted_lp(&self, rounds: &mut Rounds, scale: f64) {
        let Rounds { columns, lp, rows, channel_row, radio_row, queue_row, .. } = rounds;
        rows.clear();
        for row in [&mut *channel_row, &mut *radio_row, &mut *queue_row] {
            row.clear();
        }
        channel_row.resize(self.servers, None);
        radio_row.resize(self.devices, None);
        queue_row.resize(self.devices, None);
        // The rows in the order the LP lists them: channels as their servers
        // first appear, then each device's radio and queue rows.
        for &k in columns.iter() {
            channel_row[k % self.servers].get_or_insert_with(|| {
                rows.push(Row::Channel(k % self.servers));
                rows.len() - 1
            });
        }
        let mut start = 0;
        while start < columns.len() {
            let m = columns[start] / self.servers;
            let end = start + columns[start..].iter().take_while(|&&k| k / self.servers == m).count();
            if end - start >= 2 {
                radio_row[m] = Some(rows.len());
                rows.push(Row::Radio(m));
                let queue = self.limits.queue_bits[m];
                if columns[start..end].iter().any(|&k| self.limits.slot_bits[k] > queue) {
                    queue_row[m] = Some(rows.len());
                    rows.push(Row::Queue(m));
                }
            }
            start = end;
        }
        let (height, width) = (rows.len(), columns.len());
        (lp.rows, lp.cols) = (height, width);
        lp.a.clear();
        lp.a.resize(height * width, 0.0);
        for (j, &k) in columns.iter().enumerate() {
            let m = k / self.servers;
            for (row, value) in [
                (channel_row[k % self.servers], 1.0),
                (radio_row[m], 1.0),
                (queue_row[m], self.limits.slot_bits[k] / self.limits.queue_bits[m]),
            ] {
                if let Some(i) = row {
                    lp.a[i * width + j] = value;
                }
            }
        }
        lp.b.clear();
        lp.b.resize(height, 1.0);
        lp.c.clear();
        lp.c.extend(columns.iter().map(|&k| self.weights[k] / scale));
        lp.upper.clear();
        lp.upper.extend(columns.iter().map(|&k| self.cap(k)));
    }
}

impl NamedBasis {
    fn clear(&mut self) {
        self.basic.clear();
        self.at_upper.clear();
        self.tight.clear();
    }
}

impl Rounds {
    /// The last round's basis in this round's columns and rows, into
    /// `start`; false if it names a pair or row this LP lacks.
    fn local_basis(&mut self) -> bool {
        let Rounds { columns, channel_row, radio_row, queue_row, basis, start, .. } = self;
        let row = |r: &Row| match *r {
            Row::Channel(s) => channel_row[s],
            Row::Radio(m) => radio_row[m],
            Row::Queue(m) => queue_row[m],
        };
        let column = |k: &usize| columns.binary_search(k).ok();
        refill(&mut start.basic, basis.basic.iter().map(column))
            && refill(&mut start.at_upper, basis.at_upper.iter().map(column))
            && refill(&mut start.tight_rows, basis.tight.iter().map(row))
    }
}

/// Replaces `into`'s contents with `items`; false at the first `None`.
fn refill(into: &mut Vec<usize>, items: impl Iterator<Item = Option<usize>>) -> bool {
    into.clear();
    for item in items {
        let Some(item) = item else { return false };
        into.push(item);
    }
    true
}
