//! Per-slot solve time of the DPP LP as M·S grows, the structured solver
//! (`exact`, what `lyapunov` runs) beside microlp (`microlp`, what
//! `lyapunov-lp` runs) in one run, on states from the paper scenario's own
//! device models (so queues and channels are realistic, not arbitrary).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use qmec_model::device::DeviceModel;
use qmec_model::{Matrix, Scenario, SystemState};
use qmec_policies::{solve_dpp_exact, solve_dpp_lp};
use std::hint::black_box;

/// A loaded state: each device's queue after a few slots of arrivals.
fn loaded_state(devices: usize, servers: usize) -> (Scenario, SystemState) {
    let mut scenario = Scenario::paper();
    scenario.devices = devices;
    scenario.servers = servers;
    let mut models: Vec<DeviceModel> = (0..devices).map(|m| DeviceModel::new(&scenario, 1, m)).collect();
    let mut gains = Matrix::zeros(devices, servers);
    for (m, device) in models.iter_mut().enumerate() {
        for slot in 0..3 {
            device.end_slot(slot, 0);
        }
        gains.row_mut(m).copy_from_slice(&device.begin_slot());
    }
    let state = SystemState::new(
        &scenario,
        3,
        models.iter().map(|d| d.queue_bits() as f64).collect(),
        models.iter().map(|d| d.virtual_bits()).collect(),
        Matrix::zeros(devices, servers),
        gains,
    );
    (scenario, state)
}

fn lp_solve(c: &mut Criterion) {
    let mut group = c.benchmark_group("dpp_solve");
    group.sample_size(10);
    for (m, s) in [(10, 3), (100, 10), (1000, 50)] {
        let (scenario, state) = loaded_state(m, s);
        let size = format!("{m}x{s}");
        group.bench_function(BenchmarkId::new("exact", &size), |b| {
            b.iter(|| solve_dpp_exact(black_box(&scenario), black_box(&state)).expect("solves"))
        });
        group.bench_function(BenchmarkId::new("microlp", &size), |b| {
            b.iter(|| solve_dpp_lp(black_box(&scenario), black_box(&state)).expect("LP solves"))
        });
    }
    group.finish();
}

criterion_group!(benches, lp_solve);
criterion_main!(benches);
