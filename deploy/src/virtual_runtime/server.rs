//! A server agent of a virtual run: its core, the offload streams the
//! devices open to it, and its session with the controller.

use super::controller::ControllerNode;
use super::network::Endpoint;
use super::session::{Connect, Session};
use super::world::{Effects, Packet, Stream, Wire};
use qmec_proto::pb::{self, offload_down, offload_up, server_down, server_up};
use qmec_proto::validate;
use qmec_server_agent::{ServerCommand, ServerCore, ServerEvent, ServerFaults, ServerSessionMemory};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::time::Duration;

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

    /// Asked to stop (SIGTERM to the real agent): it keeps its records.
    pub fn shut_down(&mut self, now: Duration, effects: &mut Effects) {
        self.step(now, ServerEvent::Shutdown, effects);
    }

    pub fn wake(&mut self, now: Duration, effects: &mut Effects) {
        if self.next_wake().is_some_and(|wake| wake <= now) {
            self.step(now, ServerEvent::Tick, effects);
        }
    }

    pub fn receive(&mut self, now: Duration, packet: Packet, effects: &mut Effects) {
        match (packet.from, packet.wire) {
            (Endpoint::Controller, Wire::ServerDown(message)) => self.on_controller_message(now, message, effects),
            (Endpoint::Controller, Wire::Closed | Wire::Broke) => self.session.ended(packet.stream, now, effects),
            (Endpoint::Device(device), Wire::OffloadUp(message)) => self.on_device_message(now, device, message, effects),
            (Endpoint::Device(device), Wire::Closed | Wire::Broke) => {
                self.joined.remove(&device);
            }
            _ => {}
        }
    }

    fn on_controller_message(&mut self, now: Duration, message: pb::ServerDown, effects: &mut Effects) {
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
        let mut core = ServerCore::new(&setup, self.id, self.faults);
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

    fn on_device_message(&mut self, now: Duration, device: usize, message: pb::OffloadUp, effects: &mut Effects) {
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
                        effects.send(Endpoint::Device(device), Stream::Offload, Wire::OffloadDown(message));
                    }
                }
                // Computing costs no virtual time.
                ServerCommand::Burn { .. } => {}
            }
        }
    }
}
