//! Sort-and-fill: turning an order of device–server pairs into feasible
//! shares. Every candidate decision of the learned policies and the
//! `dpp-greedy` rule are built here, so "feasible" means the same thing
//! for all of them.
//!
//! Pairs are visited in the given order; each gets the largest share its
//! device's radio (Σ_s μ_ms ≤ 1), its server's channel (Σ_m μ_ms ≤ 1) and
//! its device's queue (Σ_s μ_ms τ r_ms ≤ Q_m) still leave. A pair met when
//! any of them is used up gets nothing, so the result is feasible whatever
//! the order.

use qmec_model::{Scenario, SystemState};

/// What limits the shares of one slot, row-major per device, borrowed
/// from whoever holds them (a state, or a learned policy's prepared input).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotLimits<'a> {
    /// S, servers.
    pub servers: usize,
    /// T_ms = τ r_ms, the bits a whole slot on the link carries (M × S).
    pub slot_bits: &'a [f64],
    /// Q_m ≥ 0, bits queued (M).
    pub queue_bits: &'a [f64],
}

impl SlotLimits<'_> {
    /// M, devices.
    pub fn devices(&self) -> usize {
        self.queue_bits.len()
    }
}

/// T_ms = τ r_ms and max(Q_m, 0) of a state, to borrow as [`SlotLimits`].
pub fn slot_bits_and_queues(scenario: &Scenario, state: &SystemState) -> (Vec<f64>, Vec<f64>) {
    (
        state.rates_bps.as_slice().iter().map(|r| scenario.slot_seconds * r).collect(),
        state.queue_bits.iter().map(|q| q.max(0.0)).collect(),
    )
}

/// Reusable buffers for [`fill_in_order`]: one allocation serves many
/// candidates of a slot.
#[derive(Debug, Clone, Default)]
pub struct FillScratch {
    radio_left: Vec<f64>,
    channel_left: Vec<f64>,
    queue_left: Vec<f64>,
}

/// Shares μ (M × S, row-major, written into `mu`) from visiting the pairs
/// `order` (indices m·S + s) in turn. Pairs not in `order` get 0.
pub fn fill_in_order(limits: &SlotLimits<'_>, order: &[usize], mu: &mut Vec<f64>, scratch: &mut FillScratch) {
    let (m_count, s_count) = (limits.devices(), limits.servers);
    mu.clear();
    mu.resize(m_count * s_count, 0.0);
    scratch.radio_left.clear();
    scratch.radio_left.resize(m_count, 1.0);
    scratch.channel_left.clear();
    scratch.channel_left.resize(s_count, 1.0);
    scratch.queue_left.clear();
    scratch.queue_left.extend_from_slice(limits.queue_bits);
    for &pair in order {
        let (m, s) = (pair / s_count, pair % s_count);
        let slot_bits = limits.slot_bits[pair];
        if slot_bits <= 0.0 || mu[pair] > 0.0 {
            continue;
        }
        let share = scratch.radio_left[m].min(scratch.channel_left[s]).min(scratch.queue_left[m] / slot_bits);
        if share <= 0.0 {
            continue;
        }
        mu[pair] = share;
        scratch.radio_left[m] -= share;
        scratch.channel_left[s] -= share;
        scratch.queue_left[m] = (scratch.queue_left[m] - share * slot_bits).max(0.0);
    }
}

/// The pairs with a positive weight, largest weight first.
pub fn positive_by_weight(weights: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).filter(|&k| weights[k] > 0.0).collect();
    order.sort_unstable_by(|&a, &b| weights[b].total_cmp(&weights[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits<'a>(slot_bits: &'a [f64], queue_bits: &'a [f64]) -> SlotLimits<'a> {
        SlotLimits { servers: slot_bits.len() / queue_bits.len(), slot_bits, queue_bits }
    }

    #[test]
    fn the_first_pair_takes_its_server_whole_and_the_rest_fill_what_is_left() {
        // 2 devices × 2 servers, queues deep enough for whole slots.
        let l = limits(&[10.0, 10.0, 10.0, 10.0], &[100.0, 100.0]);
        let (mut mu, mut scratch) = (Vec::new(), FillScratch::default());
        fill_in_order(&l, &[0, 2, 3], &mut mu, &mut scratch);
        // (0,0) whole; (1,0) finds server 0 full; (1,1) whole.
        assert_eq!(mu, vec![1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn a_short_queue_caps_the_share_and_leaves_the_radio_for_nothing_else() {
        let l = limits(&[10.0, 20.0], &[5.0]);
        let (mut mu, mut scratch) = (Vec::new(), FillScratch::default());
        fill_in_order(&l, &[1, 0], &mut mu, &mut scratch);
        assert_eq!(mu, vec![0.0, 0.25]);
    }

    #[test]
    fn positive_weights_are_ordered_largest_first_and_the_rest_left_out() {
        assert_eq!(positive_by_weight(&[0.5, -1.0, 2.0, 0.0, 1.0]), vec![2, 4, 0]);
    }
}
