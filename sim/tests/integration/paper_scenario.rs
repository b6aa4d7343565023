//! The paper scenario behaves as documented: local execution is unstable,
//! the exact drift-plus-penalty policy is stable, and sweeping V trades
//! backlog (rising as O(V)) for transmit power (falling).

use qmec_model::Scenario;
use qmec_policies::classical;
use qmec_sim::Summary;

fn run(scenario: &Scenario, policy: &str, slots: u64) -> Summary {
    let mut policy = classical(policy, 1).expect("known policy");
    qmec_sim::simulate(scenario, 1, policy.as_mut(), slots, |_| {}).expect("runs").0
}

#[test]
fn local_is_unstable_and_lyapunov_is_stable() {
    let paper = Scenario::paper();
    let local = run(&paper, "local", 1500);
    let lyapunov = run(&paper, "lyapunov", 1500);
    let offered = paper.offered_bits_per_slot() * paper.devices as f64;
    // Local computes 1 of the 5 Mbit offered per slot: the rest piles up.
    assert!(!local.stable);
    assert!(local.backlog_growth_bits_per_slot > 0.7 * (offered - 10.0 * paper.local_bits_per_slot() as f64));
    assert!(lyapunov.stable, "growth {}", lyapunov.backlog_growth_bits_per_slot);
    assert!(lyapunov.backlog_growth_bits_per_slot.abs() < 0.01 * offered);
    assert!(lyapunov.throughput_bps > 0.95 * offered / paper.slot_seconds);
    assert!(lyapunov.tasks.holds() && local.tasks.holds());
}

#[test]
fn sweeping_v_trades_backlog_for_transmit_power() {
    let summaries: Vec<Summary> = [1.0, 100.0, 1000.0, 10_000.0]
        .iter()
        .map(|&v| {
            let mut scenario = Scenario::paper();
            scenario.control.v = v;
            run(&scenario, "lyapunov", 1500)
        })
        .collect();
    for pair in summaries.windows(2) {
        let (low, high) = (&pair[0], &pair[1]);
        assert!(high.queue_mean_bits > 1.05 * low.queue_mean_bits, "backlog did not rise: {} → {}", low.queue_mean_bits, high.queue_mean_bits);
        assert!(high.tx_power_w < 0.95 * low.tx_power_w, "transmit power did not fall: {} → {}", low.tx_power_w, high.tx_power_w);
    }
    // From V = 1000 on, every device's work drains. Below, the LP (blind to
    // the server queues Z) sends more than some server computes: a
    // device's bits pile up there (measured: 17 kbit/slot at V = 100 over
    // 1500 slots, Σ Z from 104 Mbit at 1500 slots to 360 Mbit at 4000), so
    // the run is unstable although the device queues are not.
    assert!(summaries[2].stable && summaries[3].stable, "unstable at V ≥ 1000");
    let v100 = &summaries[1];
    assert!(!v100.stable && v100.worst_device.is_some_and(|w| !w.stable), "V = 100: {:?}", v100.worst_device);
    // O(V): a tenfold V from 1000 to 10⁴ multiplies the backlog several times.
    assert!(summaries[3].queue_mean_bits > 4.0 * summaries[2].queue_mean_bits);
}

#[test]
fn overload_keeps_queues_capped_and_is_reported() {
    let scenario = Scenario::builtin("overload").expect("built-in");
    let summary = run(&scenario, "lyapunov", 300);
    assert!(summary.overloaded, "40× the load was not reported as overload");
    assert!(summary.tasks.dropped_total() > 0);
    assert!(summary.tasks.holds(), "{:?}", summary.tasks);
    assert!(summary.queue_max_bits <= 5_000_000.0, "a queue exceeded its cap");
    let normal = run(&Scenario::paper(), "lyapunov", 300);
    assert!(!normal.overloaded);
}
