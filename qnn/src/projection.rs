//! The differentiable projection from raw scores to a feasible decision μ.
//!
//! Every learned policy ends here, so the loss −Σ Ψ_ms μ_ms(θ) is the
//! drift-plus-penalty bound of a decision that is feasible by construction,
//! and its gradient is exact (hand-written backward, checked against finite
//! differences in the tests). Three steps, each keeping what the previous
//! one guaranteed:
//!
//! 0. **mask**: links with Ψ_ms ≤ 0 are closed (probability exactly 0).
//!    The LP optimum never uses them — any share on such a link lowers the
//!    bound — so the restriction loses nothing, and it removes the flat
//!    "everything local" optimum that otherwise traps training when most
//!    Ψ are negative (V = 1000 in the paper scenario);
//! 1. **softmax per device** over the open options {stay local, server 1..S}:
//!    a_ms = softmax(z_m)_{s+1}, so Σ_s a_ms < 1 (one radio);
//! 2. **per-server normalisation**: c_s = Σ_m a_ms, b_ms = a_ms / max(1, c_s),
//!    so Σ_m b_ms ≤ 1 (one channel per server) — shrinking a column never
//!    raises a row sum;
//! 3. **queue cap**: L_m = Σ_s b_ms T_ms with T_ms = τ r_ms the bits a full
//!    slot carries; where L_m > Q_m the row is scaled by g_m = Q_m / L_m, so
//!    Σ_s μ_ms τ r_ms ≤ Q_m — shrinking a row never raises a column sum.
//!
//! The map is piecewise smooth (kinks at c_s = 1 and L_m = Q_m); the
//! backward pass is the exact derivative of the active piece.

/// Scores and caps of one state; layouts are row-major per device.
#[derive(Debug, Clone, PartialEq)]
pub struct Links {
    /// M, devices.
    pub devices: usize,
    /// S, servers.
    pub servers: usize,
    /// T_ms = τ r_ms, bits a whole slot on the link carries (M × S).
    pub slot_bits: Vec<f64>,
    /// Q_m, bits queued (M).
    pub queue_bits: Vec<f64>,
    /// Whether link (m, s) is open (Ψ_ms > 0), M × S.
    pub open: Vec<bool>,
}

/// What the forward pass keeps for the backward pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectionTape {
    /// Softmax probabilities, M × (S+1), column 0 = stay local.
    probs: Vec<f64>,
    /// b_ms after the server normalisation (M × S).
    normalised: Vec<f64>,
    /// c_s, the column sums before normalisation (S).
    column_sums: Vec<f64>,
    /// L_m, row loads in bits (M).
    loads: Vec<f64>,
    /// g_m, the queue-cap factor (M).
    caps: Vec<f64>,
}

/// μ (M × S) for raw scores `scores` (M × (S+1)); fills `tape` for
/// [`backward`]. `scores` must be finite (the architectures guarantee it).
pub fn forward(scores: &[f64], links: &Links, tape: &mut ProjectionTape) -> Vec<f64> {
    let (m_count, s_count) = (links.devices, links.servers);
    let width = s_count + 1;
    debug_assert_eq!(scores.len(), m_count * width);
    tape.probs.clear();
    tape.probs.resize(m_count * width, 0.0);
    for (m, (z, p)) in scores.chunks_exact(width).zip(tape.probs.chunks_exact_mut(width)).enumerate() {
        let open = &links.open[m * s_count..(m + 1) * s_count];
        let is_open = |j: usize| j == 0 || open[j - 1];
        let top = (0..width).filter(|&j| is_open(j)).map(|j| z[j]).fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        for (j, (pi, &zi)) in p.iter_mut().zip(z).enumerate() {
            *pi = if is_open(j) { (zi - top).exp() } else { 0.0 };
            total += *pi;
        }
        for pi in p.iter_mut() {
            *pi /= total;
        }
    }
    tape.column_sums.clear();
    tape.column_sums.resize(s_count, 0.0);
    for p in tape.probs.chunks_exact(width) {
        for (c, &a) in tape.column_sums.iter_mut().zip(&p[1..]) {
            *c += a;
        }
    }
    tape.normalised.clear();
    tape.normalised.resize(m_count * s_count, 0.0);
    for (p, b) in tape.probs.chunks_exact(width).zip(tape.normalised.chunks_exact_mut(s_count.max(1))) {
        for ((bi, &a), &c) in b.iter_mut().zip(&p[1..]).zip(&tape.column_sums) {
            *bi = if c > 1.0 { a / c } else { a };
        }
    }
    tape.loads.clear();
    tape.caps.clear();
    let mut mu = vec![0.0; m_count * s_count];
    for m in 0..m_count {
        let row = m * s_count..(m + 1) * s_count;
        let load: f64 = tape.normalised[row.clone()]
            .iter()
            .zip(&links.slot_bits[row.clone()])
            .map(|(b, t)| b * t)
            .sum();
        let q = links.queue_bits[m].max(0.0);
        let g = if load > q { q / load } else { 1.0 };
        for (u, &b) in mu[row.clone()].iter_mut().zip(&tape.normalised[row]) {
            *u = b * g;
        }
        tape.loads.push(load);
        tape.caps.push(g);
    }
    mu
}

/// ∂loss/∂scores (M × (S+1)) from ∂loss/∂μ (M × S), for the tape of the
/// last [`forward`] on `links`.
pub fn backward(d_mu: &[f64], links: &Links, tape: &ProjectionTape) -> Vec<f64> {
    let (m_count, s_count) = (links.devices, links.servers);
    let width = s_count + 1;
    // Step 3: μ = b g, g = Q / L where capped.
    let mut d_b = vec![0.0; m_count * s_count];
    for m in 0..m_count {
        let row = m * s_count..(m + 1) * s_count;
        let g = tape.caps[m];
        let capped = tape.loads[m] > links.queue_bits[m].max(0.0);
        let d_g: f64 = d_mu[row.clone()]
            .iter()
            .zip(&tape.normalised[row.clone()])
            .map(|(d, b)| d * b)
            .sum();
        let dg_dl = if capped {
            -links.queue_bits[m].max(0.0) / (tape.loads[m] * tape.loads[m])
        } else {
            0.0
        };
        for s in 0..s_count {
            let k = m * s_count + s;
            d_b[k] = d_mu[k] * g + d_g * dg_dl * links.slot_bits[k];
        }
    }
    // Step 2: b = a / c_s where c_s > 1.
    let mut col_dot = vec![0.0; s_count];
    for m in 0..m_count {
        for s in 0..s_count {
            col_dot[s] += d_b[m * s_count + s] * tape.probs[m * width + 1 + s];
        }
    }
    let mut d_scores = vec![0.0; m_count * width];
    for m in 0..m_count {
        let p = &tape.probs[m * width..(m + 1) * width];
        let mut d_p = vec![0.0; width];
        for s in 0..s_count {
            let c = tape.column_sums[s];
            let db = d_b[m * s_count + s];
            d_p[1 + s] = if c > 1.0 { db / c - col_dot[s] / (c * c) } else { db };
        }
        // Step 1: softmax.
        let inner: f64 = p.iter().zip(&d_p).map(|(a, b)| a * b).sum();
        for j in 0..width {
            d_scores[m * width + j] = p[j] * (d_p[j] - inner);
        }
    }
    d_scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn links(devices: usize, servers: usize, slot_bits: Vec<f64>, queue_bits: Vec<f64>) -> Links {
        let open = (0..devices * servers).map(|k| k % 5 != 3).collect();
        Links { devices, servers, slot_bits, queue_bits, open }
    }

    fn arb_case() -> impl Strategy<Value = (Links, Vec<f64>)> {
        (1usize..7, 1usize..5).prop_flat_map(|(m, s)| {
            (
                prop::collection::vec(0.0f64..5e5, m * s),
                prop::collection::vec(0.0f64..8e5, m),
                prop::collection::vec(-30.0f64..30.0, m * (s + 1)),
            )
                .prop_map(move |(t, q, z)| (links(m, s, t, q), z))
        })
    }

    proptest! {
        #[test]
        fn projection_is_always_feasible((links, scores) in arb_case()) {
            let mut tape = ProjectionTape::default();
            let mu = forward(&scores, &links, &mut tape);
            let s_count = links.servers;
            for m in 0..links.devices {
                let row = &mu[m * s_count..(m + 1) * s_count];
                prop_assert!(row.iter().all(|u| u.is_finite() && *u >= 0.0 && *u <= 1.0));
                for (s, u) in row.iter().enumerate() {
                    prop_assert!(links.open[m * s_count + s] || *u == 0.0, "closed link ({m}, {s}) used");
                }
                prop_assert!(row.iter().sum::<f64>() <= 1.0 + 1e-12);
                let load: f64 = row.iter().zip(&links.slot_bits[m * s_count..(m + 1) * s_count]).map(|(u, t)| u * t).sum();
                prop_assert!(load <= links.queue_bits[m] * (1.0 + 1e-12) + 1e-9, "load {load} > Q {}", links.queue_bits[m]);
            }
            for s in 0..s_count {
                let col: f64 = (0..links.devices).map(|m| mu[m * s_count + s]).sum();
                prop_assert!(col <= 1.0 + 1e-12, "column {s} sums to {col}");
            }
        }

        #[test]
        fn backward_matches_finite_differences((links, scores) in arb_case(), seed in 0u64..1000) {
            let d_mu: Vec<f64> = (0..links.devices * links.servers)
                .map(|k| ((k as f64 + 1.0) * 0.7 + seed as f64).sin())
                .collect();
            let value = |z: &[f64]| {
                let mut t = ProjectionTape::default();
                forward(z, &links, &mut t).iter().zip(&d_mu).map(|(a, b)| a * b).sum::<f64>()
            };
            let mut tape = ProjectionTape::default();
            forward(&scores, &links, &mut tape);
            let grad = backward(&d_mu, &links, &tape);
            let h = 1e-6;
            for k in 0..scores.len() {
                let mut up = scores.clone();
                up[k] += h;
                let mut down = scores.clone();
                down[k] -= h;
                // Skip coordinates whose ±h step crosses a kink (c_s = 1 or L_m = Q_m).
                let (mut t_up, mut t_down) = (ProjectionTape::default(), ProjectionTape::default());
                forward(&up, &links, &mut t_up);
                forward(&down, &links, &mut t_down);
                let same_piece = t_up.column_sums.iter().zip(&t_down.column_sums).all(|(a, b)| (*a > 1.0) == (*b > 1.0))
                    && t_up.caps.iter().zip(&t_down.caps).all(|(a, b)| (*a < 1.0) == (*b < 1.0));
                if !same_piece {
                    continue;
                }
                let fd = (value(&up) - value(&down)) / (2.0 * h);
                prop_assert!((fd - grad[k]).abs() <= 1e-6 * (1.0 + fd.abs()), "score {k}: analytic {} vs fd {fd}", grad[k]);
            }
        }
    }

    #[test]
    fn every_step_is_active_in_one_case() {
        // Two devices both favour server 0 (column normalisation binds) and
        // device 1's queue is short (cap binds).
        let links = links(2, 1, vec![1e5, 1e5], vec![1e6, 2e4]);
        let scores = vec![0.0, 3.0, 0.0, 3.0];
        let mut tape = ProjectionTape::default();
        let mu = forward(&scores, &links, &mut tape);
        assert!(tape.column_sums[0] > 1.0);
        assert!(tape.caps[1] < 1.0);
        assert!((mu[1] - 0.2).abs() < 1e-12, "device 1 capped at Q/T = 0.2, got {}", mu[1]);
        let d_mu = vec![1.0, -0.5];
        let grad = backward(&d_mu, &links, &tape);
        let h = 1e-6;
        for k in 0..4 {
            let mut up = scores.clone();
            up[k] += h;
            let mut down = scores.clone();
            down[k] -= h;
            let f = |z: &[f64]| {
                let mut t = ProjectionTape::default();
                let u = forward(z, &links, &mut t);
                u[0] * d_mu[0] + u[1] * d_mu[1]
            };
            let fd = (f(&up) - f(&down)) / (2.0 * h);
            assert!((fd - grad[k]).abs() < 1e-7, "score {k}: {} vs {fd}", grad[k]);
        }
    }
}
