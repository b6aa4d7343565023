//! Decision time per slot: the learned policies against dpp-greedy and the
//! exact LP, at the sizes `qmec evaluate` reports (10 × 3, 100 × 10,
//! 1000 × 50).
//!
//! The shipped per-link model runs as `qnn` (every candidate) and
//! `qnn-alone` (the network's own candidates): its trained weights matter
//! here, because the critic's adaptive K follows which candidates win. The
//! paper QNN and the MLP have inputs sized by M·S and no shipped model, so
//! they run freshly initialised at 10 × 3 only, where the work per decision
//! does not depend on the weights. States come from a short rollout under
//! the trainer's behaviour mix (loaded states, so the LP has positive
//! weights to work on), seeded away from every training state. A decision
//! is everything `Policy::decide` does: features, scores, candidates and
//! critic, and the CPU split.

use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use criterion::measurement::WallTime;
use qmec_model::{Policy, Scenario, SystemState};
use qmec_policies::{DppGreedy, Lyapunov, LyapunovLp};
use qmec_qnn::LearnedPolicy;
use qmec_qnn::arch::{ArchKind, Network};
use qmec_qnn::dataset::{EVALUATION_SEED_OFFSET, collect_states};
use qmec_qnn::features::FeatureScales;
use std::hint::black_box;

/// States per size, decided in rollout order and then again from the start.
const STATES: usize = 8;

fn shipped(scenario: &Scenario) -> LearnedPolicy {
    let loaded = qmec_qnn::shipped::per_link().expect("shipped model");
    LearnedPolicy::from_file("qnn", loaded, qmec_qnn::shipped::ORIGIN, scenario).expect("shipped model fits")
}

fn fresh(kind: ArchKind, scenario: &Scenario, states: &[SystemState]) -> LearnedPolicy {
    let network = Network::init(kind, scenario.devices, scenario.servers, 1).expect("network");
    LearnedPolicy::new(network, FeatureScales::measure(states))
}

fn bench_policy(group: &mut BenchmarkGroup<WallTime>, name: &str, mut policy: impl Policy, scenario: &Scenario, states: &[SystemState]) {
    let mut i = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % states.len();
            black_box(policy.decide(scenario, &states[i]).expect("decides"))
        })
    });
}

/// `fresh_kinds` run untrained beside the shipped model; the LP (and at
/// large sizes everything) gets `samples` samples.
fn bench_size(c: &mut Criterion, devices: usize, servers: usize, fresh_kinds: &[ArchKind], samples: usize) {
    let scenario = Scenario::paper().resized(devices, servers).expect("size");
    let states = collect_states(&scenario, STATES, EVALUATION_SEED_OFFSET).expect("rollout");
    let mut group = c.benchmark_group(format!("decision_m{devices}_s{servers}"));
    group.sample_size(samples.max(10));
    for &kind in fresh_kinds {
        bench_policy(&mut group, &format!("{}_fresh", kind.as_str()), fresh(kind, &scenario, &states), &scenario, &states);
    }
    bench_policy(&mut group, "qnn", shipped(&scenario), &scenario, &states);
    bench_policy(&mut group, "qnn_alone", shipped(&scenario).network_alone(), &scenario, &states);
    bench_policy(&mut group, "dpp_greedy", DppGreedy::default(), &scenario, &states);
    bench_policy(&mut group, "lyapunov", Lyapunov, &scenario, &states);
    bench_policy(&mut group, "lyapunov_lp", LyapunovLp, &scenario, &states);
    group.finish();
}

fn bench(c: &mut Criterion) {
    bench_size(c, 10, 3, &[ArchKind::Paper, ArchKind::Mlp], 100);
    bench_size(c, 100, 10, &[], 50);
    bench_size(c, 1000, 50, &[], 10);
}

criterion_group!(benches, bench);
criterion_main!(benches);
