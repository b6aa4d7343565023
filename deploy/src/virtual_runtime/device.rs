//! A device agent of a virtual run: its core, its session with the
//! controller, its offload streams, and its one radio, which paces the
//! fragments as the real uplink does.

use super::controller::ControllerNode;
use super::network::Endpoint;
use super::session::{Connect, Session};
use super::world::{Effects, Happening, Packet, Stream, Wire};
use qmec_device_agent::{DeviceCommand, DeviceCore, DeviceEvent, DeviceSessionMemory, DeviceSettings, FollowedLinks};
use qmec_proto::pb::{self, device_down, device_up, offload_down, offload_up};
use qmec_proto::validate;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

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
    /// Its links up to the servers, when they follow the modelled channel.
    followed: Option<FollowedLinks>,
    done: bool,
}

impl DeviceNode {
    pub fn new(
        id: usize,
        servers: usize,
        settings: DeviceSettings,
        payload_scale: f64,
        followed: Option<FollowedLinks>,
    ) -> DeviceNode {
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
            followed,
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

    /// Asked to stop (SIGTERM to the real agent): it keeps its records.
    pub fn shut_down(&mut self, now: Duration, effects: &mut Effects) {
        self.step(now, DeviceEvent::Shutdown, effects);
    }

    pub fn wake(&mut self, now: Duration, effects: &mut Effects) {
        if self.next_wake().is_some_and(|wake| wake <= now) {
            self.step(now, DeviceEvent::Tick, effects);
        }
    }

    pub fn receive(&mut self, now: Duration, packet: Packet, effects: &mut Effects) {
        let event = match (packet.from, packet.wire) {
            (Endpoint::Controller, Wire::DeviceDown(message)) => return self.on_controller_message(now, message, effects),
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

    fn on_controller_message(&mut self, now: Duration, message: pb::DeviceDown, effects: &mut Effects) {
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
        if let Some(followed) = &self.followed {
            followed.set(&batch);
        }
        let mut at = self.radio_free.max(now);
        for send in batch.sends {
            for fragment in send.fragments {
                let len = qmec_device_agent::payload_len(fragment.bits, self.payload_scale);
                let data = qmec_device_agent::fragment_message(batch.slot, &fragment, vec![0; len]);
                let message = pb::OffloadUp { msg: Some(offload_up::Msg::Fragment(data)) };
                effects.at(at, Happening::Depart { device: self.id, server: send.server, message, bits: fragment.bits });
                if send.rate_bps > 0.0 {
                    at += Duration::from_secs_f64(fragment.bits as f64 / send.rate_bps * batch.wall_per_modelled);
                }
            }
        }
        effects.at(at, Happening::Markers { device: self.id, slot: batch.slot });
        self.radio_free = at;
    }

    /// Slot `slot`'s end-of-slot marker to every server not given up on.
    pub fn markers(&mut self, slot: u64, effects: &mut Effects) {
        let marker = pb::OffloadUp { msg: Some(offload_up::Msg::EndOfSlot(pb::EndOfSlot { slot })) };
        for server in (0..self.stopped.len()).filter(|&server| !self.stopped[server]) {
            effects.send(Endpoint::Server(server), Stream::Offload, Wire::OffloadUp(marker.clone()));
        }
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
