//! The core driven directly: canned events at chosen times, no sockets, no
//! tokio, no sleeps.

#![allow(clippy::unwrap_used)]

use super::*;
use qmec_model::{PolicyError, SlotFigure};

const WALL: Duration = Duration::from_millis(100);
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// With a report deadline of half the slot wall.
const DEADLINE: Duration = Duration::from_millis(50);
const DEVICES: usize = 3;
const SERVERS: usize = 2;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn settings(slots: u64) -> CoreSettings {
    CoreSettings {
        scenario: Scenario::builtin("paper-small").unwrap(),
        seed: 1,
        slots,
        slot_wall: WALL,
        report_deadline: 0.5,
        join_timeout: JOIN_TIMEOUT,
    }
}

fn core_with(slots: u64, policy: Box<dyn Policy>) -> ControllerCore {
    ControllerCore::new(settings(slots), policy, Box::new(|| Duration::ZERO))
}

fn greedy_core(slots: u64) -> ControllerCore {
    let policy = qmec_catalog::build(&qmec_catalog::PolicySpec::named("greedy"), &settings(slots).scenario, 1);
    core_with(slots, policy.unwrap())
}

/// A policy under the test's control: local decisions or a failure, and a
/// figure for the slot before each one it decides, as a learning policy
/// measures its decisions a little later.
#[derive(Debug, Default)]
struct Scripted {
    fail: bool,
    last: Option<u64>,
}

impl Policy for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        self.last = Some(state.slot);
        if self.fail { Err(PolicyError::Solver("scripted".into())) } else { Ok(Decision::local(scenario, state)) }
    }

    fn slot_figures(&mut self) -> Vec<SlotFigure> {
        let earlier = self.last.and_then(|slot| slot.checked_sub(1));
        earlier.map(|slot| SlotFigure { slot, lp_share: 0.5 }).into_iter().collect()
    }
}

fn device_report(device: usize, slot: u64) -> ControllerEvent {
    let report = validate::Report { slot, queue_bits: 1e6, virtual_bits: 0.0, gains: vec![1e-6; SERVERS] };
    ControllerEvent::DeviceReport { device, report }
}

fn server_report(server: usize, slot: u64, backlogs: Vec<(usize, u64)>) -> ControllerEvent {
    let report = validate::ServerReport { slot, backlogs, total_bits: 0, load: 0.0 };
    ControllerEvent::ServerReport { server, report }
}

/// Feeds `events` at `now`, all commands in order.
fn feed(core: &mut ControllerCore, now: Duration, events: impl IntoIterator<Item = ControllerEvent>) -> Vec<ControllerCommand> {
    events.into_iter().flat_map(|event| core.handle(now, event)).collect()
}

fn joins(next_slot: u64) -> Vec<ControllerEvent> {
    let devices = (0..DEVICES).map(|device| ControllerEvent::DeviceJoined { device, next_slot });
    let servers =
        (0..SERVERS).map(|server| ControllerEvent::ServerJoined { server, endpoint: format!("s{server}"), next_slot });
    devices.chain(servers).collect()
}

fn readies() -> Vec<ControllerEvent> {
    (0..DEVICES).map(|device| ControllerEvent::DeviceReady { device }).collect()
}

/// Every report of slot `slot` (the servers without backlogs).
fn reports(slot: u64) -> Vec<ControllerEvent> {
    let devices = (0..DEVICES).map(|device| device_report(device, slot));
    devices.chain((0..SERVERS).map(|server| server_report(server, slot, Vec::new()))).collect()
}

/// A core whose run started at 0 with slot 0 announced.
fn started(mut core: ControllerCore) -> ControllerCore {
    feed(&mut core, ms(0), joins(0).into_iter().chain(readies()));
    core
}

/// Ticks the core at the time it asked for.
fn wake(core: &mut ControllerCore) -> (Duration, Vec<ControllerCommand>) {
    let now = core.next_wake().unwrap();
    (now, core.handle(now, ControllerEvent::Tick))
}

fn slot_starts(commands: &[ControllerCommand]) -> Vec<(usize, u64)> {
    commands
        .iter()
        .filter_map(|command| match command {
            ControllerCommand::ToDevice {
                device,
                message: pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(start)) },
            } => Some((*device, start.slot)),
            _ => None,
        })
        .collect()
}

fn decisions(commands: &[ControllerCommand]) -> Vec<(usize, pb::OffloadDecision)> {
    commands
        .iter()
        .filter_map(|command| match command {
            ControllerCommand::ToDevice {
                device,
                message: pb::DeviceDown { msg: Some(device_down::Msg::Decision(decision)) },
            } => Some((*device, decision.clone())),
            _ => None,
        })
        .collect()
}

/// The servers sent an allocation.
fn allocated(commands: &[ControllerCommand]) -> Vec<usize> {
    commands
        .iter()
        .filter_map(|command| match command {
            ControllerCommand::ToServer { server, message: pb::ServerDown { msg: Some(server_down::Msg::Allocation(_)) } } => {
                Some(*server)
            }
            _ => None,
        })
        .collect()
}

fn journaled(commands: &[ControllerCommand]) -> Vec<ControllerSlot> {
    let lines = commands.iter().filter_map(|command| match command {
        ControllerCommand::Journal(record) => Some(record.clone()),
        _ => None,
    });
    lines.collect()
}

/// Every setup and every finish sent, to devices and servers alike.
fn setups_and_finishes(commands: &[ControllerCommand]) -> (Vec<pb::RunSetup>, Vec<pb::Finish>) {
    let (mut setups, mut finishes) = (Vec::new(), Vec::new());
    for command in commands {
        let msg = match command {
            ControllerCommand::ToDevice { message, .. } => message.msg.clone().map(|msg| match msg {
                device_down::Msg::Setup(setup) => (Some(setup), None),
                device_down::Msg::Finish(finish) => (None, Some(finish)),
                _ => (None, None),
            }),
            ControllerCommand::ToServer { message, .. } => message.msg.clone().map(|msg| match msg {
                server_down::Msg::Setup(setup) => (Some(setup), None),
                server_down::Msg::Finish(finish) => (None, Some(finish)),
                _ => (None, None),
            }),
            _ => None,
        };
        if let Some((setup, finish)) = msg {
            setups.extend(setup);
            finishes.extend(finish);
        }
    }
    (setups, finishes)
}

#[test]
fn joined_agents_get_the_setup_and_ready_ones_start_the_clock() {
    let mut core = greedy_core(10);
    assert_eq!(core.next_wake(), Some(JOIN_TIMEOUT), "the join timeout is the first wake");
    let joined = feed(&mut core, ms(3), joins(0));
    let (setups, _) = setups_and_finishes(&joined);
    assert_eq!(setups.len(), DEVICES + SERVERS, "every agent gets the setup once all joined");
    assert!(setups.iter().all(|s| s.server_endpoints == ["s0", "s1"] && s.slots == 10));
    assert!(slot_starts(&joined).is_empty());
    let mut before_ready = feed(&mut core, ms(4), readies().into_iter().take(DEVICES - 1));
    assert!(before_ready.is_empty(), "not all ready yet: {before_ready:?}");
    before_ready = feed(&mut core, ms(5), readies().into_iter().skip(DEVICES - 1));
    assert_eq!(before_ready[0], ControllerCommand::Started { first_slot: 0 });
    assert_eq!(slot_starts(&before_ready), [(0, 0), (1, 0), (2, 0)], "the first tick is at once");
    assert_eq!(core.next_wake(), Some(ms(5) + DEADLINE));
}

#[test]
fn all_reports_in_decide_at_once_and_the_next_slot_is_on_the_clock() {
    let mut core = started(greedy_core(10));
    let decided = feed(&mut core, ms(10), reports(0));
    assert_eq!(decisions(&decided).len(), DEVICES);
    assert_eq!(allocated(&decided), [0, 1]);
    let record = &journaled(&decided)[0];
    assert_eq!((record.slot, record.late_devices, record.late_servers, record.undelivered), (0, 0, 0, 0));
    assert!((record.reports_wait_s - 0.010).abs() < 1e-12 && record.slot_loop_s == record.reports_wait_s);
    assert_eq!(core.next_wake(), Some(WALL));
    let early = core.handle(ms(60), ControllerEvent::Tick);
    assert!(early.is_empty(), "an extra tick does nothing");
    let (now, next) = wake(&mut core);
    assert_eq!((now, slot_starts(&next)), (WALL, vec![(0, 1), (1, 1), (2, 1)]));
}

#[test]
fn a_missing_report_is_decided_at_the_deadline_and_counted_late() {
    let mut core = started(greedy_core(10));
    let some = reports(0).into_iter().filter(|e| !matches!(e, ControllerEvent::DeviceReport { device: 2, .. }));
    assert!(decisions(&feed(&mut core, ms(10), some)).is_empty(), "waits for the missing report");
    let (now, decided) = wake(&mut core);
    assert_eq!(now, DEADLINE);
    let late: Vec<bool> = decisions(&decided).iter().map(|(_, d)| d.late).collect();
    assert_eq!(late, [false, false, true]);
    let record = &journaled(&decided)[0];
    assert_eq!((record.late_devices, record.stale_devices), (1, 0));
    assert!((record.reports_wait_s - 0.050).abs() < 1e-12);
}

#[test]
fn a_device_silent_too_long_is_decided_local() {
    let mut core = started(greedy_core(20));
    feed(&mut core, ms(1), reports(0));
    let mut stale = Vec::new();
    for slot in 1..=STALE_SLOTS + 1 {
        let now = wake(&mut core).0;
        let others = reports(slot).into_iter().filter(|e| !matches!(e, ControllerEvent::DeviceReport { device: 2, .. }));
        let decided = feed(&mut core, now + ms(1), others);
        assert!(decided.is_empty(), "slot {slot} waits for device 2");
        let (_, decided) = wake(&mut core);
        let record = &journaled(&decided)[0];
        assert_eq!((record.slot, record.late_devices), (slot, 1));
        stale.push(record.stale_devices);
        let row = &decisions(&decided)[2].1;
        if record.stale_devices > 0 {
            assert!(row.shares.iter().all(|&mu| mu == 0.0), "a stale device offloads nothing");
        }
    }
    assert_eq!(stale, [0, 0, 0, 0, 0, 1], "stale after {STALE_SLOTS} slots without a report");
}

#[test]
fn a_report_from_the_far_future_is_refused_and_its_device_goes_stale() {
    let mut core = started(greedy_core(20));
    assert_eq!(core.report_limit(), 1, "slot 0 announced: a report may name slot 1, no later");
    feed(&mut core, ms(1), reports(0));
    // Device 2's last words name slots not announced; then it goes silent.
    feed(&mut core, ms(2), [device_report(2, 1_000_000_000_000), device_report(2, 3)]);
    let mut stale = Vec::new();
    for slot in 1..=STALE_SLOTS + 1 {
        let now = wake(&mut core).0;
        let others = reports(slot).into_iter().filter(|e| !matches!(e, ControllerEvent::DeviceReport { device: 2, .. }));
        feed(&mut core, now + ms(1), others);
        stale.push(journaled(&wake(&mut core).1)[0].stale_devices);
    }
    assert_eq!(stale, [0, 0, 0, 0, 0, 1], "stale after {STALE_SLOTS} slots, as if it had sent nothing");
    assert_eq!(core.outcome().unwrap().invalid_messages, 2);
}

#[test]
fn an_early_report_counts_and_an_older_one_does_not_replace_it() {
    let mut core = started(greedy_core(10));
    feed(&mut core, ms(1), reports(0));
    // Slot 0 decided, slot 1 not announced yet: its reports come early, and
    // then device 0's report of slot 0 again (resent over an older session).
    feed(&mut core, ms(2), reports(1).into_iter().chain([device_report(0, 0)]));
    let (_, decided) = wake(&mut core);
    assert_eq!(slot_starts(&decided).len(), DEVICES, "slot 1 announced");
    let record = &journaled(&decided)[0];
    assert_eq!((record.slot, record.late_devices), (1, 0), "decided at once, on every report of slot 1");
    assert_eq!(core.outcome().unwrap().invalid_messages, 0);
}

#[test]
fn a_server_that_left_gets_nothing_and_is_not_waited_for() {
    let mut core = started(greedy_core(10));
    assert!(feed(&mut core, ms(1), [ControllerEvent::ServerLeft { server: 1 }]).is_empty());
    let in_time = reports(0).into_iter().filter(|e| !matches!(e, ControllerEvent::ServerReport { server: 1, .. }));
    let decided = feed(&mut core, ms(10), in_time);
    assert_eq!(allocated(&decided), [0], "decided at once, nothing to the server that left");
    // The policy may still offer it a share; the devices find no room there.
    assert!(decisions(&decided).iter().all(|(_, d)| d.server_free_bits[1] == 0));
    let record = &journaled(&decided)[0];
    assert_eq!((record.late_servers, record.undelivered), (1, 1));
}

#[test]
fn the_servers_free_space_is_replayed_with_the_servers_rule() {
    let mut core = started(greedy_core(10));
    let scenario = settings(10).scenario;
    // Device 0's backlog at server 0 is the only one, so it gets all of F_s.
    let budget = slot_budget_bits(scenario.server.cpu_hz, scenario.device.cycles_per_bit, scenario.slot_seconds);
    let mut events = reports(0);
    events[DEVICES] = server_report(0, 0, vec![(0, budget + 1000)]);
    let decided = feed(&mut core, ms(10), events);
    let first = &decisions(&decided)[0].1;
    assert_eq!(first.server_free_bits, [scenario.server.queue_cap_bits - 1000, scenario.server.queue_cap_bits]);
}

#[test]
fn a_restarted_controller_goes_on_from_the_agents_slot() {
    let mut core = greedy_core(50);
    let commands = feed(&mut core, ms(0), joins(40).into_iter().chain(readies()));
    assert_eq!(commands.iter().filter(|c| matches!(c, ControllerCommand::Started { .. })).count(), 1);
    assert!(commands.contains(&ControllerCommand::Started { first_slot: 40 }));
    assert_eq!(slot_starts(&commands), [(0, 40), (1, 40), (2, 40)]);
    // Their latest reports come again: the slot is decided at once.
    assert_eq!(journaled(&feed(&mut core, ms(2), reports(40)))[0].slot, 40);
}

#[test]
fn a_restarted_controller_goes_on_without_an_agent_that_does_not_come_back() {
    let mut core = greedy_core(50);
    let without_server_1 = joins(40).into_iter().filter(|e| !matches!(e, ControllerEvent::ServerJoined { server: 1, .. }));
    assert!(feed(&mut core, ms(7), without_server_1).is_empty(), "waits for the others");
    assert_eq!(core.next_wake(), Some(ms(7) + REJOIN_GRACE));
    let (_, setup) = wake(&mut core);
    let (setups, _) = setups_and_finishes(&setup);
    assert_eq!(setups.len(), DEVICES + 1, "the setup goes to the agents that came back");
    assert_eq!(setups[0].server_endpoints, ["s0", ""]);
    let started = feed(&mut core, ms(5010), readies());
    assert_eq!(started[0], ControllerCommand::Started { first_slot: 40 });
    let decided = feed(&mut core, ms(5011), reports(40).into_iter().take(DEVICES + 1));
    assert_eq!(allocated(&decided), [0], "not waited for");
}

#[test]
fn too_few_agents_by_the_join_timeout_is_an_error() {
    let mut core = greedy_core(10);
    feed(&mut core, ms(1), joins(0).into_iter().skip(1));
    assert!(wake(&mut core).1.is_empty());
    assert!(core.finished());
    let error = core.outcome().unwrap_err();
    let want = LoopError::JoinTimeout { devices: 2, want_devices: 3, servers: 2, want_servers: 2, timeout: JOIN_TIMEOUT };
    assert_eq!(error, want);
}

#[test]
fn a_shutdown_before_the_start_cancels_the_run() {
    let mut core = greedy_core(10);
    feed(&mut core, ms(1), joins(0));
    assert!(core.handle(ms(2), ControllerEvent::Shutdown).is_empty());
    assert!(core.finished());
    assert_eq!(core.outcome().unwrap_err(), LoopError::Cancelled);
}

#[test]
fn a_failing_policy_falls_back_to_local_and_is_counted() {
    let mut core = started(core_with(10, Box::new(Scripted { fail: true, last: None })));
    let decided = feed(&mut core, ms(1), reports(0));
    assert!(decisions(&decided).iter().all(|(_, d)| d.shares.iter().all(|&mu| mu == 0.0)));
    assert!(journaled(&decided)[0].policy_failed);
}

#[test]
fn a_failing_policy_with_a_fallback_is_decided_by_it_and_the_cause_recorded() {
    let fallback = qmec_catalog::build(&qmec_catalog::PolicySpec::named("greedy"), &settings(10).scenario, 1).unwrap();
    let core = core_with(10, Box::new(Scripted { fail: true, last: None })).with_fallback(Some(fallback));
    let mut core = started(core);
    let decided = feed(&mut core, ms(1), reports(0));
    assert!(decisions(&decided).iter().any(|(_, d)| d.shares.iter().any(|&mu| mu > 0.0)), "greedy offloads");
    let line = &journaled(&decided)[0];
    assert_eq!((line.fallback, line.policy_failed), (Some(crate::fallback::FallbackCause::Failed), false));
    assert_eq!(core.outcome().unwrap().fallback_policy.as_deref(), Some("greedy"));
}

#[test]
fn a_figure_measured_later_rewrites_its_slot_line() {
    let mut core = started(core_with(10, Box::<Scripted>::default()));
    feed(&mut core, ms(1), reports(0));
    let now = wake(&mut core).0;
    let lines = journaled(&feed(&mut core, now, reports(1)));
    let slots: Vec<(u64, Option<f64>)> = lines.iter().map(|r| (r.slot, r.lp_share)).collect();
    assert_eq!(slots, [(1, None), (0, Some(0.5))]);
}

#[test]
fn after_the_last_slot_every_agent_is_finished_and_drained() {
    let mut core = started(greedy_core(2));
    feed(&mut core, ms(1), reports(0));
    let now = wake(&mut core).0;
    let last = feed(&mut core, now + ms(1), reports(1));
    let (_, finishes) = setups_and_finishes(&last);
    assert_eq!(finishes, vec![pb::Finish { last_slot: 1 }; DEVICES + SERVERS]);
    let leaves = (0..DEVICES)
        .map(|device| ControllerEvent::DeviceLeft { device })
        .chain((0..SERVERS).map(|server| ControllerEvent::ServerLeft { server }));
    feed(&mut core, now + ms(2), leaves);
    assert!(core.finished() && core.next_wake().is_none());
    let records = core.outcome().unwrap();
    assert_eq!(records.slots.iter().map(|r| r.slot).collect::<Vec<_>>(), [0, 1]);
    assert_eq!((records.policy.as_str(), records.first_slot), ("greedy", 0));
}

#[test]
fn agents_that_never_leave_are_given_up_after_the_drain() {
    let mut core = started(greedy_core(1));
    feed(&mut core, ms(1), reports(0));
    assert_eq!(core.next_wake(), Some(ms(1) + DRAIN_FIXED + WALL * DRAIN_SLOTS));
    wake(&mut core);
    assert!(core.finished());
}

#[test]
fn a_shutdown_mid_run_finishes_after_the_last_decided_slot() {
    let mut core = started(greedy_core(10));
    feed(&mut core, ms(1), reports(0));
    wake(&mut core);
    let (_, finishes) = setups_and_finishes(&core.handle(ms(120), ControllerEvent::Shutdown));
    assert_eq!(finishes, vec![pb::Finish { last_slot: 0 }; DEVICES + SERVERS], "slot 1 was not decided");
    assert!(core.handle(ms(121), ControllerEvent::Shutdown).is_empty(), "a second shutdown does nothing");
}

#[test]
fn a_slot_that_overran_delays_the_next_ones() {
    let mut core = started(greedy_core(10));
    // Woken long after both the deadline and the next tick (the loop was held).
    let late = core.handle(ms(250), ControllerEvent::Tick);
    assert_eq!(journaled(&late)[0].slot, 0);
    assert_eq!(slot_starts(&late)[0], (0, 1), "the overdue tick comes at once");
    feed(&mut core, ms(251), reports(1));
    assert_eq!(core.next_wake(), Some(ms(350)), "and the clock goes on from it");
}

#[test]
fn the_same_events_at_the_same_times_give_the_same_commands() {
    let script = |core: &mut ControllerCore| {
        let mut all = feed(core, ms(0), joins(0).into_iter().chain(readies()));
        let mut now = ms(0);
        for slot in 0..5 {
            // Device 1 misses every other slot's deadline.
            let missing = |e: &ControllerEvent| slot % 2 == 1 && matches!(e, ControllerEvent::DeviceReport { device: 1, .. });
            all.extend(feed(core, now + ms(3), reports(slot).into_iter().filter(|e| !missing(e))));
            while !core.finished() {
                let (at, commands) = wake(core);
                let next_slot = !slot_starts(&commands).is_empty();
                (now, all) = (at, [all, commands].concat());
                if next_slot {
                    break;
                }
            }
        }
        all
    };
    let (mut one, mut two) = (greedy_core(5), greedy_core(5));
    let first = script(&mut one);
    assert!(!decisions(&first).is_empty());
    assert_eq!(first, script(&mut two));
}
