//! End-to-end gradients: both losses (through the projection, or the exact
//! decision's cross-entropy), dense layers and circuits (adjoint VJP) against central finite differences, for every
//! architecture, on the small built-in scenario.

use qmec_model::Scenario;
use qmec_qnn::arch::{ArchKind, Network};
use qmec_qnn::dataset::{Sample, collect_states, prepare};
use qmec_qnn::features::FeatureScales;
use qmec_qnn::Objective;
use qmec_qnn::train::batch_gradient;

fn samples(scenario: &Scenario, count: usize) -> Vec<Sample> {
    let states = collect_states(scenario, 20 * count, 7).expect("rollouts run");
    let scales = FeatureScales::measure(&states);
    let all = prepare(scenario, &states, &scales).expect("states label");
    // States where some link is worth using, so the gradient is not trivially 0.
    let useful: Vec<Sample> = all.into_iter().filter(Sample::has_optimum).take(count).collect();
    assert_eq!(useful.len(), count, "rollouts gave too few states with a positive optimum");
    useful
}

fn check(kind: ArchKind, objective: Objective) {
    let scenario = Scenario::builtin("paper-small").expect("built-in");
    let data = samples(&scenario, 6);
    let batch: Vec<&Sample> = data.iter().collect();
    let mut network = Network::init(kind, scenario.devices, scenario.servers, 3).expect("network builds");
    let (_, grad) = batch_gradient(&network, objective, &batch).expect("gradient");
    let params = network.arch().params().to_vec();
    let h = 1e-6;
    let mut checked = 0;
    // Every parameter of small networks, a spread of the larger ones.
    let stride = (params.len() / 60).max(1);
    for i in (0..params.len()).step_by(stride) {
        let mut loss_at = |value: f64| {
            network.arch_mut().params_mut()[i] = value;
            network.arch_mut().refresh().expect("refresh");
            batch_gradient(&network, objective, &batch).expect("loss").0
        };
        let fd = (loss_at(params[i] + h) - loss_at(params[i] - h)) / (2.0 * h);
        loss_at(params[i]);
        assert!(
            (fd - grad[i]).abs() <= 1e-6 * (1.0 + fd.abs()),
            "{kind}: parameter {i} of {}: analytic {} vs finite difference {fd}",
            params.len(),
            grad[i]
        );
        checked += 1;
    }
    assert!(checked >= params.len().min(30), "{kind}: only {checked} parameters checked");
    assert!(grad.iter().any(|g| g.abs() > 1e-9), "{kind}: gradient is identically zero");
}

#[test]
fn paper_gradient_matches_finite_differences() {
    check(ArchKind::Paper, Objective::Dpp);
}

#[test]
fn per_link_gradient_matches_finite_differences() {
    check(ArchKind::PerLink, Objective::Dpp);
}

#[test]
fn per_link_exact_loss_gradient_matches_finite_differences() {
    check(ArchKind::PerLink, Objective::Exact);
}

#[test]
fn mlp_exact_loss_gradient_matches_finite_differences() {
    check(ArchKind::Mlp, Objective::Exact);
}

#[test]
fn mlp_gradient_matches_finite_differences() {
    check(ArchKind::Mlp, Objective::Dpp);
}
