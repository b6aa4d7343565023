//! The two training losses, and the projection's decision.
//!
//! * [`exact_loss`]: imitation of the exact per-slot decision. Each open
//!   pair's logit z_ms = score_m,s − score_m,local (see [`crate::candidates`])
//!   is pushed by binary cross-entropy towards "this pair carries share in
//!   the LP optimum". That is what the candidates need (a ranking whose top
//!   is the optimum's support), it is the same target the controller learns
//!   from online (exact decisions of sampled slots), and unlike the DPP
//!   loss through the softmax projection it does not reward spreading a
//!   channel over many devices.
//! * [`dpp_loss`], below: the DPP bound through the differentiable projection.
//!
//! For one state, loss = −Σ Ψ_ms μ_ms(θ) / max|Ψ|, where μ is the
//! projected decision. Normalising Ψ per state keeps every state's weights
//! in [-1, 1], so states with large backlogs (large Ψ) do not drown the rest
//! of a mini-batch and the gradient scale does not drift as queues grow.
//! (Dividing by each state's LP optimum instead, which would make the loss
//! read as −share of the optimum, was tried and rejected: states whose
//! optimum is small but whose Ψ is strongly negative elsewhere then get
//! weights of order 10–100 and dominate training.)

use crate::features::StateInput;
use crate::projection::{self, ProjectionTape};

/// Loss and ∂loss/∂scores for one state's raw scores.
pub fn dpp_loss(input: &StateInput, norm: f64, scores: &[f64]) -> (f64, Vec<f64>) {
    let mut tape = ProjectionTape::default();
    let mu = projection::forward(scores, &input.links, &mut tape);
    let loss = -input.psi.iter().zip(&mu).map(|(p, u)| p * u).sum::<f64>() / norm;
    let d_mu: Vec<f64> = input.psi.iter().map(|p| -p / norm).collect();
    (loss, projection::backward(&d_mu, &input.links, &tape))
}

/// Shares above this count as the optimum's support.
pub const SUPPORT_SHARE: f64 = 1e-6;

/// Mean binary cross-entropy of the open pairs' logits against the support
/// of the exact decision `target` (M × S), and ∂loss/∂scores.
pub fn exact_loss(input: &StateInput, target: &[f64], scores: &[f64]) -> (f64, Vec<f64>) {
    let (m_count, s_count) = (input.devices(), input.servers());
    let width = s_count + 1;
    let open = input.links.open.iter().filter(|&&o| o).count().max(1) as f64;
    let mut loss = 0.0;
    let mut d_scores = vec![0.0; scores.len()];
    for m in 0..m_count {
        for s in 0..s_count {
            let pair = m * s_count + s;
            if !input.links.open[pair] {
                continue;
            }
            let z = scores[m * width + 1 + s] - scores[m * width];
            let y = if target[pair] > SUPPORT_SHARE { 1.0 } else { 0.0 };
            // −[y ln σ(z) + (1−y) ln(1 − σ(z))], written stably.
            loss += z.max(0.0) - y * z + (-z.abs()).exp().ln_1p();
            let d = (sigmoid(z) - y) / open;
            d_scores[m * width + 1 + s] += d;
            d_scores[m * width] -= d;
        }
    }
    (loss / open, d_scores)
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) }
}
