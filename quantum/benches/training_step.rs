//! One QNN training step: forward pass plus the full parameter gradient.
//!
//! (a) 6 qubits, amplitude encoding, 2 layers of [RX, RY, RZ per qubit + CZ
//!     chain], batch of 32, gradient of Σ_b Σ_q w[b][q]⟨Z_q⟩_b (batch::vjp);
//! (b) 12 qubits, 6 layers, one sample, the same VJP, and the full 12 × 216
//!     Jacobian for comparison.
//! `crosscheck/bench_pennylane.py` times the same circuits in PennyLane.

use criterion::{Criterion, criterion_group, criterion_main};
use qmec_quantum::{Circuit, Observable, StateVector, adjoint, batch, encoding};
use std::hint::black_box;

fn features(n: usize, seed: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((seed * 7919 + i) as f64 * 0.618).sin())
        .collect()
}

fn params(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i as f64 * 0.37).cos()).collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("training_step");

    // (a)
    let circuit = Circuit::layered(6, 2).expect("valid circuit");
    let theta = params(circuit.n_params());
    let rows: Vec<Vec<f64>> = (0..32).map(|b| features(64, b)).collect();
    let obs: Vec<Observable> = (0..6).map(Observable::Z).collect();
    let weights: Vec<f64> = (0..32 * 6).map(|i| (i as f64 * 0.11).cos()).collect();
    group.bench_function("a_6q_amp_2layers_batch32_vjp", |b| {
        b.iter(|| {
            let inputs: Vec<StateVector> = rows
                .iter()
                .map(|x| encoding::amplitude_on(x, 6).expect("finite features"))
                .collect();
            black_box(batch::vjp(&circuit, &theta, &inputs, &obs, &weights).expect("valid batch"))
        })
    });
    let inputs: Vec<StateVector> = rows
        .iter()
        .map(|x| encoding::amplitude_on(x, 6).expect("finite"))
        .collect();
    group.bench_function("a_6q_amp_2layers_batch32_vjp_1thread", |b| {
        b.iter(|| {
            black_box(
                batch::vjp_with_threads(&circuit, &theta, &inputs, &obs, &weights, 1)
                    .expect("valid batch"),
            )
        })
    });

    // (b)
    let circuit = Circuit::layered(12, 6).expect("valid circuit");
    let theta = params(circuit.n_params());
    let input = encoding::amplitude_on(&features(4096, 1), 12).expect("finite features");
    let obs: Vec<Observable> = (0..12).map(Observable::Z).collect();
    let w: Vec<f64> = (0..12).map(|i| 1.0 - 0.1 * i as f64).collect();
    group.bench_function("b_12q_6layers_vjp", |b| {
        b.iter(|| black_box(adjoint::vjp(&circuit, &theta, &input, &obs, &w).expect("valid")))
    });
    group.bench_function("b_12q_6layers_forward_only", |b| {
        b.iter(|| {
            let mut s = input.clone();
            circuit.run(&theta, &mut s).expect("valid");
            black_box(s)
        })
    });
    group.sample_size(20);
    group.bench_function("b_12q_6layers_jacobian", |b| {
        b.iter(|| black_box(adjoint::jacobian(&circuit, &theta, &input, &obs).expect("valid")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
