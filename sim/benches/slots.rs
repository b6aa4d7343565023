//! Simulated slots per second: the paper scenario under `lyapunov` (and the
//! cheap `greedy` for reference), and a large system, M = 1000, S = 50.
//! Each iteration simulates a batch of slots on a warmed-up system, so the
//! figure is steady-state throughput, not start-up; criterion picks how many
//! batches run, so the `steady` bench gives the figures at fixed places in
//! a run.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qmec_model::Scenario;
use qmec_policies::classical;
use qmec_sim::Simulator;

fn bench_system(c: &mut Criterion, label: &str, scenario: &Scenario, policy: &str, batch: u64) {
    let mut policy = classical(policy, 1).expect("known policy");
    let mut sim = Simulator::new(scenario, 1);
    for _ in 0..50 {
        sim.step(policy.as_mut()).expect("warm-up");
    }
    let mut group = c.benchmark_group("simulated_slots");
    group.sample_size(10);
    group.throughput(Throughput::Elements(batch));
    group.bench_function(label, |b| {
        b.iter(|| {
            for _ in 0..batch {
                sim.step(policy.as_mut()).expect("step");
            }
        })
    });
    group.finish();
}

fn slots(c: &mut Criterion) {
    let paper = Scenario::paper();
    bench_system(c, "paper/lyapunov", &paper, "lyapunov", 100);
    bench_system(c, "paper/greedy", &paper, "greedy", 100);
    let mut large = Scenario::paper();
    large.devices = 1000;
    large.servers = 50;
    bench_system(c, "m1000_s50/greedy", &large, "greedy", 2);
    bench_system(c, "m1000_s50/lyapunov", &large, "lyapunov", 1);
}

criterion_group!(benches, slots);
criterion_main!(benches);
