//! One device: its FIFO task queue served in fragments, its virtual queue H,
//! local computing and its energy, and its task arrivals. The simulator and
//! the device agent both drive this very type, slot by slot:
//!
//! 1. [`DeviceModel::begin_slot`] draws the slot's channel gains;
//! 2. [`DeviceModel::take_fragments`] hands bits to servers as decided;
//! 3. [`DeviceModel::compute_locally`] serves what is left at f_loc;
//! 4. [`DeviceModel::end_slot`] updates H and admits the slot's arrivals;
//!
//! and [`DeviceModel::fragment_done`] whenever a server returns a result.

use crate::channel::DeviceChannel;
use crate::open_tasks::OpenTasks;
use crate::scenario::Scenario;
use crate::streams::{Purpose, stream};
use crate::task::{DropReason, Fragment, FragmentTimes, TaskId, TaskRecord, sample_arrival_count, sample_task_bits};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Progress of one task that has not completed yet.
#[derive(Debug, Clone)]
struct TaskProgress {
    bits: u64,
    arrival_s: f64,
    /// Bits still in the device queue, not yet handed to anyone.
    undispatched: u64,
    /// Fragments handed out whose results have not come back.
    pending_fragments: u32,
    fragments: u32,
    offloaded_bits: u64,
    /// The fragment whose result came back last so far.
    last: FragmentTimes,
}

/// Counters every device keeps for the conservation check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceCounters {
    pub arrived_tasks: u64,
    pub arrived_bits: u64,
    pub dropped_bits: u64,
    pub completed_tasks: u64,
    pub completed_bits: u64,
    pub dropped: BTreeMap<DropReason, u64>,
    pub local_bits: u64,
    pub offloaded_bits: u64,
}

impl DeviceCounters {
    pub fn dropped_tasks(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// What local computing did in one slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalWork {
    pub bits: u64,
    /// Share of the slot the CPU was busy, in [0, 1].
    pub busy_fraction: f64,
    pub completed: Vec<TaskRecord>,
}

/// The device's one radio during a slot: a slot's fragments leave the queue
/// at its start and go server after server, each at its rate r_ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Radio {
    slot_start_s: f64,
    free_s: f64,
}

impl Radio {
    pub fn new(slot_start_s: f64) -> Radio {
        Radio { slot_start_s, free_s: slot_start_s }
    }

    /// Sends `bits` more at `rate_bps`; returns when their last bit is up.
    fn send(&mut self, bits: u64, rate_bps: f64) -> f64 {
        if rate_bps > 0.0 {
            self.free_s += bits as f64 / rate_bps;
        }
        self.free_s
    }
}

/// What the end of a slot admitted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arrivals {
    pub tasks: u64,
    pub bits: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone)]
pub struct DeviceModel {
    id: usize,
    slot_seconds: f64,
    scenario: Scenario,
    channel: DeviceChannel,
    arrivals_rng: ChaCha8Rng,
    queue: VecDeque<TaskId>,
    tasks: OpenTasks<TaskProgress>,
    queue_bits: u64,
    virtual_bits: f64,
    /// Slots begun so far: the index of the current slot, for dynamics.
    slots_begun: u64,
    counters: DeviceCounters,
    /// Buffers reused every slot (local pieces, arrival instants) so that a
    /// slot allocates nothing for them.
    local_pieces: Vec<(TaskId, u64)>,
    arrival_offsets: Vec<f64>,
}

impl DeviceModel {
    pub fn new(scenario: &Scenario, seed: u64, id: usize) -> DeviceModel {
        DeviceModel {
            id,
            slot_seconds: scenario.slot_seconds,
            scenario: scenario.clone(),
            channel: DeviceChannel::new(scenario, seed, id),
            arrivals_rng: stream(seed, Purpose::Arrivals, id as u64),
            queue: VecDeque::new(),
            tasks: OpenTasks::new(),
            queue_bits: 0,
            virtual_bits: 0.0,
            slots_begun: 0,
            counters: DeviceCounters::default(),
            local_pieces: Vec::new(),
            arrival_offsets: Vec::new(),
        }
    }

    pub fn id(&self) -> usize {
        self.id
    }

    /// Q_m: bits waiting in the device queue.
    pub fn queue_bits(&self) -> u64 {
        self.queue_bits
    }

    /// H_m: the virtual queue, in bits.
    pub fn virtual_bits(&self) -> f64 {
        self.virtual_bits
    }

    /// Tasks arrived and not yet completed (queued or in flight).
    pub fn open_tasks(&self) -> u64 {
        self.tasks.len() as u64
    }

    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    pub fn channel(&self) -> &DeviceChannel {
        &self.channel
    }

    /// Draws this slot's channel gains h_m· and returns them.
    pub fn begin_slot(&mut self) -> Vec<f64> {
        let mut gains = vec![0.0; self.scenario.servers];
        self.begin_slot_into(&mut gains);
        gains
    }

    /// [`DeviceModel::begin_slot`], writing the gains into `gains` (one per
    /// server) rather than a new vector.
    pub fn begin_slot_into(&mut self, gains: &mut [f64]) {
        let factor = self.scenario.channel_factor(self.slots_begun);
        self.slots_begun += 1;
        for (out, g) in gains.iter_mut().zip(self.channel.next_slot()) {
            *out = g * factor;
        }
    }

    /// Takes up to `bits` from the head of the queue as fragments bound for a
    /// server, sent on `radio` at `rate_bps`; fewer when the queue holds fewer.
    pub fn take_fragments(&mut self, bits: u64, rate_bps: f64, radio: &mut Radio) -> Vec<Fragment> {
        let mut fragments = Vec::new();
        self.take_fragments_each(bits, rate_bps, radio, |fragment| fragments.push(fragment));
        fragments
    }

    /// [`DeviceModel::take_fragments`], handing each fragment to `each`
    /// rather than collecting them (the simulator queues them straight at
    /// their server).
    pub fn take_fragments_each(&mut self, bits: u64, rate_bps: f64, radio: &mut Radio, mut each: impl FnMut(Fragment)) {
        let device = self.id;
        let sent_s = radio.slot_start_s;
        self.dispatch(bits, true, |task, bits| {
            let uploaded_s = radio.send(bits, rate_bps);
            each(Fragment { device, task, bits, sent_s, uploaded_s });
        });
    }

    /// Computes from the head of the queue at f_loc for the rest of the slot,
    /// starting at `slot_start_s`.
    pub fn compute_locally(&mut self, slot_start_s: f64) -> LocalWork {
        let mut completed = Vec::new();
        let mut work = self.compute_locally_each(slot_start_s, |record| completed.push(record));
        work.completed = completed;
        work
    }

    /// [`DeviceModel::compute_locally`], handing each completed task's
    /// record to `each` rather than collecting them (the simulator adds them
    /// straight to the slot's list); the returned work lists none.
    pub fn compute_locally_each(&mut self, slot_start_s: f64, mut each: impl FnMut(TaskRecord)) -> LocalWork {
        let capacity = self.scenario.local_bits_per_slot();
        if capacity == 0 {
            return LocalWork::default();
        }
        let bits_per_second = self.scenario.device.cpu_hz / self.scenario.device.cycles_per_bit;
        let mut work = LocalWork::default();
        let mut pieces = std::mem::take(&mut self.local_pieces);
        self.dispatch(capacity, false, |task, bits| pieces.push((task, bits)));
        for (task, bits) in pieces.drain(..) {
            let started_s = slot_start_s + work.bits as f64 / bits_per_second;
            work.bits += bits;
            let done_s = slot_start_s + work.bits as f64 / bits_per_second;
            if let Some(record) = self.fragment_done(task, &FragmentTimes::local(started_s, done_s)) {
                each(record);
            }
        }
        self.local_pieces = pieces;
        self.counters.local_bits += work.bits;
        work.busy_fraction = work.bits as f64 / capacity as f64;
        work
    }

    /// A fragment of `task` was computed and its result is here at
    /// `times.done_s`. Returns the task's record if that was its last
    /// outstanding piece. Unknown tasks (a duplicate result) are ignored.
    pub fn fragment_done(&mut self, task: TaskId, times: &FragmentTimes) -> Option<TaskRecord> {
        let progress = self.tasks.get_mut(task)?;
        if progress.pending_fragments == 0 {
            return None;
        }
        progress.pending_fragments -= 1;
        if times.done_s >= progress.last.done_s {
            progress.last = *times;
        }
        if progress.pending_fragments > 0 || progress.undispatched > 0 {
            return None;
        }
        let progress = self.tasks.remove(task)?;
        self.counters.completed_tasks += 1;
        self.counters.completed_bits += progress.bits;
        Some(TaskRecord {
            offloaded_bits: progress.offloaded_bits,
            fragments: progress.fragments,
            ..TaskRecord::completed(self.id, task, progress.bits, progress.arrival_s, &progress.last)
        })
    }

    /// Puts a fragment's bits back at the head of the queue, e.g. when the
    /// server it went to was lost. The bits are served again like any other.
    pub fn requeue_fragment(&mut self, fragment: &Fragment) {
        let Some(progress) = self.tasks.get_mut(fragment.task) else {
            return;
        };
        if progress.pending_fragments == 0 {
            return;
        }
        progress.pending_fragments -= 1;
        progress.offloaded_bits = progress.offloaded_bits.saturating_sub(fragment.bits);
        if progress.undispatched == 0 {
            self.queue.push_front(fragment.task);
        }
        progress.undispatched += fragment.bits;
        self.queue_bits += fragment.bits;
        self.counters.offloaded_bits = self.counters.offloaded_bits.saturating_sub(fragment.bits);
    }

    /// Ends slot `slot`: H(t+1) = max(H + γτ − served, 0), then admits the
    /// tasks that arrived during the slot (they are served from the next).
    pub fn end_slot(&mut self, slot: u64, served_bits: u64) -> Arrivals {
        let promised = self.scenario.device.promised_bps * self.slot_seconds;
        self.virtual_bits = (self.virtual_bits + promised - served_bits as f64).max(0.0);
        self.admit_arrivals(slot)
    }

    fn admit_arrivals(&mut self, slot: u64) -> Arrivals {
        let count = sample_arrival_count(self.scenario.arrival_rate(slot), &mut self.arrivals_rng);
        let slot_start = slot as f64 * self.slot_seconds;
        let mut offsets = std::mem::take(&mut self.arrival_offsets);
        offsets.extend((0..count).map(|_| self.arrivals_rng.random::<f64>()));
        offsets.sort_by(f64::total_cmp);
        let mut arrivals = Arrivals::default();
        for offset in offsets.drain(..) {
            let bits = sample_task_bits(&self.scenario.arrivals.task_bits, &mut self.arrivals_rng);
            arrivals.tasks += 1;
            arrivals.bits += bits;
            self.counters.arrived_tasks += 1;
            self.counters.arrived_bits += bits;
            if self.queue_bits.saturating_add(bits) > self.scenario.device.queue_cap_bits {
                arrivals.dropped += 1;
                self.counters.dropped_bits += bits;
                *self.counters.dropped.entry(DropReason::DeviceQueueFull).or_default() += 1;
                continue;
            }
            let id = self.tasks.push(TaskProgress {
                bits,
                arrival_s: slot_start + offset * self.slot_seconds,
                undispatched: bits,
                pending_fragments: 0,
                fragments: 0,
                offloaded_bits: 0,
                last: FragmentTimes::default(),
            });
            self.queue.push_back(id);
            self.queue_bits += bits;
        }
        self.arrival_offsets = offsets;
        arrivals
    }

    /// Removes up to `bits` from the head of the queue, one piece per task,
    /// marks each piece as a pending fragment of its task and hands it to
    /// `each` as (task, bits).
    fn dispatch(&mut self, mut bits: u64, offloaded: bool, mut each: impl FnMut(TaskId, u64)) {
        let mut dispatched = 0;
        while bits > 0 {
            let Some(&task) = self.queue.front() else { break };
            let Some(progress) = self.tasks.get_mut(task) else {
                self.queue.pop_front();
                continue;
            };
            let piece = bits.min(progress.undispatched);
            progress.undispatched -= piece;
            progress.pending_fragments += 1;
            progress.fragments += 1;
            if offloaded {
                progress.offloaded_bits += piece;
            }
            if progress.undispatched == 0 {
                self.queue.pop_front();
            }
            bits -= piece;
            dispatched += piece;
            self.queue_bits -= piece;
            each(task, piece);
        }
        if offloaded {
            self.counters.offloaded_bits += dispatched;
        }
    }
}

/// Bits device m sends to each server this slot: b_ms = ⌊μ_ms τ r_ms⌋, never
/// more than the queue holds (servers in index order) nor than a server's
/// free space.
pub fn offload_plan(shares: &[f64], rates_bps: &[f64], slot_seconds: f64, queue_bits: u64, server_free_bits: &[u64]) -> Vec<u64> {
    let mut plan = vec![0; shares.len().min(rates_bps.len()).min(server_free_bits.len())];
    offload_plan_into(shares, rates_bps, slot_seconds, queue_bits, server_free_bits, &mut plan);
    plan
}

/// [`offload_plan`], written into `plan` (one entry per server) rather than
/// a new vector.
pub fn offload_plan_into(
    shares: &[f64],
    rates_bps: &[f64],
    slot_seconds: f64,
    queue_bits: u64,
    server_free_bits: &[u64],
    plan: &mut [u64],
) {
    let mut left = queue_bits;
    for (((bits, &mu), &rate), &free) in plan.iter_mut().zip(shares).zip(rates_bps).zip(server_free_bits) {
        let wanted = (mu.clamp(0.0, 1.0) * slot_seconds * rate).floor();
        *bits = if wanted.is_finite() { wanted as u64 } else { 0 }.min(left).min(free);
        left -= *bits;
    }
}
