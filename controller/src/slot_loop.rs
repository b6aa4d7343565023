//! The slot loop. It waits for every device and server to join, hands them
//! the run's setup, and then, slot by slot, in the simulator's order:
//!
//! 1. announces slot t (a device that has not yet reported slot t draws its
//!    channel and reports Q, H, h; one that got slot t−1's decision has done
//!    so already, right after ending slot t−1);
//! 2. gathers device and server reports until all are in or the report
//!    deadline passes; a missing one is decided on its last known state and
//!    counted late (after [`STALE_SLOTS`] without a report, decided local);
//! 3. runs the policy (checked; a failure falls back to local computing);
//! 4. replays the servers' queue caps exactly as the simulator does, so each
//!    device can cap its offload on its own;
//! 5. streams each device its μ row and each server its CPU allocation.
//!
//! The slot-loop time is 1 → 5; the next slot starts on the clock.
//!
//! A controller restarted mid-run (same address, same settings) keeps no
//! state of its own: the agents reconnect, each hello names the first slot
//! that agent has not been told of, and the devices and servers send their
//! latest reports again. The loop joins as usual and goes on from the
//! largest such slot; a slot that was open when the old controller died is
//! ended locally by its devices when the next one is announced. An agent
//! that does not come back within [`REJOIN_GRACE`] of the first one (a
//! server that died while the controller was away) is not waited for: the
//! run goes on without it, as it would have had the old controller seen it go.

use crate::metrics::Metrics;
use crate::records::{ControllerRecords, ControllerSlot, SlotJournal};
use crate::sessions::{DeviceTx, Event, ServerTx};
use qmec_model::device::offload_plan;
use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Decision, Matrix, Policy, Scenario, SystemState};
use qmec_proto::pb::{self, device_down, server_down};
use qmec_proto::validate;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Slots a device may go without reporting and still be decided on its
/// last report; beyond that it is decided local until it reports again, so
/// that no server capacity waits on a device that may be gone.
pub const STALE_SLOTS: u64 = 5;

/// How long a restarted controller waits for the rest of the agents once
/// the first one is back: agents retry at least every 2 s (their backoff's
/// cap), so one missing after this is gone.
pub const REJOIN_GRACE: Duration = Duration::from_secs(5);

impl LoopSettings {
    /// The run's setup as agents get it, before the servers' endpoints
    /// are known.
    pub fn setup(&self) -> pb::RunSetup {
        pb::RunSetup {
            scenario_toml: self.scenario.to_toml(),
            seed: self.seed,
            slots: self.slots,
            slot_wall_s: self.slot_wall.as_secs_f64(),
            server_endpoints: Vec::new(),
        }
    }
}

/// Why the loop stopped early.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("only {devices}/{want_devices} devices and {servers}/{want_servers} servers joined within {timeout:?}")]
    JoinTimeout { devices: usize, want_devices: usize, servers: usize, want_servers: usize, timeout: Duration },
    #[error("shut down before the run started")]
    Cancelled,
}

/// What the loop needs to run.
#[derive(Debug)]
pub struct LoopSettings {
    pub scenario: Scenario,
    pub seed: u64,
    pub slots: u64,
    pub slot_wall: Duration,
    pub report_deadline: f64,
    pub join_timeout: Duration,
    /// Told the first slot once every agent has joined and the clock starts.
    pub started: Option<tokio::sync::oneshot::Sender<u64>>,
    /// Where each decided slot's record is appended as it is decided.
    pub journal: Option<std::path::PathBuf>,
}

#[derive(Debug, Default)]
struct DeviceSlotState {
    tx: Option<DeviceTx>,
    ready: bool,
    /// Slot of the last report, and the report.
    last: Option<validate::Report>,
}

#[derive(Debug, Default)]
struct ServerSlotState {
    tx: Option<ServerTx>,
    endpoint: Option<String>,
    last: Option<validate::ServerReport>,
}

struct Run {
    settings: LoopSettings,
    devices: Vec<DeviceSlotState>,
    servers: Vec<ServerSlotState>,
    metrics: Arc<Metrics>,
    setup: Option<pb::RunSetup>,
    /// The slot whose reports are being gathered, and how many of them
    /// (devices and servers) are in: kept per event, so that gathering a
    /// thousand reports costs a thousand steps, not a million.
    gathering: u64,
    reports_in: usize,
    /// The largest `next_slot` an agent joined with: where the run goes on.
    resume_from: u64,
}

impl Run {
    fn handle(&mut self, event: Event) {
        let membership = !matches!(event, Event::DeviceReport { .. } | Event::ServerReport { .. } | Event::DeviceReady { .. });
        match event {
            Event::DeviceJoined { device, next_slot, tx } => {
                self.resume_from = self.resume_from.max(next_slot);
                if let Some(setup) = &self.setup {
                    // A device that rejoins mid-run gets the setup again.
                    let _ = tx.try_send(Ok(pb::DeviceDown { msg: Some(device_down::Msg::Setup(setup.clone())) }));
                }
                self.devices[device].tx = Some(tx);
            }
            Event::DeviceReady { device } => self.devices[device].ready = true,
            Event::DeviceReport { device, report } => {
                let slot = report.slot;
                let previous = self.devices[device].last.replace(report);
                self.count_report(previous.map(|r| r.slot), slot);
            }
            Event::DeviceLeft { device, tx } => {
                // Only the stream that left is forgotten, not a newer one.
                if self.devices[device].tx.as_ref().is_some_and(|current| current.same_channel(&tx)) {
                    self.devices[device].tx = None;
                }
            }
            Event::ServerJoined { server, endpoint, next_slot, tx } => {
                self.resume_from = self.resume_from.max(next_slot);
                if let Some(setup) = &self.setup {
                    let _ = tx.try_send(Ok(pb::ServerDown { msg: Some(server_down::Msg::Setup(setup.clone())) }));
                }
                self.servers[server].tx = Some(tx);
                self.servers[server].endpoint = Some(endpoint);
            }
            Event::ServerReport { server, report } => {
                let slot = report.slot;
                let previous = self.servers[server].last.replace(report);
                self.count_report(previous.map(|r| r.slot), slot);
            }
            Event::ServerLeft { server, tx } => {
                if self.servers[server].tx.as_ref().is_some_and(|current| current.same_channel(&tx)) {
                    self.servers[server].tx = None;
                }
            }
        }
        if membership {
            let devices = self.devices.iter().filter(|d| d.tx.is_some()).count() as i64;
            let servers = self.servers.iter().filter(|s| s.tx.is_some()).count() as i64;
            self.metrics.connected(devices, servers);
        }
    }

    /// A report for `slot` replaced one for `previous`.
    fn count_report(&mut self, previous: Option<u64>, slot: u64) {
        if slot == self.gathering && previous != Some(slot) {
            self.reports_in += 1;
        }
    }

    /// Starts gathering slot `slot`'s reports (counting any already in).
    fn gather_slot(&mut self, slot: u64) {
        self.gathering = slot;
        self.reports_in = self.devices.iter().filter(|d| d.last.as_ref().is_some_and(|r| r.slot == slot)).count()
            + self.servers.iter().filter(|s| s.last.as_ref().is_some_and(|r| r.slot == slot)).count();
    }

    fn all_joined(&self) -> bool {
        self.devices.iter().all(|d| d.tx.is_some()) && self.servers.iter().all(|s| s.tx.is_some() && s.endpoint.is_some())
    }

    /// Every device that is connected has said it is ready.
    fn all_ready(&self) -> bool {
        self.devices.iter().all(|d| d.ready || d.tx.is_none())
    }

    /// An agent joined with a run in progress: this controller restarted.
    fn resuming(&self) -> bool {
        self.resume_from > 0
    }

    /// Every report of the slot being gathered is in.
    fn reports_in(&self) -> bool {
        // A server that is gone (killed, session broken) is not waited for.
        let servers = self.servers.iter().filter(|s| s.tx.is_some()).count();
        self.reports_in >= self.devices.len() + servers
    }
}

/// Waits for events until `done` holds or `deadline` passes.
async fn gather(
    run: &mut Run,
    events: &mut mpsc::Receiver<Event>,
    deadline: tokio::time::Instant,
    shutdown: &CancellationToken,
    done: impl Fn(&Run) -> bool,
) -> bool {
    while !done(run) {
        // The deadline before the events: under a flood of events (a
        // thousand reports) a biased select would otherwise never see it.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep_until(deadline) => return done(run),
            event = events.recv() => match event {
                Some(event) => run.handle(event),
                None => return false,
            },
        }
    }
    true
}

/// Waits for the next slot's tick, handling events meanwhile: reports sent
/// early, joins and leaves are then already counted when the slot starts,
/// instead of a thousand of them being handled inside the slot's loop
/// time. False when the run is cancelled.
async fn wait_for_tick(
    run: &mut Run,
    events: &mut mpsc::Receiver<Event>,
    clock: &mut tokio::time::Interval,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return false,
            _ = clock.tick() => return true,
            Some(event) = events.recv() => run.handle(event),
        }
    }
}

/// Appends `record` to the slot journal; a journal that cannot be written
/// is dropped with a warning (the run goes on, only a restart loses it).
fn journal_line(journal: &mut Option<SlotJournal>, record: &ControllerSlot) {
    if let Some(writer) = journal
        && let Err(error) = writer.append(record)
    {
        tracing::warn!(%error, "slot journal stopped");
        *journal = None;
    }
}

/// Runs the whole run; returns the records, also when cancelled mid-run.
pub async fn run(
    settings: LoopSettings,
    mut policy: Box<dyn Policy>,
    mut events: mpsc::Receiver<Event>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<ControllerRecords, LoopError> {
    let scenario = settings.scenario.clone();
    let (m_count, s_count) = (scenario.devices, scenario.servers);
    let mut run = Run {
        devices: (0..m_count).map(|_| DeviceSlotState::default()).collect(),
        servers: (0..s_count).map(|_| ServerSlotState::default()).collect(),
        setup: None,
        gathering: 0,
        reports_in: 0,
        resume_from: 0,
        settings,
        metrics: metrics.clone(),
    };
    let mut records = ControllerRecords { policy: policy.name().into(), seed: run.settings.seed, ..Default::default() };

    // Join: every agent connects, gets the setup, and the devices say ready.
    let join_deadline = tokio::time::Instant::now() + run.settings.join_timeout;
    let join_error = |run: &Run| LoopError::JoinTimeout {
        devices: run.devices.iter().filter(|d| d.tx.is_some()).count(),
        want_devices: m_count,
        servers: run.servers.iter().filter(|s| s.tx.is_some()).count(),
        want_servers: s_count,
        timeout: run.settings.join_timeout,
    };
    let joined = |run: &Run| run.all_joined() || run.resuming();
    if !gather(&mut run, &mut events, join_deadline, &shutdown, joined).await {
        return Err(if shutdown.is_cancelled() { LoopError::Cancelled } else { join_error(&run) });
    }
    if run.resuming() {
        let grace = join_deadline.min(tokio::time::Instant::now() + REJOIN_GRACE);
        gather(&mut run, &mut events, grace, &shutdown, Run::all_joined).await;
        if shutdown.is_cancelled() {
            return Err(LoopError::Cancelled);
        }
        if !run.all_joined() {
            let devices: Vec<usize> = (0..m_count).filter(|&m| run.devices[m].tx.is_none()).collect();
            let servers: Vec<usize> = (0..s_count).filter(|&s| run.servers[s].tx.is_none()).collect();
            tracing::warn!(?devices, ?servers, "going on without the agents that did not come back");
        }
    }
    let setup = pb::RunSetup {
        server_endpoints: run.servers.iter().map(|s| s.endpoint.clone().unwrap_or_default()).collect(),
        ..run.settings.setup()
    };
    for device in &run.devices {
        if let Some(tx) = &device.tx {
            let _ = tx.send(Ok(pb::DeviceDown { msg: Some(device_down::Msg::Setup(setup.clone())) })).await;
        }
    }
    for server in &run.servers {
        if let Some(tx) = &server.tx {
            let _ = tx.send(Ok(pb::ServerDown { msg: Some(server_down::Msg::Setup(setup.clone())) })).await;
        }
    }
    run.setup = Some(setup);
    if !gather(&mut run, &mut events, join_deadline, &shutdown, Run::all_ready).await {
        return Err(if shutdown.is_cancelled() { LoopError::Cancelled } else { join_error(&run) });
    }
    let first_slot = run.resume_from;
    records.first_slot = first_slot;
    if let Some(started) = run.settings.started.take() {
        let _ = started.send(first_slot);
    }
    let mut journal = run.settings.journal.as_deref().and_then(|path| {
        SlotJournal::open(path, first_slot == 0)
            .inspect_err(|error| tracing::warn!(path = %path.display(), %error, "no slot journal"))
            .ok()
    });
    if first_slot > 0 {
        tracing::warn!(first_slot, "joined a run in progress (this controller restarted); going on from its reports");
    } else {
        tracing::info!(devices = m_count, servers = s_count, "every agent joined; the run starts");
    }

    let slot_wall = run.settings.slot_wall;
    let report_wait = slot_wall.mul_f64(run.settings.report_deadline);
    let mut clock = tokio::time::interval(slot_wall);
    clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_slot = None;
    for t in first_slot..run.settings.slots {
        if !wait_for_tick(&mut run, &mut events, &mut clock, &shutdown).await {
            break;
        }
        let started = Instant::now();
        run.gather_slot(t);
        let announce = pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(pb::SlotStart { slot: t })) };
        for device in &run.devices {
            if let Some(tx) = &device.tx {
                let _ = tx.try_send(Ok(announce.clone()));
            }
        }
        let deadline = tokio::time::Instant::from_std(started) + report_wait;
        gather(&mut run, &mut events, deadline, &shutdown, Run::reports_in).await;
        if shutdown.is_cancelled() {
            break;
        }
        let reports_wait_s = started.elapsed().as_secs_f64();
        let record = ControllerSlot { reports_wait_s, ..decide_and_send(&mut run, policy.as_mut(), t, started) };
        metrics.slot(&record);
        journal_line(&mut journal, &record);
        records.slots.push(record);
        for figure in policy.slot_figures() {
            let Some(earlier) = records.slots.iter_mut().rev().find(|r| r.slot == figure.slot) else { continue };
            earlier.lp_share = Some(figure.lp_share);
            // The journal keeps a slot's last line: the figure survives a restart.
            journal_line(&mut journal, earlier);
        }
        last_slot = Some(t);
    }

    // Finish: every agent drains, writes its records and leaves.
    let finish = pb::Finish { last_slot: last_slot.unwrap_or(first_slot.saturating_sub(1)) };
    for device in &run.devices {
        if let Some(tx) = &device.tx {
            let _ = tx.send(Ok(pb::DeviceDown { msg: Some(device_down::Msg::Finish(finish)) })).await;
        }
    }
    for server in &run.servers {
        if let Some(tx) = &server.tx {
            let _ = tx.send(Ok(pb::ServerDown { msg: Some(server_down::Msg::Finish(finish)) })).await;
        }
    }
    // Keep the streams open while the agents drain; they close their side.
    let drain_deadline = tokio::time::Instant::now() + Duration::from_secs(10) + slot_wall * 20;
    let quiet = CancellationToken::new();
    gather(&mut run, &mut events, drain_deadline, &quiet, |run| {
        run.devices.iter().all(|d| d.tx.is_none()) && run.servers.iter().all(|s| s.tx.is_none())
    })
    .await;
    records.invalid_messages = metrics.invalid_messages();
    Ok(records)
}

/// Steps 2–5 of one slot, once the reports are in or late.
fn decide_and_send(run: &mut Run, policy: &mut dyn Policy, t: u64, started: Instant) -> ControllerSlot {
    let scenario = &run.settings.scenario;
    let (m_count, s_count) = (scenario.devices, scenario.servers);
    let mut record = ControllerSlot { slot: t, ..Default::default() };

    let mut queue = vec![0.0; m_count];
    let mut virtual_bits = vec![0.0; m_count];
    let mut gains = Matrix::zeros(m_count, s_count);
    let mut late_device = vec![false; m_count];
    for (m, device) in run.devices.iter().enumerate() {
        match &device.last {
            Some(report) => {
                gains.row_mut(m).copy_from_slice(&report.gains);
                late_device[m] = report.slot != t;
                if t.saturating_sub(report.slot) > STALE_SLOTS {
                    // Silent too long: decided local (its queue counts as
                    // empty, so nothing is offered to it or kept for it).
                    record.stale_devices += 1;
                    continue;
                }
                queue[m] = report.queue_bits;
                virtual_bits[m] = report.virtual_bits;
            }
            None => late_device[m] = true,
        }
    }
    record.late_devices = late_device.iter().filter(|l| **l).count() as u32;
    let mut server_device_bits = Matrix::zeros(m_count, s_count);
    for (s, server) in run.servers.iter().enumerate() {
        if server.tx.is_none() {
            // Gone (killed, or its session broke): offered nothing, and its
            // last backlog is no longer there to serve.
            record.late_servers += 1;
            continue;
        }
        match &server.last {
            Some(report) => {
                for &(m, bits) in &report.backlogs {
                    server_device_bits.set(m, s, bits as f64);
                }
                record.late_servers += u32::from(report.slot != t);
            }
            None => record.late_servers += 1,
        }
    }
    let state = SystemState::new(scenario, t, queue, virtual_bits, server_device_bits, gains);

    let decided = Instant::now();
    let decision = match policy.decide(scenario, &state).and_then(|d| d.check(scenario, &state).map(|()| d)) {
        Ok(decision) => decision,
        Err(error) => {
            tracing::warn!(slot = t, %error, "policy failed; computing locally this slot");
            record.policy_failed = true;
            Decision::local(scenario, &state)
        }
    };
    record.decision_s = decided.elapsed().as_secs_f64();
    record.dpp_value = dpp_weights(scenario, &state).dot(&decision.offload);

    // The servers' free space after this slot's computing, replayed exactly:
    // device m's backlog at s shrinks by min(Z_ms, ⌊f_ms τ / L⌋).
    let tau = scenario.slot_seconds;
    let mut free: Vec<u64> = (0..s_count)
        .map(|s| {
            let mut backlog = 0u64;
            for m in 0..m_count {
                let z = state.server_device_bits.get(m, s) as u64;
                let rate = decision.cpu_hz.get(m, s).max(0.0) / scenario.device.cycles_per_bit;
                let budget = (rate * tau + 1e-6).floor() as u64;
                backlog += z - z.min(budget);
            }
            if run.servers[s].tx.is_none() {
                return 0;
            }
            scenario.server.queue_cap_bits.saturating_sub(backlog)
        })
        .collect();

    for (m, device) in run.devices.iter().enumerate() {
        let row = decision.offload.row(m);
        let caps = free.clone();
        let plan = offload_plan(row, state.rates_bps.row(m), tau, state.queue_bits[m] as u64, &free);
        for (f, bits) in free.iter_mut().zip(plan) {
            *f -= bits;
        }
        let message = pb::DeviceDown {
            msg: Some(device_down::Msg::Decision(pb::OffloadDecision {
                slot: t,
                shares: row.to_vec(),
                server_free_bits: caps,
                late: late_device[m],
            })),
        };
        let delivered = device.tx.as_ref().is_some_and(|tx| tx.try_send(Ok(message)).is_ok());
        record.undelivered += u32::from(!delivered);
    }
    for (s, server) in run.servers.iter().enumerate() {
        let cpu_hz = (0..m_count).map(|m| decision.cpu_hz.get(m, s)).collect();
        let message =
            pb::ServerDown { msg: Some(server_down::Msg::Allocation(pb::Allocation { slot: t, cpu_hz })) };
        let delivered = server.tx.as_ref().is_some_and(|tx| tx.try_send(Ok(message)).is_ok());
        record.undelivered += u32::from(!delivered);
    }
    record.slot_loop_s = started.elapsed().as_secs_f64();
    record
}
