//! The shipped per-link model: it loads and decides at every size, and on
//! held-out states (rollout seeds no training run uses) its own candidates
//! reach the quality the README promises: a mean share of the LP optimum of
//! at least 0.99 and a 5th percentile of at least 0.97, at 10 × 3 and
//! 100 × 10, and at 1000 × 50, a size it never saw in training.

use qmec_model::{Decision, Policy, Scenario};
use qmec_qnn::candidates::Critic;
use qmec_qnn::dataset::{collect_states, prepare};
use qmec_qnn::train::validate;
use qmec_qnn::{LearnedPolicy, shipped};

/// Far from the training seeds (seed + 7919·i and their validation offset).
const HELD_OUT_SEED: u64 = 0x00c0_ffee_0000_0001;

fn quality_holds(devices: usize, servers: usize, states: usize) {
    let scenario = Scenario::paper().resized(devices, servers).expect("valid size");
    let (file, network) = shipped::per_link().expect("the shipped model loads");
    let held_out = collect_states(&scenario, states, HELD_OUT_SEED).expect("rollouts");
    let samples = prepare(&scenario, &held_out, &file.scales).expect("labelled");
    let validation = validate(&network, &samples).expect("scores");
    assert!(validation.states >= states / 2, "{devices}x{servers}: only {} states with something to offload", validation.states);
    assert!(
        validation.mean_share >= 0.99 && validation.p5_share >= 0.97,
        "{devices}x{servers}: mean share {:.4}, 5th percentile {:.4}",
        validation.mean_share,
        validation.p5_share
    );
}

#[test]
fn the_shipped_model_reaches_the_optimum_at_10x3() {
    quality_holds(10, 3, 200);
}

#[test]
fn the_shipped_model_reaches_the_optimum_at_100x10() {
    quality_holds(100, 10, 100);
}

#[test]
fn the_shipped_model_reaches_the_optimum_at_1000x50_which_it_never_saw() {
    quality_holds(1000, 50, 12);
}

#[test]
fn the_shipped_model_decides_feasibly_at_any_size() {
    for (devices, servers) in [(1, 1), (3, 2), (10, 3), (50, 10), (7, 20)] {
        let scenario = Scenario::paper().resized(devices, servers).expect("valid size");
        let mut policy = LearnedPolicy::from_file("qnn", shipped::per_link().expect("loads"), shipped::ORIGIN, &scenario)
            .expect("per-link fits any size");
        for state in collect_states(&scenario, 5, 3).expect("rollouts") {
            let decision: Decision = policy.decide(&scenario, &state).expect("decides");
            decision.check(&scenario, &state).expect("feasible");
        }
        assert_eq!(policy.wins().total(), 5);
    }
}

#[test]
fn the_critic_never_returns_less_than_its_first_candidate() {
    let scenario = Scenario::paper().resized(30, 5).expect("valid size");
    let (file, network) = shipped::per_link().expect("loads");
    let states = collect_states(&scenario, 20, 11).expect("rollouts");
    for sample in prepare(&scenario, &states, &file.scales).expect("labelled") {
        let scores = network.arch().scores(&sample.input).expect("scores");
        let first = Critic::new(1, false).choose_from_network(&sample.input, &scores).value;
        let best = Critic::new(3, true).choose_from_network(&sample.input, &scores).value;
        assert!(best >= first - 1e-12 && best <= sample.lp_value * (1.0 + 1e-9) + 1e-12, "{first} {best} {}", sample.lp_value);
    }
}
