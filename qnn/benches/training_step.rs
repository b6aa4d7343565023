//! One training step of the paper QNN: forward pass and every gradient
//! (adjoint VJP for the circuit, backprop for the dense layers, through the
//! projection and the DPP loss) for a mini-batch of 32 paper-scenario
//! states. `bench/bench_paper_arch.py` times the same circuit and batch in
//! PennyLane lightning.qubit (adjoint).
//! Also: the circuit part alone (batch forward + VJP), and the per-link and
//! MLP steps for scale.

use criterion::{Criterion, criterion_group, criterion_main};
use qmec_model::Scenario;
use qmec_qnn::arch::{ArchKind, Network, paper::paper_circuit};
use qmec_qnn::dataset::{Sample, collect_states, prepare};
use qmec_qnn::features::{FeatureScales, global_len};
use qmec_qnn::train::{TrainConfig, batch_gradient};
use qmec_quantum::encoding::{amplitude_on, qubits_for_amplitudes};
use qmec_quantum::{Observable, batch};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let scenario = Scenario::paper();
    let states = collect_states(&scenario, 32, 3).expect("rollout");
    let scales = FeatureScales::measure(&states);
    let samples = prepare(&scenario, &states, &scales).expect("labels");
    let batch_refs: Vec<&Sample> = samples.iter().collect();
    let mut group = c.benchmark_group("training_step_batch32");
    for kind in [ArchKind::Paper, ArchKind::PerLink, ArchKind::Mlp] {
        let network = Network::init(kind, scenario.devices, scenario.servers, 1).expect("network");
        group.bench_function(kind.as_str(), |b| b.iter(|| black_box(batch_gradient(&network, TrainConfig::new(kind).objective, &batch_refs).expect("step"))));
    }
    // The circuit alone: amplitude encoding, forward, VJP with unit weights.
    let n = qubits_for_amplitudes(global_len(scenario.devices, scenario.servers));
    let circuit = paper_circuit(n).expect("circuit");
    let theta: Vec<f64> = (0..24).map(|i| (i as f64 * 0.37).cos()).collect();
    let obs: Vec<Observable> = (0..n).map(Observable::Z).collect();
    let weights = vec![1.0; 32 * n];
    group.bench_function("paper_circuit_only", |b| {
        b.iter(|| {
            let inputs: Vec<_> =
                samples.iter().map(|s| amplitude_on(&s.input.global, n).expect("encodes")).collect();
            let fwd = batch::forward(&circuit, &theta, &inputs, &obs).expect("forward");
            black_box(fwd.vjp(&weights).expect("vjp"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
