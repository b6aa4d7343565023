//! Turning "device m wants server s" choices into feasible shares: devices
//! that pick the same server split its channel equally, and no device is
//! given more than its queue can fill.

use qmec_model::{Decision, Matrix, Scenario, SystemState};

/// The decision from one choice per device (`None`: stay local), with the
/// default CPU split.
pub fn fair_split(scenario: &Scenario, state: &SystemState, choices: &[Option<usize>]) -> Decision {
    Decision::with_default_cpu(scenario, state, fair_shares(scenario, state, choices))
}

/// The shares μ alone from one choice per device.
pub fn fair_shares(scenario: &Scenario, state: &SystemState, choices: &[Option<usize>]) -> Matrix {
    let mut pickers = vec![0usize; state.servers()];
    for s in choices.iter().flatten() {
        pickers[*s] += 1;
    }
    let mut offload = Matrix::zeros(state.devices(), state.servers());
    for (m, choice) in choices.iter().enumerate() {
        if let Some(s) = *choice {
            let share = 1.0 / pickers[s] as f64;
            offload.set(m, s, share.min(state.queue_cap_share(scenario, m, s)));
        }
    }
    offload
}
