//! LP solve time per slot as M·S grows, on states from the paper scenario's
//! own rollouts (so queues and channels are realistic, not arbitrary).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use qmec_model::device::DeviceModel;
use qmec_model::{Matrix, Scenario, SystemState};
use qmec_policies::solve_dpp_lp;
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
    let mut group = c.benchmark_group("lyapunov_lp");
    group.sample_size(10);
    for (m, s) in [(10, 3), (50, 10), (200, 20), (1000, 50)] {
        let (scenario, state) = loaded_state(m, s);
        group.bench_with_input(BenchmarkId::from_parameter(format!("{m}x{s}")), &(m * s), |b, _| {
            b.iter(|| solve_dpp_lp(black_box(&scenario), black_box(&state)).expect("LP solves"))
        });
    }
    group.finish();
}

criterion_group!(benches, lp_solve);
criterion_main!(benches);
