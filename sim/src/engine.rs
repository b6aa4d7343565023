//! The slot engine. Each slot, in this order:
//! 1. devices draw their channels; the state (Q, H, Z, h, r) is observed;
//! 2. the policy decides (μ, f) and the decision is checked;
//! 3. servers compute their backlog at the allocated frequencies and the
//!    results go back to their devices;
//! 4. devices send b_ms = ⌊μ τ r⌋ bits (capped by queue and server space)
//!    and compute the rest locally;
//! 5. H is updated and the slot's arrivals join the queues; the offloaded
//!    bits join the server queues (they are computed from the next slot).

use qmec_model::accounting::{SlotRecord, compute_power_w, transmit_power_w};
use qmec_model::device::{DeviceModel, Radio, offload_plan_into};
use qmec_model::lyapunov::state_dpp_value;
use qmec_model::server::ServerModel;
use qmec_model::task::TaskRecord;
use qmec_model::{Decision, Matrix, Policy, PolicyError, Scenario, SlotFigure, SystemState};
use crate::summary::{Summary, SummaryBuilder};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The cause is in the message and not a source as well: a report of
    /// the error with its causes would say it twice.
    #[error("slot {slot}: policy `{policy}` failed: {reason}")]
    Policy { slot: u64, policy: String, reason: PolicyError },
}

/// The whole system in one process.
#[derive(Debug)]
pub struct Simulator {
    scenario: Scenario,
    devices: Vec<DeviceModel>,
    servers: Vec<ServerModel>,
    slot: u64,
    /// Tasks completed in the last slot: about as many complete in the
    /// next, so its list is allocated once at about the right size.
    completed_last_slot: usize,
}

/// What one slot produced.
#[derive(Debug, Clone)]
pub struct SlotOutcome {
    pub record: SlotRecord,
    pub completed: Vec<TaskRecord>,
    pub decision: Decision,
    /// What the policy reported after deciding ([`Policy::slot_figures`]),
    /// possibly about earlier slots.
    pub figures: Vec<SlotFigure>,
}

impl Simulator {
    pub fn new(scenario: &Scenario, seed: u64) -> Simulator {
        Simulator {
            scenario: scenario.clone(),
            devices: (0..scenario.devices).map(|m| DeviceModel::new(scenario, seed, m)).collect(),
            servers: (0..scenario.servers).map(|s| ServerModel::new(scenario, s)).collect(),
            slot: 0,
            completed_last_slot: 0,
        }
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    pub fn devices(&self) -> &[DeviceModel] {
        &self.devices
    }

    pub fn servers(&self) -> &[ServerModel] {
        &self.servers
    }

    /// Starts the next slot: draws channels and returns the observed state.
    pub fn observe(&mut self) -> SystemState {
        let (m_count, s_count) = (self.devices.len(), self.servers.len());
        let mut gains = Matrix::zeros(m_count, s_count);
        for (m, device) in self.devices.iter_mut().enumerate() {
            device.begin_slot_into(gains.row_mut(m));
        }
        let mut server_device_bits = Matrix::zeros(m_count, s_count);
        for (s, server) in self.servers.iter().enumerate() {
            for (m, bits) in server.device_backlogs() {
                server_device_bits.set(m, s, bits as f64);
            }
        }
        SystemState::new(
            &self.scenario,
            self.slot,
            self.devices.iter().map(|d| d.queue_bits() as f64).collect(),
            self.devices.iter().map(|d| d.virtual_bits()).collect(),
            server_device_bits,
            gains,
        )
    }

    /// Runs one slot under `policy`.
    pub fn step(&mut self, policy: &mut dyn Policy) -> Result<SlotOutcome, SimError> {
        let state = self.observe();
        let started = Instant::now();
        let decision = policy
            .decide(&self.scenario, &state)
            .and_then(|d| d.check(&self.scenario, &state).map(|()| d))
            .map_err(|reason| SimError::Policy { slot: self.slot, policy: policy.name().into(), reason })?;
        let decision_seconds = started.elapsed().as_secs_f64();
        let mut outcome = self.apply(&state, decision);
        outcome.record.decision_seconds = decision_seconds;
        outcome.figures = policy.slot_figures();
        Ok(outcome)
    }

    /// Applies a checked decision to the observed state and ends the slot.
    pub fn apply(&mut self, state: &SystemState, decision: Decision) -> SlotOutcome {
        let scenario = &self.scenario;
        let tau = scenario.slot_seconds;
        let slot_start = self.slot as f64 * tau;
        let mut record = SlotRecord { slot: self.slot, ..SlotRecord::default() };
        let mut completed = Vec::with_capacity(self.completed_last_slot);

        for (s, server) in self.servers.iter_mut().enumerate() {
            let devices = &mut self.devices;
            record.server_computed_bits += server.compute_each(
                slot_start,
                |m| decision.cpu_hz.get(m, s),
                |done| completed.extend(devices[done.device].fragment_done(done.task, &done.times)),
            );
        }

        let mut server_free: Vec<u64> = self.servers.iter().map(|s| s.free_bits()).collect();
        let mut plan = vec![0; server_free.len()];
        for (m, device) in self.devices.iter_mut().enumerate() {
            offload_plan_into(
                decision.offload.row(m),
                state.rates_bps.row(m),
                tau,
                device.queue_bits(),
                &server_free,
                &mut plan,
            );
            let mut sent = 0;
            let mut radio = Radio::new(slot_start);
            for (s, &bits) in plan.iter().enumerate() {
                if bits == 0 {
                    continue;
                }
                server_free[s] -= bits;
                sent += bits;
                record.tx_power_w +=
                    transmit_power_w(scenario.device.tx_power_w, bits, state.rates_bps.get(m, s), tau);
                // Queued at once: they are computed from the next slot on,
                // and each device's fragments queue apart at a server.
                let server = &mut self.servers[s];
                let rate_bps = state.rates_bps.get(m, s);
                device.take_fragments_each(bits, rate_bps, &mut radio, |fragment| server.accept(fragment));
            }
            let local = device.compute_locally_each(slot_start, |record| completed.push(record));
            record.compute_power_w +=
                compute_power_w(scenario.device.kappa, scenario.device.cpu_hz, local.busy_fraction);
            record.local_bits += local.bits;
            record.offloaded_bits += sent;

            let arrivals = device.end_slot(self.slot, sent + local.bits);
            record.arrived_tasks += arrivals.tasks;
            record.arrived_bits += arrivals.bits;
            record.dropped_tasks += arrivals.dropped;
        }

        record.throughput_bits = record.local_bits + record.offloaded_bits;
        record.completed_tasks = completed.len() as u64;
        self.completed_last_slot = completed.len();
        record.dpp_value = state_dpp_value(scenario, state, &decision.offload);
        for device in &self.devices {
            let q = device.queue_bits() as f64;
            record.queue_total_bits += q;
            record.queue_max_bits = record.queue_max_bits.max(q);
            record.virtual_total_bits += device.virtual_bits();
        }
        record.server_total_bits = self.servers.iter().map(|s| s.backlog_bits() as f64).sum();
        self.slot += 1;
        SlotOutcome { record, completed, decision, figures: Vec::new() }
    }
}

/// Every record of a run.
#[derive(Debug, Clone, Default)]
pub struct RunRecords {
    pub slots: Vec<SlotRecord>,
    pub tasks: Vec<TaskRecord>,
}

impl RunRecords {
    /// Keeps a slot's records and writes its figures into the slots they concern.
    pub fn push(&mut self, outcome: SlotOutcome) {
        self.slots.push(outcome.record);
        self.tasks.extend(outcome.completed);
        attach_figures(&mut self.slots, &outcome.figures);
    }
}

/// Runs `slots` slots; `on_slot` sees each outcome (progress bars, heatmaps).
pub fn run(
    simulator: &mut Simulator,
    policy: &mut dyn Policy,
    slots: u64,
    mut on_slot: impl FnMut(&SlotOutcome),
) -> Result<RunRecords, SimError> {
    let mut records = RunRecords::default();
    for _ in 0..slots {
        let outcome = simulator.step(policy)?;
        on_slot(&outcome);
        records.push(outcome);
    }
    Ok(records)
}

/// Writes each figure into the record of the slot it concerns (figures
/// about slots not in `slots` are dropped).
pub fn attach_figures(slots: &mut [SlotRecord], figures: &[SlotFigure]) {
    let Some(first) = slots.first().map(|r| r.slot) else { return };
    for figure in figures {
        let index = figure.slot.checked_sub(first).and_then(|i| usize::try_from(i).ok());
        if let Some(record) = index.and_then(|i| slots.get_mut(i)).filter(|r| r.slot == figure.slot) {
            record.lp_share = Some(figure.lp_share);
        }
    }
}

/// Runs `slots` slots and summarises them, conservation included, keeping
/// every record in memory.
pub fn simulate(
    scenario: &Scenario,
    seed: u64,
    policy: &mut dyn Policy,
    slots: u64,
    mut on_slot: impl FnMut(&SlotOutcome),
) -> Result<(Summary, RunRecords), SimError> {
    let mut records = RunRecords::default();
    let summary = simulate_with(scenario, seed, policy, slots, |outcome| {
        on_slot(&outcome);
        records.push(outcome);
        Ok::<(), SimError>(())
    })?;
    Ok((summary, records))
}

/// Runs `slots` slots and summarises them, conservation included, handing
/// each outcome to `on_slot` (a run folder written as the run goes,
/// [`crate::output::RunWriter`]) and keeping none: memory stays flat
/// however long the run. An error from `on_slot` stops the run.
pub fn simulate_with<E: From<SimError>>(
    scenario: &Scenario,
    seed: u64,
    policy: &mut dyn Policy,
    slots: u64,
    mut on_slot: impl FnMut(SlotOutcome) -> Result<(), E>,
) -> Result<Summary, E> {
    let mut simulator = Simulator::new(scenario, seed);
    let mut summary = SummaryBuilder::new(scenario, slots);
    for _ in 0..slots {
        let outcome = simulator.step(policy)?;
        summary.add_slot(&outcome.record, simulator.waiting_bits());
        summary.add_tasks(&outcome.completed);
        on_slot(outcome)?;
    }
    Ok(summary.finish(policy.name(), scenario, seed, simulator.conservation()))
}

impl Simulator {
    /// Each device's bits still waiting to be computed: Q_m and its bits
    /// queued at every server. A device whose offloaded work piles up at a
    /// server is as starved as one whose own queue grows.
    pub fn waiting_bits(&self) -> Vec<f64> {
        let mut waiting: Vec<f64> = self.devices.iter().map(|d| d.queue_bits() as f64).collect();
        for server in &self.servers {
            for (m, bits) in server.device_backlogs() {
                if let Some(w) = waiting.get_mut(m) {
                    *w += bits as f64;
                }
            }
        }
        waiting
    }

    /// Where every task that arrived so far stands.
    pub fn conservation(&self) -> crate::Conservation {
        let mut conservation = crate::Conservation::default();
        for device in &self.devices {
            conservation.add_device(device.counters(), device.open_tasks());
        }
        conservation
    }
}
