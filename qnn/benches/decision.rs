//! Decision time per slot: the learned policies against the exact LP.
//!
//! M = 10, S = 3 (paper and per-link QNN, MLP, lyapunov LP) and
//! M = 1000, S = 50 (per-link QNN, lyapunov LP), on states from a short
//! rollout of each scenario under the trainer's behaviour mix (loaded
//! states, so the LP has positive weights to work on). Networks are freshly
//! initialised: the work per decision does not depend on the weights. A decision includes
//! preparing the features, scoring, the projection and the CPU split —
//! everything `Policy::decide` does.

use criterion::{Criterion, criterion_group, criterion_main};
use qmec_model::{Policy, Scenario, SystemState};
use qmec_policies::Lyapunov;
use qmec_qnn::LearnedPolicy;
use qmec_qnn::arch::{ArchKind, Network};
use qmec_qnn::features::FeatureScales;
use std::hint::black_box;

fn states(scenario: &Scenario, count: usize) -> Vec<SystemState> {
    // The trainer's behaviour mix: loaded states where the LP has work.
    qmec_qnn::dataset::collect_states(scenario, count, 1).expect("rollout")
}

fn policy(kind: ArchKind, scenario: &Scenario, states: &[SystemState]) -> LearnedPolicy {
    let network = Network::init(kind, scenario.devices, scenario.servers, 1).expect("network");
    LearnedPolicy::new(network, FeatureScales::measure(states))
}

fn bench_size(c: &mut Criterion, scenario: &Scenario, kinds: &[ArchKind], lp_samples: usize) {
    let states = states(scenario, 8);
    let label = format!("decision_m{}_s{}", scenario.devices, scenario.servers);
    let mut group = c.benchmark_group(&label);
    for &kind in kinds {
        let mut p = policy(kind, scenario, &states);
        let mut i = 0;
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                i = (i + 1) % states.len();
                black_box(p.decide(scenario, &states[i]).expect("decides"))
            })
        });
    }
    group.sample_size(lp_samples);
    let mut lp = Lyapunov;
    let mut i = 0;
    group.bench_function("lyapunov_lp", |b| {
        b.iter(|| {
            i = (i + 1) % states.len();
            black_box(lp.decide(scenario, &states[i]).expect("LP solves"))
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let paper = Scenario::paper();
    bench_size(c, &paper, &[ArchKind::Paper, ArchKind::PerLink, ArchKind::Mlp], 100);
    let mut large = Scenario::paper();
    large.name = "m1000-s50".into();
    large.devices = 1000;
    large.servers = 50;
    bench_size(c, &large, &[ArchKind::PerLink], 10);
}

criterion_group!(benches, bench);
criterion_main!(benches);
