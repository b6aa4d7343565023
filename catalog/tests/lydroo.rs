//! `lydroo` is built by name and learns: from seeded random weights, its
//! share of the LP optimum rises over a few hundred simulated slots (at
//! 150 × 4, where the open pairs far outnumber the critic's largest
//! support, so the share measures the actor's ranking).

#![allow(clippy::unwrap_used)]

use qmec_catalog::{PolicySpec, build};
use qmec_model::Scenario;

const SLOTS: u64 = 400;

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[test]
fn lydroo_raises_its_share_of_the_optimum_as_it_learns() {
    let scenario = Scenario::paper().resized(150, 4).unwrap();
    let mut policy = build(&PolicySpec::named("lydroo"), &scenario, 7).unwrap();
    assert_eq!(policy.name(), "lydroo");
    let (summary, records) = qmec_sim::simulate(&scenario, 2, policy.as_mut(), SLOTS, |_| {}).unwrap();
    let shares = |from: u64, to: u64| -> Vec<f64> {
        records.slots.iter().filter(|r| (from..to).contains(&r.slot)).filter_map(|r| r.lp_share).collect()
    };
    let (early, late) = (mean(&shares(0, 100)), mean(&shares(SLOTS - 100, SLOTS)));
    eprintln!("lydroo share {early:.3} → {late:.3}; {}", summary.tasks.completed);
    assert!(late > early + 0.02, "{early:.3} → {late:.3}");
}

#[test]
fn only_policies_that_can_learn_are_asked_to() {
    let online = qmec_catalog::OnlineSpec { execution: qmec_catalog::Execution::Inline, learn: true, checkpoints: None };
    assert!(PolicySpec::named("greedy").learning(online.clone()).online.is_none());
    assert!(PolicySpec::named("dl").learning(online.clone()).online.is_none());
    let qnn = PolicySpec::parse("qnn").learning(online);
    assert!(qnn.online.is_some());
    assert!(build(&qnn, &Scenario::paper(), 1).is_ok());
}
