//! The model's laws, checked on whole simulated runs over random scenarios
//! and every classical policy: task and bit conservation, the queue
//! recursions for Q, H and Z, each task's latency split into stages that
//! sum to it, and bit-identical replays.

use proptest::prelude::*;
use qmec_model::Scenario;
use qmec_model::scenario::SizeDistribution;
use qmec_policies::{CLASSICAL, classical};
use qmec_sim::Simulator;

fn arbitrary_scenario() -> impl Strategy<Value = Scenario> {
    (1usize..5, 1usize..4, 0.0f64..12.0, 0.0f64..0.95, 1u64..400_000, prop_oneof![Just(u64::MAX / 4), 200_000u64..2_000_000], 0.0f64..1e4)
        .prop_map(|(devices, servers, rate, rho, size, cap, v)| {
            let mut scenario = Scenario::paper();
            scenario.devices = devices;
            scenario.servers = servers;
            scenario.arrivals.tasks_per_slot = rate;
            scenario.arrivals.task_bits = SizeDistribution::Uniform { min: 1 + size / 2, max: 1 + size };
            scenario.channel.correlation = rho;
            scenario.device.queue_cap_bits = cap;
            scenario.server.queue_cap_bits = cap;
            scenario.control.v = v;
            scenario
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn tasks_and_bits_are_conserved_and_queues_follow_their_laws(
        scenario in arbitrary_scenario(),
        seed in any::<u64>(),
        policy_index in 0usize..CLASSICAL.len(),
    ) {
        let mut policy = classical(CLASSICAL[policy_index], seed).expect("known");
        let mut sim = Simulator::new(&scenario, seed);
        let tau = scenario.slot_seconds;
        let promised = scenario.device.promised_bps * tau;
        for _ in 0..60 {
            let before: Vec<_> = sim.devices().iter().map(|d| (d.queue_bits(), d.virtual_bits(), d.counters().clone())).collect();
            let servers_before: Vec<_> = sim.servers().iter().map(|s| (s.backlog_bits(), s.counters().clone())).collect();
            sim.step(policy.as_mut()).expect("classical policies decide");
            for (device, (q, h, counters)) in sim.devices().iter().zip(&before) {
                let now = device.counters();
                let served = (now.local_bits - counters.local_bits) + (now.offloaded_bits - counters.offloaded_bits);
                let admitted = (now.arrived_bits - counters.arrived_bits) - (now.dropped_bits - counters.dropped_bits);
                prop_assert!(served <= *q, "served {served} more than the queue held {q}");
                prop_assert_eq!(device.queue_bits(), q - served + admitted);
                let expected_h = (h + promised - served as f64).max(0.0);
                prop_assert!((device.virtual_bits() - expected_h).abs() <= 1e-6 * expected_h.max(1.0));
                prop_assert!(device.queue_bits() <= scenario.device.queue_cap_bits);
            }
            for (server, (z, counters)) in sim.servers().iter().zip(&servers_before) {
                let now = server.counters();
                let computed = now.computed_bits - counters.computed_bits;
                let received = now.received_bits - counters.received_bits;
                prop_assert!(computed <= *z, "computed {computed} more than the backlog {z}");
                prop_assert_eq!(server.backlog_bits(), z - computed + received);
            }
        }
        let conservation = sim.conservation();
        prop_assert!(conservation.holds(), "{conservation:?}");
        let admitted: u64 = sim.devices().iter().map(|d| d.counters().arrived_bits - d.counters().dropped_bits).sum();
        let local: u64 = sim.devices().iter().map(|d| d.counters().local_bits).sum();
        let offloaded: u64 = sim.devices().iter().map(|d| d.counters().offloaded_bits).sum();
        let queued: u64 = sim.devices().iter().map(|d| d.queue_bits()).sum();
        let computed: u64 = sim.servers().iter().map(|s| s.counters().computed_bits).sum();
        let at_servers: u64 = sim.servers().iter().map(|s| s.backlog_bits()).sum();
        prop_assert_eq!(admitted, local + offloaded + queued);
        prop_assert_eq!(offloaded, computed + at_servers);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The breakdown along each task's critical path: no stage is negative,
    /// they sum to completion − arrival, and the path is either local (no
    /// upload, server wait, server compute or return) or offloaded (no local
    /// compute, the upload within one slot, the return the result delay).
    #[test]
    fn each_tasks_stages_sum_to_its_latency(
        scenario in arbitrary_scenario(),
        seed in any::<u64>(),
        policy_index in 0usize..CLASSICAL.len(),
    ) {
        let mut policy = classical(CLASSICAL[policy_index], seed).expect("known");
        let (_, records) = qmec_sim::simulate(&scenario, seed, policy.as_mut(), 80, |_| {}).expect("runs");
        let (tau, delay) = (scenario.slot_seconds, scenario.server.result_delay_s);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        for task in &records.tasks {
            let stages = task.stage_seconds();
            prop_assert!(stages.iter().all(|&s| s >= -1e-9), "a negative stage: {task:?}");
            prop_assert!(close(stages.iter().sum::<f64>(), task.latency_s()), "stages do not sum to the latency: {task:?}");
            let offloaded = task.upload_s + task.server_wait_s + task.server_compute_s + task.return_s;
            if task.local_compute_s > 0.0 {
                prop_assert_eq!(offloaded, 0.0, "a local critical path with offload stages: {:?}", task);
            } else {
                prop_assert!(task.offloaded_bits > 0, "an offload path for a task never offloaded: {task:?}");
                prop_assert!(task.upload_s <= tau * (1.0 + 1e-9), "an upload longer than a slot: {task:?}");
                prop_assert!(close(task.return_s, delay), "a return other than the result delay: {task:?}");
            }
        }
    }
}

#[test]
fn a_seed_replays_bit_for_bit_and_other_seeds_differ() {
    let scenario = Scenario::paper();
    let run = |seed| {
        let mut policy = classical("lyapunov", seed).expect("known");
        let (summary, mut records) = qmec_sim::simulate(&scenario, seed, policy.as_mut(), 300, |_| {}).expect("runs");
        // Wall-clock decision times are the one thing a seed cannot fix.
        records.slots.iter_mut().for_each(|r| r.decision_seconds = 0.0);
        (serde_json::to_string(&records.slots).expect("json"), serde_json::to_string(&records.tasks).expect("json"), summary.tasks)
    };
    let first = run(11);
    assert!(first == run(11), "same seed, different records");
    assert!(first.0 != run(12).0, "different seeds, same records");
}

#[test]
fn policies_see_the_same_arrivals_and_channels() {
    let scenario = Scenario::paper();
    let arrivals = |name: &str| {
        let mut policy = classical(name, 5).expect("known");
        let (_, records) = qmec_sim::simulate(&scenario, 5, policy.as_mut(), 200, |_| {}).expect("runs");
        records.slots.iter().map(|r| (r.arrived_tasks, r.arrived_bits)).collect::<Vec<_>>()
    };
    let reference = arrivals("local");
    for name in ["random", "greedy", "lyapunov"] {
        assert_eq!(arrivals(name), reference, "{name} saw other arrivals");
    }
}
