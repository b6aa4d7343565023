//! One device's best shares at given server prices: the subproblem
//!
//!   g(p) = max Σ_s (Ψ_s − p_s) μ_s  s.t.  Σ_s μ_s ≤ 1,  Σ_s b_s μ_s ≤ Q,  μ ≥ 0,
//!
//! a fractional knapsack with two constraints, whose optimum mixes at most
//! two servers. Pricing every device with it proves (or disproves) that a
//! restricted LP's prices are optimal for the whole LP.
//!
//! It is solved through its one-dimensional dual
//! min_{z ≥ 0} zQ + max(0, max_s c_s − z b_s) with c = Ψ − p: starting at
//! z = 0, follow the upper envelope of the lines c_s − z b_s (and the
//! origin's line 0) towards smaller b until the active line's b is at most Q.
//! Each step scans the S lines once; the envelope has few pieces.

/// The optimum of one device's subproblem: its value and up to two
/// (server, share) pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceBest {
    pub value: f64,
    pub shares: [Option<(usize, f64)>; 2],
}

const NOTHING: DeviceBest = DeviceBest { value: 0.0, shares: [None, None] };

/// g(p) and its maximiser for one device: `psi`, `price` and `bits` (b_s)
/// are per server, `queue` is Q ≥ 0.
pub fn best_shares(psi: &[f64], price: &[f64], bits: &[f64], queue: f64) -> DeviceBest {
    let line = |s: usize| psi[s] - price[s];
    // The active line at z = 0: the largest c, the smallest b among ties.
    let mut active = None::<usize>;
    for s in 0..psi.len() {
        let c = line(s);
        if c > 0.0 && active.is_none_or(|a| c > line(a) || (c == line(a) && bits[s] < bits[a])) {
            active = Some(s);
        }
    }
    let Some(mut active) = active else { return NOTHING };
    if bits[active] <= queue {
        return DeviceBest { value: line(active), shares: [Some((active, 1.0)), None] };
    }
    loop {
        // The line that takes over next as z grows: the earliest crossing,
        // the smallest b among ties; `None` is the origin's line.
        let (c_active, b_active) = (line(active), bits[active]);
        let mut next: (f64, Option<usize>) = (c_active / b_active, None);
        for s in 0..psi.len() {
            if bits[s] < b_active {
                let crossing = (c_active - line(s)) / (b_active - bits[s]);
                if crossing < next.0 || (crossing == next.0 && next.1.is_some_and(|n| bits[s] < bits[n])) {
                    next = (crossing, Some(s));
                }
            }
        }
        match next.1 {
            // The queue alone limits the share on the active server.
            None => {
                let share = queue / b_active;
                return DeviceBest { value: c_active * share, shares: [Some((active, share)), None] };
            }
            Some(s) if bits[s] <= queue => return mix(active, s, c_active, line(s), b_active, bits[s], queue),
            Some(s) => active = s,
        }
    }
}

/// The vertex where both constraints bind: shares of `high` (b above Q)
/// and `low` (b at most Q) with Σμ = 1 and Σbμ = Q.
fn mix(high: usize, low: usize, c_high: f64, c_low: f64, b_high: f64, b_low: f64, queue: f64) -> DeviceBest {
    let share_high = (queue - b_low) / (b_high - b_low);
    let share_low = 1.0 - share_high;
    let shares = [Some((high, share_high)), (share_low > 0.0).then_some((low, share_low))];
    DeviceBest { value: c_high * share_high + c_low * share_low, shares }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deep_queue_takes_the_best_server_whole() {
        let best = best_shares(&[3.0, 5.0, 4.0], &[0.0, 1.0, 0.0], &[10.0, 20.0, 30.0], 100.0);
        assert_eq!(best, DeviceBest { value: 4.0, shares: [Some((1, 1.0)), None] });
    }

    #[test]
    fn a_short_queue_mixes_a_fast_and_a_slow_server() {
        // Lines c − z b: (10, 10) and (4, 2), Q = 6: μ = (0.5, 0.5), value 7,
        // better than 6 of the fast server alone or 4 of the slow one.
        let best = best_shares(&[10.0, 4.0], &[0.0, 0.0], &[10.0, 2.0], 6.0);
        assert_eq!(best, DeviceBest { value: 7.0, shares: [Some((0, 0.5)), Some((1, 0.5))] });
    }

    #[test]
    fn a_short_queue_without_a_slower_server_worth_it_caps_the_share() {
        let best = best_shares(&[10.0, 0.1], &[0.0, 0.0], &[10.0, 9.0], 5.0);
        assert_eq!(best, DeviceBest { value: 5.0, shares: [Some((0, 0.5)), None] });
    }

    #[test]
    fn prices_above_every_weight_leave_the_device_idle() {
        assert_eq!(best_shares(&[1.0, 2.0], &[1.0, 3.0], &[1.0, 1.0], 1.0), NOTHING);
    }
}
