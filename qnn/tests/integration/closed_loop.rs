//! Closed-loop training end to end: a tiny budget already lowers the
//! validation cost, and what comes out is a network-mode model file.

use qmec_model::Scenario;
use qmec_qnn::candidates::DecisionMode;
use qmec_qnn::closed_loop::{ClosedLoopConfig, train_closed_loop};
use qmec_qnn::model_file::ModelFile;

#[test]
fn a_tiny_budget_lowers_the_cost_on_held_out_seeds() {
    let mut scenario = Scenario::paper();
    // V = 100: the shipped model then has pairs to drop and reorder.
    scenario.control.v = 100.0;
    let start = qmec_qnn::shipped::per_link().expect("shipped model loads");
    let config = ClosedLoopConfig {
        iterations: 8,
        pairs: 4,
        slots: 200,
        rollout_seeds: 1,
        val_seeds: 2,
        eval_every: 2,
        seed: 1,
        ..ClosedLoopConfig::default()
    };
    let mut seen = 0;
    let report = train_closed_loop(&scenario, &start, &config, |_| seen += 1).expect("trains");
    assert_eq!(seen, config.iterations);
    assert!(
        report.kept.cost < report.initial.cost,
        "validation cost {:.4} → {:.4}",
        report.initial.cost,
        report.kept.cost
    );
    let info = report.model.closed_loop.as_ref().expect("closed-loop record");
    assert!(info.kept_iteration > 0 && (info.final_cost - report.kept.cost).abs() < 1e-12);
    assert_eq!(report.model.decision, DecisionMode::Network);
    let (reloaded, _) = ModelFile::from_json(&report.model.to_json().expect("json"), "closed-loop.json").expect("loads");
    assert_eq!(reloaded, report.model);
}
