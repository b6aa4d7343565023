//! The structured solver against microlp on random instances: the same
//! optimum (within 1e-9 relative), feasible shares, and a certificate (the
//! dual bound) that meets the optimum.

use proptest::prelude::*;
use qmec_model::{Matrix, Scenario, SystemState};
use qmec_policies::fill::SlotLimits;
use qmec_policies::{Certified, solve_dpp_exact, solve_dpp_lp, solve_exact, solve_on_pairs};

/// Violations up to this are rounding.
const EPS: f64 = 1e-9;

/// An instance: weights Ψ, slot bits b and queues Q. Weights come from a
/// few values half of the time (ties), and include 0 and negatives; queues
/// range from empty through tight (below one slot's bits) to loose. (Nearly
/// empty queues are tested on their own: microlp's absolute tolerance lets
/// it overshoot them.)
fn instance() -> impl Strategy<Value = (usize, Vec<f64>, Vec<f64>, Vec<f64>)> {
    (1usize..=40, 1usize..=6).prop_flat_map(|(m, s)| {
        let weight = prop_oneof![Just(0.0), Just(1.0), Just(2.5), -5.0f64..0.0, 0.0f64..10.0];
        let bits = prop_oneof![Just(0.0), Just(4.0), 0.5f64..10.0];
        let queue = prop_oneof![Just(0.0), 0.0f64..4.0, 0.0f64..30.0];
        (Just(s), prop::collection::vec(weight, m * s), prop::collection::vec(bits, m * s), prop::collection::vec(queue, m))
    })
}

fn assert_feasible(mu: &[f64], limits: &SlotLimits<'_>) -> Result<(), TestCaseError> {
    let servers = limits.servers;
    for (m, row) in mu.chunks(servers).enumerate() {
        prop_assert!(row.iter().all(|&u| (-EPS..=1.0 + EPS).contains(&u)), "device {m}: share out of [0, 1]: {row:?}");
        prop_assert!(row.iter().sum::<f64>() <= 1.0 + EPS, "device {m}: radio over 1: {row:?}");
        let sent: f64 = row.iter().zip(&limits.slot_bits[m * servers..]).map(|(u, b)| u * b).sum();
        prop_assert!(sent <= limits.queue_bits[m] + EPS * limits.queue_bits[m].max(1.0), "device {m}: sends {sent} > Q {}", limits.queue_bits[m]);
    }
    for s in 0..servers {
        let load: f64 = mu.iter().skip(s).step_by(servers).sum();
        prop_assert!(load <= 1.0 + EPS, "server {s}: channel at {load}");
    }
    Ok(())
}

fn assert_certified(certified: &Certified, reference: f64, weights: &[f64]) -> Result<(), TestCaseError> {
    let scale = reference.abs().max(1.0);
    let value: f64 = weights.iter().zip(&certified.mu).map(|(w, u)| w * u).sum();
    prop_assert!((value - certified.value).abs() <= EPS * scale, "reported {} but μ gives {value}", certified.value);
    prop_assert!((certified.value - reference).abs() <= EPS * scale, "exact {} vs microlp {reference}", certified.value);
    prop_assert!(certified.bound >= certified.value - EPS, "bound {} below value {}", certified.bound, certified.value);
    prop_assert!(certified.gap() <= EPS * scale, "gap {}", certified.gap());
    prop_assert!(certified.prices.iter().all(|&p| p >= 0.0), "negative price in {:?}", certified.prices);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_structured_optimum_is_microlps_and_certified((servers, weights, slot_bits, queue_bits) in instance()) {
        let limits = SlotLimits { servers, slot_bits: &slot_bits, queue_bits: &queue_bits };
        let all: Vec<usize> = (0..weights.len()).collect();
        let (_, reference) = solve_on_pairs(&weights, &limits, 1.0, &all).expect("microlp solves");
        let certified = solve_exact(&weights, &limits).expect("solves");
        assert_feasible(&certified.mu, &limits)?;
        assert_certified(&certified, reference, &weights)?;
    }
}

fn paper_state(devices: usize, servers: usize, queues: &[f64], virtuals: &[f64], gains: &[f64]) -> (Scenario, SystemState) {
    let mut scenario = Scenario::paper();
    scenario.devices = devices;
    scenario.servers = servers;
    let state = SystemState::new(
        &scenario,
        0,
        queues.to_vec(),
        virtuals.to_vec(),
        Matrix::zeros(devices, servers),
        Matrix::from_vec(devices, servers, gains.to_vec()).expect("M × S gains"),
    );
    (scenario, state)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// On the paper scenario's own weights and bits (Ψ of order 1e5 and
    /// more), `lyapunov` and `lyapunov-lp` reach the same optimum.
    #[test]
    fn on_paper_states_the_structured_solver_matches_microlp(
        (m, s, queues, virtuals, gains) in (1usize..30, 1usize..6).prop_flat_map(|(m, s)| (
            Just(m),
            Just(s),
            prop::collection::vec(prop_oneof![Just(0.0), 0.0f64..5e6], m),
            prop::collection::vec(0.0f64..5e6, m),
            prop::collection::vec(prop_oneof![Just(0.0), 1e-11f64..1e-6], m * s),
        ))
    ) {
        let (scenario, state) = paper_state(m, s, &queues, &virtuals, &gains);
        let (_, reference) = solve_dpp_lp(&scenario, &state).expect("microlp solves");
        let (offload, certified) = solve_dpp_exact(&scenario, &state).expect("solves");
        let weights = qmec_model::lyapunov::dpp_weights(&scenario, &state);
        prop_assert!((weights.dot(&offload) - certified.value).abs() <= EPS * certified.value.abs().max(1.0));
        assert_certified(&certified, reference, weights.as_slice())?;
    }
}

/// A queue of 1e-7 bits caps the fast server's share at Q/b and leaves the
/// rest of the radio to the free one: 1 + (Ψ₁ − Ψ₀)·Q/b₁ exactly. (microlp
/// returns 1.00000018 here, sending 2.4e-8 bits more than the queue holds.)
#[test]
fn a_nearly_empty_queue_caps_the_share_exactly() {
    let (weights, slot_bits, queue_bits) = ([1.0, 5.227681349960477], [0.0, 2.913328404292249], [1e-7]);
    let limits = SlotLimits { servers: 2, slot_bits: &slot_bits, queue_bits: &queue_bits };
    let certified = solve_exact(&weights, &limits).expect("solves");
    let expected = 1.0 + (weights[1] - weights[0]) * queue_bits[0] / slot_bits[1];
    assert!((certified.value - expected).abs() <= 1e-15, "{} vs {expected}", certified.value);
    assert!(certified.gap() <= 1e-15 && certified.gap() >= -1e-15, "gap {}", certified.gap());
    assert!(certified.mu[1] * slot_bits[1] <= queue_bits[0] * (1.0 + 1e-12), "sends {}", certified.mu[1] * slot_bits[1]);
}

#[test]
fn weights_of_the_wrong_size_are_refused_by_name() {
    let limits = SlotLimits { servers: 2, slot_bits: &[1.0; 4], queue_bits: &[1.0; 2] };
    let error = solve_exact(&[1.0; 3], &limits).expect_err("3 weights for 2 × 2");
    assert!(error.to_string().contains("weights has 3 entries"), "{error}");
}

#[test]
fn a_negative_queue_is_refused_by_name() {
    let limits = SlotLimits { servers: 1, slot_bits: &[1.0], queue_bits: &[-1.0] };
    let error = solve_exact(&[1.0], &limits).expect_err("negative queue");
    assert!(error.to_string().contains("queue_bits[0]"), "{error}");
}
