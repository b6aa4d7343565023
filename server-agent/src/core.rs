//! The server agent's decisions, with no I/O and no clock of its own, so that
//! the real tokio loop and the in-process virtual runtime drive the same
//! logic, and tests drive it event by event. Above the [`Engine`]'s slot
//! order it decides *when*: how long a held allocation waits for the
//! devices' markers, when a report is forced, when the run is drained, and
//! when a slow server's results are due. Time is the agent's own "now",
//! passed in with every event; the core asks to be woken with
//! [`ServerCore::next_wake`] instead of keeping timers.

use crate::engine::Engine;
use crate::metrics::ServerFigures;
use crate::records::ServerRecords;
use qmec_proto::pb;
use qmec_proto::validate;
use std::collections::VecDeque;
use std::time::Duration;

/// After the finish, the last slot's fragments get this much longer than
/// the marker waits, so that a device still sending its last slot is not
/// cut off by a loaded machine.
const FINISH_GRACE: Duration = Duration::from_secs(2);
/// Marker waits the finish allows on top of [`FINISH_GRACE`].
const FINISH_MARKER_WAITS: u32 = 4;

/// The `slow:` fault: from slot `result_delay_from` on, each slot's results
/// are returned `result_delay` after it is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerFaults {
    pub result_delay: Duration,
    pub result_delay_from: u64,
}

/// What happened to the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// A slot's CPU split from the controller; validated here, and an
    /// invalid one is skipped with a warning.
    Allocation(pb::Allocation),
    Finish(pb::Finish),
    /// The controller session ended without a finish.
    ControllerGone,
    /// A fragment the offload service has already validated.
    Fragment { device: usize, fragment: validate::Fragment },
    EndOfSlot { device: usize, slot: u64 },
    /// The time [`ServerCore::next_wake`] asked for (or any other: extra
    /// ticks are harmless).
    Tick,
    /// The process was told to stop.
    Shutdown,
}

/// What the agent must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerCommand {
    /// Up to the controller.
    Report(pb::ServerReport),
    /// Down the device's offload stream (dropped if it has none).
    Result { device: usize, result: pb::FragmentResult },
    /// To every device's offload stream: slot `slot`'s results are all out.
    ResultsDone { slot: u64 },
    /// Burn real CPU for `bits` computed (the real loop, when asked to);
    /// the results that follow stand for this work.
    Burn { bits: u64 },
}

/// An allocation waiting for the slot before it to be reported.
#[derive(Debug)]
struct HeldAllocation {
    slot: u64,
    cpu_hz: Vec<f64>,
    /// The marker wait ends: the report is forced and the slot computed.
    until: Duration,
}

/// The controller said the run is over after `last_slot`.
#[derive(Debug, Clone, Copy)]
struct Finishing {
    last_slot: u64,
    /// Stop even if the last slot's fragments are not all in.
    until: Duration,
}

/// One computed slot's results, returned at `due` (the `slow:` fault).
#[derive(Debug)]
struct HeldResults {
    due: Duration,
    /// When the slot was computed: a result's hold runs from here.
    computed: Duration,
    slot: u64,
    results: Vec<(usize, pb::FragmentResult)>,
}

/// One server agent's state machine: feed it events with the time they
/// happened, carry out the commands it returns in order, and tick it at
/// [`next_wake`](ServerCore::next_wake).
#[derive(Debug)]
pub struct ServerCore {
    engine: Engine,
    cpu_hz: f64,
    slot_seconds: f64,
    /// How long a held allocation waits for the markers: one slot's wall time.
    marker_wait: Duration,
    faults: ServerFaults,
    waiting: Option<HeldAllocation>,
    finishing: Option<Finishing>,
    /// Computed results not yet returned, oldest first (due times never
    /// decrease, so the front is always the next due).
    held: VecDeque<HeldResults>,
    stopped: bool,
}

impl ServerCore {
    /// Built once the setup arrived; the marker wait is its `slot_wall_s`.
    pub fn new(setup: &validate::Setup, id: usize, faults: ServerFaults) -> ServerCore {
        let scenario = &setup.scenario;
        ServerCore {
            engine: Engine::new(scenario, id),
            cpu_hz: scenario.server.cpu_hz,
            slot_seconds: scenario.slot_seconds,
            // `validate::setup` keeps it finite and within (0, 3600] s.
            marker_wait: Duration::from_secs_f64(setup.slot_wall_s),
            faults,
            waiting: None,
            finishing: None,
            held: VecDeque::new(),
            stopped: false,
        }
    }

    /// What to do first: the report for slot 0.
    pub fn start(&mut self, _now: Duration) -> Vec<ServerCommand> {
        vec![ServerCommand::Report(self.engine.initial_report())]
    }

    /// One event at `now`; the commands to carry out, in order.
    pub fn handle(&mut self, now: Duration, event: ServerEvent) -> Vec<ServerCommand> {
        let mut out = Vec::new();
        if self.stopped {
            return out;
        }
        match event {
            ServerEvent::Allocation(allocation) => self.allocation(now, &allocation, &mut out),
            ServerEvent::Finish(finish) => {
                let until = now.saturating_add(self.marker_wait * FINISH_MARKER_WAITS + FINISH_GRACE);
                self.finishing = Some(Finishing { last_slot: finish.last_slot, until });
            }
            ServerEvent::Fragment { device, fragment } => {
                let queued = qmec_model::task::Fragment {
                    device,
                    task: fragment.task,
                    bits: fragment.bits,
                    sent_s: fragment.sent_s,
                    uploaded_s: fragment.uploaded_s,
                };
                self.engine.fragment(fragment.slot, queued, now);
            }
            ServerEvent::EndOfSlot { device, slot } => {
                self.engine.end_of_slot(device, slot);
                self.report(false, &mut out);
            }
            ServerEvent::ControllerGone => {
                tracing::warn!("controller session gone");
                self.stop(now, &mut out);
            }
            ServerEvent::Shutdown => self.stop(now, &mut out),
            ServerEvent::Tick => {}
        }
        self.settle(now, &mut out);
        out
    }

    /// When to tick next (on the "now" axis); none while nothing is timed.
    pub fn next_wake(&self) -> Option<Duration> {
        if self.stopped {
            return None;
        }
        let waiting = self.waiting.as_ref().map(|w| w.until);
        let finishing = self.finishing.map(|f| f.until);
        let results = self.held.front().map(|h| h.due);
        [waiting, finishing, results].into_iter().flatten().min()
    }

    /// The run is over for this agent: its records can be written.
    pub fn finished(&self) -> bool {
        self.stopped
    }

    /// Slots and counters; the loop fills in what only it sees (invalid
    /// messages, payload bytes, process usage).
    pub fn records(&self) -> ServerRecords {
        self.engine.records()
    }

    pub fn figures(&self) -> ServerFigures {
        self.engine.figures()
    }

    fn allocation(&mut self, now: Duration, allocation: &pb::Allocation, out: &mut Vec<ServerCommand>) {
        let cpu_hz = match validate::allocation(allocation, self.engine.devices(), self.cpu_hz) {
            Ok(cpu_hz) => cpu_hz,
            Err(invalid) => {
                tracing::warn!(%invalid, "invalid allocation from the controller; slot skipped");
                return;
            }
        };
        if let Some(older) = self.waiting.take() {
            // The controller has moved on: the older slot cannot wait for
            // its markers any longer.
            self.report(true, out);
            self.compute(now, older, out);
        }
        let until = now.saturating_add(self.marker_wait);
        self.waiting = Some(HeldAllocation { slot: allocation.slot, cpu_hz, until });
    }

    /// Everything that became due by `now`, after an event or a tick.
    fn settle(&mut self, now: Duration, out: &mut Vec<ServerCommand>) {
        self.release_results(now, out);
        self.compute_when_ready(now, out);
        self.finish_when_drained(now, out);
    }

    /// A held allocation is computed once the slot before it is reported;
    /// when the marker wait ends first, that report is forced.
    fn compute_when_ready(&mut self, now: Duration, out: &mut Vec<ServerCommand>) {
        let Some(&HeldAllocation { slot, until, .. }) = self.waiting.as_ref() else { return };
        let timed_out = now >= until;
        if timed_out && !self.engine.ready_for(slot) {
            self.report(true, out);
        }
        // Past the wait the slot is computed even when no report could be
        // forced (a skipped invalid allocation left a gap), so the loop is
        // never asked to wake at a time already gone.
        if (timed_out || self.engine.ready_for(slot))
            && let Some(waiting) = self.waiting.take()
        {
            self.compute(now, waiting, out);
        }
    }

    /// Computes one slot; its results are returned now, or when due under
    /// the `slow:` fault; then the next report, if its markers are in.
    fn compute(&mut self, now: Duration, allocation: HeldAllocation, out: &mut Vec<ServerCommand>) {
        let slot_start_s = allocation.slot as f64 * self.slot_seconds;
        let computed = self.engine.compute(allocation.slot, slot_start_s, &allocation.cpu_hz, now);
        if computed.bits > 0 {
            out.push(ServerCommand::Burn { bits: computed.bits });
        }
        let delay = if allocation.slot >= self.faults.result_delay_from { self.faults.result_delay } else { Duration::ZERO };
        // Never before results held earlier, so that slots come back in order.
        let due = self.held.back().map_or(Duration::ZERO, |h| h.due).max(now.saturating_add(delay));
        self.held.push_back(HeldResults { due, computed: now, slot: allocation.slot, results: computed.results });
        self.release_results(now, out);
        self.report(false, out);
    }

    /// Returns the held results due by `now`, oldest first.
    fn release_results(&mut self, now: Duration, out: &mut Vec<ServerCommand>) {
        while self.held.front().is_some_and(|h| h.due <= now) {
            if let Some(held) = self.held.pop_front() {
                emit_results(held, now, out);
            }
        }
    }

    /// The finish ends the agent once the last slot's fragments are in
    /// (every device's marker, a lagging one's too) and everything is
    /// computed and returned, or when its wait runs out (a device that gave
    /// up on this server or died sends no more markers).
    fn finish_when_drained(&mut self, now: Duration, out: &mut Vec<ServerCommand>) {
        let Some(finishing) = self.finishing else { return };
        let last = finishing.last_slot;
        let drained = self.engine.ready_for(last.saturating_add(1))
            && self.waiting.is_none()
            && self.held.is_empty()
            && self.engine.every_marker_in(last);
        if drained || now >= finishing.until {
            if !drained {
                tracing::warn!(last, "finishing before every fragment of the last slot arrived");
            }
            self.stop(now, out);
        }
    }

    /// Stops; results still held go out now, as the devices are owed them.
    fn stop(&mut self, now: Duration, out: &mut Vec<ServerCommand>) {
        for held in std::mem::take(&mut self.held) {
            emit_results(held, now, out);
        }
        self.stopped = true;
    }

    /// Reports the last computed slot once its markers are in (or `force`).
    fn report(&mut self, force: bool, out: &mut Vec<ServerCommand>) {
        if let Some(report) = self.engine.next_report(force) {
            out.push(ServerCommand::Report(report));
        }
    }
}

/// Sends a computed slot's results at `now`, each with how long it was held.
fn emit_results(held: HeldResults, now: Duration, out: &mut Vec<ServerCommand>) {
    let server_hold_us = qmec_proto::micros(now.saturating_sub(held.computed));
    out.extend(held.results.into_iter().map(|(device, result)| ServerCommand::Result {
        device,
        result: pb::FragmentResult { server_hold_us, ..result },
    }));
    out.push(ServerCommand::ResultsDone { slot: held.slot });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use qmec_model::Scenario;

    /// The marker wait: one slot's wall time.
    const WALL: Duration = Duration::from_millis(20);
    const DEVICES: usize = 3;

    fn core(faults: ServerFaults) -> ServerCore {
        let setup = validate::Setup {
            scenario: Scenario::builtin("paper-small").unwrap(),
            seed: 1,
            slots: 10,
            slot_wall_s: WALL.as_secs_f64(),
            server_endpoints: Vec::new(),
        };
        assert_eq!(setup.scenario.devices, DEVICES);
        ServerCore::new(&setup, 0, faults)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Slot `slot`'s allocation, the CPU split evenly.
    fn allocation(core: &ServerCore, slot: u64) -> ServerEvent {
        ServerEvent::Allocation(pb::Allocation { slot, cpu_hz: vec![core.cpu_hz / DEVICES as f64; DEVICES] })
    }

    fn fragment(device: usize, slot: u64, task: u64, bits: u64) -> ServerEvent {
        ServerEvent::Fragment {
            device,
            fragment: validate::Fragment { slot, task, bits, payload_len: 0, sent_s: 0.0, uploaded_s: 0.0 },
        }
    }

    /// Every device's end-of-slot marker for `slot`, at `now`.
    fn markers(core: &mut ServerCore, now: Duration, slot: u64) -> Vec<ServerCommand> {
        (0..DEVICES).flat_map(|device| core.handle(now, ServerEvent::EndOfSlot { device, slot })).collect()
    }

    /// The reports among `commands`, as (slot, Z).
    fn reports(commands: &[ServerCommand]) -> Vec<(u64, u64)> {
        commands
            .iter()
            .filter_map(|c| match c {
                ServerCommand::Report(r) => Some((r.slot, r.total_bits)),
                _ => None,
            })
            .collect()
    }

    /// The results among `commands`, as (device, task, bits).
    fn results(commands: &[ServerCommand]) -> Vec<(usize, u64, u64)> {
        commands
            .iter()
            .filter_map(|c| match c {
                ServerCommand::Result { device, result } => Some((*device, result.task, result.bits)),
                _ => None,
            })
            .collect()
    }

    fn done(slot: u64) -> ServerCommand {
        ServerCommand::ResultsDone { slot }
    }

    #[test]
    fn an_allocation_computes_the_backlog_returns_results_and_reports_once_markers_are_in() {
        let mut core = core(ServerFaults::default());
        assert_eq!(reports(&core.start(ms(0))), [(0, 0)]);
        assert!(core.handle(ms(1), fragment(1, 0, 7, 1000)).is_empty());
        // Slot 0's fragment joins the backlog only after slot 0 is computed.
        assert_eq!(core.handle(ms(2), allocation(&core, 0)), [done(0)]);
        assert_eq!(reports(&markers(&mut core, ms(5), 0)), [(1, 1000)]);

        let slot1 = core.handle(ms(21), allocation(&core, 1));
        assert_eq!(slot1[0], ServerCommand::Burn { bits: 1000 });
        assert_eq!(results(&slot1), [(1, 7, 1000)]);
        assert_eq!(slot1.last(), Some(&done(1)));
        assert!(reports(&slot1).is_empty(), "slot 1's markers are not in yet");
        assert_eq!(reports(&markers(&mut core, ms(25), 1)), [(2, 0)]);

        let records = core.records();
        assert_eq!(records.slots.len(), 2);
        assert!(records.slots.iter().all(|s| !s.forced));
        assert_eq!(records.counters.computed_bits, 1000);
        assert_eq!(core.figures().slots, 2);
        assert_eq!(core.next_wake(), None, "nothing is timed");
    }

    #[test]
    fn fragments_racing_ahead_of_their_allocation_wait_for_their_slot() {
        let mut core = core(ServerFaults::default());
        core.start(ms(0));
        core.handle(ms(1), fragment(0, 0, 1, 500));
        // Device 1 is already in slot 1 before the server computed slot 0.
        core.handle(ms(2), fragment(1, 1, 2, 300));
        assert_eq!(core.handle(ms(3), allocation(&core, 0)), [done(0)]);
        assert_eq!(reports(&markers(&mut core, ms(4), 0)), [(1, 500)], "slot 1's fragment is not in Z of slot 1");
        let slot1 = core.handle(ms(21), allocation(&core, 1));
        assert_eq!(results(&slot1), [(0, 1, 500)]);
        assert_eq!(reports(&markers(&mut core, ms(22), 1)), [(2, 300)]);
        let slot2 = core.handle(ms(41), allocation(&core, 2));
        assert_eq!(results(&slot2), [(1, 2, 300)]);
    }

    #[test]
    fn late_markers_force_the_report_after_one_slot_wall() {
        let mut core = core(ServerFaults::default());
        core.start(ms(0));
        core.handle(ms(0), allocation(&core, 0));
        assert!(core.handle(ms(20), allocation(&core, 1)).is_empty(), "slot 1 waits for slot 0's markers");
        assert_eq!(core.next_wake(), Some(ms(40)));
        assert!(core.handle(ms(39), ServerEvent::Tick).is_empty(), "an early tick changes nothing");
        let forced = core.handle(ms(40), ServerEvent::Tick);
        assert_eq!(forced.len(), 2);
        assert_eq!((reports(&forced), forced.last()), (vec![(1, 0)], Some(&done(1))));
        assert!(core.records().slots[0].forced);
        assert_eq!(core.figures().forced_slots, 1);
        assert_eq!(core.next_wake(), None);
    }

    #[test]
    fn a_newer_allocation_forces_the_held_one() {
        let mut core = core(ServerFaults::default());
        core.start(ms(0));
        core.handle(ms(0), allocation(&core, 0));
        core.handle(ms(20), allocation(&core, 1));
        let superseded = core.handle(ms(30), allocation(&core, 2));
        assert_eq!(reports(&superseded), [(1, 0)]);
        assert_eq!(superseded.last(), Some(&done(1)), "slot 1 computed at once");
        // Slot 2 waits its own marker wait, from when it arrived.
        assert_eq!(core.next_wake(), Some(ms(50)));
        let forced = core.handle(ms(50), ServerEvent::Tick);
        assert_eq!((reports(&forced), forced.last()), (vec![(2, 0)], Some(&done(2))));
    }

    #[test]
    fn an_invalid_allocation_is_skipped_and_leaves_no_wake_in_the_past() {
        let mut core = core(ServerFaults::default());
        core.start(ms(0));
        core.handle(ms(0), allocation(&core, 0));
        markers(&mut core, ms(1), 0);
        let short = ServerEvent::Allocation(pb::Allocation { slot: 1, cpu_hz: vec![1.0] });
        assert!(core.handle(ms(20), short).is_empty());
        assert_eq!(core.next_wake(), None, "the invalid allocation is not held");
        // Slot 2 can never be ready (slot 1 was never computed): once its
        // wait is over it is computed anyway.
        core.handle(ms(40), allocation(&core, 2));
        assert_eq!(core.handle(ms(60), ServerEvent::Tick), [done(2)]);
        assert_eq!(core.next_wake(), None);
    }

    #[test]
    fn slow_results_come_back_when_due_without_holding_the_report() {
        let faults = ServerFaults { result_delay: ms(15), result_delay_from: 1 };
        let mut core = core(faults);
        core.start(ms(0));
        core.handle(ms(1), fragment(1, 0, 7, 1000));
        assert_eq!(core.handle(ms(2), allocation(&core, 0)), [done(0)], "before the fault's first slot");
        markers(&mut core, ms(3), 0);
        let computed = core.handle(ms(20), allocation(&core, 1));
        assert_eq!(computed, [ServerCommand::Burn { bits: 1000 }], "results held");
        assert_eq!(core.next_wake(), Some(ms(35)));
        assert_eq!(reports(&markers(&mut core, ms(25), 1)), [(2, 0)], "the report does not wait for the results");
        let returned = core.handle(ms(35), ServerEvent::Tick);
        assert_eq!(results(&returned), [(1, 7, 1000)]);
        assert_eq!(returned.last(), Some(&done(1)));
        assert!(core.handle(ms(36), ServerEvent::Tick).is_empty());
        assert_eq!(core.next_wake(), None);
    }

    #[test]
    fn the_finish_waits_for_the_last_slot_then_ends_the_agent() {
        let mut core = core(ServerFaults::default());
        core.start(ms(0));
        core.handle(ms(0), allocation(&core, 0));
        markers(&mut core, ms(1), 0);
        core.handle(ms(20), allocation(&core, 1));
        assert!(core.handle(ms(21), ServerEvent::Finish(pb::Finish { last_slot: 1 })).is_empty());
        assert!(!core.finished(), "slot 1's fragments are still coming");
        assert_eq!(reports(&markers(&mut core, ms(22), 1)), [(2, 0)]);
        assert!(core.finished());
        assert_eq!(core.next_wake(), None);
        assert!(core.handle(ms(23), allocation(&core, 2)).is_empty(), "a finished core does nothing");
    }

    /// Device 2's markers stop at slot 0 (its link holds them): from slot
    /// 4 on it is not waited for, but at the finish its last slot is still
    /// on its way and the agent waits for it.
    #[test]
    fn the_finish_waits_for_a_device_whose_markers_lag() {
        let mut core = core(ServerFaults::default());
        core.start(ms(0));
        core.handle(ms(1), ServerEvent::EndOfSlot { device: 2, slot: 0 });
        for slot in 0..6 {
            let at = WALL * (2 * slot as u32);
            core.handle(at, allocation(&core, slot));
            core.handle(at + WALL, ServerEvent::Tick);
            for device in 0..2 {
                core.handle(at + WALL + ms(1), ServerEvent::EndOfSlot { device, slot });
            }
        }
        core.handle(ms(230), ServerEvent::Finish(pb::Finish { last_slot: 5 }));
        assert!(!core.finished(), "device 2's last slot is still on its way");
        core.handle(ms(240), fragment(2, 5, 9, 64));
        core.handle(ms(241), ServerEvent::EndOfSlot { device: 2, slot: 5 });
        assert!(core.finished());
        assert_eq!(core.records().counters.received_bits, 64);
    }

    #[test]
    fn the_finish_gives_up_on_missing_markers_and_returns_held_results() {
        let faults = ServerFaults { result_delay: Duration::from_secs(3600), result_delay_from: 0 };
        let mut core = core(faults);
        core.start(ms(0));
        core.handle(ms(1), fragment(2, 0, 4, 64));
        core.handle(ms(2), allocation(&core, 0));
        markers(&mut core, ms(3), 0);
        core.handle(ms(20), allocation(&core, 1));
        core.handle(ms(21), ServerEvent::Finish(pb::Finish { last_slot: 1 }));
        let deadline = ms(21) + WALL * 4 + Duration::from_secs(2);
        assert_eq!(core.next_wake(), Some(deadline));
        assert!(!core.finished());
        let last = core.handle(deadline, ServerEvent::Tick);
        assert!(core.finished());
        assert_eq!(results(&last), [(2, 4, 64)], "the devices are owed their results");
        assert_eq!(last.iter().filter(|c| matches!(c, ServerCommand::ResultsDone { .. })).count(), 2);
    }

    #[test]
    fn the_controller_leaving_or_a_shutdown_stops_the_agent() {
        for stop in [ServerEvent::ControllerGone, ServerEvent::Shutdown] {
            let mut core = core(ServerFaults { result_delay: ms(500), result_delay_from: 0 });
            core.start(ms(0));
            core.handle(ms(0), allocation(&core, 0));
            assert_eq!(core.handle(ms(5), stop), [done(0)], "held results go out");
            assert!(core.finished());
            assert_eq!(core.next_wake(), None);
            assert!(core.handle(ms(6), ServerEvent::Tick).is_empty());
        }
    }

    /// A run with late markers, a superseded allocation and slow results.
    fn script(core: &ServerCore) -> Vec<(Duration, ServerEvent)> {
        let end = |device, slot| ServerEvent::EndOfSlot { device, slot };
        vec![
            (ms(1), fragment(0, 0, 1, 400)),
            (ms(2), fragment(1, 0, 2, 700)),
            (ms(3), allocation(core, 0)),
            (ms(4), end(0, 0)),
            (ms(5), end(1, 0)),
            (ms(6), end(2, 0)),
            (ms(7), fragment(2, 1, 3, 900)),
            (ms(20), allocation(core, 1)),
            (ms(30), end(0, 1)),
            (ms(41), allocation(core, 2)),
            (ms(55), allocation(core, 3)),
            (ms(60), ServerEvent::Finish(pb::Finish { last_slot: 3 })),
            (ms(70), end(0, 3)),
            (ms(71), end(1, 3)),
            (ms(72), end(2, 3)),
        ]
    }

    /// Runs `script`, ticking at every wake asked for before the next event
    /// and, with `extra`, also just before and after every event.
    fn play(faults: ServerFaults, extra: bool) -> (Vec<ServerCommand>, ServerRecords) {
        let mut core = core(faults);
        let mut commands = core.start(ms(0));
        for (at, event) in script(&core) {
            while let Some(wake) = core.next_wake().filter(|&wake| wake <= at) {
                commands.extend(core.handle(wake, ServerEvent::Tick));
            }
            if extra {
                commands.extend(core.handle(at, ServerEvent::Tick));
            }
            commands.extend(core.handle(at, event));
            if extra {
                commands.extend(core.handle(at, ServerEvent::Tick));
            }
        }
        while let Some(wake) = core.next_wake() {
            commands.extend(core.handle(wake, ServerEvent::Tick));
        }
        assert!(core.finished());
        (commands, core.records())
    }

    #[test]
    fn extra_ticks_change_nothing() {
        let faults = ServerFaults { result_delay: ms(8), result_delay_from: 1 };
        let (plain, records) = play(faults, false);
        assert_eq!(play(faults, true), (plain.clone(), records.clone()));
        // The script exercised what it is meant to.
        assert!(records.slots.iter().any(|s| s.forced));
        assert_eq!(records.counters.computed_bits, 2000);
        assert_eq!(plain.iter().filter(|c| matches!(c, ServerCommand::ResultsDone { .. })).count(), 4);
    }

    #[test]
    fn the_same_events_give_the_same_commands() {
        let faults = ServerFaults { result_delay: ms(8), result_delay_from: 0 };
        assert_eq!(play(faults, false), play(faults, false));
    }
}
