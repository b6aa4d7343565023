//! The external policy protocol (`qmec.policy.v1`) on the model's side: a
//! slot's request built from the state every built-in policy sees, and a
//! service's answer checked into a model [`Decision`]. The service is
//! another program, possibly written by someone else in another language,
//! so its answer is trusted no more than any other message: shape, NaN and
//! range are checked here (an error names the field), and the controller
//! then applies [`Decision::check`] as to every policy's decision.

use crate::policy_pb;
use crate::validate::Invalid;
use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Decision, Matrix, Scenario, SystemState};

/// What every request of a run repeats: the sizes and the scenario's TOML,
/// worked out once.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    sizes: policy_pb::Sizes,
    scenario_toml: String,
}

impl RequestTemplate {
    pub fn new(scenario: &Scenario) -> RequestTemplate {
        let sizes = policy_pb::Sizes {
            devices: scenario.devices as u32,
            servers: scenario.servers as u32,
            slot_seconds: scenario.slot_seconds,
            server_cpu_hz: scenario.server.cpu_hz,
            cycles_per_bit: scenario.device.cycles_per_bit,
            tx_power_w: scenario.device.tx_power_w,
            v: scenario.control.v,
            omega: scenario.control.omega,
            queue_unit_bits: scenario.control.queue_unit_bits,
        };
        RequestTemplate { sizes, scenario_toml: scenario.to_toml() }
    }

    /// The request for `state`'s slot.
    pub fn request(&self, scenario: &Scenario, state: &SystemState) -> policy_pb::PolicyRequest {
        let matrix = |m: &Matrix| m.as_slice().to_vec();
        policy_pb::PolicyRequest {
            slot: state.slot,
            sizes: Some(self.sizes),
            state: Some(policy_pb::SystemState {
                queue_bits: state.queue_bits.clone(),
                virtual_bits: state.virtual_bits.clone(),
                server_bits: state.server_bits.clone(),
                server_device_bits: matrix(&state.server_device_bits),
                gains: matrix(&state.gains),
                rates_bps: matrix(&state.rates_bps),
                dpp_weights: matrix(&dpp_weights(scenario, state)),
            }),
            scenario_toml: self.scenario_toml.clone(),
        }
    }
}

/// A service's answer for `state`'s slot as a decision: the slot must be
/// the one asked, μ an M×S matrix of shares in [0, 1], and the CPU split
/// empty (the default split) or an M×S matrix of frequencies in [0, F_s].
/// The sums (one radio, one channel, F_s per server) are
/// [`Decision::check`]'s.
pub fn decision(answer: &policy_pb::PolicyDecision, scenario: &Scenario, state: &SystemState) -> Result<Decision, Invalid> {
    if answer.slot != state.slot {
        return Err(Invalid::new("decision.slot", format!("answers slot {}, the request was for slot {}", answer.slot, state.slot)));
    }
    let (devices, servers) = (state.devices(), state.servers());
    let offload = matrix("decision.offload", &answer.offload, devices, servers, 1.0)?;
    if answer.cpu_hz.is_empty() {
        return Ok(Decision::with_default_cpu(scenario, state, offload));
    }
    let cpu_hz = matrix("decision.cpu_hz", &answer.cpu_hz, devices, servers, scenario.server.cpu_hz)?;
    Ok(Decision { offload, cpu_hz })
}

/// `values` as a `rows`×`cols` matrix of finite values in [0, `max`].
fn matrix(field: &str, values: &[f64], rows: usize, cols: usize, max: f64) -> Result<Matrix, Invalid> {
    if values.len() != rows * cols {
        return Err(Invalid::new(
            field,
            format!("must have {rows}×{cols} = {} entries (row-major, device by device), got {}", rows * cols, values.len()),
        ));
    }
    if let Some(i) = values.iter().position(|v| !(v.is_finite() && (0.0..=max).contains(v))) {
        let (m, s) = (i / cols, i % cols);
        return Err(Invalid::new(format!("{field}[{i}]"), format!("(device {m}, server {s}) must be in [0, {max}], got {}", values[i])));
    }
    Matrix::from_vec(rows, cols, values.to_vec()).ok_or_else(|| Invalid::new(field, "not a matrix"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::builtin("paper-small").unwrap().resized(3, 2).unwrap()
    }

    fn state(scenario: &Scenario) -> SystemState {
        let gains = Matrix::from_fn(3, 2, |m, s| 1e-6 * (1 + m + s) as f64);
        let backlog = Matrix::from_fn(3, 2, |m, _| 1e3 * m as f64);
        SystemState::new(scenario, 7, vec![1e6, 2e6, 0.0], vec![0.0, 5e5, 0.0], backlog, gains)
    }

    fn answer(offload: Vec<f64>) -> policy_pb::PolicyDecision {
        policy_pb::PolicyDecision { slot: 7, offload, cpu_hz: Vec::new() }
    }

    #[test]
    fn a_request_carries_the_state_row_major() {
        let scenario = scenario();
        let state = state(&scenario);
        let request = RequestTemplate::new(&scenario).request(&scenario, &state);
        assert_eq!(request.slot, 7);
        let sizes = request.sizes.unwrap();
        assert_eq!((sizes.devices, sizes.servers, sizes.slot_seconds), (3, 2, scenario.slot_seconds));
        let wire = request.state.unwrap();
        assert_eq!(wire.queue_bits, state.queue_bits);
        assert_eq!(wire.gains[2 * 2 + 1], state.gains.get(2, 1), "entry (m, s) at m·S + s");
        assert_eq!(wire.rates_bps.len(), 6);
        assert_eq!(wire.dpp_weights[3], dpp_weights(&scenario, &state).get(1, 1));
        assert_eq!(Scenario::from_toml(&request.scenario_toml).unwrap(), scenario);
    }

    #[test]
    fn a_good_answer_becomes_the_decision_with_the_default_cpu_split() {
        let scenario = scenario();
        let state = state(&scenario);
        let decision = decision(&answer(vec![0.5, 0.0, 0.0, 0.5, 0.0, 0.0]), &scenario, &state).unwrap();
        assert_eq!(decision.offload.get(1, 1), 0.5);
        assert_eq!(decision, Decision::with_default_cpu(&scenario, &state, decision.offload.clone()));
        let cpu = policy_pb::PolicyDecision { cpu_hz: vec![0.0; 6], ..answer(vec![0.0; 6]) };
        assert_eq!(super::decision(&cpu, &scenario, &state).unwrap().cpu_hz, Matrix::zeros(3, 2));
    }

    #[test]
    fn a_bad_answer_names_the_field() {
        let scenario = scenario();
        let state = state(&scenario);
        let field = |answer: policy_pb::PolicyDecision| decision(&answer, &scenario, &state).unwrap_err().field;
        assert_eq!(field(policy_pb::PolicyDecision { slot: 6, ..answer(vec![0.0; 6]) }), "decision.slot");
        assert_eq!(field(answer(vec![0.0; 5])), "decision.offload");
        assert_eq!(field(answer(vec![0.0, 0.0, 0.0, f64::NAN, 0.0, 0.0])), "decision.offload[3]");
        assert_eq!(field(answer(vec![0.0, 0.0, 0.0, 0.0, 1.5, 0.0])), "decision.offload[4]");
        assert_eq!(field(answer(vec![-0.1, 0.0, 0.0, 0.0, 0.0, 0.0])), "decision.offload[0]");
        let short_cpu = policy_pb::PolicyDecision { cpu_hz: vec![1.0; 2], ..answer(vec![0.0; 6]) };
        assert_eq!(field(short_cpu), "decision.cpu_hz");
        let too_fast = policy_pb::PolicyDecision { cpu_hz: vec![scenario.server.cpu_hz * 2.0; 6], ..answer(vec![0.0; 6]) };
        assert_eq!(field(too_fast), "decision.cpu_hz[0]");
        let invalid = decision(&answer(vec![0.0, 0.0, 0.0, 0.0, 1.5, 0.0]), &scenario, &state).unwrap_err();
        assert!(invalid.reason.contains("device 2, server 0"), "{invalid}");
    }

    #[test]
    fn shares_that_overfill_a_channel_pass_here_and_fail_the_models_check() {
        let scenario = scenario();
        let state = state(&scenario);
        let decision = decision(&answer(vec![0.8, 0.0, 0.8, 0.0, 0.0, 0.0]), &scenario, &state).unwrap();
        assert!(decision.check(&scenario, &state).is_err());
    }
}
