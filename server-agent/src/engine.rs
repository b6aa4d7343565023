//! The server's slot order around one `ServerModel`, kept free of I/O so it
//! can be tested directly: fragments wait until their slot is computed,
//! slot t is computed only after slot t−1's fragments are in, and the
//! report for slot t+1 goes out once slot t's fragments are in.

use crate::metrics::ServerFigures;
use crate::records::{ServerRecords, ServerSlot};
use qmec_model::Scenario;
use qmec_model::server::ServerModel;
use qmec_model::task::{Fragment, FragmentDone};
use qmec_proto::pb;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// A device whose newest end-of-slot marker is more than this many slots
/// behind the slot a report waits for is not waited for: it stopped
/// sending here (it gave up on this server, or it is cut off), and waiting
/// a slot wall for it every slot would make every report late for the rest
/// of the run. Its next marker makes it waited for again.
const STALE_MARKER_SLOTS: u64 = 3;

/// Whether a report gated on slot `gate` waits for a device whose newest
/// marker is `marker`: its marker of `gate` is missing and it is not stale.
fn waited_for(marker: Option<u64>, gate: u64) -> bool {
    let stale = marker.map_or(gate >= STALE_MARKER_SLOTS, |m| m.saturating_add(STALE_MARKER_SLOTS) < gate);
    marker.is_none_or(|m| m < gate) && !stale
}

#[derive(Debug)]
pub struct Engine {
    model: ServerModel,
    devices: usize,
    bits_per_slot: f64,
    /// Highest slot whose end-of-slot marker each device has sent.
    markers: Vec<Option<u64>>,
    /// Devices whose marker of the last computed slot (the one the next
    /// report waits for) is not in yet ([`waited_for`]): counted once per slot and kept as
    /// markers arrive, so that a thousand markers cost a thousand steps,
    /// not half a million.
    behind: usize,
    /// Fragments of slots not computed yet, by slot, and when each came in.
    pending: BTreeMap<u64, Vec<(Fragment, Duration)>>,
    /// Each device's queued fragments, in the order the model computes them
    /// (FIFO per device), for their results: the model counts a fragment's
    /// bits down as it computes them.
    queued: Vec<VecDeque<Queued>>,
    /// The last slot computed.
    computed: Option<u64>,
    /// The slot whose report was sent last.
    reported: u64,
    /// Slots reported before every device's fragments were in.
    forced_slots: u64,
    current: ServerSlot,
    records: ServerRecords,
}

/// A queued fragment's size and when it came in.
#[derive(Debug, Clone, Copy)]
struct Queued {
    bits: u64,
    received: Duration,
}

/// The wire form of a fragment of `bits` computed in `slot`; the wall-clock
/// waits are the agent's to fill in.
fn result_message(slot: u64, bits: u64, done: &FragmentDone) -> pb::FragmentResult {
    let times = &done.times;
    pb::FragmentResult {
        slot,
        task: done.task,
        bits,
        done_s: times.done_s,
        sent_s: times.sent_s,
        uploaded_s: times.uploaded_s,
        started_s: times.started_s,
        computed_s: times.computed_s,
        server_wait_us: 0,
        server_hold_us: 0,
    }
}

/// What computing a slot produced: results per device, in order.
#[derive(Debug, Default)]
pub struct Computed {
    pub results: Vec<(usize, pb::FragmentResult)>,
    pub bits: u64,
}

impl Engine {
    pub fn new(scenario: &Scenario, id: usize) -> Engine {
        Engine {
            model: ServerModel::new(scenario, id),
            devices: scenario.devices,
            bits_per_slot: scenario.server_bits_per_slot(),
            markers: vec![None; scenario.devices],
            behind: scenario.devices,
            pending: BTreeMap::new(),
            queued: vec![VecDeque::new(); scenario.devices],
            computed: None,
            reported: 0,
            forced_slots: 0,
            current: ServerSlot::default(),
            records: ServerRecords { server: id, ..Default::default() },
        }
    }

    pub fn devices(&self) -> usize {
        self.devices
    }

    /// The report for slot 0: nothing queued yet.
    pub fn initial_report(&self) -> pb::ServerReport {
        self.report(0)
    }

    fn report(&self, slot: u64) -> pb::ServerReport {
        let backlogs: Vec<pb::DeviceBacklog> = self
            .model
            .device_backlogs()
            .map(|(device, bits)| pb::DeviceBacklog { device: device as u32, bits })
            .collect();
        pb::ServerReport {
            slot,
            total_bits: backlogs.iter().map(|b| b.bits).sum(),
            backlogs,
            load: self.current.load,
        }
    }

    fn accept(&mut self, fragment: Fragment, received: Duration) {
        if fragment.device >= self.queued.len() {
            self.queued.resize_with(fragment.device + 1, VecDeque::new);
        }
        self.queued[fragment.device].push_back(Queued { bits: fragment.bits, received });
        self.model.accept(fragment);
    }

    /// A fragment sent in `slot` that came in at `received` (the agent's
    /// clock): queued now if that slot is computed, else held.
    pub fn fragment(&mut self, slot: u64, fragment: Fragment, received: Duration) {
        if self.computed.is_some_and(|c| c >= slot) {
            self.accept(fragment, received);
        } else {
            self.pending.entry(slot).or_default().push((fragment, received));
        }
    }

    pub fn end_of_slot(&mut self, device: usize, slot: u64) {
        let Some(marker) = self.markers.get_mut(device) else { return };
        let before = *marker;
        *marker = Some(before.map_or(slot, |m| m.max(slot)));
        // A marker may end a wait, or (from a stale device) start one.
        if let Some(gate) = self.computed {
            match (waited_for(before, gate), waited_for(*marker, gate)) {
                (true, false) => self.behind -= 1,
                (false, true) => self.behind += 1,
                _ => {}
            }
        }
    }

    fn markers_in(&self, slot: u64) -> bool {
        if self.computed == Some(slot) {
            return self.behind == 0;
        }
        !self.markers.iter().any(|&m| waited_for(m, slot))
    }

    /// Whether slot `slot` may be computed now (its predecessor's fragments are in).
    pub fn ready_for(&self, slot: u64) -> bool {
        self.reported >= slot
    }

    /// Whether every device's marker of `slot` is in, from devices whose
    /// markers lag too: while the run goes on they are not waited for, but
    /// at its end their fragments are still on their way (a link slower
    /// than a slot, a retransmission holding a connection), and an agent
    /// that stopped then would never count them.
    pub fn every_marker_in(&self, slot: u64) -> bool {
        self.markers.iter().all(|marker| marker.is_some_and(|marker| marker >= slot))
    }

    /// The report for the next slot, if the last computed slot's fragments
    /// are all in (or `force`).
    pub fn next_report(&mut self, force: bool) -> Option<pb::ServerReport> {
        let computed = self.computed?;
        if self.reported > computed || !(force || self.markers_in(computed)) {
            return None;
        }
        self.reported = computed + 1;
        let mut slot = std::mem::take(&mut self.current);
        slot.slot = computed;
        slot.backlog_bits = self.model.backlog_bits();
        slot.forced = force && !self.markers_in(computed);
        self.forced_slots += u64::from(slot.forced);
        let report = self.report(computed + 1);
        self.current.load = slot.load;
        self.records.slots.push(slot);
        Some(report)
    }

    /// Computes slot `slot` at `allocation` (Hz per device), the slot
    /// starting at t·τ, at `now` on the agent's clock, then queues the
    /// fragments already sent in it.
    pub fn compute(&mut self, slot: u64, slot_start_s: f64, allocation: &[f64], now: Duration) -> Computed {
        let work = self.model.compute(slot_start_s, |m| allocation.get(m).copied().unwrap_or(0.0));
        let mut computed = Computed { bits: work.bits, results: Vec::with_capacity(work.done.len()) };
        for done in work.done {
            let queued = self.queued.get_mut(done.device).and_then(VecDeque::pop_front);
            let (bits, received) = queued.map_or((1, now), |q| (q.bits, q.received));
            let mut result = result_message(slot, bits, &done);
            result.server_wait_us = qmec_proto::micros(now.saturating_sub(received));
            computed.results.push((done.device, result));
        }
        self.computed = Some(slot);
        self.behind = self.markers.iter().filter(|&&m| waited_for(m, slot)).count();
        self.current = ServerSlot {
            slot,
            computed_bits: work.bits,
            load: if self.bits_per_slot > 0.0 { (work.bits as f64 / self.bits_per_slot).min(1.0) } else { 0.0 },
            ..Default::default()
        };
        let ready: Vec<u64> = self.pending.range(..=slot).map(|(s, _)| *s).collect();
        for s in ready {
            for (fragment, received) in self.pending.remove(&s).unwrap_or_default() {
                self.accept(fragment, received);
            }
        }
        computed
    }

    /// What the metrics show now.
    pub fn figures(&self) -> ServerFigures {
        ServerFigures {
            counters: self.model.counters().clone(),
            backlog_bits: self.model.backlog_bits(),
            slots: self.records.slots.len() as u64,
            forced_slots: self.forced_slots,
        }
    }

    /// The records so far, with the final counters.
    pub fn records(&self) -> ServerRecords {
        let mut records = self.records.clone();
        records.counters = self.model.counters().clone();
        records.backlog_bits = self.model.backlog_bits();
        records
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fragment(device: usize, task: u64, bits: u64) -> Fragment {
        Fragment { device, task, bits, sent_s: 0.0, uploaded_s: 0.0 }
    }

    #[test]
    fn fragments_of_a_slot_wait_until_it_is_computed_and_reports_wait_for_markers() {
        let scenario = Scenario::builtin("paper-small").unwrap();
        let mut engine = Engine::new(&scenario, 0);
        assert!(engine.ready_for(0));
        // Slot 0's fragment races ahead of slot 0's allocation.
        engine.fragment(0, fragment(1, 7, 1000), Duration::ZERO);
        let none = engine.compute(0, 0.0, &[0.0; 3], Duration::ZERO);
        assert_eq!(none.bits, 0, "a fragment of slot 0 is computed from slot 1 on");
        assert!(engine.next_report(false).is_none(), "markers of slot 0 are missing");
        for device in 0..3 {
            engine.end_of_slot(device, 0);
        }
        let report = engine.next_report(false).unwrap();
        assert_eq!((report.slot, report.total_bits), (1, 1000));
        assert!(engine.ready_for(1));
        let mut allocation = vec![0.0; 3];
        allocation[1] = scenario.server.cpu_hz;
        let work = engine.compute(1, scenario.slot_seconds, &allocation, Duration::ZERO);
        assert_eq!(work.bits, 1000);
        assert_eq!(work.results.len(), 1);
        assert_eq!((work.results[0].0, work.results[0].1.task, work.results[0].1.bits), (1, 7, 1000));
        assert!(work.results[0].1.done_s > scenario.slot_seconds);
        // Forced report without markers of slot 1.
        let forced = engine.next_report(true).unwrap();
        assert_eq!(forced.slot, 2);
        let records = engine.records();
        assert_eq!(records.slots.len(), 2);
        assert!(records.slots[1].forced);
        assert_eq!(records.counters.computed_bits, 1000);
    }

    #[test]
    fn a_device_that_stopped_sending_is_not_waited_for_until_it_sends_again() {
        let scenario = Scenario::builtin("paper-small").unwrap();
        let mut engine = Engine::new(&scenario, 0);
        // Device 2 sends its markers up to slot 1, then falls silent.
        let mut waits = Vec::new();
        for slot in 0..8 {
            engine.compute(slot, 0.0, &[0.0; 3], Duration::ZERO);
            for device in 0..3 {
                if device < 2 || slot < 2 {
                    engine.end_of_slot(device, slot);
                }
            }
            waits.push(engine.next_report(false).is_none());
            if waits[slot as usize] {
                engine.next_report(true);
            }
        }
        // Waited for at slots 2..=4 (its marker 1 is 1..3 slots behind), not from 5 on.
        assert_eq!(waits, [false, false, true, true, true, false, false, false]);
        // Heard again: waited for again.
        engine.end_of_slot(2, 8);
        engine.compute(8, 0.0, &[0.0; 3], Duration::ZERO);
        engine.end_of_slot(0, 8);
        engine.end_of_slot(1, 8);
        assert!(engine.next_report(false).is_some());
        engine.compute(9, 0.0, &[0.0; 3], Duration::ZERO);
        engine.end_of_slot(0, 9);
        engine.end_of_slot(1, 9);
        assert!(engine.next_report(false).is_none(), "device 2 is waited for again");
    }

    #[test]
    fn the_kept_count_of_missing_markers_agrees_with_a_full_look() {
        let scenario = Scenario { devices: 7, ..Scenario::builtin("paper-small").unwrap() };
        let mut engine = Engine::new(&scenario, 0);
        let mut state = 12345u64;
        let mut draw = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for step in 0..2000 {
            if draw(10) == 0 {
                let slot = engine.computed.map_or(0, |c| c + 1);
                engine.compute(slot, 0.0, &[0.0; 7], Duration::ZERO);
            } else {
                let slot = engine.computed.unwrap_or(0) + draw(3);
                engine.end_of_slot(draw(7) as usize, slot.saturating_sub(1));
            }
            if let Some(computed) = engine.computed {
                let full = !engine.markers.iter().any(|&m| waited_for(m, computed));
                assert_eq!(engine.markers_in(computed), full, "step {step}");
            }
        }
    }
}
