//! Lyapunov drift-plus-penalty. The per-slot bound on Δ(t) + V (P − ω R) is
//! linear in μ with weights
//!
//!   Ψ_ms = ((Q_m + H_m − [two-tier] Z_s) / u + V ω) · τ r_ms / u − V P_m τ,
//!
//! where u is the queue unit (bits), so each slot's problem is
//! max Σ Ψ_ms μ_ms under the decision constraints and the queue cap
//! Σ_s μ_ms τ r_ms ≤ Q_m. Every learned policy is scored against that LP.

use crate::Matrix;
use crate::policy::SystemState;
use crate::scenario::Scenario;

/// Ψ_ms for every device–server pair.
pub fn dpp_weights(scenario: &Scenario, state: &SystemState) -> Matrix {
    Matrix::from_fn(state.devices(), state.servers(), |m, s| dpp_weight(scenario, state, m, s))
}

/// Ψ_ms for one device–server pair.
fn dpp_weight(scenario: &Scenario, state: &SystemState, m: usize, s: usize) -> f64 {
    let control = &scenario.control;
    let unit = control.queue_unit_bits;
    let tau = scenario.slot_seconds;
    let energy_penalty = control.v * scenario.device.tx_power_w * tau;
    let mut backlog = state.queue_bits[m] + state.virtual_bits[m];
    if control.two_tier {
        backlog -= state.server_bits[s];
    }
    let pressure = backlog / unit + control.v * control.omega;
    pressure * tau * state.rates_bps.get(m, s) / unit - energy_penalty
}

/// Σ Ψ_ms μ_ms: the (negated) drift-plus-penalty bound a decision attains.
pub fn dpp_value(weights: &Matrix, offload: &Matrix) -> f64 {
    weights.dot(offload)
}

/// [`dpp_value`] of `offload` in `state`, without building Ψ: the simulator
/// records it every slot. The terms are summed in the same order as
/// [`Matrix::dot`], so the two give the same bits.
pub fn state_dpp_value(scenario: &Scenario, state: &SystemState, offload: &Matrix) -> f64 {
    let servers = state.servers();
    let pairs = state.devices() * servers;
    offload.as_slice().iter().take(pairs).enumerate().map(|(i, mu)| dpp_weight(scenario, state, i / servers, i % servers) * mu).sum()
}

/// Θ = ½ Σ (Q² + H²) (+ ½ Σ Z² when two-tier), in queue units squared.
pub fn lyapunov_function(scenario: &Scenario, state: &SystemState) -> f64 {
    let unit = scenario.control.queue_unit_bits;
    let device: f64 = state
        .queue_bits
        .iter()
        .zip(&state.virtual_bits)
        .map(|(q, h)| (q / unit).powi(2) + (h / unit).powi(2))
        .sum();
    let server: f64 = if scenario.control.two_tier {
        state.server_bits.iter().map(|z| (z / unit).powi(2)).sum()
    } else {
        0.0
    };
    0.5 * (device + server)
}
