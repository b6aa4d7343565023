//! The controller's run as a state machine with no I/O, no clock and no
//! tokio: events in (joins, reports, leaves, ticks), commands out (messages
//! to the agents, journal lines). The tokio loop (`slot_loop`)
//! only carries the commands out over gRPC, and the in-process virtual
//! runtime drives the very same core on a simulated clock, so the run's
//! rules are written, and tested, once.
//!
//! The run, in the simulator's order:
//!
//! 1. joining: every device and server joins (within `join_timeout`), gets
//!    the setup with the servers' endpoints, and the devices say ready;
//! 2. per slot t, on the clock (first tick + k·slot wall; a slot that
//!    overran delays the ones after it): announce t (a device that has not
//!    yet reported slot t draws its channel and reports Q, H, h; one that
//!    got slot t−1's decision has done so already);
//! 3. gather device and server reports until all are in or the report
//!    deadline passes; a missing one is decided on its last known state and
//!    counted late (after [`STALE_SLOTS`] without a report, decided local).
//!    A report may name at most the slot after the last one announced
//!    ([`ControllerCore::report_limit`]), and one older than the agent's
//!    last report does not replace it;
//! 4. run the policy (checked; a failure falls back to the fallback policy
//!    where there is one, else to local computing: see [`crate::fallback`]);
//! 5. replay the servers' queue caps with the model's own rules, so each
//!    device can cap its offload on its own, and send each device its μ row
//!    and each server its CPU allocation;
//! 6. after the last slot (or a shutdown), finish every agent and wait for
//!    them to leave.
//!
//! A controller restarted mid-run (same address, same settings) keeps no
//! state of its own: the agents reconnect, each join names the first slot
//! that agent has not been told of, and the devices and servers send their
//! latest reports again. The core joins as usual and goes on from the
//! largest such slot; a slot that was open when the old controller died is
//! ended locally by its devices when the next one is announced. An agent
//! that does not come back within [`REJOIN_GRACE`] of the first one (a
//! server that died while the controller was away) is not waited for: the
//! run goes on without it, as it would have had the old controller seen it go.

use crate::fallback;
use crate::records::{ControllerRecords, ControllerSlot};
use qmec_model::device::offload_plan;
use qmec_model::lyapunov::dpp_weights;
use qmec_model::server::slot_budget_bits;
use qmec_model::{Decision, Matrix, Policy, Scenario, SystemState};
use qmec_proto::pb::{self, device_down, server_down};
use qmec_proto::validate;
use std::time::Duration;

/// Slots a device may go without reporting and still be decided on its
/// last report; beyond that it is decided local until it reports again, so
/// that no server capacity waits on a device that may be gone. Counted on
/// the controller's clock, so that no slot number a device sends makes it
/// look fresh.
pub const STALE_SLOTS: u64 = 5;

/// How long a restarted controller waits for the rest of the agents once
/// the first one is back: agents retry at least every 2 s (their backoff's
/// cap), so one missing after this is gone.
pub const REJOIN_GRACE: Duration = Duration::from_secs(5);

/// How long the agents get to drain and leave after the finish: a fixed
/// part for writing records, and a part that grows with the slot length for
/// the work still queued at the servers.
const DRAIN_FIXED: Duration = Duration::from_secs(10);
const DRAIN_SLOTS: u32 = 20;

/// What the core needs to run: the run's settings without any I/O.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    pub scenario: Scenario,
    pub seed: u64,
    pub slots: u64,
    pub slot_wall: Duration,
    /// Reports are awaited until this share of the slot wall has passed.
    pub report_deadline: f64,
    /// From the start of the "now" axis: every agent joins and is ready by then.
    pub join_timeout: Duration,
}

impl CoreSettings {
    /// The run's setup as agents get it, before the servers' endpoints
    /// are known (also what the run's digest is taken of).
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

/// Why the run stopped before it started.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoopError {
    #[error("only {devices}/{want_devices} devices and {servers}/{want_servers} servers joined within {timeout:?}")]
    JoinTimeout { devices: usize, want_devices: usize, servers: usize, want_servers: usize, timeout: Duration },
    #[error("shut down before the run started")]
    Cancelled,
}

/// What happened, as the core hears it.
#[derive(Debug, Clone, PartialEq)]
pub enum ControllerEvent {
    /// `next_slot`: the first slot the agent has not been told of (0 when
    /// fresh; more after this controller restarted mid-run).
    DeviceJoined { device: usize, next_slot: u64 },
    DeviceReady { device: usize },
    DeviceReport { device: usize, report: validate::Report },
    /// The device's current session ended (an older stream's end is the
    /// runtime's to ignore).
    DeviceLeft { device: usize },
    ServerJoined { server: usize, endpoint: String, next_slot: u64 },
    ServerReport { server: usize, report: validate::ServerReport },
    ServerLeft { server: usize },
    /// The time asked for by [`ControllerCore::next_wake`] came (or any
    /// other time: extra ticks do nothing).
    Tick,
    /// Stop: before the run starts, it is cancelled; during it, the agents
    /// are finished at once.
    Shutdown,
}

/// What the runtime must do, in this order.
#[derive(Debug, Clone, PartialEq)]
pub enum ControllerCommand {
    /// Only ever to an agent whose session is open.
    ToDevice { device: usize, message: pb::DeviceDown },
    ToServer { server: usize, message: pb::ServerDown },
    /// Append this slot's line to the journal: once when it is decided, and
    /// again when a figure the policy measured later (`lp_share`) arrives.
    Journal(ControllerSlot),
    /// Every agent joined and is ready; the slot clock starts at `first_slot`.
    Started { first_slot: u64 },
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Waiting for every agent to join, until the join timeout.
    Joining,
    /// A restarted run: some agents are back, the rest get until `until`.
    Rejoining { until: Duration },
    /// The setup is out; waiting for every connected device to be ready.
    Readying,
    /// Slot `slot` is next, on the clock at `due`.
    Waiting { slot: u64, due: Duration },
    /// Slot `slot` was announced at `start`; its reports are gathered until
    /// `deadline`. `next_due`: when the next slot is on the clock.
    Gathering { slot: u64, start: Duration, deadline: Duration, next_due: Duration },
    /// The agents were finished; they leave until `until`.
    Draining { until: Duration },
    Done,
}

#[derive(Debug, Default)]
struct DeviceState {
    connected: bool,
    ready: bool,
    last: Option<validate::Report>,
    /// The slot `last` counts as heard in: the one it names, or the
    /// controller's own slot when it arrived if that is earlier.
    heard: u64,
}

#[derive(Debug, Default)]
struct ServerState {
    connected: bool,
    endpoint: Option<String>,
    last: Option<validate::ServerReport>,
}

/// The inputs of one slot's decision, from the reports at hand.
struct SlotInputs {
    state: SystemState,
    /// Per device: decided on an earlier report than the slot's.
    late: Vec<bool>,
}

/// The controller's run; see the module docs.
pub struct ControllerCore {
    settings: CoreSettings,
    policy: Box<dyn Policy>,
    /// Decides a slot the policy could not (`--external-fallback`).
    fallback: Option<Box<dyn Policy>>,
    /// Wall time spent, for the records only (ZERO under a virtual clock).
    meter: Box<dyn FnMut() -> Duration + Send>,
    devices: Vec<DeviceState>,
    servers: Vec<ServerState>,
    phase: Phase,
    /// Sent to every agent that joins once it is known.
    setup: Option<pb::RunSetup>,
    /// Reports (devices and servers) of the slot being gathered that are
    /// in: kept per event, so that gathering a thousand reports costs a
    /// thousand steps, not a million.
    reports_in: usize,
    /// The largest `next_slot` an agent joined with: where the run goes on.
    resume_from: u64,
    /// The last slot announced.
    announced: Option<u64>,
    last_slot: Option<u64>,
    records: ControllerRecords,
    error: Option<LoopError>,
}

impl std::fmt::Debug for ControllerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerCore")
            .field("policy", &self.policy.name())
            .field("phase", &self.phase)
            .field("last_slot", &self.last_slot)
            .finish_non_exhaustive()
    }
}

impl ControllerCore {
    pub fn new(
        settings: CoreSettings,
        policy: Box<dyn Policy>,
        meter: Box<dyn FnMut() -> Duration + Send>,
    ) -> ControllerCore {
        let records = ControllerRecords { policy: policy.name().into(), seed: settings.seed, ..Default::default() };
        ControllerCore {
            devices: (0..settings.scenario.devices).map(|_| DeviceState::default()).collect(),
            servers: (0..settings.scenario.servers).map(|_| ServerState::default()).collect(),
            settings,
            policy,
            fallback: None,
            meter,
            phase: Phase::Joining,
            setup: None,
            reports_in: 0,
            resume_from: 0,
            announced: None,
            last_slot: None,
            records,
            error: None,
        }
    }

    /// `fallback` decides every slot the policy cannot (late, failed or
    /// infeasible), and the records count each by its cause.
    pub fn with_fallback(mut self, fallback: Option<Box<dyn Policy>>) -> ControllerCore {
        self.records.fallback_policy = fallback.as_ref().map(|f| f.name().to_string());
        self.fallback = fallback;
        self
    }

    /// Takes one event at `now` and says what to do, in order.
    pub fn handle(&mut self, now: Duration, event: ControllerEvent) -> Vec<ControllerCommand> {
        let mut out = Vec::new();
        // Timers before the event: under a flood of events (a thousand
        // reports) a deadline that passed is still kept.
        self.advance(now, &mut out);
        self.apply(now, event, &mut out);
        self.advance(now, &mut out);
        out
    }

    /// When the core must next be ticked (absolute, on the "now" axis).
    pub fn next_wake(&self) -> Option<Duration> {
        match self.phase {
            Phase::Joining | Phase::Readying => Some(self.settings.join_timeout),
            Phase::Rejoining { until } | Phase::Draining { until } => Some(until),
            Phase::Waiting { due, .. } => Some(due),
            Phase::Gathering { deadline, .. } => Some(deadline),
            Phase::Done => None,
        }
    }

    pub fn finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The latest slot a report may name: the one after the last slot
    /// announced (see [`validate::report_slot`]); before the first, the
    /// slot the run starts from. Never decreases.
    pub fn report_limit(&self) -> u64 {
        self.announced.map_or(self.resume_from, |slot| slot + 1)
    }

    /// The controller's own clock, in slots: the slot being gathered or
    /// next on the clock; before the start, the one the run starts from.
    fn clock(&self) -> u64 {
        match self.phase {
            Phase::Waiting { slot, .. } | Phase::Gathering { slot, .. } => slot,
            _ => self.report_limit(),
        }
    }

    /// Sessions open: (devices, servers).
    pub fn connected(&self) -> (usize, usize) {
        (self.devices.iter().filter(|d| d.connected).count(), self.servers.iter().filter(|s| s.connected).count())
    }

    /// The records, also of a run shut down midway; an error when the run
    /// never started. `invalid_messages` holds the events the core refused.
    pub fn outcome(self) -> Result<ControllerRecords, LoopError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.records),
        }
    }

    fn apply(&mut self, now: Duration, event: ControllerEvent, out: &mut Vec<ControllerCommand>) {
        match event {
            ControllerEvent::DeviceJoined { device, next_slot } => self.device_joined(device, next_slot, out),
            ControllerEvent::DeviceReady { device } => {
                if let Some(d) = self.device(device) {
                    d.ready = true;
                }
            }
            ControllerEvent::DeviceReport { device, report } => self.device_report(device, report),
            ControllerEvent::DeviceLeft { device } => {
                if let Some(d) = self.device(device) {
                    d.connected = false;
                }
            }
            ControllerEvent::ServerJoined { server, endpoint, next_slot } => {
                self.server_joined(server, endpoint, next_slot, out);
            }
            ControllerEvent::ServerReport { server, report } => self.server_report(server, report),
            ControllerEvent::ServerLeft { server } => {
                if let Some(s) = self.server(server) {
                    s.connected = false;
                }
            }
            ControllerEvent::Tick => {}
            ControllerEvent::Shutdown => self.shutdown(now, out),
        }
    }

    /// Device `device`'s state; an unknown id is refused and counted.
    fn device(&mut self, device: usize) -> Option<&mut DeviceState> {
        let found = self.devices.get_mut(device);
        if found.is_none() {
            tracing::warn!(device, "event for an unknown device refused");
            self.records.invalid_messages += 1;
        }
        found
    }

    fn server(&mut self, server: usize) -> Option<&mut ServerState> {
        let found = self.servers.get_mut(server);
        if found.is_none() {
            tracing::warn!(server, "event for an unknown server refused");
            self.records.invalid_messages += 1;
        }
        found
    }

    fn device_joined(&mut self, device: usize, next_slot: u64, out: &mut Vec<ControllerCommand>) {
        let Some(d) = self.device(device) else { return };
        d.connected = true;
        self.resume_from = self.resume_from.max(next_slot);
        if let Some(setup) = &self.setup {
            // A device that rejoins mid-run gets the setup again.
            out.push(to_device(device, device_down::Msg::Setup(setup.clone())));
        }
    }

    fn server_joined(&mut self, server: usize, endpoint: String, next_slot: u64, out: &mut Vec<ControllerCommand>) {
        let Some(s) = self.server(server) else { return };
        s.connected = true;
        s.endpoint = Some(endpoint);
        self.resume_from = self.resume_from.max(next_slot);
        if let Some(setup) = &self.setup {
            out.push(to_server(server, server_down::Msg::Setup(setup.clone())));
        }
    }

    fn device_report(&mut self, device: usize, report: validate::Report) {
        if report.gains.len() != self.servers.len() {
            // The sessions check every report; this one did not come through them.
            tracing::warn!(device, gains = report.gains.len(), "a report of the wrong shape refused");
            self.records.invalid_messages += 1;
            return;
        }
        let Some(slot) = self.announced_slot(report.slot) else { return };
        let heard = slot.min(self.clock());
        let Some(d) = self.device(device) else { return };
        if let Some(previous) = keep_newer(&mut d.last, report, |r| r.slot) {
            d.heard = heard;
            self.count_report(previous, slot);
        }
    }

    fn server_report(&mut self, server: usize, report: validate::ServerReport) {
        if report.backlogs.iter().any(|&(m, _)| m >= self.devices.len()) {
            tracing::warn!(server, "a report naming an unknown device refused");
            self.records.invalid_messages += 1;
            return;
        }
        let Some(slot) = self.announced_slot(report.slot) else { return };
        let Some(s) = self.server(server) else { return };
        if let Some(previous) = keep_newer(&mut s.last, report, |r| r.slot) {
            self.count_report(previous, slot);
        }
    }

    /// `slot` if a report may name it; one for a slot not yet announced is
    /// refused and counted (the sessions refuse it first, but this one did
    /// not come through them).
    fn announced_slot(&mut self, slot: u64) -> Option<u64> {
        validate::report_slot(slot, self.report_limit())
            .inspect_err(|invalid| {
                tracing::warn!(%invalid, "a report refused");
                self.records.invalid_messages += 1;
            })
            .ok()
    }

    /// A report for `slot` replaced one for `previous`.
    fn count_report(&mut self, previous: Option<u64>, slot: u64) {
        if let Phase::Gathering { slot: gathering, .. } = self.phase
            && slot == gathering
            && previous != Some(slot)
        {
            self.reports_in += 1;
        }
    }

    /// Moves the run on as far as `now` allows.
    fn advance(&mut self, now: Duration, out: &mut Vec<ControllerCommand>) {
        while self.step(now, out) {}
    }

    /// One move of the run, if one is due at `now`; false when none is.
    fn step(&mut self, now: Duration, out: &mut Vec<ControllerCommand>) -> bool {
        let join_timed_out = now >= self.settings.join_timeout;
        match self.phase {
            Phase::Joining if self.resuming() => {
                let until = self.settings.join_timeout.min(now + REJOIN_GRACE);
                self.phase = Phase::Rejoining { until };
            }
            Phase::Joining if self.all_joined() => self.send_setup(out),
            Phase::Rejoining { until } if self.all_joined() || now >= until => {
                self.warn_missing();
                self.send_setup(out);
            }
            Phase::Readying if self.all_ready() => self.start(now, out),
            Phase::Joining | Phase::Readying if join_timed_out => self.fail_join(),
            Phase::Waiting { slot, .. } if slot >= self.settings.slots => self.finish(now, out),
            Phase::Waiting { slot, due } if now >= due => self.start_slot(slot, now, due, out),
            Phase::Gathering { slot, start, deadline, next_due } if self.all_reports_in() || now >= deadline => {
                self.decide(slot, now.saturating_sub(start), out);
                self.phase = Phase::Waiting { slot: slot + 1, due: next_due.max(now) };
            }
            Phase::Draining { until } if self.all_left() || now >= until => self.phase = Phase::Done,
            _ => return false,
        }
        true
    }

    fn shutdown(&mut self, now: Duration, out: &mut Vec<ControllerCommand>) {
        match self.phase {
            Phase::Joining | Phase::Rejoining { .. } | Phase::Readying => {
                self.error = Some(LoopError::Cancelled);
                self.phase = Phase::Done;
            }
            // The slot being gathered is not decided: the agents end it locally.
            Phase::Waiting { .. } | Phase::Gathering { .. } => self.finish(now, out),
            Phase::Draining { .. } | Phase::Done => {}
        }
    }

    fn all_joined(&self) -> bool {
        self.devices.iter().all(|d| d.connected) && self.servers.iter().all(|s| s.connected && s.endpoint.is_some())
    }

    /// Every device that is connected has said it is ready.
    fn all_ready(&self) -> bool {
        self.devices.iter().all(|d| d.ready || !d.connected)
    }

    fn all_left(&self) -> bool {
        self.connected() == (0, 0)
    }

    /// An agent joined with a run in progress: this controller restarted.
    fn resuming(&self) -> bool {
        self.resume_from > 0
    }

    /// Every report of the slot being gathered is in.
    fn all_reports_in(&self) -> bool {
        // A server that is gone (killed, session broken) is not waited for.
        // Asked at every event while gathering: the servers are counted,
        // not the thousand devices.
        self.reports_in >= self.devices.len() + self.servers.iter().filter(|s| s.connected).count()
    }

    fn fail_join(&mut self) {
        let (devices, servers) = self.connected();
        self.error = Some(LoopError::JoinTimeout {
            devices,
            want_devices: self.devices.len(),
            servers,
            want_servers: self.servers.len(),
            timeout: self.settings.join_timeout,
        });
        self.phase = Phase::Done;
    }

    fn warn_missing(&self) {
        if !self.all_joined() {
            let devices: Vec<usize> = (0..self.devices.len()).filter(|&m| !self.devices[m].connected).collect();
            let servers: Vec<usize> = (0..self.servers.len()).filter(|&s| !self.servers[s].connected).collect();
            tracing::warn!(?devices, ?servers, "going on without the agents that did not come back");
        }
    }

    /// The setup, with the servers' endpoints, to every agent there.
    fn send_setup(&mut self, out: &mut Vec<ControllerCommand>) {
        let setup = pb::RunSetup {
            server_endpoints: self.servers.iter().map(|s| s.endpoint.clone().unwrap_or_default()).collect(),
            ..self.settings.setup()
        };
        self.to_devices(device_down::Msg::Setup(setup.clone()), out);
        self.to_servers(server_down::Msg::Setup(setup.clone()), out);
        self.setup = Some(setup);
        self.phase = Phase::Readying;
    }

    /// Every agent is ready: the clock starts now, with its first tick.
    fn start(&mut self, now: Duration, out: &mut Vec<ControllerCommand>) {
        let first_slot = self.resume_from;
        self.records.first_slot = first_slot;
        if first_slot > 0 {
            tracing::warn!(first_slot, "joined a run in progress (this controller restarted); going on from its reports");
        } else {
            tracing::info!(devices = self.devices.len(), servers = self.servers.len(), "every agent joined; the run starts");
        }
        out.push(ControllerCommand::Started { first_slot });
        self.phase = Phase::Waiting { slot: first_slot, due: now };
    }

    /// Announces `slot`, on the clock at `due`, at `now`. The next slot is
    /// due a slot wall after this one was; a slot that overran past that
    /// moves it (tokio's `MissedTickBehavior::Delay`), see [`Self::step`].
    fn start_slot(&mut self, slot: u64, now: Duration, due: Duration, out: &mut Vec<ControllerCommand>) {
        let wall = self.settings.slot_wall;
        self.reports_in = self.devices.iter().filter(|d| d.last.as_ref().is_some_and(|r| r.slot == slot)).count()
            + self.servers.iter().filter(|s| s.last.as_ref().is_some_and(|r| r.slot == slot)).count();
        self.announced = Some(slot);
        self.to_devices(device_down::Msg::SlotStart(pb::SlotStart { slot }), out);
        let deadline = now + wall.mul_f64(self.settings.report_deadline);
        self.phase = Phase::Gathering { slot, start: now, deadline, next_due: due + wall };
    }

    /// Finishes every agent after the last decided slot; they drain, write
    /// their records and leave while their streams stay open.
    fn finish(&mut self, now: Duration, out: &mut Vec<ControllerCommand>) {
        let first_slot = self.records.first_slot;
        let finish = pb::Finish { last_slot: self.last_slot.unwrap_or(first_slot.saturating_sub(1)) };
        self.to_devices(device_down::Msg::Finish(finish), out);
        self.to_servers(server_down::Msg::Finish(finish), out);
        self.phase = Phase::Draining { until: now + DRAIN_FIXED + self.settings.slot_wall * DRAIN_SLOTS };
    }

    /// Decides slot `t` after `waited` for its reports, sends the decisions
    /// and journals the record.
    fn decide(&mut self, t: u64, waited: Duration, out: &mut Vec<ControllerCommand>) {
        let began = (self.meter)();
        let mut record = ControllerSlot { slot: t, reports_wait_s: waited.as_secs_f64(), ..Default::default() };
        let inputs = self.slot_inputs(t, &mut record);
        let decision = self.run_policy(&inputs.state, &mut record);
        record.dpp_value = dpp_weights(&self.settings.scenario, &inputs.state).dot(&decision.offload);
        record.undelivered = self.send_decision(t, &inputs, &decision, out);
        // The slot loop: the wait on the "now" axis, then the work metered.
        record.slot_loop_s = record.reports_wait_s + (self.meter)().saturating_sub(began).as_secs_f64();
        out.push(ControllerCommand::Journal(record.clone()));
        self.records.slots.push(record);
        self.last_slot = Some(t);
        self.late_figures(out);
    }

    /// The system state of slot `t` from the last reports; counts the late
    /// and stale ones into `record`.
    fn slot_inputs(&self, t: u64, record: &mut ControllerSlot) -> SlotInputs {
        let scenario = &self.settings.scenario;
        let (m_count, s_count) = (self.devices.len(), self.servers.len());
        let mut queue = vec![0.0; m_count];
        let mut virtual_bits = vec![0.0; m_count];
        let mut gains = Matrix::zeros(m_count, s_count);
        let mut late = vec![true; m_count];
        for (m, device) in self.devices.iter().enumerate() {
            let Some(report) = &device.last else { continue };
            gains.row_mut(m).copy_from_slice(&report.gains);
            late[m] = report.slot != t;
            if t.saturating_sub(device.heard) > STALE_SLOTS {
                // Silent too long: decided local (its queue counts as
                // empty, so nothing is offered to it or kept for it).
                record.stale_devices += 1;
                continue;
            }
            queue[m] = report.queue_bits;
            virtual_bits[m] = report.virtual_bits;
        }
        record.late_devices = late.iter().filter(|l| **l).count() as u32;
        let mut server_device_bits = Matrix::zeros(m_count, s_count);
        for (s, server) in self.servers.iter().enumerate() {
            // A server gone (killed, or its session broke) is offered
            // nothing, and its last backlog is no longer there to serve.
            let Some(report) = server.last.as_ref().filter(|_| server.connected) else {
                record.late_servers += 1;
                continue;
            };
            for &(m, bits) in &report.backlogs {
                server_device_bits.set(m, s, bits as f64);
            }
            record.late_servers += u32::from(report.slot != t);
        }
        let state = SystemState::new(scenario, t, queue, virtual_bits, server_device_bits, gains);
        SlotInputs { state, late }
    }

    /// The policy's decision, checked; the fallback's when it fails, and
    /// local computing when that fails too (see [`fallback::decide`]).
    fn run_policy(&mut self, state: &SystemState, record: &mut ControllerSlot) -> Decision {
        let began = (self.meter)();
        let decided = fallback::decide(self.policy.as_mut(), self.fallback.as_deref_mut(), &self.settings.scenario, state);
        record.decision_s = (self.meter)().saturating_sub(began).as_secs_f64();
        record.fallback = decided.fallback;
        record.policy_failed = decided.policy_failed;
        decided.decision
    }

    /// Each server's free space after this slot's computing, replayed with
    /// the server's own rule: device m's backlog shrinks by its slot budget.
    /// A server that is gone has none.
    fn servers_free(&self, state: &SystemState, decision: &Decision) -> Vec<u64> {
        let scenario = &self.settings.scenario;
        let (cycles_per_bit, tau) = (scenario.device.cycles_per_bit, scenario.slot_seconds);
        (0..self.servers.len())
            .map(|s| {
                if !self.servers[s].connected {
                    return 0;
                }
                let backlog: u64 = (0..self.devices.len())
                    .map(|m| {
                        let z = state.server_device_bits.get(m, s) as u64;
                        z.saturating_sub(slot_budget_bits(decision.cpu_hz.get(m, s), cycles_per_bit, tau))
                    })
                    .sum();
                scenario.server.queue_cap_bits.saturating_sub(backlog)
            })
            .collect()
    }

    /// Each device its μ row with the free space the devices before it left
    /// (their plans replayed with the device's own rule), each server its
    /// CPU allocation. Returns how many had no session to go to.
    fn send_decision(&self, t: u64, inputs: &SlotInputs, decision: &Decision, out: &mut Vec<ControllerCommand>) -> u32 {
        let state = &inputs.state;
        let tau = self.settings.scenario.slot_seconds;
        let mut free = self.servers_free(state, decision);
        let mut undelivered = 0;
        for (m, device) in self.devices.iter().enumerate() {
            let row = decision.offload.row(m);
            let plan = offload_plan(row, state.rates_bps.row(m), tau, state.queue_bits[m] as u64, &free);
            let caps = free.clone();
            for (f, bits) in free.iter_mut().zip(plan) {
                *f -= bits;
            }
            let message =
                pb::OffloadDecision { slot: t, shares: row.to_vec(), server_free_bits: caps, late: inputs.late[m] };
            if device.connected {
                out.push(to_device(m, device_down::Msg::Decision(message)));
            } else {
                undelivered += 1;
            }
        }
        for (s, server) in self.servers.iter().enumerate() {
            let cpu_hz = (0..self.devices.len()).map(|m| decision.cpu_hz.get(m, s)).collect();
            if server.connected {
                out.push(to_server(s, server_down::Msg::Allocation(pb::Allocation { slot: t, cpu_hz })));
            } else {
                undelivered += 1;
            }
        }
        undelivered
    }

    /// Figures the policy measured since it was last asked go into the
    /// records of the slots they concern; the journal keeps a slot's last
    /// line, so the figure survives a restart.
    fn late_figures(&mut self, out: &mut Vec<ControllerCommand>) {
        for figure in self.policy.slot_figures() {
            let Some(earlier) = self.records.slots.iter_mut().rev().find(|r| r.slot == figure.slot) else { continue };
            earlier.lp_share = Some(figure.lp_share);
            out.push(ControllerCommand::Journal(earlier.clone()));
        }
    }

    /// `msg` to every device with a session.
    fn to_devices(&self, msg: device_down::Msg, out: &mut Vec<ControllerCommand>) {
        let open = self.devices.iter().enumerate().filter(|(_, d)| d.connected);
        out.extend(open.map(|(m, _)| to_device(m, msg.clone())));
    }

    fn to_servers(&self, msg: server_down::Msg, out: &mut Vec<ControllerCommand>) {
        let open = self.servers.iter().enumerate().filter(|(_, s)| s.connected);
        out.extend(open.map(|(s, _)| to_server(s, msg.clone())));
    }
}

/// Puts `report` in `last` unless `last` names a later slot (the report
/// came out of order: resent over an older session, say); then the slot
/// of the report it replaced, None when it was not kept.
fn keep_newer<R>(last: &mut Option<R>, report: R, slot: fn(&R) -> u64) -> Option<Option<u64>> {
    if last.as_ref().is_some_and(|last| slot(last) > slot(&report)) {
        return None;
    }
    Some(last.replace(report).as_ref().map(slot))
}

fn to_device(device: usize, msg: device_down::Msg) -> ControllerCommand {
    ControllerCommand::ToDevice { device, message: pb::DeviceDown { msg: Some(msg) } }
}

fn to_server(server: usize, msg: server_down::Msg) -> ControllerCommand {
    ControllerCommand::ToServer { server, message: pb::ServerDown { msg: Some(msg) } }
}

#[cfg(test)]
mod tests;
