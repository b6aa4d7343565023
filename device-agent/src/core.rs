//! One device agent's slot logic, with no I/O: a state machine around its
//! `DeviceModel` that takes events (the controller's messages, the servers'
//! results, ticks) with the time they happened and answers with commands
//! (reports, batches to transmit, servers to stop sending to). The tokio
//! loop ([`crate::device_loop`]) carries the commands out over gRPC; the
//! testbed's virtual runtime drives the same core in-process on a virtual
//! clock; the unit tests below drive it directly. Nothing here reads a
//! clock: `now` is the time since the agent started, passed in with every
//! event, and the core says when it next needs a [`DeviceEvent::Tick`]
//! ([`DeviceCore::next_wake`]).
//!
//! A slot runs in the simulator's order: begin it (draw the channel) and
//! report; on the decision, plan the offload with `offload_plan`, take the
//! fragments, hand them to the uplink, compute locally and end the slot.
//! With early reports on, the next slot then begins at once and is reported
//! ahead of its announcement, so that the controller holds every report when
//! the slot starts. A slot with no decision (the next slot was announced,
//! or the run finished) is computed locally; announced slots that were
//! missed are caught up locally, so the random streams stay aligned with
//! the simulator's.

use crate::metrics::DeviceFigures;
use crate::records::{DeviceRecords, DeviceSlot, WallStages};
use qmec_model::Scenario;
use qmec_model::accounting::{compute_power_w, transmit_power_w};
use qmec_model::channel::shannon_rate;
use qmec_model::device::{DeviceModel, Radio, offload_plan};
use qmec_model::task::{Fragment, TaskRecord};
use qmec_proto::{pb, validate};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Slots of silence after which a device gives up on a server that holds
/// its fragments: its results are not coming (paused, hung, or cut off
/// without its stream breaking).
const SILENT_SLOTS: u32 = 25;
/// After the controller's finish, how many slots (plus [`FINISH_EXTRA`])
/// a device waits for the servers' last results before it stops anyway.
const FINISH_SLOTS: u32 = 10;
const FINISH_EXTRA: Duration = Duration::from_secs(3);
/// After the controller went away without a finish, how many slots a device
/// waits for results already on their way.
const GONE_SLOTS: u32 = 2;
/// A gap of this many slots between two events means this agent itself was
/// not running (or no slot began): nobody could be heard meanwhile.
const GAP_SLOTS: u32 = 2;

/// What a device agent is told besides the run's setup.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSettings {
    /// Share of the wall slot that a full modelled slot of transmission takes.
    pub tx_fraction: f64,
    /// Report slot t+1 as soon as slot t's decision ends it.
    pub early_reports: bool,
    /// The `late:` fault: every report of slot ≥ `report_delay_from` is
    /// held this long (ZERO: none).
    pub report_delay: Duration,
    pub report_delay_from: u64,
    /// Estimated one-way delay from the controller: a slot began this long
    /// before its announcement reached this agent, so delays on the device's
    /// link count in task latency instead of shifting its clock with them.
    pub announce_delay: Duration,
}

/// What happens to a device agent.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceEvent {
    SlotStart(u64),
    /// Validated inside: an invalid one is refused (the slot stays open).
    Decision(pb::OffloadDecision),
    Finish(pb::Finish),
    /// The controller session ended without a finish.
    ControllerGone,
    Result { server: usize, result: validate::FragmentResult },
    ResultsDone { server: usize, slot: u64 },
    /// The offload stream to `server` broke.
    ServerLost { server: usize },
    /// The time [`DeviceCore::next_wake`] asked for (or any other time).
    Tick,
    /// Stop now (SIGTERM).
    Shutdown,
}

/// What the loop carries out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceCommand {
    /// To the controller, now.
    Report(pb::DeviceReport),
    /// One slot's transmission, to the uplink.
    Send(Batch),
    /// The uplink sends nothing more to `server`: this device gave up on it.
    StopSending { server: usize },
}

/// One slot's transmission: every server's fragments, then the end-of-slot
/// marker on every stream (also when `sends` is empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub slot: u64,
    pub sends: Vec<ServerSend>,
    /// The slot's modelled rate r_ms to every server (sent to or not): a
    /// link that follows the channel runs at it while the batch goes out.
    pub rates_bps: Vec<f64>,
    /// Wall seconds per modelled second of transmission.
    pub wall_per_modelled: f64,
}

/// The fragments for one server and the rate r_ms they go at.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSend {
    pub server: usize,
    pub fragments: Vec<Fragment>,
    pub rate_bps: f64,
}

/// The slot begun and not yet ended.
#[derive(Debug)]
struct OpenSlot {
    slot: u64,
    rates_bps: Vec<f64>,
    /// Its announcement arrived (else it was begun ahead of it).
    announced: bool,
}

/// A report held back by the `late:` fault until `due`.
#[derive(Debug)]
struct HeldReport {
    due: Duration,
    report: pb::DeviceReport,
}

/// A fragment handed to the uplink at `sent_at` (this agent's clock).
#[derive(Debug, Clone)]
struct InFlight {
    fragment: Fragment,
    sent_at: Duration,
}

/// The last piece of a completed task, as this agent saw it on its clock:
/// computed locally when its slot ended, or a result that came back.
#[derive(Debug, Clone, Copy)]
enum WallPath {
    Local,
    Offloaded { sent_at: Duration, server_wait: Duration, server_hold: Duration },
}

/// What this device knows of one server.
#[derive(Debug, Clone)]
struct ServerLink {
    /// Fragments sent to it whose results have not come back yet, oldest
    /// first: requeued if it is lost.
    in_flight: VecDeque<InFlight>,
    /// The last slot it said all its results were sent for.
    results_done: Option<u64>,
    /// Given up on: offered nothing more, not waited for.
    lost: bool,
    /// When it was last heard from (a result or an end-of-results marker).
    last_heard: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Running,
    /// The run is over for the controller: waiting until every server sent
    /// its results of slot `last`, or `until`.
    Finishing { last: u64, until: Duration },
    Finished,
}

#[derive(Debug)]
pub struct DeviceCore {
    model: DeviceModel,
    scenario: Scenario,
    settings: DeviceSettings,
    wall_per_modelled: f64,
    slot_wall: Duration,
    /// Slots in the run.
    run_slots: u64,
    open: Option<OpenSlot>,
    next_slot: u64,
    /// When each slot began (indexed by slot; slots begin in order from 0),
    /// to place each task's modelled arrival (uniform within its slot) on
    /// the "now" axis.
    slot_began: Vec<Duration>,
    /// Completed tasks by the slot that finished them (the local slot, or
    /// the server's computing slot), as the simulator counts them.
    completed_by_slot: BTreeMap<u64, u64>,
    servers: Vec<ServerLink>,
    /// When this core last handled an event: a longer gap than
    /// [`GAP_SLOTS`] (the agent itself was paused) is not the servers'
    /// silence.
    last_run: Duration,
    /// When a slot was last announced: while none is (the controller is
    /// down or restarting) servers get no allocations, so their silence
    /// does not count either.
    last_slot_began: Duration,
    /// When to look for silent servers next: every slot, however many
    /// other events come meanwhile.
    next_check: Duration,
    held: VecDeque<HeldReport>,
    phase: Phase,
    records: DeviceRecords,
}

impl DeviceCore {
    pub fn new(setup: &validate::Setup, id: usize, settings: DeviceSettings, now: Duration) -> DeviceCore {
        let scenario = setup.scenario.clone();
        // Validated: in (0, 3600] seconds.
        let slot_wall = Duration::from_secs_f64(setup.slot_wall_s);
        let link = ServerLink { in_flight: VecDeque::new(), results_done: None, lost: false, last_heard: now };
        DeviceCore {
            model: DeviceModel::new(&scenario, setup.seed, id),
            wall_per_modelled: settings.tx_fraction * setup.slot_wall_s / scenario.slot_seconds,
            settings,
            slot_wall,
            run_slots: setup.slots,
            open: None,
            next_slot: 0,
            slot_began: Vec::new(),
            completed_by_slot: BTreeMap::new(),
            servers: vec![link; scenario.servers],
            last_run: now,
            last_slot_began: now,
            next_check: now + slot_wall,
            held: VecDeque::new(),
            phase: Phase::Running,
            records: DeviceRecords {
                device: id,
                offloaded_bits_by_server: vec![0; scenario.servers],
                requeued_bits_by_server: vec![0; scenario.servers],
                ..Default::default()
            },
            scenario,
        }
    }

    /// Takes one event at `now`; returns what to do, in order.
    pub fn handle(&mut self, now: Duration, event: DeviceEvent) -> Vec<DeviceCommand> {
        let mut out = Vec::new();
        self.note_gap(now);
        let running = self.phase == Phase::Running;
        match event {
            DeviceEvent::SlotStart(slot) if running => self.slot_start(now, slot, &mut out),
            DeviceEvent::Decision(decision) if running => self.decision(now, &decision, &mut out),
            DeviceEvent::Finish(finish) if running => {
                self.finish(now, finish.last_slot, self.slot_wall * FINISH_SLOTS + FINISH_EXTRA, &mut out);
            }
            DeviceEvent::ControllerGone if running => self.finish(now, u64::MAX, self.slot_wall * GONE_SLOTS, &mut out),
            DeviceEvent::Result { server, result } => self.result(now, server, &result),
            DeviceEvent::ResultsDone { server, slot } => self.results_done(now, server, slot),
            // Servers close their streams when the run ends: only a loss
            // while it runs loses anything.
            DeviceEvent::ServerLost { server } if running => {
                self.give_up(server, &mut out);
            }
            DeviceEvent::Tick if running => self.check_silence(now, &mut out),
            DeviceEvent::Shutdown => self.phase = Phase::Finished,
            // The controller's word after the run ended for this device.
            DeviceEvent::SlotStart(_)
            | DeviceEvent::Decision(_)
            | DeviceEvent::Finish(_)
            | DeviceEvent::ControllerGone
            | DeviceEvent::ServerLost { .. }
            | DeviceEvent::Tick => {}
        }
        self.release_held(now, &mut out);
        self.check_finished(now);
        out
    }

    /// When to call [`DeviceCore::handle`] with a tick at the latest: a
    /// held report falls due, the wait for the last results ends, or (while
    /// the run goes on) a slot passed since the last look for silent servers.
    pub fn next_wake(&self) -> Option<Duration> {
        let phase = match self.phase {
            Phase::Running => self.next_check,
            Phase::Finishing { until, .. } => until,
            Phase::Finished => return None,
        };
        Some(self.held.front().map_or(phase, |held| held.due.min(phase)))
    }

    pub fn finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// A gap since the last event (this agent was not running, or no slot
    /// began) is nobody's silence: every server counts as heard now.
    fn note_gap(&mut self, now: Duration) {
        let gap = self.slot_wall * GAP_SLOTS;
        if now.saturating_sub(self.last_run) > gap || now.saturating_sub(self.last_slot_began) > gap {
            self.servers.iter_mut().for_each(|link| link.last_heard = now);
        }
        self.last_run = now;
    }

    /// Slot `slot` was announced: the open slot, if older, ends locally,
    /// missed slots are caught up locally, and `slot` begins and is reported.
    fn slot_start(&mut self, now: Duration, slot: u64, out: &mut Vec<DeviceCommand>) {
        self.last_slot_began = now;
        if slot < self.next_slot {
            // Begun already. If it is the open slot, reported ahead of its
            // announcement, it starts now on this agent's clock; any other
            // is a repeat and changes nothing.
            let start = self.announced_start(now);
            if let Some(open) = self.open.as_mut().filter(|open| open.slot == slot && !open.announced) {
                open.announced = true;
                if let Some(began) = usize::try_from(slot).ok().and_then(|at| self.slot_began.get_mut(at)) {
                    *began = start;
                }
            }
            return;
        }
        if slot >= self.run_slots {
            // Catching up to it would run past the run (forever, for a wild number).
            tracing::warn!(device = self.records.device, slot, slots = self.run_slots, "slot past the run ignored");
            return;
        }
        self.end_slot(now, None, out);
        while self.next_slot < slot {
            self.begin(now, true);
            self.end_slot(now, None, out);
        }
        let report = self.begin(now, true);
        self.report(now, report, out);
    }

    /// Slot `decision.slot`'s μ row. If it ends the open slot, with early
    /// reports the next slot begins at once and is reported (Q and H after
    /// slot t are the state at the start of slot t+1, and the channel draw
    /// comes next in the model's order either way), not past the run.
    fn decision(&mut self, now: Duration, decision: &pb::OffloadDecision, out: &mut Vec<DeviceCommand>) {
        let decision = match validate::decision(decision, self.scenario.servers) {
            Ok(decision) => decision,
            Err(invalid) => {
                tracing::warn!(device = self.records.device, %invalid, "invalid decision; the slot is computed locally");
                return;
            }
        };
        if self.open.as_ref().is_none_or(|open| open.slot != decision.slot) {
            return;
        }
        self.end_slot(now, Some(&decision), out);
        if self.settings.early_reports && self.next_slot < self.run_slots {
            let report = self.begin(now, false);
            self.report(now, report, out);
        }
    }

    /// The run is over for the controller: the open slot ends locally and the
    /// device waits for the servers' results of slot `last`, at most `wait`.
    fn finish(&mut self, now: Duration, last: u64, wait: Duration, out: &mut Vec<DeviceCommand>) {
        self.end_slot(now, None, out);
        self.phase = Phase::Finishing { last, until: now + wait };
    }

    fn result(&mut self, now: Duration, server: usize, result: &validate::FragmentResult) {
        let Some(link) = self.servers.get_mut(server) else { return };
        link.last_heard = now;
        if link.lost {
            // Given up on: its fragments were requeued already.
            return;
        }
        let sent_at = (link.in_flight.iter().position(|f| f.fragment.task == result.task))
            .and_then(|at| link.in_flight.remove(at))
            .map_or(now, |f| f.sent_at);
        if let Some(task) = self.model.fragment_done(result.task, &result.times) {
            let path = WallPath::Offloaded { sent_at, server_wait: result.server_wait, server_hold: result.server_hold };
            self.completed(now, task, result.slot, path);
        }
    }

    fn results_done(&mut self, now: Duration, server: usize, slot: u64) {
        if let Some(link) = self.servers.get_mut(server) {
            link.last_heard = now;
            link.results_done = Some(link.results_done.map_or(slot, |done| done.max(slot)));
        }
    }

    /// Gives up on a server that holds fragments of this device and has
    /// been silent for [`SILENT_SLOTS`] slots.
    fn check_silence(&mut self, now: Duration, out: &mut Vec<DeviceCommand>) {
        self.next_check = now + self.slot_wall;
        let silent = self.slot_wall * SILENT_SLOTS;
        let quiet: Vec<usize> = (self.servers.iter().enumerate())
            .filter(|(_, link)| !link.lost && !link.in_flight.is_empty() && now.saturating_sub(link.last_heard) > silent)
            .map(|(server, _)| server)
            .collect();
        for server in quiet {
            if self.give_up(server, out) {
                tracing::warn!(device = self.records.device, server, "server silent for {SILENT_SLOTS} slots; gave up on it");
                self.records.silent_servers += 1;
            }
        }
    }

    /// Server `server` is lost: every fragment sent to it whose result has
    /// not come back goes back to the head of the queue (served again
    /// locally or at another server), and the uplink stops sending to it.
    /// Whether it was given up on now (not before, not finished normally).
    fn give_up(&mut self, server: usize, out: &mut Vec<DeviceCommand>) -> bool {
        let run_slots = self.run_slots;
        let Some(link) = self.servers.get_mut(server) else { return false };
        // A server that sent the results of the run's last slot finished
        // normally; closing its stream loses nothing.
        if link.lost || link.results_done.is_some_and(|done| done.saturating_add(1) >= run_slots) {
            return false;
        }
        link.lost = true;
        let in_flight = std::mem::take(&mut link.in_flight);
        if !in_flight.is_empty() {
            let fragments = in_flight.len();
            tracing::warn!(device = self.records.device, server, fragments, "server lost; requeueing its fragments");
        }
        self.records.lost_servers.push(server);
        // Oldest last, so that it ends up at the head of the queue.
        for InFlight { fragment, .. } in in_flight.iter().rev() {
            self.model.requeue_fragment(fragment);
            self.records.requeued_fragments += 1;
            self.records.requeued_bits += fragment.bits;
            if let Some(sent) = self.records.offloaded_bits_by_server.get_mut(server) {
                *sent = sent.saturating_sub(fragment.bits);
            }
            if let Some(requeued) = self.records.requeued_bits_by_server.get_mut(server) {
                *requeued += fragment.bits;
            }
        }
        out.push(DeviceCommand::StopSending { server });
        true
    }

    /// Sends a report now, or under the `late:` fault holds it until due.
    fn report(&mut self, now: Duration, report: pb::DeviceReport, out: &mut Vec<DeviceCommand>) {
        let delay = self.settings.report_delay;
        if delay > Duration::ZERO && report.slot >= self.settings.report_delay_from {
            self.held.push_back(HeldReport { due: now + delay, report });
        } else {
            out.push(DeviceCommand::Report(report));
        }
    }

    /// Held reports that fell due (all held as long, so in order).
    fn release_held(&mut self, now: Duration, out: &mut Vec<DeviceCommand>) {
        if self.phase == Phase::Finished {
            return;
        }
        while let Some(held) = self.held.pop_front_if(|held| held.due <= now) {
            out.push(DeviceCommand::Report(held.report));
        }
    }

    /// Every server sent its results of the last slot, or the wait is over.
    fn check_finished(&mut self, now: Duration) {
        let Phase::Finishing { last, until } = self.phase else { return };
        let drained = self.servers.iter().all(|link| link.lost || link.results_done.is_some_and(|done| done >= last));
        if drained || now >= until {
            if !drained {
                tracing::warn!(device = self.records.device, last, "finishing before every server's last results arrived");
            }
            self.phase = Phase::Finished;
        }
    }

    /// When the slot announced at `now` began on this agent's clock.
    fn announced_start(&self, now: Duration) -> Duration {
        now.saturating_sub(self.settings.announce_delay)
    }

    /// Begins the next slot (draws its channel) and returns its report.
    fn begin(&mut self, now: Duration, announced: bool) -> pb::DeviceReport {
        let slot = self.next_slot;
        self.slot_began.push(self.announced_start(now));
        let gains = self.model.begin_slot();
        let (channel, tx_power_w) = (&self.scenario.channel, self.scenario.device.tx_power_w);
        let rates_bps = gains.iter().map(|&h| shannon_rate(channel, tx_power_w, h)).collect();
        self.open = Some(OpenSlot { slot, rates_bps, announced });
        self.next_slot += 1;
        let counters = self.model.counters();
        pb::DeviceReport {
            slot,
            queue_bits: self.model.queue_bits() as f64,
            virtual_bits: self.model.virtual_bits(),
            gains,
            arrived_tasks: counters.arrived_tasks,
            completed_tasks: counters.completed_tasks,
            dropped_tasks: counters.dropped_tasks(),
        }
    }

    /// Ends the open slot, if any, with its decision or locally: the one
    /// place a slot ends and a batch is made (an empty batch still carries
    /// the end-of-slot markers).
    fn end_slot(&mut self, now: Duration, decision: Option<&validate::Decision>, out: &mut Vec<DeviceCommand>) {
        let Some(open) = self.open.take() else { return };
        let tau = self.scenario.slot_seconds;
        let mut record = DeviceSlot { slot: open.slot, decided: decision.is_some(), ..Default::default() };
        let sends = match decision {
            Some(decision) => self.offload(now, decision, &open.rates_bps, &mut record),
            None => {
                self.records.undecided_slots += 1;
                Vec::new()
            }
        };
        let local = self.model.compute_locally(open.slot as f64 * tau);
        let device = &self.scenario.device;
        record.compute_power_w = compute_power_w(device.kappa, device.cpu_hz, local.busy_fraction);
        record.local_bits = local.bits;
        for task in local.completed {
            self.completed(now, task, open.slot, WallPath::Local);
        }
        let arrivals = self.model.end_slot(open.slot, record.offloaded_bits + record.local_bits);
        record.arrived_tasks = arrivals.tasks;
        record.arrived_bits = arrivals.bits;
        record.dropped_tasks = arrivals.dropped;
        record.queue_bits = self.model.queue_bits();
        record.virtual_bits = self.model.virtual_bits();
        self.records.slots.push(record);
        let (slot, rates_bps, wall_per_modelled) = (open.slot, open.rates_bps, self.wall_per_modelled);
        out.push(DeviceCommand::Send(Batch { slot, sends, rates_bps, wall_per_modelled }));
    }

    /// Applies a decision's μ row: takes the planned fragments per server.
    fn offload(
        &mut self,
        now: Duration,
        decision: &validate::Decision,
        rates_bps: &[f64],
        record: &mut DeviceSlot,
    ) -> Vec<ServerSend> {
        let tau = self.scenario.slot_seconds;
        // A server this device has lost gets nothing, whatever the
        // controller (which may not know yet) offered.
        let free: Vec<u64> = (decision.server_free_bits.iter().zip(&self.servers))
            .map(|(&free, link)| if link.lost { 0 } else { free })
            .collect();
        let plan = offload_plan(&decision.shares, rates_bps, tau, self.model.queue_bits(), &free);
        let mut sends = Vec::new();
        let mut radio = Radio::new(decision.slot as f64 * tau);
        for (server, (&bits, &rate_bps)) in plan.iter().zip(rates_bps).enumerate() {
            if bits == 0 {
                continue;
            }
            record.tx_power_w += transmit_power_w(self.scenario.device.tx_power_w, bits, rate_bps, tau);
            record.offloaded_bits += bits;
            let fragments = self.model.take_fragments(bits, rate_bps, &mut radio);
            if let Some(link) = self.servers.get_mut(server) {
                link.in_flight.extend(fragments.iter().map(|fragment| InFlight { fragment: fragment.clone(), sent_at: now }));
            }
            if let Some(sent) = self.records.offloaded_bits_by_server.get_mut(server) {
                *sent += fragments.iter().map(|f| f.bits).sum::<u64>();
            }
            sends.push(ServerSend { server, fragments, rate_bps });
        }
        sends
    }

    /// A task completed at `now` in slot `done_slot`, its last piece along
    /// `path`. It arrived `offset` of the way into its slot (the model
    /// draws it uniformly); in wall time that is as far into the slot as
    /// this agent saw it, so network delays before the slot's decision and
    /// after the last result both count.
    fn completed(&mut self, now: Duration, task: TaskRecord, done_slot: u64, path: WallPath) {
        let in_slots = task.arrival_s / self.scenario.slot_seconds;
        let slot = in_slots.floor().max(0.0);
        if let Some(began) = self.slot_began.get(slot as usize) {
            let offset = (in_slots - slot).clamp(0.0, 1.0) * self.slot_wall.as_secs_f64();
            let arrived = *began + Duration::try_from_secs_f64(offset).unwrap_or_default();
            let stages = wall_stages(arrived, now, path);
            self.records.wall_latency_us.push(stages.total_us());
            self.records.wall_stages.push(stages);
        }
        *self.completed_by_slot.entry(done_slot).or_default() += 1;
        self.records.tasks.push(task);
    }

    /// What the process's metrics show of this device now.
    pub fn figures(&self) -> DeviceFigures {
        DeviceFigures {
            counters: self.model.counters().clone(),
            queue_bits: self.model.queue_bits(),
            slots: self.records.slots.len() as u64,
            undecided_slots: self.records.undecided_slots,
            requeued_fragments: self.records.requeued_fragments,
        }
    }

    /// What the agent writes at the end; the payload bytes are the uplink's.
    pub fn records(&self, payload_bytes: u64) -> DeviceRecords {
        let mut records = self.records.clone();
        for slot in &mut records.slots {
            slot.completed_tasks = self.completed_by_slot.get(&slot.slot).copied().unwrap_or(0);
        }
        records.counters = self.model.counters().clone();
        records.open_tasks = self.model.open_tasks();
        records.payload_bytes = payload_bytes;
        records
    }
}

/// A task's wall latency from `arrived` to `now` split along `path`. Each
/// stage is cut to what the ones before it left, so that they sum to the
/// latency exactly even where clocks disagree by a tick; the transfer
/// (pacing on the uplink, the network both ways) is what the others leave.
fn wall_stages(arrived: Duration, now: Duration, path: WallPath) -> WallStages {
    let total_us = qmec_proto::micros(now.saturating_sub(arrived));
    let WallPath::Offloaded { sent_at, server_wait, server_hold } = path else {
        return WallStages { queue_us: total_us, ..WallStages::default() };
    };
    let queue_us = qmec_proto::micros(sent_at.saturating_sub(arrived)).min(total_us);
    let server_wait_us = qmec_proto::micros(server_wait).min(total_us - queue_us);
    let server_hold_us = qmec_proto::micros(server_hold).min(total_us - queue_us - server_wait_us);
    WallStages { queue_us, transfer_us: total_us - queue_us - server_wait_us - server_hold_us, server_wait_us, server_hold_us }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WALL: Duration = Duration::from_millis(100);
    const SERVERS: usize = 3;

    fn setup(slots: u64) -> validate::Setup {
        let scenario = Scenario::paper();
        assert_eq!(scenario.servers, SERVERS);
        let server_endpoints = (0..SERVERS).map(|s| format!("http://127.0.0.1:{}", 5000 + s)).collect();
        validate::Setup { scenario, seed: 7, slots, slot_wall_s: WALL.as_secs_f64(), server_endpoints }
    }

    fn settings() -> DeviceSettings {
        DeviceSettings {
            tx_fraction: 0.5,
            early_reports: false,
            report_delay: Duration::ZERO,
            report_delay_from: 0,
            announce_delay: Duration::ZERO,
        }
    }

    fn core_with(settings: DeviceSettings) -> DeviceCore {
        DeviceCore::new(&setup(100), 0, settings, Duration::ZERO)
    }

    /// Slot `slot`'s announcement time.
    fn at(slot: u64) -> Duration {
        WALL * slot as u32
    }

    fn decision(slot: u64, shares: [f64; SERVERS]) -> DeviceEvent {
        let server_free_bits = vec![u64::MAX; SERVERS];
        DeviceEvent::Decision(pb::OffloadDecision { slot, shares: shares.to_vec(), server_free_bits, late: false })
    }

    fn reports(commands: &[DeviceCommand]) -> Vec<u64> {
        commands.iter().filter_map(|c| if let DeviceCommand::Report(r) = c { Some(r.slot) } else { None }).collect()
    }

    fn batches(commands: &[DeviceCommand]) -> Vec<&Batch> {
        commands.iter().filter_map(|c| if let DeviceCommand::Send(b) = c { Some(b) } else { None }).collect()
    }

    /// Runs slots `0..slots`, each announced at its time and decided
    /// half a slot later with `shares`; returns every command.
    fn run_slots(core: &mut DeviceCore, slots: std::ops::Range<u64>, shares: [f64; SERVERS]) -> Vec<DeviceCommand> {
        let mut commands = Vec::new();
        for slot in slots {
            commands.extend(core.handle(at(slot), DeviceEvent::SlotStart(slot)));
            commands.extend(core.handle(at(slot) + WALL / 2, decision(slot, shares)));
        }
        commands
    }

    /// A device with a queue: a few local slots, then slot `slot` decided
    /// with everything to server 0; returns that decision's commands.
    fn offloading(core: &mut DeviceCore, slot: u64) -> Vec<DeviceCommand> {
        run_slots(core, 0..slot, [0.0; SERVERS]);
        core.handle(at(slot), DeviceEvent::SlotStart(slot));
        core.handle(at(slot) + WALL / 2, decision(slot, [1.0, 0.0, 0.0]))
    }

    fn conserved(records: &DeviceRecords) {
        let counters = &records.counters;
        assert!(counters.arrived_tasks > 0);
        assert_eq!(counters.arrived_tasks, counters.completed_tasks + records.open_tasks + counters.dropped_tasks());
    }

    #[test]
    fn an_announced_slot_begins_and_is_reported() {
        let mut core = core_with(settings());
        let commands = core.handle(at(0), DeviceEvent::SlotStart(0));
        let [DeviceCommand::Report(report)] = commands.as_slice() else { panic!("{commands:?}") };
        assert_eq!((report.slot, report.gains.len(), report.queue_bits), (0, SERVERS, 0.0));
        assert_eq!(core.next_wake(), Some(at(0) + WALL), "a tick a slot later, to notice silence");
    }

    #[test]
    fn a_decision_sends_its_batch_then_reports_the_next_slot_early() {
        let mut core = core_with(DeviceSettings { early_reports: true, ..settings() });
        let commands = offloading(&mut core, 3);
        let [DeviceCommand::Send(batch), DeviceCommand::Report(report)] = commands.as_slice() else { panic!("{commands:?}") };
        assert_eq!((batch.slot, report.slot), (3, 4));
        let [send] = batch.sends.as_slice() else { panic!("{batch:?}") };
        assert_eq!(send.server, 0);
        assert!(!send.fragments.is_empty() && send.rate_bps > 0.0);
        // Slot 3's rates to every server, though slot 4 began (and drew
        // its channel) with the same decision.
        assert_eq!((batch.rates_bps.len(), batch.rates_bps[0]), (SERVERS, send.rate_bps));
        let slot_4: Vec<f64> = (report.gains.iter())
            .map(|&h| shannon_rate(&Scenario::paper().channel, Scenario::paper().device.tx_power_w, h))
            .collect();
        assert_ne!(batch.rates_bps, slot_4, "the channel is drawn afresh each slot");
        assert_eq!(batch.wall_per_modelled, 0.5 * WALL.as_secs_f64() / Scenario::paper().slot_seconds);
        // Slot 4 is announced: it was reported already and waits for its decision.
        assert_eq!(core.handle(at(4), DeviceEvent::SlotStart(4)), []);
        let commands = core.handle(at(4) + WALL / 2, decision(4, [0.0; SERVERS]));
        assert_eq!((batches(&commands)[0].slot, reports(&commands)), (4, vec![5]));
        assert!(core.records(0).slots.iter().all(|slot| slot.decided));
    }

    #[test]
    fn without_early_reports_a_decision_only_sends() {
        let mut core = core_with(settings());
        let commands = offloading(&mut core, 3);
        assert!(matches!(commands.as_slice(), [DeviceCommand::Send(batch)] if batch.slot == 3), "{commands:?}");
    }

    #[test]
    fn no_early_report_past_the_run() {
        let mut core = DeviceCore::new(&setup(2), 0, DeviceSettings { early_reports: true, ..settings() }, Duration::ZERO);
        let commands = run_slots(&mut core, 0..2, [0.0; SERVERS]);
        assert_eq!(reports(&commands), [0, 1]);
    }

    #[test]
    fn a_slot_without_a_decision_ends_locally_when_the_next_is_announced() {
        let mut core = core_with(settings());
        core.handle(at(0), DeviceEvent::SlotStart(0));
        let commands = core.handle(at(1), DeviceEvent::SlotStart(1));
        let [DeviceCommand::Send(batch), DeviceCommand::Report(report)] = commands.as_slice() else { panic!("{commands:?}") };
        assert_eq!((batch.slot, batch.sends.len(), report.slot), (0, 0, 1));
        let records = core.records(0);
        assert_eq!((records.undecided_slots, records.slots.len(), records.slots[0].decided), (1, 1, false));
        // A decision for the ended slot comes too late and changes nothing.
        assert_eq!(core.handle(at(1) + WALL / 2, decision(0, [1.0, 0.0, 0.0])), []);
    }

    #[test]
    fn repeated_stale_and_wild_announcements_change_nothing() {
        let mut core = core_with(settings());
        run_slots(&mut core, 0..3, [0.0; SERVERS]);
        core.handle(at(3), DeviceEvent::SlotStart(3));
        // Past the run (100 slots), the number is wild: no catching up to it.
        for slot in [3, 1, 100, u64::MAX] {
            assert_eq!(core.handle(at(3) + WALL / 4, DeviceEvent::SlotStart(slot)), []);
        }
        let commands = core.handle(at(3) + WALL / 2, decision(3, [0.0; SERVERS]));
        assert_eq!(batches(&commands)[0].slot, 3);
        assert_eq!(core.records(0).undecided_slots, 0);
    }

    #[test]
    fn an_invalid_decision_is_refused_and_the_slot_stays_open() {
        let mut core = core_with(settings());
        core.handle(at(0), DeviceEvent::SlotStart(0));
        let too_much = decision(0, [0.7, 0.7, 0.0]);
        let wrong_length = DeviceEvent::Decision(pb::OffloadDecision { slot: 0, shares: vec![1.0], ..Default::default() });
        for invalid in [too_much, wrong_length] {
            assert_eq!(core.handle(at(0) + WALL / 4, invalid), []);
        }
        assert_eq!(batches(&core.handle(at(0) + WALL / 2, decision(0, [0.0; SERVERS])))[0].slot, 0);
    }

    /// The simulator's order for one device: begin (draw the channel), plan
    /// and take the offload, compute locally, end the slot.
    fn model_slot(model: &mut DeviceModel, scenario: &Scenario, slot: u64, shares: Option<&[f64; SERVERS]>) {
        let tau = scenario.slot_seconds;
        let gains = model.begin_slot();
        let mut sent = 0;
        if let Some(shares) = shares {
            let rates: Vec<f64> =
                gains.iter().map(|&h| shannon_rate(&scenario.channel, scenario.device.tx_power_w, h)).collect();
            let mut radio = Radio::new(slot as f64 * tau);
            let plan = offload_plan(shares, &rates, tau, model.queue_bits(), &[u64::MAX; SERVERS]);
            for (bits, rate_bps) in plan.into_iter().zip(rates) {
                sent += bits;
                model.take_fragments(bits, rate_bps, &mut radio);
            }
        }
        let local = model.compute_locally(slot as f64 * tau);
        model.end_slot(slot, sent + local.bits);
    }

    #[test]
    fn missed_slots_are_caught_up_in_the_simulators_order() {
        let scenario = Scenario::paper();
        let shares = [0.3, 0.3, 0.3];
        let mut core = core_with(settings());
        let mut commands = run_slots(&mut core, 0..4, shares);
        // Slots 4..9 are never announced, 9 is: the device catches up.
        commands.extend(core.handle(at(4), DeviceEvent::SlotStart(4)));
        commands.extend(core.handle(at(9), DeviceEvent::SlotStart(9)));
        commands.extend(run_slots(&mut core, 10..14, shares));
        commands.extend(core.handle(at(14), DeviceEvent::Finish(pb::Finish { last_slot: 13 })));

        let mut model = DeviceModel::new(&scenario, 7, 0);
        let mut queues = Vec::new();
        for slot in 0..14 {
            let decided = !(4..10).contains(&slot);
            model_slot(&mut model, &scenario, slot, decided.then_some(&shares));
            queues.push(model.queue_bits());
        }
        let records = core.records(0);
        assert_eq!(records.slots.iter().map(|s| s.queue_bits).collect::<Vec<_>>(), queues);
        assert_eq!(records.counters, *model.counters());
        assert_eq!(records.undecided_slots, 6);
        // Every slot ended once, in order, with its batch (markers included).
        assert_eq!(batches(&commands).iter().map(|b| b.slot).collect::<Vec<_>>(), (0..14).collect::<Vec<_>>());
        conserved(&records);
    }

    /// `fragment`'s path when its result is back at `done_s`.
    fn done_at(fragment: &Fragment, done_s: f64) -> qmec_model::task::FragmentTimes {
        qmec_model::task::FragmentTimes {
            offloaded: true,
            sent_s: fragment.sent_s,
            uploaded_s: fragment.uploaded_s,
            started_s: done_s,
            computed_s: done_s,
            done_s,
        }
    }

    /// Sends a result for every fragment of `batch` at `now`.
    fn results(core: &mut DeviceCore, now: Duration, batch: &Batch) {
        for send in &batch.sends {
            for fragment in &send.fragments {
                let (task, bits) = (fragment.task, fragment.bits);
                let result = validate::FragmentResult {
                    slot: batch.slot + 1,
                    task,
                    bits,
                    times: done_at(fragment, 1.0),
                    server_wait: Duration::from_millis(2),
                    server_hold: Duration::from_millis(1),
                };
                assert_eq!(core.handle(now, DeviceEvent::Result { server: send.server, result }), []);
            }
        }
    }

    #[test]
    fn results_complete_tasks_with_their_wall_latency_on_the_now_axis() {
        let announce_delay = Duration::from_millis(10);
        let mut core = core_with(DeviceSettings { announce_delay, ..settings() });
        let commands = offloading(&mut core, 3);
        let before = core.records(0).tasks.len();
        let done = at(5) + Duration::from_millis(7);
        results(&mut core, done, batches(&commands)[0]);
        let records = core.records(0);
        let tau = Scenario::paper().slot_seconds;
        assert!(records.tasks.len() > before, "no offloaded task completed");
        for (task, &latency_us) in records.tasks.iter().zip(&records.wall_latency_us).skip(before) {
            let slot = (task.arrival_s / tau).floor();
            let offset = (task.arrival_s / tau - slot) * WALL.as_secs_f64();
            // A slot announced at time t began at t − announce_delay, not before the agent did.
            let arrived = at(slot as u64).saturating_sub(announce_delay).as_secs_f64() + offset;
            let expected = (done.as_secs_f64() - arrived) * 1e6;
            assert!((latency_us as f64 - expected).abs() <= 1.0, "{latency_us} µs, expected {expected}");
        }
        // The stages along each task's last piece sum to its wall latency;
        // the offloaded ones carry the server's own waits and left at the
        // decision of slot 3, half a slot after its announcement.
        assert_eq!(records.wall_stages.len(), records.wall_latency_us.len());
        for (stages, &latency_us) in records.wall_stages.iter().zip(&records.wall_latency_us).skip(before) {
            assert_eq!(stages.total_us(), latency_us);
            assert_eq!((stages.server_wait_us, stages.server_hold_us), (2_000, 1_000));
            assert_eq!(stages.transfer_us, (done - at(3) - WALL / 2).as_micros() as u64 - 3_000, "{stages:?}");
        }
        // Nothing is in flight any more: losing the server requeues nothing.
        assert_eq!(core.handle(done, DeviceEvent::ServerLost { server: 0 }), [DeviceCommand::StopSending { server: 0 }]);
        assert_eq!(core.records(0).requeued_fragments, 0);
    }

    #[test]
    fn wall_stages_sum_to_the_latency_even_when_the_servers_clock_says_more() {
        let second = Duration::from_secs(1);
        let local = wall_stages(second, second * 3, WallPath::Local);
        assert_eq!((local.queue_us, local.total_us()), (2_000_000, 2_000_000));
        let path = WallPath::Offloaded { sent_at: second * 2, server_wait: second / 4, server_hold: second / 4 };
        let offloaded = wall_stages(second, second * 3, path);
        assert_eq!(offloaded.micros(), [1_000_000, 500_000, 250_000, 250_000]);
        let path = WallPath::Offloaded { sent_at: second * 2, server_wait: second * 5, server_hold: second };
        let cut = wall_stages(second, second * 3, path);
        assert_eq!(cut.micros(), [1_000_000, 0, 1_000_000, 0], "the server's waits are cut to what is left");
    }

    #[test]
    fn a_lost_server_gets_its_fragments_requeued_and_is_stopped_once() {
        let mut core = core_with(settings());
        let commands = offloading(&mut core, 3);
        let sent: Vec<Fragment> = batches(&commands)[0].sends[0].fragments.clone();
        let queue = core.figures().queue_bits;
        let now = at(3) + WALL * 3 / 4;
        assert_eq!(core.handle(now, DeviceEvent::ServerLost { server: 0 }), [DeviceCommand::StopSending { server: 0 }]);
        assert_eq!(core.handle(now, DeviceEvent::ServerLost { server: 0 }), []);
        let records = core.records(0);
        let bits: u64 = sent.iter().map(|f| f.bits).sum();
        assert_eq!((records.requeued_fragments, records.requeued_bits), (sent.len() as u64, bits));
        assert_eq!((records.lost_servers.as_slice(), records.offloaded_bits_by_server[0]), ([0].as_slice(), 0));
        assert_eq!(core.figures().queue_bits, queue + bits);
        // Offered server 0 again, the device sends it nothing.
        let commands = run_slots(&mut core, 4..6, [1.0, 0.0, 0.0]);
        assert!(batches(&commands).iter().all(|b| b.sends.is_empty()), "{commands:?}");
        // A late result from it is ignored: its fragments are queued again.
        let result = validate::FragmentResult {
            slot: 4,
            task: sent[0].task,
            bits: sent[0].bits,
            times: done_at(&sent[0], 1.0),
            server_wait: Duration::ZERO,
            server_hold: Duration::ZERO,
        };
        core.handle(at(6), DeviceEvent::Result { server: 0, result });
        conserved(&core.records(0));
    }

    #[test]
    fn a_server_that_finished_the_run_is_not_lost_when_its_stream_closes() {
        let mut core = DeviceCore::new(&setup(5), 0, settings(), Duration::ZERO);
        offloading(&mut core, 3);
        core.handle(at(4), DeviceEvent::ResultsDone { server: 0, slot: 4 });
        assert_eq!(core.handle(at(4), DeviceEvent::ServerLost { server: 0 }), []);
        assert_eq!(core.records(0).lost_servers, [] as [usize; 0]);
    }

    /// Hands `events` to the core in order, with a tick whenever the core's
    /// wake time comes first, as a runtime does; returns every command with
    /// its time.
    fn drive(core: &mut DeviceCore, events: Vec<(Duration, DeviceEvent)>) -> Vec<(Duration, DeviceCommand)> {
        let mut out = Vec::new();
        for (now, event) in events {
            while let Some(wake) = core.next_wake().filter(|&wake| wake < now) {
                out.extend(core.handle(wake, DeviceEvent::Tick).into_iter().map(|c| (wake, c)));
            }
            out.extend(core.handle(now, event).into_iter().map(|c| (now, c)));
        }
        out
    }

    /// Runs `slots`, announced and decided locally (events twice a slot,
    /// more often than the core's ticks); returns when it stopped sending to whom.
    fn stops_in(core: &mut DeviceCore, slots: std::ops::Range<u64>) -> Vec<(Duration, usize)> {
        let events = slots.flat_map(|slot| {
            [(at(slot), DeviceEvent::SlotStart(slot)), (at(slot) + WALL / 2, decision(slot, [0.0; SERVERS]))]
        });
        let stop = |(now, command)| match command {
            DeviceCommand::StopSending { server } => Some((now, server)),
            _ => None,
        };
        drive(core, events.collect()).into_iter().filter_map(stop).collect()
    }

    #[test]
    fn a_server_silent_for_silent_slots_is_given_up_on() {
        let mut core = core_with(settings());
        offloading(&mut core, 3);
        let heard = at(3) + WALL * 3 / 4;
        core.handle(heard, DeviceEvent::ResultsDone { server: 0, slot: 2 });
        let stops = stops_in(&mut core, 4..40);
        let [(when, 0)] = stops.as_slice() else { panic!("{stops:?}") };
        assert!(*when > heard + WALL * SILENT_SLOTS && *when <= heard + WALL * (SILENT_SLOTS + 1), "{when:?}");
        let records = core.records(0);
        assert_eq!((records.silent_servers, records.lost_servers.as_slice()), (1, [0].as_slice()));
        assert!(records.requeued_fragments > 0);
    }

    #[test]
    fn a_gap_in_this_agents_run_or_in_the_slots_is_not_a_servers_silence() {
        let mut core = core_with(settings());
        offloading(&mut core, 3);
        // The agent was stopped for a long while, then runs on.
        assert_eq!(core.handle(at(3) + WALL * 100, DeviceEvent::Tick), []);
        assert_eq!(stops_in(&mut core, 104..120), []);
        // No slot is announced for long (the controller restarts).
        let quiet = at(120) + WALL * 50;
        let mut now = at(119) + WALL;
        while now < quiet {
            assert_eq!(core.handle(now, DeviceEvent::Tick), []);
            now = core.next_wake().unwrap();
        }
        assert_eq!(stops_in(&mut core, 171..190), []);
        assert_eq!(core.records(0).silent_servers, 0);
    }

    #[test]
    fn the_late_fault_holds_reports_until_due() {
        let delay = WALL * 2 + WALL / 4;
        let mut core = core_with(DeviceSettings { report_delay: delay, report_delay_from: 2, ..settings() });
        assert_eq!(reports(&run_slots(&mut core, 0..2, [0.0; SERVERS])), [0, 1]);
        assert!(reports(&core.handle(at(2), DeviceEvent::SlotStart(2))).is_empty());
        assert!(reports(&core.handle(at(3), DeviceEvent::SlotStart(3))).is_empty());
        assert_eq!(core.handle(at(3) + WALL / 2, DeviceEvent::Tick), []);
        assert_eq!(core.next_wake(), Some(at(2) + delay), "the held report falls due before the next silence check");
        assert_eq!(reports(&core.handle(at(2) + delay, DeviceEvent::Tick)), [2]);
        assert_eq!(reports(&core.handle(at(3) + delay, DeviceEvent::Tick)), [3]);
    }

    #[test]
    fn finish_waits_until_every_server_sent_its_last_results() {
        let mut core = core_with(settings());
        offloading(&mut core, 3);
        core.handle(at(4), DeviceEvent::SlotStart(4));
        let commands = core.handle(at(5), DeviceEvent::Finish(pb::Finish { last_slot: 4 }));
        assert!(matches!(commands.as_slice(), [DeviceCommand::Send(batch)] if batch.slot == 4), "{commands:?}");
        assert!(!core.finished());
        assert_eq!(core.next_wake(), Some(at(5) + WALL * FINISH_SLOTS + FINISH_EXTRA));
        // The run is over: the controller's word and lost streams change nothing.
        assert_eq!(core.handle(at(5), DeviceEvent::SlotStart(5)), []);
        assert_eq!(core.handle(at(5), DeviceEvent::ServerLost { server: 1 }), []);
        for server in 0..SERVERS {
            assert!(!core.finished());
            core.handle(at(6), DeviceEvent::ResultsDone { server, slot: 4 });
        }
        assert!(core.finished());
        assert_eq!(core.next_wake(), None);
    }

    #[test]
    fn finish_gives_up_on_missing_results_in_time() {
        let mut core = core_with(settings());
        run_slots(&mut core, 0..3, [0.0; SERVERS]);
        core.handle(at(3), DeviceEvent::Finish(pb::Finish { last_slot: 2 }));
        let until = core.next_wake().unwrap();
        core.handle(until - WALL, DeviceEvent::Tick);
        assert!(!core.finished());
        core.handle(until, DeviceEvent::Tick);
        assert!(core.finished());
    }

    #[test]
    fn when_the_controller_is_gone_the_device_waits_two_slots() {
        let mut core = core_with(settings());
        run_slots(&mut core, 0..2, [0.0; SERVERS]);
        core.handle(at(2), DeviceEvent::SlotStart(2));
        let commands = core.handle(at(2) + WALL / 2, DeviceEvent::ControllerGone);
        assert!(matches!(commands.as_slice(), [DeviceCommand::Send(batch)] if batch.slot == 2 && batch.sends.is_empty()));
        assert_eq!(core.next_wake(), Some(at(2) + WALL / 2 + WALL * GONE_SLOTS));
        core.handle(at(3), DeviceEvent::Tick);
        assert!(!core.finished());
        core.handle(at(5), DeviceEvent::Tick);
        assert!(core.finished());
        conserved(&core.records(0));
    }

    #[test]
    fn shutdown_finishes_at_once() {
        let mut core = core_with(settings());
        core.handle(at(0), DeviceEvent::SlotStart(0));
        assert_eq!(core.handle(at(0), DeviceEvent::Shutdown), []);
        assert!(core.finished());
        assert_eq!(core.next_wake(), None);
    }

    /// A run with offloads, results, a lost server and a finish, with
    /// `extra` spurious ticks before each event.
    fn scripted(extra: usize) -> (Vec<DeviceCommand>, DeviceRecords) {
        let mut core = core_with(DeviceSettings { early_reports: true, ..settings() });
        let mut events = Vec::new();
        for slot in 0..20 {
            events.push((at(slot), DeviceEvent::SlotStart(slot)));
            events.push((at(slot) + WALL / 4, decision(slot, [0.3, 0.3, 0.3])));
            events.push((at(slot) + WALL / 2, DeviceEvent::ResultsDone { server: 1, slot }));
        }
        events.push((at(20), DeviceEvent::ServerLost { server: 2 }));
        events.push((at(20), DeviceEvent::Finish(pb::Finish { last_slot: 19 })));
        let mut commands = Vec::new();
        for (now, event) in events {
            for _ in 0..extra {
                commands.extend(core.handle(now, DeviceEvent::Tick));
            }
            commands.extend(core.handle(now, event));
        }
        (commands, core.records(0))
    }

    #[test]
    fn the_same_events_give_the_same_commands() {
        let (commands, records) = scripted(0);
        assert!(commands.contains(&DeviceCommand::StopSending { server: 2 }));
        assert!(records.requeued_fragments > 0);
        assert_eq!((commands, records), scripted(0));
    }

    #[test]
    fn spurious_ticks_are_harmless() {
        assert_eq!(scripted(0), scripted(3));
    }
}
