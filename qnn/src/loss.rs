//! The drift-plus-penalty loss and the decision every learned policy makes.
//!
//! For one state, loss = −Σ Ψ_ms μ_ms(θ) / max|Ψ|, where μ is the
//! projected decision. Normalising Ψ per state keeps every state's weights
//! in [-1, 1], so states with large backlogs (large Ψ) do not drown the rest
//! of a mini-batch and the gradient scale does not drift as queues grow.
//! (Dividing by each state's LP optimum instead, which would make the loss
//! read as −share of the optimum, was tried and rejected: states whose
//! optimum is small but whose Ψ is strongly negative elsewhere then get
//! weights of order 10–100 and dominate training.)

use crate::arch::Architecture;
use crate::error::Result;
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

/// The feasible decision μ (M × S) a network makes for a state.
pub fn decide(arch: &dyn Architecture, input: &StateInput) -> Result<Vec<f64>> {
    let scores = arch.scores(input)?;
    let mut tape = ProjectionTape::default();
    Ok(projection::forward(&scores, &input.links, &mut tape))
}

/// Σ Ψ μ, the DPP bound value of a decision.
pub fn dpp_value(input: &StateInput, mu: &[f64]) -> f64 {
    input.psi.iter().zip(mu).map(|(p, u)| p * u).sum()
}
