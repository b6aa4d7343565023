//! Every classical policy's decision obeys the constraints on any state, and
//! the LP is optimal against a brute-force search on tiny instances.

use proptest::prelude::*;
use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Matrix, Scenario, SystemState};
use qmec_policies::fill::{SlotLimits, slot_bits_and_queues};
use qmec_policies::{CLASSICAL, REFERENCE, classical, solve_dpp_lp, solve_on_pairs};

fn scenario(devices: usize, servers: usize, v: f64) -> Scenario {
    let mut scenario = Scenario::paper();
    scenario.devices = devices;
    scenario.servers = servers;
    scenario.control.v = v;
    scenario
}

fn state(scenario: &Scenario, queues: &[f64], virtuals: &[f64], server_bits: &[f64], gains: &[f64]) -> SystemState {
    let (m, s) = (scenario.devices, scenario.servers);
    SystemState::new(
        scenario,
        0,
        queues[..m].to_vec(),
        virtuals[..m].to_vec(),
        Matrix::from_fn(m, s, |i, j| server_bits[i * s + j]),
        Matrix::from_fn(m, s, |i, j| gains[i * s + j]),
    )
}

fn arbitrary_state() -> impl Strategy<Value = (Scenario, SystemState)> {
    (1usize..6, 1usize..5, 0.0f64..1e4).prop_flat_map(|(m, s, v)| {
        (
            prop::collection::vec(prop_oneof![Just(0.0), 0.0f64..5e6], m),
            prop::collection::vec(0.0f64..5e6, m),
            prop::collection::vec(prop_oneof![Just(0.0), 0.0f64..1e6], m * s),
            prop::collection::vec(prop_oneof![Just(0.0), 1e-11f64..1e-6], m * s),
        )
            .prop_map(move |(q, h, z, g)| {
                let scenario = scenario(m, s, v);
                let state = state(&scenario, &q, &h, &z, &g);
                (scenario, state)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_policy_decides_within_the_constraints((scenario, state) in arbitrary_state()) {
        for name in CLASSICAL.into_iter().chain(REFERENCE) {
            let mut policy = classical(name, 7).expect("known policy");
            let decision = policy.decide(&scenario, &state).expect("classical policies always decide");
            prop_assert!(decision.check(&scenario, &state).is_ok(), "{name}: {:?}", decision.check(&scenario, &state));
            for m in 0..state.devices() {
                let sent: f64 = (0..state.servers())
                    .map(|s| decision.offload.get(m, s) * scenario.slot_seconds * state.rates_bps.get(m, s))
                    .sum();
                // The queue cap holds up to the LP's numerical tolerance.
                prop_assert!(sent <= state.queue_bits[m] * (1.0 + 1e-6) + 1.0, "{name}: device {m} sends {sent} > Q {}", state.queue_bits[m]);
            }
        }
    }

    #[test]
    fn lp_beats_every_other_policy_on_the_dpp_bound((scenario, state) in arbitrary_state()) {
        let weights = dpp_weights(&scenario, &state);
        let (_, optimum) = solve_dpp_lp(&scenario, &state).expect("LP solves");
        for name in CLASSICAL.into_iter().chain(REFERENCE) {
            let decision = classical(name, 3).expect("known").decide(&scenario, &state).expect("decides");
            let value = weights.dot(&decision.offload);
            prop_assert!(value <= optimum + 1e-6 * optimum.abs().max(1.0), "{name}: {value} > LP {optimum}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// On every pair the restricted LP is the LP; on a subset it is feasible,
    /// uses only that subset and reaches at most the optimum.
    #[test]
    fn the_lp_on_a_subset_of_pairs_is_feasible_and_bounded_by_the_optimum(
        (scenario, state) in arbitrary_state(),
        keep in prop::collection::vec(any::<bool>(), 20),
    ) {
        let weights = dpp_weights(&scenario, &state);
        let (_, optimum) = solve_dpp_lp(&scenario, &state).expect("LP solves");
        let (slot_bits, queue_bits) = slot_bits_and_queues(&scenario, &state);
        let limits = SlotLimits { servers: state.servers(), slot_bits: &slot_bits, queue_bits: &queue_bits };
        let unit = scenario.control.queue_unit_bits;
        let all: Vec<usize> = (0..weights.as_slice().len()).collect();
        let (_, everything) = solve_on_pairs(weights.as_slice(), &limits, unit, &all).expect("solves");
        prop_assert!((everything - optimum).abs() <= 1e-9 * optimum.abs().max(1.0));
        let subset: Vec<usize> = all.iter().copied().filter(|&k| keep[k % keep.len()]).collect();
        let (mu, value) = solve_on_pairs(weights.as_slice(), &limits, unit, &subset).expect("solves");
        prop_assert!(value <= optimum + 1e-6 * optimum.abs().max(1.0));
        let offload = Matrix::from_vec(state.devices(), state.servers(), mu).expect("shape");
        prop_assert!(qmec_model::Decision::with_default_cpu(&scenario, &state, offload.clone()).check(&scenario, &state).is_ok());
        for (k, share) in offload.as_slice().iter().enumerate() {
            prop_assert!(*share == 0.0 || subset.contains(&k), "pair {k} outside the subset got {share}");
        }
    }
}

/// The LP optimum equals the best point of a fine grid over μ on 2×2
/// instances, up to the grid's resolution.
#[test]
fn lp_matches_brute_force_on_tiny_instances() {
    const STEPS: usize = 20;
    let grid: Vec<f64> = (0..=STEPS).map(|i| i as f64 / STEPS as f64).collect();
    let cases = [
        ([3e6, 1e5], [0.0, 2e6], [1e-7, 3e-8, 5e-8, 2e-7], 1000.0),
        ([4e5, 4e5], [1e6, 0.0], [2e-7, 2e-7, 1e-9, 3e-7], 100.0),
        ([5e6, 5e6], [5e6, 5e6], [1e-8, 1e-6, 1e-6, 1e-8], 10.0),
        ([2e5, 0.0], [0.0, 0.0], [5e-7, 5e-7, 5e-7, 5e-7], 1.0),
    ];
    for (queues, virtuals, gains, v) in cases {
        let scenario = scenario(2, 2, v);
        let state = state(&scenario, &queues, &virtuals, &[0.0; 4], &gains);
        let weights = dpp_weights(&scenario, &state);
        let (offload, optimum) = solve_dpp_lp(&scenario, &state).expect("LP solves");
        assert!(feasible(&scenario, &state, &offload), "LP answer infeasible: {offload:?}");

        let mut best = 0.0f64;
        for &a in &grid {
            for &b in &grid {
                for &c in &grid {
                    for &d in &grid {
                        let mu = Matrix::from_vec(2, 2, vec![a, b, c, d]).expect("2×2");
                        if feasible(&scenario, &state, &mu) {
                            best = best.max(weights.dot(&mu));
                        }
                    }
                }
            }
        }
        // A grid point within 1/STEPS of the optimum in every coordinate is
        // feasible after rounding down, so the gap is at most Σ|Ψ|/STEPS.
        let resolution: f64 = weights.as_slice().iter().map(|w| w.abs()).sum::<f64>() / STEPS as f64;
        assert!(optimum >= best - 1e-9, "LP {optimum} below grid {best}");
        assert!(optimum <= best + resolution, "LP {optimum} too far above grid {best} (resolution {resolution})");
    }
}

fn feasible(scenario: &Scenario, state: &SystemState, mu: &Matrix) -> bool {
    const EPS: f64 = 1e-9;
    (0..mu.rows()).all(|m| {
        let sent: f64 = (0..mu.cols()).map(|s| mu.get(m, s) * scenario.slot_seconds * state.rates_bps.get(m, s)).sum();
        mu.row_sum(m) <= 1.0 + EPS && sent <= state.queue_bits[m] * (1.0 + 1e-6) + EPS
    }) && (0..mu.cols()).all(|s| mu.col_sum(s) <= 1.0 + EPS)
}
