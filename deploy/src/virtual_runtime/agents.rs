//! The agents of a virtual run: what the tokio loops of the real agents do
//! around their cores, done here on virtual time. Each node turns the
//! messages that reach it into its core's events (validated as the real
//! services validate them) and its core's commands into messages; sessions
//! with the controller reopen after a break with the agents' own session
//! memory (the same hello and replay the real agents send); a device's
//! radio paces its fragments as the real uplink does.

use super::network::Endpoint;
use super::world::{Effects, Happening, Stream, Wire};
use qmec_controller::{ControllerCommand, ControllerCore, ControllerEvent, ControllerRecords, ControllerSlot, CoreSettings, LoopError};
use qmec_device_agent::{DeviceCommand, DeviceCore, DeviceEvent, DeviceSessionMemory, DeviceSettings};
use qmec_model::Policy;
use qmec_proto::backoff::Backoff;
use qmec_proto::pb::{self, device_down, device_up, offload_down, offload_up, server_down, server_up};
use qmec_proto::session::SessionMemory;
use qmec_proto::validate;
use qmec_server_agent::{ServerCommand, ServerCore, ServerEvent, ServerFaults, ServerSessionMemory};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Builds the controller's policy, anew at every (re)start.
pub type PolicyFactory = Box<dyn Fn() -> Result<Box<dyn Policy>, String>>;

/// An agent's session with the controller, kept open across breaks like
/// `qmec_proto::session::keep_open`: a break reconnects at once, a refused
/// connection after a jittered backoff, and a new stream starts with what
/// the agent's memory says a restarted controller needs.
pub struct Session<M: SessionMemory> {
    who: Endpoint,
    memory: M,
    conn: Option<u64>,
    /// What the agent sent while no stream was open, sent after the opening.
    backlog: Vec<M::Up>,
    backoff: Backoff,
    /// The controller said finish: a break no longer reconnects.
    told_finish: bool,
    wrap: fn(M::Up) -> Wire,
}

/// How a connection attempt went.
#[derive(Debug, PartialEq, Eq)]
pub enum Connect {
    Opened,
    Retrying,
    /// The controller finished the run and is gone for good.
    Gone,
}

impl<M: SessionMemory> Session<M> {
    pub fn new(who: Endpoint, memory: M, wrap: fn(M::Up) -> Wire) -> Session<M> {
        Session { who, memory, conn: None, backlog: Vec::new(), backoff: Backoff::default(), told_finish: false, wrap }
    }

    fn connect(&mut self, now: Duration, rng: &mut ChaCha8Rng, controller: &mut ControllerNode, effects: &mut Effects) -> Connect {
        if self.conn.is_some() {
            return Connect::Opened;
        }
        let Some(conn) = controller.open(self.who) else {
            if controller.gone() {
                return Connect::Gone;
            }
            effects.at(now + self.backoff.next_delay_with(rng), Happening::Reconnect(self.who));
            return Connect::Retrying;
        };
        self.conn = Some(conn);
        self.backoff.reset();
        for message in self.memory.opening() {
            effects.send(Endpoint::Controller, Stream::Session(conn), (self.wrap)(message));
        }
        for message in std::mem::take(&mut self.backlog) {
            self.send(message, effects);
        }
        Connect::Opened
    }

    fn send(&mut self, message: M::Up, effects: &mut Effects) {
        match self.conn {
            Some(conn) => {
                self.memory.sent(&message);
                effects.send(Endpoint::Controller, Stream::Session(conn), (self.wrap)(message));
            }
            None => self.backlog.push(message),
        }
    }

    fn heard(&mut self, message: &M::Down) {
        self.memory.heard(message);
        self.told_finish |= M::is_finish(message);
    }

    /// Stream `stream` broke or was closed: reconnect now unless the run is over.
    fn ended(&mut self, stream: Stream, now: Duration, effects: &mut Effects) {
        if let Stream::Session(conn) = stream
            && self.conn == Some(conn)
        {
            self.conn = None;
            if !self.told_finish {
                effects.at(now, Happening::Reconnect(self.who));
            }
        }
    }

    fn close(&mut self, effects: &mut Effects) {
        if let Some(conn) = self.conn.take() {
            effects.send(Endpoint::Controller, Stream::Session(conn), Wire::Closed);
        }
    }

    fn peer(&self) -> Option<(Endpoint, Stream)> {
        self.conn.map(|conn| (Endpoint::Controller, Stream::Session(conn)))
    }
}

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
    fn open(&mut self, who: Endpoint) -> Option<u64> {
        if !self.alive || self.core.is_none() {
            return None;
        }
        self.next_conn += 1;
        self.conns.insert(self.next_conn, who);
        Some(self.next_conn)
    }

    /// The run is over and the controller has left.
    pub fn gone(&self) -> bool {
        self.outcome.is_some() || self.policy_error.is_some()
    }

    pub fn finished(&self) -> bool {
        self.gone()
    }

    pub fn next_wake(&self) -> Option<Duration> {
        self.core.as_ref()?.next_wake().map(|wake| self.epoch + wake)
    }

    /// A message for the controller; returns the first slot when the run
    /// (re)started with it.
    pub fn receive(&mut self, now: Duration, packet: super::world::Packet, effects: &mut Effects) -> Option<u64> {
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
                validate::device_report(&report, servers).map(|report| ControllerEvent::DeviceReport { device, report })
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
                validate::server_report(&report, devices).map(|report| ControllerEvent::ServerReport { server, report })
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
}

/// A server agent.
pub struct ServerNode {
    id: usize,
    faults: ServerFaults,
    session: Session<ServerSessionMemory>,
    core: Option<ServerCore>,
    /// Devices whose offload streams are open (results go to them), and
    /// those that asked before the setup came.
    joined: BTreeSet<usize>,
    waiting: Vec<usize>,
    pub payload_bytes: u64,
    pub invalid: u64,
    done: bool,
}

impl ServerNode {
    pub fn new(id: usize, faults: ServerFaults) -> ServerNode {
        let hello = pb::ServerHello { server: id as u32, endpoint: format!("http://server-{id}.virtual"), next_slot: 0, run_digest: 0 };
        let wrap = |message| Wire::ServerUp(message);
        ServerNode {
            id,
            faults,
            session: Session::new(Endpoint::Server(id), ServerSessionMemory::new(hello), wrap),
            core: None,
            joined: BTreeSet::new(),
            waiting: Vec::new(),
            payload_bytes: 0,
            invalid: 0,
            done: false,
        }
    }

    pub fn reconnect(&mut self, now: Duration, rng: &mut ChaCha8Rng, controller: &mut ControllerNode, effects: &mut Effects) {
        if self.session.connect(now, rng, controller, effects) == Connect::Gone && self.core.is_some() {
            self.step(now, ServerEvent::ControllerGone, effects);
        }
    }

    pub fn finished(&self) -> bool {
        self.done
    }

    pub fn next_wake(&self) -> Option<Duration> {
        self.core.as_ref()?.next_wake()
    }

    pub fn records(&self) -> Option<qmec_server_agent::records::ServerRecords> {
        let mut records = self.core.as_ref()?.records();
        records.payload_bytes = self.payload_bytes;
        records.invalid_messages = self.invalid;
        Some(records)
    }

    /// The streams a kill breaks.
    pub fn peers(&mut self) -> Vec<(Endpoint, Stream)> {
        let devices = self.joined.iter().map(|&device| (Endpoint::Device(device), Stream::Offload));
        devices.chain(self.session.peer()).collect()
    }

    pub fn wake(&mut self, now: Duration, effects: &mut Effects) {
        if self.next_wake().is_some_and(|wake| wake <= now) {
            self.step(now, ServerEvent::Tick, effects);
        }
    }

    pub fn receive(&mut self, now: Duration, packet: super::world::Packet, effects: &mut Effects) {
        match (packet.from, packet.wire) {
            (Endpoint::Controller, Wire::ServerDown(message)) => self.from_controller(now, message, effects),
            (Endpoint::Controller, Wire::Closed | Wire::Broke) => self.session.ended(packet.stream, now, effects),
            (Endpoint::Device(device), Wire::OffloadUp(message)) => self.from_device(now, device, message, effects),
            (Endpoint::Device(device), Wire::Closed | Wire::Broke) => {
                self.joined.remove(&device);
            }
            _ => {}
        }
    }

    fn from_controller(&mut self, now: Duration, message: pb::ServerDown, effects: &mut Effects) {
        self.session.heard(&message);
        let event = match message.msg {
            Some(server_down::Msg::Setup(setup)) => return self.set_up(now, &setup, effects),
            Some(server_down::Msg::Allocation(allocation)) => ServerEvent::Allocation(allocation),
            Some(server_down::Msg::Finish(finish)) => ServerEvent::Finish(finish),
            None => return,
        };
        self.step(now, event, effects);
    }

    /// The first setup builds the core and opens the offload streams that waited.
    fn set_up(&mut self, now: Duration, setup: &pb::RunSetup, effects: &mut Effects) {
        if self.core.is_some() {
            return;
        }
        let setup = match validate::setup(setup) {
            Ok(setup) => setup,
            Err(invalid) => {
                tracing::warn!(server = self.id, %invalid, "invalid setup");
                self.invalid += 1;
                return;
            }
        };
        let mut core = ServerCore::new(&setup, self.id, self.faults.clone());
        let commands = core.start(now);
        self.core = Some(core);
        self.carry_out(commands, effects);
        for device in std::mem::take(&mut self.waiting) {
            self.open(device, effects);
        }
    }

    fn open(&mut self, device: usize, effects: &mut Effects) {
        self.joined.insert(device);
        effects.send(Endpoint::Device(device), Stream::Offload, Wire::OffloadOpened);
    }

    fn from_device(&mut self, now: Duration, device: usize, message: pb::OffloadUp, effects: &mut Effects) {
        let event = match message.msg {
            Some(offload_up::Msg::Hello(_)) if self.core.is_some() => return self.open(device, effects),
            Some(offload_up::Msg::Hello(_)) => return self.waiting.push(device),
            Some(offload_up::Msg::Fragment(fragment)) => match validate::fragment(&fragment) {
                Ok(fragment) => {
                    self.payload_bytes += fragment.payload_len as u64;
                    ServerEvent::Fragment { device, fragment }
                }
                Err(invalid) => {
                    tracing::warn!(server = self.id, device, %invalid, "invalid fragment");
                    self.invalid += 1;
                    return;
                }
            },
            Some(offload_up::Msg::EndOfSlot(end)) => ServerEvent::EndOfSlot { device, slot: end.slot },
            None => return,
        };
        self.step(now, event, effects);
    }

    fn step(&mut self, now: Duration, event: ServerEvent, effects: &mut Effects) {
        let Some(core) = self.core.as_mut() else { return };
        let commands = core.handle(now, event);
        self.carry_out(commands, effects);
        if !self.done && self.core.as_ref().is_some_and(ServerCore::finished) {
            self.done = true;
            self.session.close(effects);
            for &device in &self.joined {
                effects.send(Endpoint::Device(device), Stream::Offload, Wire::Closed);
            }
        }
    }

    fn carry_out(&mut self, commands: Vec<ServerCommand>, effects: &mut Effects) {
        for command in commands {
            match command {
                ServerCommand::Report(report) => {
                    self.session.send(pb::ServerUp { msg: Some(server_up::Msg::Report(report)) }, effects);
                }
                ServerCommand::Result { device, result } => {
                    if self.joined.contains(&device) {
                        let message = pb::OffloadDown { msg: Some(offload_down::Msg::Result(result)) };
                        effects.send(Endpoint::Device(device), Stream::Offload, Wire::OffloadDown(message));
                    }
                }
                ServerCommand::ResultsDone { slot } => {
                    let message = pb::OffloadDown { msg: Some(offload_down::Msg::ResultsDone(pb::ResultsDone { slot })) };
                    for &device in &self.joined {
                        effects.send(Endpoint::Device(device), Stream::Offload, Wire::OffloadDown(message.clone()));
                    }
                }
                // Computing costs no virtual time.
                ServerCommand::Burn { .. } => {}
            }
        }
    }
}

/// A device agent.
pub struct DeviceNode {
    id: usize,
    settings: DeviceSettings,
    payload_scale: f64,
    session: Session<DeviceSessionMemory>,
    setup: Option<validate::Setup>,
    core: Option<DeviceCore>,
    /// Per server: its offload stream is open, the device stopped sending
    /// to it, and the bits it did not send there because of that.
    opened: Vec<bool>,
    stopped: Vec<bool>,
    pub unsent_bits: Vec<u64>,
    /// When the radio is free for the next slot's transmission.
    radio_free: Duration,
    pub payload_bytes: u64,
    done: bool,
}

impl DeviceNode {
    pub fn new(id: usize, servers: usize, settings: DeviceSettings, payload_scale: f64) -> DeviceNode {
        let wrap = |message| Wire::DeviceUp(message);
        DeviceNode {
            id,
            settings,
            payload_scale,
            session: Session::new(Endpoint::Device(id), DeviceSessionMemory::new(id), wrap),
            setup: None,
            core: None,
            opened: vec![false; servers],
            stopped: vec![false; servers],
            unsent_bits: vec![0; servers],
            radio_free: Duration::ZERO,
            payload_bytes: 0,
            done: false,
        }
    }

    pub fn connect(&mut self, now: Duration, rng: &mut ChaCha8Rng, controller: &mut ControllerNode, effects: &mut Effects) {
        if self.session.connect(now, rng, controller, effects) == Connect::Gone {
            self.step(now, DeviceEvent::ControllerGone, effects);
        }
    }

    pub fn finished(&self) -> bool {
        self.done
    }

    pub fn next_wake(&self) -> Option<Duration> {
        self.core.as_ref()?.next_wake()
    }

    pub fn records(&self) -> Option<qmec_device_agent::records::DeviceRecords> {
        let mut records = self.core.as_ref()?.records(self.payload_bytes);
        records.unsent_bits_by_server = self.unsent_bits.clone();
        Some(records)
    }

    pub fn peers(&mut self) -> Vec<(Endpoint, Stream)> {
        let servers = (0..self.opened.len()).map(|server| (Endpoint::Server(server), Stream::Offload));
        servers.chain(self.session.peer()).collect()
    }

    pub fn wake(&mut self, now: Duration, effects: &mut Effects) {
        if self.next_wake().is_some_and(|wake| wake <= now) {
            self.step(now, DeviceEvent::Tick, effects);
        }
    }

    pub fn receive(&mut self, now: Duration, packet: super::world::Packet, effects: &mut Effects) {
        let event = match (packet.from, packet.wire) {
            (Endpoint::Controller, Wire::DeviceDown(message)) => return self.from_controller(now, message, effects),
            (Endpoint::Controller, Wire::Closed | Wire::Broke) => return self.session.ended(packet.stream, now, effects),
            (Endpoint::Server(server), Wire::OffloadOpened) => return self.opened(now, server, effects),
            (Endpoint::Server(server), Wire::OffloadDown(message)) => match message.msg {
                Some(offload_down::Msg::Result(result)) => match validate::fragment_result(&result) {
                    Ok(result) => DeviceEvent::Result { server, result },
                    Err(invalid) => return tracing::warn!(device = self.id, server, %invalid, "invalid result ignored"),
                },
                Some(offload_down::Msg::ResultsDone(done)) => DeviceEvent::ResultsDone { server, slot: done.slot },
                None => return,
            },
            (Endpoint::Server(server), Wire::Closed | Wire::Broke) => DeviceEvent::ServerLost { server },
            _ => return,
        };
        self.step(now, event, effects);
    }

    fn from_controller(&mut self, now: Duration, message: pb::DeviceDown, effects: &mut Effects) {
        self.session.heard(&message);
        let event = match message.msg {
            Some(device_down::Msg::Setup(setup)) => return self.set_up(&setup, effects),
            Some(device_down::Msg::SlotStart(start)) => DeviceEvent::SlotStart(start.slot),
            Some(device_down::Msg::Decision(decision)) => DeviceEvent::Decision(decision),
            Some(device_down::Msg::Finish(finish)) => DeviceEvent::Finish(finish),
            None => return,
        };
        self.step(now, event, effects);
    }

    /// The first setup opens an offload stream to every server.
    fn set_up(&mut self, setup: &pb::RunSetup, effects: &mut Effects) {
        if self.setup.is_some() {
            return;
        }
        match validate::setup(setup) {
            Ok(setup) => self.setup = Some(setup),
            Err(invalid) => return tracing::warn!(device = self.id, %invalid, "invalid setup"),
        }
        let hello = pb::OffloadUp { msg: Some(offload_up::Msg::Hello(pb::OffloadHello { device: self.id as u32 })) };
        for server in 0..self.opened.len() {
            effects.send(Endpoint::Server(server), Stream::Offload, Wire::OffloadUp(hello.clone()));
        }
    }

    /// Once every offload stream is open the device is ready, as the real
    /// agent is.
    fn opened(&mut self, now: Duration, server: usize, effects: &mut Effects) {
        if let Some(open) = self.opened.get_mut(server) {
            *open = true;
        }
        let Some(setup) = &self.setup else { return };
        if self.core.is_none() && self.opened.iter().all(|&open| open) {
            self.core = Some(DeviceCore::new(setup, self.id, self.settings.clone(), now));
            self.session.send(pb::DeviceUp { msg: Some(device_up::Msg::Ready(pb::Ready {})) }, effects);
        }
    }

    fn step(&mut self, now: Duration, event: DeviceEvent, effects: &mut Effects) {
        let Some(core) = self.core.as_mut() else { return };
        for command in core.handle(now, event) {
            match command {
                DeviceCommand::Report(report) => {
                    self.session.send(pb::DeviceUp { msg: Some(device_up::Msg::Report(report)) }, effects);
                }
                DeviceCommand::Send(batch) => self.transmit(now, batch, effects),
                DeviceCommand::StopSending { server } => {
                    if let Some(stopped) = self.stopped.get_mut(server) {
                        *stopped = true;
                    }
                }
            }
        }
        if !self.done && self.core.as_ref().is_some_and(DeviceCore::finished) {
            self.done = true;
            self.session.close(effects);
            for server in 0..self.opened.len() {
                effects.send(Endpoint::Server(server), Stream::Offload, Wire::Closed);
            }
        }
    }

    /// One slot's transmission on the one radio, paced as the real uplink
    /// paces it: each fragment leaves when the one before it has had its
    /// modelled airtime (scaled to the slot), then the end-of-slot markers.
    fn transmit(&mut self, now: Duration, batch: qmec_device_agent::Batch, effects: &mut Effects) {
        let mut at = self.radio_free.max(now);
        for send in batch.sends {
            for fragment in send.fragments {
                let len = qmec_device_agent::payload_len(fragment.bits, self.payload_scale);
                let data = pb::FragmentData { slot: batch.slot, task: fragment.task, bits: fragment.bits, payload: vec![0; len] };
                let message = pb::OffloadUp { msg: Some(offload_up::Msg::Fragment(data)) };
                effects.at(at, Happening::Depart { device: self.id, server: send.server, message, bits: fragment.bits });
                if send.rate_bps > 0.0 {
                    at += Duration::from_secs_f64(fragment.bits as f64 / send.rate_bps * batch.wall_per_modelled);
                }
            }
        }
        let marker = pb::OffloadUp { msg: Some(offload_up::Msg::EndOfSlot(pb::EndOfSlot { slot: batch.slot })) };
        for server in 0..self.opened.len() {
            effects.at(at, Happening::Depart { device: self.id, server, message: marker.clone(), bits: 0 });
        }
        self.radio_free = at;
    }

    /// A fragment or marker leaves the radio, unless its server was given up on.
    pub fn depart(&mut self, server: usize, message: pb::OffloadUp, bits: u64, effects: &mut Effects) {
        if self.stopped.get(server).copied().unwrap_or(true) {
            if let Some(unsent) = self.unsent_bits.get_mut(server) {
                *unsent += bits;
            }
            return;
        }
        if let Some(offload_up::Msg::Fragment(data)) = &message.msg {
            self.payload_bytes += data.payload.len() as u64;
        }
        effects.send(Endpoint::Server(server), Stream::Offload, Wire::OffloadUp(message));
    }
}
