//! The engine of a virtual run: one queue of what happens next (a message
//! arriving, an agent's timer, a fragment leaving a radio, a session trying
//! again, a fault), the agents' lives (running, stopped, dead), and the
//! plumbing every agent shares: sending over the network and keeping a
//! core's timer armed. What each role does with its messages is in its
//! own module.

use super::controller::ControllerNode;
use super::device::DeviceNode;
use super::server::ServerNode;
use super::network::{Endpoint, Network, PerAgent};
use super::queue::Queue;
use qmec_proto::pb;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// What travels between agents.
#[derive(Debug, Clone)]
pub enum Wire {
    DeviceUp(pb::DeviceUp),
    DeviceDown(pb::DeviceDown),
    ServerUp(pb::ServerUp),
    ServerDown(pb::ServerDown),
    OffloadUp(pb::OffloadUp),
    OffloadDown(pb::OffloadDown),
    /// The server accepted a device's offload stream.
    OffloadOpened,
    /// The sender ended the stream: its run is over.
    Closed,
    /// The sender died: the stream broke.
    Broke,
}

/// Which stream a message travels on: a session with the controller (a
/// new one after every reconnect), or a device's offload stream to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stream {
    Session(u64),
    Offload,
}

/// A message on its way.
#[derive(Debug, Clone)]
pub struct Packet {
    pub from: Endpoint,
    pub stream: Stream,
    pub wire: Wire,
}

/// What the queue holds.
#[derive(Debug)]
pub enum Happening {
    Arrive { to: Endpoint, packet: Packet },
    /// An agent's timer, armed for this instant.
    Wake(Endpoint),
    /// A fragment leaves device `device`'s radio.
    Depart { device: usize, server: usize, message: pb::OffloadUp, bits: u64 },
    /// Slot `slot`'s end-of-slot markers leave device `device`'s radio,
    /// one to every server (one entry for all: a thousand-device slot
    /// would otherwise queue ten thousand).
    Markers { device: usize, slot: u64 },
    /// An agent whose session broke tries to open a new one.
    Reconnect(Endpoint),
    Fault(VirtualFault),
}

/// A fault, as the virtual runtime carries it out.
#[derive(Debug, Clone)]
pub enum VirtualFault {
    Kill(Vec<Endpoint>),
    Stop(Vec<Endpoint>),
    Continue(Vec<Endpoint>),
    /// The controller comes back (after a `restart` killed it).
    StartController,
    Partition { agents: Vec<Endpoint>, slots: Duration },
    /// Asked to stop and keep their records (the controller is gone for good).
    Shutdown(Vec<Endpoint>),
}

/// Whether an agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Life {
    Running,
    /// SIGSTOP: what reaches it waits until it continues.
    Stopped,
    Dead,
}

/// What a node asks the engine to do.
#[derive(Debug)]
pub enum Effect {
    Send { to: Endpoint, stream: Stream, wire: Wire },
    At { at: Duration, what: Happening },
}

/// Sends and schedules of one step of one agent.
#[derive(Debug, Default)]
pub struct Effects(pub Vec<Effect>);

impl Effects {
    pub fn send(&mut self, to: Endpoint, stream: Stream, wire: Wire) {
        self.0.push(Effect::Send { to, stream, wire });
    }

    pub fn at(&mut self, at: Duration, what: Happening) {
        self.0.push(Effect::At { at, what });
    }
}

/// The whole run.
pub struct World {
    pub now: Duration,
    queue: Queue<Happening>,
    pub network: Network,
    pub controller: ControllerNode,
    pub servers: Vec<ServerNode>,
    pub devices: Vec<DeviceNode>,
    lives: PerAgent<Life>,
    /// What reached a stopped agent, in order, for when it continues.
    held: PerAgent<Vec<Happening>>,
    /// The instant each agent's timer is armed for.
    armed: PerAgent<Option<Duration>>,
    /// Draws the sessions' backoff jitter.
    pub rng: ChaCha8Rng,
    /// The fault schedule, by offset from the controller's first start.
    schedule: Vec<(Duration, VirtualFault)>,
    events: u64,
    /// Where [`World::done`] goes on looking for an agent still going (in
    /// [`World::agent`] order): the agents before it were gone when it
    /// last looked, so a check costs O(1) on most events, not O(agents).
    still_going_from: usize,
    /// One step's effects, emptied as they are carried out and kept for
    /// the next step (no allocation per event).
    effects: Effects,
}

impl World {
    pub fn new(
        network: Network,
        controller: ControllerNode,
        servers: Vec<ServerNode>,
        devices: Vec<DeviceNode>,
        seed: u64,
        schedule: Vec<(Duration, VirtualFault)>,
    ) -> World {
        let (s, m) = (servers.len(), devices.len());
        World {
            now: Duration::ZERO,
            queue: Queue::default(),
            network,
            controller,
            servers,
            devices,
            lives: PerAgent::new(s, m, || Life::Running),
            held: PerAgent::new(s, m, Vec::new),
            armed: PerAgent::new(s, m, || None),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5E55_1011),
            schedule,
            still_going_from: 0,
            events: 0,
            effects: Effects::default(),
        }
    }

    /// How many things happened.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn life(&self, who: Endpoint) -> Life {
        self.lives.get(who).cloned().unwrap_or(Life::Dead)
    }

    /// Runs until every agent is done or dead, or virtual time passes `limit`.
    pub fn run(&mut self, limit: Duration) -> Result<(), Duration> {
        let mut effects = std::mem::take(&mut self.effects);
        // The controller is up first, as the launchers start it.
        self.arm(Endpoint::Controller);
        for server in 0..self.servers.len() {
            self.servers[server].reconnect(Duration::ZERO, &mut self.rng, &mut self.controller, &mut effects);
            self.apply(Endpoint::Server(server), &mut effects);
        }
        for device in 0..self.devices.len() {
            self.devices[device].connect(Duration::ZERO, &mut self.rng, &mut self.controller, &mut effects);
            self.apply(Endpoint::Device(device), &mut effects);
        }
        self.effects = effects;
        while !self.done() {
            let Some((at, happening)) = self.queue.pop() else { break };
            if at > limit {
                return Err(at);
            }
            self.now = self.now.max(at);
            self.events += 1;
            self.happen(happening);
        }
        Ok(())
    }

    /// Every agent finished or is dead. An agent gone may come back (a
    /// killed controller restarts), so "done" is only said after a look at
    /// every agent.
    fn done(&mut self) -> bool {
        let agents = 1 + self.servers.len() + self.devices.len();
        while self.still_going_from < agents && self.gone(self.agent(self.still_going_from)) {
            self.still_going_from += 1;
        }
        if self.still_going_from < agents {
            return false;
        }
        match (0..agents).find(|&i| !self.gone(self.agent(i))) {
            Some(going) => {
                self.still_going_from = going;
                false
            }
            None => true,
        }
    }

    /// Agent `i` of the controller, the servers, then the devices.
    fn agent(&self, i: usize) -> Endpoint {
        match i {
            0 => Endpoint::Controller,
            i if i <= self.servers.len() => Endpoint::Server(i - 1),
            i => Endpoint::Device(i - 1 - self.servers.len()),
        }
    }

    /// `who` finished its run or is dead.
    fn gone(&self, who: Endpoint) -> bool {
        let finished = match who {
            Endpoint::Controller => self.controller.finished(),
            Endpoint::Server(s) => self.servers[s].finished(),
            Endpoint::Device(d) => self.devices[d].finished(),
        };
        finished || self.life(who) == Life::Dead
    }

    fn happen(&mut self, happening: Happening) {
        let Some(who) = target(&happening) else {
            if let Happening::Fault(fault) = happening {
                self.fault(fault);
            }
            return;
        };
        match self.life(who) {
            Life::Dead => return,
            Life::Stopped => {
                if let Some(held) = self.held.get_mut(who) {
                    held.push(happening);
                }
                return;
            }
            Life::Running => {}
        }
        let mut effects = std::mem::take(&mut self.effects);
        let now = self.now;
        match happening {
            Happening::Arrive { to, packet } => self.arrive(to, packet, &mut effects),
            Happening::Wake(who) => {
                if let Some(armed) = self.armed.get_mut(who).filter(|armed| **armed == Some(now)) {
                    *armed = None;
                }
                self.wake(who, &mut effects);
            }
            Happening::Depart { device, server, message, bits } => {
                self.devices[device].depart(server, message, bits, &mut effects);
            }
            Happening::Markers { device, slot } => self.devices[device].markers(slot, &mut effects),
            Happening::Reconnect(who) => self.reconnect(who, &mut effects),
            Happening::Fault(_) => {}
        }
        self.apply(who, &mut effects);
        self.effects = effects;
    }

    fn arrive(&mut self, to: Endpoint, packet: Packet, effects: &mut Effects) {
        let now = self.now;
        match to {
            Endpoint::Controller => {
                let started = self.controller.receive(now, packet, effects);
                if let Some(first_slot) = started {
                    self.anchor_schedule(first_slot);
                }
            }
            Endpoint::Server(s) => self.servers[s].receive(now, packet, effects),
            Endpoint::Device(d) => self.devices[d].receive(now, packet, effects),
        }
    }

    fn wake(&mut self, who: Endpoint, effects: &mut Effects) {
        let now = self.now;
        match who {
            Endpoint::Controller => {
                if let Some(first_slot) = self.controller.wake(now, effects) {
                    self.anchor_schedule(first_slot);
                }
            }
            Endpoint::Server(s) => self.servers[s].wake(now, effects),
            Endpoint::Device(d) => self.devices[d].wake(now, effects),
        }
    }

    fn reconnect(&mut self, who: Endpoint, effects: &mut Effects) {
        let now = self.now;
        match who {
            Endpoint::Device(d) => self.devices[d].connect(now, &mut self.rng, &mut self.controller, effects),
            Endpoint::Server(s) => {
                let (server, controller, rng) = (&mut self.servers[s], &mut self.controller, &mut self.rng);
                server.reconnect(now, rng, controller, effects);
            }
            Endpoint::Controller => {}
        }
    }

    /// The schedule counts from the controller's first start, as the
    /// launchers count from its run-started line.
    fn anchor_schedule(&mut self, _first_slot: u64) {
        for (after, fault) in std::mem::take(&mut self.schedule) {
            self.queue.push(self.now + after, Happening::Fault(fault));
        }
    }

    /// Carries out `who`'s effects, leaving `effects` empty: messages into
    /// the network, timers and departures into the queue, and its core's
    /// next wake armed.
    pub fn apply(&mut self, who: Endpoint, effects: &mut Effects) {
        for effect in effects.0.drain(..) {
            match effect {
                Effect::Send { to, stream, wire } => self.send(who, to, stream, wire),
                Effect::At { at, what } => self.queue.push(at, what),
            }
        }
        self.arm(who);
    }

    fn send(&mut self, from: Endpoint, to: Endpoint, stream: Stream, wire: Wire) {
        let at = self.network.arrival(self.now, from, to, || wire_len(&wire));
        self.queue.push(at, Happening::Arrive { to, packet: Packet { from, stream, wire } });
    }

    /// Keeps one queue entry for the earliest wake `who`'s core wants.
    fn arm(&mut self, who: Endpoint) {
        let wake = match who {
            Endpoint::Controller => self.controller.next_wake(),
            Endpoint::Server(s) => self.servers[s].next_wake(),
            Endpoint::Device(d) => self.devices[d].next_wake(),
        };
        let Some(wake) = wake else { return };
        let wake = wake.max(self.now);
        let Some(armed) = self.armed.get_mut(who) else { return };
        if armed.is_none_or(|armed| wake < armed) {
            *armed = Some(wake);
            self.queue.push(wake, Happening::Wake(who));
        }
    }

    fn set_life(&mut self, who: Endpoint, life: Life) {
        if let Some(slot) = self.lives.get_mut(who) {
            *slot = life;
        }
    }

    /// Forgets `who`'s armed wake (its next one is armed anew).
    fn disarm(&mut self, who: Endpoint) {
        if let Some(armed) = self.armed.get_mut(who) {
            *armed = None;
        }
    }

    fn fault(&mut self, fault: VirtualFault) {
        let now = self.now;
        match fault {
            VirtualFault::Kill(agents) => agents.into_iter().for_each(|who| self.kill(who)),
            VirtualFault::Stop(agents) => {
                for who in agents {
                    self.set_life(who, Life::Stopped);
                }
            }
            VirtualFault::Continue(agents) => {
                for who in agents {
                    if self.life(who) == Life::Stopped {
                        self.set_life(who, Life::Running);
                        let held = self.held.get_mut(who).map(std::mem::take).unwrap_or_default();
                        for happening in held {
                            self.queue.push(now, happening);
                        }
                        self.disarm(who);
                        self.queue.push(now, Happening::Wake(who));
                    }
                }
            }
            VirtualFault::StartController => {
                self.set_life(Endpoint::Controller, Life::Running);
                self.controller.restart(now);
                self.disarm(Endpoint::Controller);
                self.arm(Endpoint::Controller);
            }
            VirtualFault::Partition { agents, slots } => {
                for who in agents {
                    self.network.cut(who, now, now + slots);
                }
            }
            VirtualFault::Shutdown(agents) => {
                let mut effects = std::mem::take(&mut self.effects);
                for who in agents {
                    if self.life(who) == Life::Dead {
                        continue;
                    }
                    match who {
                        Endpoint::Server(s) => self.servers[s].shut_down(now, &mut effects),
                        Endpoint::Device(d) => self.devices[d].shut_down(now, &mut effects),
                        Endpoint::Controller => {}
                    }
                    self.apply(who, &mut effects);
                }
                self.effects = effects;
            }
        }
    }

    /// `who` dies: every stream it held breaks, seen by the other end once
    /// what was already on its way has arrived.
    fn kill(&mut self, who: Endpoint) {
        self.set_life(who, Life::Dead);
        if let Some(held) = self.held.get_mut(who) {
            held.clear();
        }
        let peers: Vec<(Endpoint, Stream)> = match who {
            Endpoint::Controller => self.controller.die(),
            Endpoint::Server(s) => self.servers[s].peers(),
            Endpoint::Device(d) => self.devices[d].peers(),
        };
        for (peer, stream) in peers {
            self.send(who, peer, stream, Wire::Broke);
        }
    }
}

/// The agent a happening concerns (none: a fault, which concerns the run).
fn target(happening: &Happening) -> Option<Endpoint> {
    match happening {
        Happening::Arrive { to, .. } => Some(*to),
        Happening::Wake(who) | Happening::Reconnect(who) => Some(*who),
        Happening::Depart { device, .. } | Happening::Markers { device, .. } => Some(Endpoint::Device(*device)),
        Happening::Fault(_) => None,
    }
}

/// Bytes on the wire, for links with a rate: the message and its gRPC
/// frame header.
fn wire_len(wire: &Wire) -> usize {
    use prost::Message;
    const FRAME: usize = 5;
    FRAME
        + match wire {
            Wire::DeviceUp(m) => m.encoded_len(),
            Wire::DeviceDown(m) => m.encoded_len(),
            Wire::ServerUp(m) => m.encoded_len(),
            Wire::ServerDown(m) => m.encoded_len(),
            Wire::OffloadUp(m) => m.encoded_len(),
            Wire::OffloadDown(m) => m.encoded_len(),
            Wire::OffloadOpened | Wire::Closed | Wire::Broke => 0,
        }
}
