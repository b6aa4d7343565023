//! One device agent's slot logic around its `DeviceModel`, in the
//! simulator's order: begin the slot (draw the channel) and report; on the
//! decision, plan the offload with `offload_plan`, take the fragments, hand
//! them to the uplink, compute locally and end the slot, then begin the next
//! slot at once and report it ahead of its announcement (the controller then
//! holds every report when the slot starts). A slot with no
//! decision (the next slot started, or the run finished) is computed
//! locally; announced slots that were missed are caught up locally so the
//! random streams stay aligned with the simulator's.

use crate::metrics::DeviceFigures;
use crate::records::{DeviceRecords, DeviceSlot};
use crate::uplink::{Batch, Downlink};
use qmec_model::Scenario;
use qmec_model::accounting::{compute_power_w, transmit_power_w};
use qmec_model::channel::shannon_rate;
use qmec_model::device::{DeviceModel, offload_plan};
use qmec_model::task::TaskRecord;
use qmec_proto::{pb, validate};
use qmec_model::task::Fragment;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Slots of silence after which a device gives up on a server that holds
/// its fragments.
pub const SILENT_SLOTS: u32 = 25;

#[derive(Debug)]
pub struct Device {
    model: DeviceModel,
    scenario: Scenario,
    wall_per_modelled: f64,
    /// The slot begun and not yet ended, with its rates.
    open: Option<(u64, Vec<f64>)>,
    /// The open slot was begun and reported as soon as the slot before it
    /// ended, ahead of its announcement.
    early: Option<u64>,
    next_slot: u64,
    /// When each slot began on this agent's clock, to place each task's
    /// modelled arrival (uniform within its slot) in wall time.
    slot_began: BTreeMap<u64, Instant>,
    /// Estimated one-way delay from the controller (half the smallest
    /// round trip measured at start): a slot began this long before its
    /// announcement reached this agent, so delays on the device's link
    /// count in task latency instead of shifting its clock with them.
    announce_delay: Duration,
    slot_wall_s: f64,
    /// Completed tasks by the slot that finished them (the local slot, or
    /// the server's computing slot), as the simulator counts them.
    completed_by_slot: HashMap<u64, u64>,
    /// The last slot each server said all its results were sent for.
    pub results_done: Vec<Option<u64>>,
    /// Per server, the fragments sent to it whose results have not come
    /// back yet, oldest first: requeued if that server is lost.
    in_flight: Vec<VecDeque<Fragment>>,
    /// Servers whose stream broke: offered nothing more, not waited for.
    lost: Vec<bool>,
    /// Slots in the run.
    run_slots: u64,
    /// When each server was last heard from (a result or an end-of-results
    /// marker): a server with fragments in flight that stays silent for
    /// [`SILENT_SLOTS`] slots of this agent's live time is lost.
    last_heard: Vec<Instant>,
    /// When this agent's loop last ran: a gap (the agent itself was
    /// paused) does not count as the servers' silence.
    last_tick: Instant,
    /// When a slot last began here: while none does (the controller is
    /// down or restarting) servers get no allocations, so their silence
    /// does not count either.
    last_slot_began: Instant,
    /// Shared with the uplink sender, so that it stops sending to a server
    /// this device gave up on.
    lost_flags: Option<crate::uplink::LostFlags>,
    records: DeviceRecords,
}

impl Device {
    pub fn new(setup: &validate::Setup, id: usize, tx_fraction: f64) -> Device {
        let scenario = setup.scenario.clone();
        Device {
            model: DeviceModel::new(&scenario, setup.seed, id),
            wall_per_modelled: tx_fraction * setup.slot_wall_s / scenario.slot_seconds,
            open: None,
            early: None,
            next_slot: 0,
            slot_began: BTreeMap::new(),
            announce_delay: Duration::ZERO,
            slot_wall_s: setup.slot_wall_s,
            completed_by_slot: HashMap::new(),
            results_done: vec![None; scenario.servers],
            in_flight: vec![VecDeque::new(); scenario.servers],
            lost: vec![false; scenario.servers],
            run_slots: setup.slots,
            last_heard: vec![Instant::now(); scenario.servers],
            last_tick: Instant::now(),
            last_slot_began: Instant::now(),
            lost_flags: None,
            records: DeviceRecords {
                device: id,
                offloaded_bits_by_server: vec![0; scenario.servers],
                requeued_bits_by_server: vec![0; scenario.servers],
                ..Default::default()
            },
            scenario,
        }
    }

    /// Shares the uplink's lost flags, set when this device gives up on a server.
    pub fn share_lost_flags(&mut self, flags: crate::uplink::LostFlags) {
        self.lost_flags = Some(flags);
    }

    /// Called on every turn of the agent's loop: gives up on a server that
    /// holds fragments of this device and has been silent for
    /// [`SILENT_SLOTS`] slots of live time (its results are not coming:
    /// paused, hung, or cut off without its stream breaking).
    pub fn tick(&mut self) {
        let now = Instant::now();
        let slot = Duration::from_secs_f64(self.slot_wall_s);
        let paused = now.saturating_duration_since(self.last_tick) > slot * 2;
        let no_slots = now.saturating_duration_since(self.last_slot_began) > slot * 2;
        if paused || no_slots {
            // Nobody could be heard: this agent was not running, or the
            // servers had nothing to compute.
            self.last_heard.iter_mut().for_each(|t| *t = now);
        }
        self.last_tick = now;
        let silent = slot * SILENT_SLOTS;
        for server in 0..self.in_flight.len() {
            if !self.lost[server]
                && !self.in_flight[server].is_empty()
                && now.saturating_duration_since(self.last_heard[server]) > silent
            {
                tracing::warn!(device = self.records.device, server, "server silent for {SILENT_SLOTS} slots; giving up on it");
                self.records.silent_servers += 1;
                self.server_lost(server);
            }
        }
    }

    /// Starts slot `slot` (catching up on missed ones) and returns the report.
    pub fn start_slot(&mut self, slot: u64) -> Option<pb::DeviceReport> {
        self.last_slot_began = Instant::now();
        if self.early.take() == Some(slot) && self.open.as_ref().is_some_and(|(open, _)| *open == slot) {
            // Reported already; the slot starts now on this agent's clock.
            self.slot_began.insert(slot, self.slot_start_now());
            return None;
        }
        if slot < self.next_slot {
            return None;
        }
        if self.open.is_some() {
            self.end_slot(None);
        }
        while self.next_slot < slot {
            let _ = self.begin();
            self.end_slot(None);
        }
        let gains = self.begin();
        let counters = self.model.counters();
        Some(pb::DeviceReport {
            slot,
            queue_bits: self.model.queue_bits() as f64,
            virtual_bits: self.model.virtual_bits(),
            gains,
            arrived_tasks: counters.arrived_tasks,
            completed_tasks: counters.completed_tasks,
            dropped_tasks: counters.dropped_tasks(),
        })
    }

    /// Once a decision has ended the open slot, begins the next one at once
    /// and returns its report, so that the controller holds it before the
    /// slot is announced: Q and H after slot t−1 are the state at the start
    /// of slot t, and the channel draw comes next in the model's order
    /// either way. Not past the run's last slot (`slots`).
    pub fn report_early(&mut self, slots: u64) -> Option<pb::DeviceReport> {
        if self.open.is_some() || self.next_slot >= slots {
            return None;
        }
        let slot = self.next_slot;
        let report = self.start_slot(slot);
        self.early = Some(slot);
        report
    }

    /// Slot `slot` is open, begun and reported ahead of its announcement.
    pub fn reported_early(&self, slot: u64) -> bool {
        self.early == Some(slot) && self.open.as_ref().is_some_and(|(open, _)| *open == slot)
    }

    /// Sets the one-way delay from the controller (see `announce_delay`).
    pub fn set_announce_delay(&mut self, delay: Duration) {
        self.announce_delay = delay;
    }

    /// When the slot being announced now began, on this agent's clock.
    fn slot_start_now(&self) -> Instant {
        let now = Instant::now();
        now.checked_sub(self.announce_delay).unwrap_or(now)
    }

    fn begin(&mut self) -> Vec<f64> {
        self.slot_began.insert(self.next_slot, self.slot_start_now());
        let gains = self.model.begin_slot();
        let rates = gains
            .iter()
            .map(|&h| shannon_rate(&self.scenario.channel, self.scenario.device.tx_power_w, h))
            .collect();
        self.open = Some((self.next_slot, rates));
        self.next_slot += 1;
        gains
    }

    /// Applies slot `decision.slot`'s μ row; the fragments go to `uplink`.
    pub async fn decide(&mut self, decision: &validate::Decision, uplink: &mpsc::Sender<Batch>) {
        if self.open.as_ref().is_some_and(|(slot, _)| *slot == decision.slot)
            && let Some(batch) = self.end_slot(Some(decision))
        {
            let _ = uplink.send(batch).await;
        }
    }

    /// Ends the open slot, with a decision or locally; an empty batch still
    /// carries the end-of-slot markers.
    pub fn end_slot(&mut self, decision: Option<&validate::Decision>) -> Option<Batch> {
        let (slot, rates) = self.open.take()?;
        let tau = self.scenario.slot_seconds;
        let mut record = DeviceSlot { slot, decided: decision.is_some(), ..Default::default() };
        let mut sends = Vec::new();
        if let Some(decision) = decision {
            // A server this device has lost gets nothing, whatever the
            // controller (which may not know yet) offered.
            let free: Vec<u64> = decision
                .server_free_bits
                .iter()
                .enumerate()
                .map(|(s, &free)| if self.lost.get(s).copied().unwrap_or(false) { 0 } else { free })
                .collect();
            let plan = offload_plan(&decision.shares, &rates, tau, self.model.queue_bits(), &free);
            for (s, &bits) in plan.iter().enumerate() {
                if bits == 0 {
                    continue;
                }
                record.tx_power_w += transmit_power_w(self.scenario.device.tx_power_w, bits, rates[s], tau);
                record.offloaded_bits += bits;
                let fragments = self.model.take_fragments(bits);
                if let Some(in_flight) = self.in_flight.get_mut(s) {
                    in_flight.extend(fragments.iter().cloned());
                }
                if let Some(sent) = self.records.offloaded_bits_by_server.get_mut(s) {
                    *sent += fragments.iter().map(|f| f.bits).sum::<u64>();
                }
                sends.push((s, fragments, rates[s]));
            }
        } else {
            self.records.undecided_slots += 1;
        }
        let local = self.model.compute_locally(slot as f64 * tau);
        record.compute_power_w =
            compute_power_w(self.scenario.device.kappa, self.scenario.device.cpu_hz, local.busy_fraction);
        record.local_bits = local.bits;
        for task in local.completed {
            self.completed(task, slot);
        }
        let arrivals = self.model.end_slot(slot, record.offloaded_bits + record.local_bits);
        record.arrived_tasks = arrivals.tasks;
        record.arrived_bits = arrivals.bits;
        record.dropped_tasks = arrivals.dropped;
        record.queue_bits = self.model.queue_bits();
        record.virtual_bits = self.model.virtual_bits();
        self.records.slots.push(record);
        Some(Batch { slot, sends, wall_per_modelled: self.wall_per_modelled })
    }

    fn completed(&mut self, task: TaskRecord, done_slot: u64) {
        // The task arrived `offset` of the way into its slot (the model draws
        // it uniformly); in wall time that is as far into the slot as this
        // agent saw it, so network delays before the slot's decision and
        // after the last result both count.
        let tau = self.scenario.slot_seconds;
        let slot = (task.arrival_s / tau).floor().max(0.0);
        if let Some(began) = self.slot_began.get(&(slot as u64)) {
            let offset = (task.arrival_s / tau - slot).clamp(0.0, 1.0) * self.slot_wall_s;
            let arrived = *began + Duration::from_secs_f64(offset);
            let latency = Instant::now().saturating_duration_since(arrived);
            self.records.wall_latency_us.push(latency.as_micros() as u64);
        }
        *self.completed_by_slot.entry(done_slot).or_default() += 1;
        self.records.tasks.push(task);
    }

    /// A result or an end-of-results marker from a server.
    pub fn downlink(&mut self, item: Downlink) {
        match item {
            Downlink::Result { server, result } => {
                if let Some(heard) = self.last_heard.get_mut(server) {
                    *heard = Instant::now();
                }
                if self.lost.get(server).copied().unwrap_or(true) {
                    // Given up on: its fragments were requeued already.
                    return;
                }
                if let Some(in_flight) = self.in_flight.get_mut(server)
                    && let Some(at) = in_flight.iter().position(|f| f.task == result.task)
                {
                    in_flight.remove(at);
                }
                if let Some(task) = self.model.fragment_done(result.task, result.done_s) {
                    self.completed(task, result.slot);
                }
            }
            Downlink::Done { server, slot } => {
                if let Some(heard) = self.last_heard.get_mut(server) {
                    *heard = Instant::now();
                }
                if let Some(done) = self.results_done.get_mut(server) {
                    *done = Some(done.map_or(slot, |d| d.max(slot)));
                }
            }
            Downlink::Lost { server } => self.server_lost(server),
        }
    }

    /// Server `server`'s stream broke: every fragment sent to it whose
    /// result has not come back goes back to the head of the queue (served
    /// again locally or at another server), and it is offered nothing more.
    pub fn server_lost(&mut self, server: usize) {
        // A server that sent the results of the run's last slot finished
        // normally; closing its stream loses nothing.
        if self.results_done.get(server).copied().flatten().is_some_and(|d| d + 1 >= self.run_slots) {
            return;
        }
        let Some(lost) = self.lost.get_mut(server) else { return };
        let in_flight = std::mem::take(&mut self.in_flight[server]);
        if !*lost && !in_flight.is_empty() {
            tracing::warn!(device = self.records.device, server, fragments = in_flight.len(), "server lost; requeueing its fragments");
        }
        *lost = true;
        if let Some(flag) = self.lost_flags.as_ref().and_then(|flags| flags.get(server)) {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if !self.records.lost_servers.contains(&server) {
            self.records.lost_servers.push(server);
        }
        // Oldest last, so that it ends up at the head of the queue.
        for fragment in in_flight.iter().rev() {
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
    }

    /// Every server has sent its results of slot `last`.
    pub fn drained(&self, last: u64) -> bool {
        self.results_done.iter().zip(&self.lost).all(|(d, &lost)| lost || d.is_some_and(|d| d >= last))
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
