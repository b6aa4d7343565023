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
use qmec_model::device::{DeviceModel, offload_plan};
use qmec_model::lyapunov::dpp_weights;
use qmec_model::server::ServerModel;
use qmec_model::task::{Fragment, TaskRecord};
use qmec_model::{Decision, Matrix, Policy, PolicyError, Scenario, SlotFigure, SystemState};
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
            gains.row_mut(m).copy_from_slice(&device.begin_slot());
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
        let mut completed = Vec::new();

        for (s, server) in self.servers.iter_mut().enumerate() {
            let work = server.compute(slot_start, |m| decision.cpu_hz.get(m, s));
            record.server_computed_bits += work.bits;
            for done in work.done {
                completed.extend(self.devices[done.device].fragment_done(done.task, done.done_s));
            }
        }

        let mut server_free: Vec<u64> = self.servers.iter().map(|s| s.free_bits()).collect();
        let mut in_transit: Vec<(usize, Fragment)> = Vec::new();
        for (m, device) in self.devices.iter_mut().enumerate() {
            let plan = offload_plan(
                decision.offload.row(m),
                state.rates_bps.row(m),
                tau,
                device.queue_bits(),
                &server_free,
            );
            let mut sent = 0;
            for (s, &bits) in plan.iter().enumerate() {
                if bits == 0 {
                    continue;
                }
                server_free[s] -= bits;
                sent += bits;
                record.tx_power_w +=
                    transmit_power_w(scenario.device.tx_power_w, bits, state.rates_bps.get(m, s), tau);
                in_transit.extend(device.take_fragments(bits).into_iter().map(|f| (s, f)));
            }
            let local = device.compute_locally(slot_start);
            record.compute_power_w +=
                compute_power_w(scenario.device.kappa, scenario.device.cpu_hz, local.busy_fraction);
            record.local_bits += local.bits;
            record.offloaded_bits += sent;
            completed.extend(local.completed);

            let arrivals = device.end_slot(self.slot, sent + local.bits);
            record.arrived_tasks += arrivals.tasks;
            record.arrived_bits += arrivals.bits;
            record.dropped_tasks += arrivals.dropped;
        }
        for (s, fragment) in in_transit {
            self.servers[s].accept(fragment);
        }

        record.throughput_bits = record.local_bits + record.offloaded_bits;
        record.completed_tasks = completed.len() as u64;
        record.dpp_value = dpp_weights(scenario, state).dot(&decision.offload);
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
        records.slots.push(outcome.record);
        records.tasks.extend(outcome.completed);
        attach_figures(&mut records.slots, &outcome.figures);
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

/// Runs `slots` slots and summarises them, conservation included.
pub fn simulate(
    scenario: &Scenario,
    seed: u64,
    policy: &mut dyn Policy,
    slots: u64,
    on_slot: impl FnMut(&SlotOutcome),
) -> Result<(crate::Summary, RunRecords), SimError> {
    let mut simulator = Simulator::new(scenario, seed);
    let records = run(&mut simulator, policy, slots, on_slot)?;
    let summary = crate::Summary::build(
        policy.name(),
        scenario,
        seed,
        &records.slots,
        &records.tasks,
        simulator.conservation(),
    );
    Ok((summary, records))
}

impl Simulator {
    /// Where every task that arrived so far stands.
    pub fn conservation(&self) -> crate::Conservation {
        let mut conservation = crate::Conservation::default();
        for device in &self.devices {
            conservation.add_device(device.counters(), device.open_tasks());
        }
        conservation
    }
}
