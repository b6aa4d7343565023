//! The controller of a virtual run: its core, fed what the real sessions
//! service would feed it (hellos, reports and leaves, validated the same
//! way), the session streams open to it, and the slot journal that
//! survives a restart as the real one's file does.

use super::network::Endpoint;
use super::world::{Effects, Packet, Stream, Wire};
use qmec_controller::{ControllerCommand, ControllerCore, ControllerEvent, ControllerRecords, ControllerSlot, CoreSettings, LoopError};
use qmec_model::Policy;
use qmec_proto::pb::{self, device_up, server_up};
use qmec_proto::validate;
use std::collections::BTreeMap;
use std::time::Duration;

/// Builds the controller's policy, anew at every (re)start.
pub type PolicyFactory = Box<dyn Fn() -> Result<Box<dyn Policy>, String>>;

/// What a controller incarnation is built from.
pub struct ControllerSetup {
    pub settings: CoreSettings,
    pub policy: PolicyFactory,
    pub run_digest: u64,
}

/// The controller: its core, the session streams open to it, and the slot
/// journal that survives a restart (the file the real one keeps).
pub struct ControllerNode {
    setup: ControllerSetup,
    core: Option<ControllerCore>,
    /// When this incarnation started: its core's zero.
    epoch: Duration,
    alive: bool,
    /// Streams open to this incarnation, and each agent's current one.
    conns: BTreeMap<u64, Endpoint>,
    current: BTreeMap<Endpoint, u64>,
    next_conn: u64,
    journal: BTreeMap<u64, ControllerSlot>,
    outcome: Option<Result<ControllerRecords, LoopError>>,
    /// Messages refused by validation.
    pub invalid: u64,
    /// Why the policy could not be built, if it could not.
    pub policy_error: Option<String>,
}

impl ControllerNode {
    pub fn new(setup: ControllerSetup) -> ControllerNode {
        let mut node = ControllerNode {
            setup,
            core: None,
            epoch: Duration::ZERO,
            alive: false,
            conns: BTreeMap::new(),
            current: BTreeMap::new(),
            next_conn: 0,
            journal: BTreeMap::new(),
            outcome: None,
            invalid: 0,
            policy_error: None,
        };
        node.restart(Duration::ZERO);
        node
    }

    /// A fresh incarnation at `now`: no state but the journal, as after a
    /// process restart.
    pub fn restart(&mut self, now: Duration) {
        self.epoch = now;
        self.conns.clear();
        self.current.clear();
        match (self.setup.policy)() {
            Ok(policy) => {
                let meter: Box<dyn FnMut() -> Duration + Send> = Box::new(|| Duration::ZERO);
                self.core = Some(ControllerCore::new(self.setup.settings.clone(), policy, meter));
                self.alive = true;
            }
            Err(error) => {
                self.policy_error = Some(error);
                self.alive = false;
            }
        }
    }

    /// Killed: the streams open to it are returned, to break.
    pub fn die(&mut self) -> Vec<(Endpoint, Stream)> {
        self.alive = false;
        self.core = None;
        self.current.clear();
        std::mem::take(&mut self.conns).into_iter().map(|(conn, who)| (who, Stream::Session(conn))).collect()
    }

    /// A new session stream from `who`, if this controller takes one.
    pub fn open(&mut self, who: Endpoint) -> Option<u64> {
        if !self.alive || self.core.is_none() {
            return None;
        }
        self.next_conn += 1;
        self.conns.insert(self.next_conn, who);
        Some(self.next_conn)
    }

    /// The run is over and the controller has left (or never could start).
    pub fn finished(&self) -> bool {
        self.outcome.is_some() || self.policy_error.is_some()
    }

    pub fn next_wake(&self) -> Option<Duration> {
        self.core.as_ref()?.next_wake().map(|wake| self.epoch + wake)
    }

    /// A message for the controller; returns the first slot when the run
    /// (re)started with it.
    pub fn receive(&mut self, now: Duration, packet: Packet, effects: &mut Effects) -> Option<u64> {
        let Stream::Session(conn) = packet.stream else { return None };
        if !self.conns.contains_key(&conn) {
            // Sent to an earlier incarnation.
            return None;
        }
        let event = match packet.wire {
            Wire::Closed | Wire::Broke => self.left(conn, packet.from),
            Wire::DeviceUp(message) => self.device_event(conn, message),
            Wire::ServerUp(message) => self.server_event(conn, message),
            _ => None,
        }?;
        self.step(now, event, effects)
    }

    pub fn wake(&mut self, now: Duration, effects: &mut Effects) -> Option<u64> {
        if self.next_wake().is_some_and(|wake| wake <= now) { self.step(now, ControllerEvent::Tick, effects) } else { None }
    }

    fn left(&mut self, conn: u64, from: Endpoint) -> Option<ControllerEvent> {
        self.conns.remove(&conn);
        if self.current.get(&from) != Some(&conn) {
            return None;
        }
        self.current.remove(&from);
        match from {
            Endpoint::Device(device) => Some(ControllerEvent::DeviceLeft { device }),
            Endpoint::Server(server) => Some(ControllerEvent::ServerLeft { server }),
            Endpoint::Controller => None,
        }
    }

    fn device_event(&mut self, conn: u64, message: pb::DeviceUp) -> Option<ControllerEvent> {
        let settings = &self.setup.settings;
        let (devices, servers) = (settings.scenario.devices, settings.scenario.servers);
        let event = match message.msg? {
            device_up::Msg::Hello(hello) => validate::device_hello(&hello, devices)
                .and_then(|device| {
                    validate::hello_run("hello.run_digest", hello.run_digest, self.setup.run_digest)?;
                    let next_slot = validate::next_slot("hello.next_slot", hello.next_slot, settings.slots)?;
                    Ok(ControllerEvent::DeviceJoined { device, next_slot })
                }),
            device_up::Msg::Report(report) => {
                let device = self.agent_of(conn)?;
                let limit = self.core.as_ref()?.report_limit();
                validate::device_report(&report, servers)
                    .and_then(|report| validate::report_slot(report.slot, limit).map(|_| report))
                    .map(|report| ControllerEvent::DeviceReport { device, report })
            }
            device_up::Msg::Ready(_) => Ok(ControllerEvent::DeviceReady { device: self.agent_of(conn)? }),
        };
        self.checked(conn, event)
    }

    fn server_event(&mut self, conn: u64, message: pb::ServerUp) -> Option<ControllerEvent> {
        let settings = &self.setup.settings;
        let (devices, servers) = (settings.scenario.devices, settings.scenario.servers);
        let event = match message.msg? {
            server_up::Msg::Hello(hello) => validate::server_hello(&hello, servers).and_then(|(server, endpoint)| {
                validate::hello_run("hello.run_digest", hello.run_digest, self.setup.run_digest)?;
                let next_slot = validate::next_slot("hello.next_slot", hello.next_slot, settings.slots)?;
                Ok(ControllerEvent::ServerJoined { server, endpoint, next_slot })
            }),
            server_up::Msg::Report(report) => {
                let server = match self.conns.get(&conn) {
                    Some(Endpoint::Server(server)) => *server,
                    _ => return None,
                };
                let limit = self.core.as_ref()?.report_limit();
                validate::server_report(&report, devices)
                    .and_then(|report| validate::report_slot(report.slot, limit).map(|_| report))
                    .map(|report| ControllerEvent::ServerReport { server, report })
            }
        };
        self.checked(conn, event)
    }

    /// The device a stream belongs to.
    fn agent_of(&self, conn: u64) -> Option<usize> {
        match self.conns.get(&conn) {
            Some(Endpoint::Device(device)) => Some(*device),
            _ => None,
        }
    }

    /// A valid event (a hello makes its stream the agent's current one);
    /// an invalid message is counted and dropped.
    fn checked(&mut self, conn: u64, event: Result<ControllerEvent, validate::Invalid>) -> Option<ControllerEvent> {
        match event {
            Ok(event) => {
                if let ControllerEvent::DeviceJoined { device, .. } = event {
                    self.current.insert(Endpoint::Device(device), conn);
                }
                if let ControllerEvent::ServerJoined { server, .. } = event {
                    self.current.insert(Endpoint::Server(server), conn);
                }
                Some(event)
            }
            Err(invalid) => {
                tracing::warn!(%invalid, "invalid message in the virtual run");
                self.invalid += 1;
                None
            }
        }
    }

    fn step(&mut self, now: Duration, event: ControllerEvent, effects: &mut Effects) -> Option<u64> {
        let core = self.core.as_mut()?;
        let commands = core.handle(now.saturating_sub(self.epoch), event);
        let mut started = None;
        for command in commands {
            match command {
                ControllerCommand::ToDevice { device, message } => {
                    self.down(Endpoint::Device(device), Wire::DeviceDown(message), effects);
                }
                ControllerCommand::ToServer { server, message } => {
                    self.down(Endpoint::Server(server), Wire::ServerDown(message), effects);
                }
                ControllerCommand::Journal(slot) => {
                    self.journal.insert(slot.slot, slot);
                }
                ControllerCommand::Started { first_slot } => {
                    if first_slot == 0 {
                        self.journal.clear();
                    }
                    started = Some(first_slot);
                }
            }
        }
        if self.core.as_ref().is_some_and(ControllerCore::finished) {
            self.finish(effects);
        }
        started
    }

    fn down(&mut self, to: Endpoint, wire: Wire, effects: &mut Effects) {
        if let Some(&conn) = self.current.get(&to) {
            effects.send(to, Stream::Session(conn), wire);
        }
    }

    /// The run is over: the records are kept and every stream closes.
    fn finish(&mut self, effects: &mut Effects) {
        let Some(core) = self.core.take() else { return };
        let mut outcome = core.outcome();
        if let Ok(records) = &mut outcome
            && records.first_slot > 0
        {
            // A restarted controller reads the journal back, as the real one does.
            records.slots = self.journal.values().cloned().collect();
        }
        self.outcome = Some(outcome);
        for (conn, who) in std::mem::take(&mut self.conns) {
            effects.send(who, Stream::Session(conn), Wire::Closed);
        }
        self.current.clear();
    }

    /// The records of the incarnation that finished the run.
    pub fn take_outcome(&mut self) -> Option<Result<ControllerRecords, LoopError>> {
        self.outcome.take()
    }

    /// What a controller killed for good leaves: its journal's slots.
    pub fn journaled(&self) -> ControllerRecords {
        ControllerRecords { slots: self.journal.values().cloned().collect(), ..ControllerRecords::default() }
    }
}
