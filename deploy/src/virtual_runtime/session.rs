//! An agent's session with the controller in a virtual run, kept as the
//! real agents keep theirs (`qmec_proto::session::keep_open`), with their
//! own session memory: the same hello and replay reach a restarted
//! controller.

use super::controller::ControllerNode;
use super::network::Endpoint;
use super::world::{Effects, Happening, Stream, Wire};
use qmec_proto::backoff::Backoff;
use qmec_proto::session::SessionMemory;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

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

    pub fn connect(&mut self, now: Duration, rng: &mut ChaCha8Rng, controller: &mut ControllerNode, effects: &mut Effects) -> Connect {
        if self.conn.is_some() {
            return Connect::Opened;
        }
        let Some(conn) = controller.open(self.who) else {
            if controller.finished() {
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

    pub fn send(&mut self, message: M::Up, effects: &mut Effects) {
        match self.conn {
            Some(conn) => {
                self.memory.sent(&message);
                effects.send(Endpoint::Controller, Stream::Session(conn), (self.wrap)(message));
            }
            None => self.backlog.push(message),
        }
    }

    pub fn heard(&mut self, message: &M::Down) {
        self.memory.heard(message);
        self.told_finish |= self.memory.is_finish(message);
    }

    /// Stream `stream` broke or was closed: reconnect now unless the run is over.
    pub fn ended(&mut self, stream: Stream, now: Duration, effects: &mut Effects) {
        if let Stream::Session(conn) = stream
            && self.conn == Some(conn)
        {
            self.conn = None;
            if !self.told_finish {
                effects.at(now, Happening::Reconnect(self.who));
            }
        }
    }

    pub fn close(&mut self, effects: &mut Effects) {
        if let Some(conn) = self.conn.take() {
            effects.send(Endpoint::Controller, Stream::Session(conn), Wire::Closed);
        }
    }

    pub fn peer(&self) -> Option<(Endpoint, Stream)> {
        self.conn.map(|conn| (Endpoint::Controller, Stream::Session(conn)))
    }
}
