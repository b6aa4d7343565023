//! The controller session of a process's devices
//! ([`qmec_proto::session::keep_open`]): one `ProcessSession` stream for
//! every device that shares the process's connection, reopened with backoff
//! when it breaks. The devices' messages are gathered into batches (what
//! is queued when the stream is free to send goes as one message, so a
//! slot's reports leave together without waiting on a timer), and each
//! batch the controller sends is handed out to its devices.
//!
//! A slot's announcement is answered here, not by the devices' tasks: the
//! session hands each device that joined the run the controller's
//! messages on its core ([`SharedCore`]), in order, and sends every report
//! of a batch at once, in one message,
//! before the devices' tasks carry out the rest (ending a slot, uploads).
//! The reports then wait neither on 250 woken tasks nor behind the
//! uploads and results that keep the process's runtime busy
//! ([`crate::agent`] runs the sessions on a thread of their own).
//!
//! A new stream (the controller may have restarted and know nothing)
//! starts with what a controller needs to pick the run up: the hello names,
//! per device, the next slot it has not been told of and the run it belongs
//! to, then every device's ready and latest report are sent again.

use crate::core::{DeviceCommand, DeviceCore, DeviceEvent};
use prost::Message;
use qmec_proto::pb::{self, controller_client::ControllerClient, device_down, device_up, process_up};
use qmec_proto::session::{self, SessionMemory};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Batches queued towards the stream before the gatherer waits.
const BATCHES: usize = 64;
/// The size a batch grows to before another is begun: well under what the
/// controller decodes ([`qmec_security::limits::CONTROL_UP`]).
const BATCH_BYTES: usize = 256 << 10;

/// What a device sends up: its id and its message.
pub type DeviceUp = (usize, pb::DeviceUp);

/// A device's core once it has joined the run, with the start of its
/// clock: its task and its session both handle events on it.
#[derive(Debug)]
pub struct SharedCore {
    pub core: DeviceCore,
    pub started: tokio::time::Instant,
}

/// Where a device's [`SharedCore`] is, once it joined (none before, and
/// none again once its task took it back at the end).
#[derive(Debug, Clone, Default)]
pub struct CoreCell(Arc<Mutex<Option<SharedCore>>>);

impl CoreCell {
    /// The cell, locked; a task that panicked holding it left the core as
    /// it was, which is still the best there is.
    pub fn lock(&self) -> MutexGuard<'_, Option<SharedCore>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the session hands a device's task.
#[derive(Debug)]
pub enum ToDevice {
    /// The controller's message, for the task to handle.
    Message(pb::DeviceDown),
    /// The session handled the controller's message on the core and sent
    /// its reports: what is left for the task to carry out.
    Handled { commands: Vec<DeviceCommand>, slot_started: bool },
}

/// A device as its session sees it: where its messages go, and its core.
#[derive(Debug)]
pub struct DeviceEnds {
    pub down: mpsc::UnboundedSender<ToDevice>,
    pub core: CoreCell,
}

/// Runs the session of `devices` until the controller has finished every
/// one (and `up` closes), or `shutdown`. Each device's messages come in on
/// `up`; what the controller says to device d goes to `devices[d]`, and the
/// senders are dropped (the devices see the session end) when it ends.
pub async fn run(
    channel: crate::channels::AgentChannel,
    devices: BTreeMap<usize, DeviceEnds>,
    (up_tx, up): (mpsc::WeakUnboundedSender<DeviceUp>, mpsc::UnboundedReceiver<DeviceUp>),
    shutdown: CancellationToken,
) {
    let open = move |request| {
        let mut client = ControllerClient::new(channel.clone()).max_decoding_message_size(qmec_security::limits::CONTROL_DOWN);
        async move { client.process_session(request).await.map(tonic::Response::into_inner) }
    };
    let memory = ProcessReplay::new(devices.keys().copied());
    let who = format!("devices {:?}", devices.keys().next().zip(devices.keys().next_back()));
    let (batches_tx, batches) = mpsc::channel(BATCHES);
    let (process_down, process_down_rx) = mpsc::channel(BATCHES);
    let gather = tokio::spawn(gather(up, batches_tx));
    let hand_out = tokio::spawn(hand_out(process_down_rx, devices, up_tx));
    session::keep_open(&who, memory, open, process_down, batches, shutdown).await;
    gather.abort();
    let _ = hand_out.await;
}

/// Gathers the devices' messages into batches until every device's sender
/// is gone: each batch holds what was queued when the previous one left.
async fn gather(mut up: mpsc::UnboundedReceiver<DeviceUp>, batches: mpsc::Sender<pb::ProcessUp>) {
    while let Some(first) = up.recv().await {
        let mut batch = pb::DeviceUps::default();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some((device, message)) = next {
            let addressed = pb::AddressedUp { device: device as u32, up: Some(message) };
            bytes += addressed.encoded_len();
            batch.ups.push(addressed);
            next = if bytes < BATCH_BYTES { up.try_recv().ok() } else { None };
        }
        let message = pb::ProcessUp { msg: Some(process_up::Msg::Batch(batch)) };
        if batches.send(message).await.is_err() {
            return;
        }
    }
}

/// Hands each batch from the controller out to its devices until the
/// session ends: the slot's announcements are answered first, every
/// report queued up (to `up`, which holds the devices' other messages and
/// closes once their tasks are gone) before any device's task hears of
/// the slot. A message for a device this process does not run is dropped
/// with a warning; a device that stopped reading is left alone.
async fn hand_out(
    mut batches: mpsc::Receiver<pb::ProcessDown>,
    devices: BTreeMap<usize, DeviceEnds>,
    up: mpsc::WeakUnboundedSender<DeviceUp>,
) {
    while let Some(batch) = batches.recv().await {
        let mut reports = Vec::new();
        let mut handed = Vec::with_capacity(batch.downs.len());
        for addressed in batch.downs {
            let device = addressed.device as usize;
            match (devices.get(&device), addressed.down) {
                (Some(ends), Some(message)) => handed.push((&ends.down, answer(&ends.core, device, message, &mut reports))),
                _ => tracing::warn!(device, "a message for a device this process does not run was ignored"),
            }
        }
        if let Some(up) = up.upgrade() {
            reports.into_iter().for_each(|report| drop(up.send(report)));
        }
        for (tx, message) in handed {
            let _ = tx.send(message);
        }
    }
}

/// What device `device`'s task is handed for `message`. Once the device
/// joined the run, every message of the controller is handled on its core
/// here, in the order sent (a slot start must not overtake the decision
/// before it): the reports go to `reports`, the rest to the task.
fn answer(core: &CoreCell, device: usize, message: pb::DeviceDown, reports: &mut Vec<DeviceUp>) -> ToDevice {
    let mut cell = core.lock();
    let Some(shared) = cell.as_mut() else { return ToDevice::Message(message) };
    let Some(event) = from_controller(message) else { return ToDevice::Handled { commands: Vec::new(), slot_started: false } };
    let slot_started = matches!(event, DeviceEvent::SlotStart(_));
    let mut rest = Vec::new();
    for command in shared.core.handle(shared.started.elapsed(), event) {
        match command {
            DeviceCommand::Report(report) => reports.push((device, pb::DeviceUp { msg: Some(device_up::Msg::Report(report)) })),
            other => rest.push(other),
        }
    }
    ToDevice::Handled { commands: rest, slot_started }
}

/// The core's event for a controller message (the setup came already).
pub fn from_controller(message: pb::DeviceDown) -> Option<DeviceEvent> {
    match message.msg? {
        device_down::Msg::SlotStart(start) => Some(DeviceEvent::SlotStart(start.slot)),
        device_down::Msg::Decision(decision) => Some(DeviceEvent::Decision(decision)),
        device_down::Msg::Finish(finish) => Some(DeviceEvent::Finish(finish)),
        device_down::Msg::Setup(_) => None,
    }
}

/// What a new process stream repeats: each device's [`Replay`].
#[derive(Debug)]
struct ProcessReplay {
    devices: BTreeMap<usize, Replay>,
    /// Devices that have heard their finish.
    finished: usize,
}

impl ProcessReplay {
    fn new(devices: impl Iterator<Item = usize>) -> ProcessReplay {
        ProcessReplay { devices: devices.map(|device| (device, Replay::new(device))).collect(), finished: 0 }
    }
}

impl SessionMemory for ProcessReplay {
    type Up = pb::ProcessUp;
    type Down = pb::ProcessDown;

    fn opening(&self) -> Vec<pb::ProcessUp> {
        let hello = pb::ProcessHello { devices: self.devices.values().map(Replay::hello).collect() };
        let again: Vec<pb::AddressedUp> = self
            .devices
            .iter()
            .flat_map(|(&device, replay)| {
                replay.again().map(move |up| pb::AddressedUp { device: device as u32, up: Some(up) })
            })
            .collect();
        let hello = pb::ProcessUp { msg: Some(process_up::Msg::Hello(hello)) };
        let mut opening = vec![hello];
        // In batches of the gatherer's size, so none is over the limit.
        let mut batch = pb::DeviceUps::default();
        for up in again {
            batch.ups.push(up);
            if batch.encoded_len() >= BATCH_BYTES {
                opening.push(pb::ProcessUp { msg: Some(process_up::Msg::Batch(std::mem::take(&mut batch))) });
            }
        }
        if !batch.ups.is_empty() {
            opening.push(pb::ProcessUp { msg: Some(process_up::Msg::Batch(batch)) });
        }
        opening
    }

    fn heard(&mut self, message: &pb::ProcessDown) {
        for addressed in &message.downs {
            let (Some(replay), Some(down)) = (self.devices.get_mut(&(addressed.device as usize)), &addressed.down) else {
                continue;
            };
            if Replay::says_finish(down) && !replay.finished {
                replay.finished = true;
                self.finished += 1;
            }
            replay.heard(down);
        }
    }

    fn sent(&mut self, message: &pb::ProcessUp) {
        let Some(process_up::Msg::Batch(batch)) = &message.msg else { return };
        for addressed in &batch.ups {
            if let (Some(replay), Some(up)) = (self.devices.get_mut(&(addressed.device as usize)), &addressed.up) {
                replay.sent(up);
            }
        }
    }

    fn is_finish(&self, message: &pb::ProcessDown) -> bool {
        let has_finish = message.downs.iter().any(|addressed| addressed.down.as_ref().is_some_and(Replay::says_finish));
        has_finish && self.finished == self.devices.len()
    }

    fn run_over(&self) -> bool {
        self.devices.values().all(Replay::run_over)
    }
}

/// What one device repeats on a new stream so that a restarted controller
/// can rebuild its state without asking (also the virtual runtime's
/// session memory, which keeps a session per device).
#[derive(Debug, Default)]
pub struct Replay {
    device: u32,
    next_slot: u64,
    /// The run's digest, once its setup came (0 before).
    run_digest: u64,
    /// The run's length in slots, once its setup came (0 before).
    slots: u64,
    ready: Option<pb::DeviceUp>,
    report: Option<pb::DeviceUp>,
    /// The controller said finish.
    finished: bool,
}

impl Replay {
    /// The memory of device `device`, before it heard of any run.
    pub fn new(device: usize) -> Replay {
        Replay { device: device as u32, ..Replay::default() }
    }

    fn hello(&self) -> pb::DeviceHello {
        pb::DeviceHello { device: self.device, next_slot: self.next_slot, run_digest: self.run_digest }
    }

    /// The device's ready and latest report, if sent.
    fn again(&self) -> impl Iterator<Item = pb::DeviceUp> + '_ {
        self.ready.iter().chain(&self.report).cloned()
    }

    fn says_finish(message: &pb::DeviceDown) -> bool {
        matches!(message.msg, Some(device_down::Msg::Finish(_)))
    }
}

impl SessionMemory for Replay {
    type Up = pb::DeviceUp;
    type Down = pb::DeviceDown;

    fn opening(&self) -> Vec<pb::DeviceUp> {
        let hello = pb::DeviceUp { msg: Some(device_up::Msg::Hello(self.hello())) };
        std::iter::once(hello).chain(self.again()).collect()
    }

    fn heard(&mut self, message: &pb::DeviceDown) {
        let slot = match &message.msg {
            Some(device_down::Msg::SlotStart(start)) => start.slot,
            Some(device_down::Msg::Decision(decision)) => decision.slot,
            Some(device_down::Msg::Setup(setup)) if self.run_digest == 0 => {
                self.run_digest = qmec_proto::validate::run_digest(setup);
                self.slots = setup.slots;
                return;
            }
            _ => return,
        };
        self.next_slot = self.next_slot.max(slot.saturating_add(1));
    }

    fn sent(&mut self, message: &pb::DeviceUp) {
        match message.msg {
            Some(device_up::Msg::Ready(_)) => self.ready = Some(message.clone()),
            Some(device_up::Msg::Report(_)) => self.report = Some(message.clone()),
            _ => {}
        }
    }

    fn is_finish(&self, message: &pb::DeviceDown) -> bool {
        Replay::says_finish(message)
    }

    fn run_over(&self) -> bool {
        self.slots > 0 && self.next_slot >= self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(slot: u64) -> pb::DeviceDown {
        pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(pb::SlotStart { slot })) }
    }

    fn report(slot: u64) -> pb::DeviceUp {
        pb::DeviceUp { msg: Some(device_up::Msg::Report(pb::DeviceReport { slot, ..Default::default() })) }
    }

    fn finish() -> pb::DeviceDown {
        pb::DeviceDown { msg: Some(device_down::Msg::Finish(pb::Finish { last_slot: 9 })) }
    }

    #[test]
    fn a_new_stream_says_where_the_device_is_then_repeats_its_ready_and_latest_report() {
        let mut replay = Replay { device: 3, ..Replay::default() };
        let hello = |opening: Vec<pb::DeviceUp>| match &opening[0].msg {
            Some(device_up::Msg::Hello(hello)) => *hello,
            other => panic!("the opening starts with {other:?}"),
        };
        assert_eq!(hello(replay.opening()), pb::DeviceHello { device: 3, next_slot: 0, run_digest: 0 });
        assert_eq!(replay.opening().len(), 1);
        replay.heard(&start(4));
        replay.heard(&start(2));
        let setup = pb::RunSetup { seed: 7, ..Default::default() };
        replay.heard(&pb::DeviceDown { msg: Some(device_down::Msg::Setup(setup.clone())) });
        replay.sent(&pb::DeviceUp { msg: Some(device_up::Msg::Ready(pb::Ready {})) });
        replay.sent(&report(3));
        replay.sent(&report(4));
        let opening = replay.opening();
        let digest = qmec_proto::validate::run_digest(&setup);
        assert_eq!(hello(opening.clone()), pb::DeviceHello { device: 3, next_slot: 5, run_digest: digest });
        assert!(matches!(opening[1].msg, Some(device_up::Msg::Ready(_))));
        assert!(matches!(&opening[2].msg, Some(device_up::Msg::Report(r)) if r.slot == 4));
        assert_eq!(opening.len(), 3);
        assert!(replay.is_finish(&finish()));
    }

    #[test]
    fn a_process_stream_says_where_each_device_is_and_ends_with_the_last_finish() {
        let mut process = ProcessReplay::new([4, 5].into_iter());
        let down = |device: u32, down| pb::ProcessDown { downs: vec![pb::AddressedDown { device, down: Some(down) }] };
        process.heard(&down(5, start(7)));
        let batch = pb::DeviceUps { ups: vec![pb::AddressedUp { device: 4, up: Some(report(2)) }] };
        process.sent(&pb::ProcessUp { msg: Some(process_up::Msg::Batch(batch.clone())) });
        let opening = process.opening();
        let Some(process_up::Msg::Hello(hello)) = &opening[0].msg else { panic!("the opening starts with {:?}", opening[0]) };
        let next: Vec<(u32, u64)> = hello.devices.iter().map(|hello| (hello.device, hello.next_slot)).collect();
        assert_eq!(next, [(4, 0), (5, 8)]);
        assert_eq!(opening[1].msg, Some(process_up::Msg::Batch(batch)), "device 4's latest report again");
        assert_eq!(opening.len(), 2);
        // A message for another process's device changes nothing.
        process.heard(&down(9, finish()));
        let first = down(4, finish());
        process.heard(&first);
        assert!(!process.is_finish(&first), "device 5 is still in the run");
        let last = down(5, finish());
        process.heard(&last);
        assert!(process.is_finish(&last));
    }

    #[test]
    fn the_run_is_over_for_the_session_once_the_last_slot_was_heard() {
        let mut replay = Replay::new(0);
        assert!(!replay.run_over(), "no setup yet: the run's length is unknown");
        replay.heard(&pb::DeviceDown { msg: Some(device_down::Msg::Setup(pb::RunSetup { slots: 5, ..Default::default() })) });
        let decision = |slot| pb::DeviceDown { msg: Some(device_down::Msg::Decision(pb::OffloadDecision { slot, ..Default::default() })) };
        replay.heard(&decision(3));
        assert!(!replay.run_over());
        replay.heard(&decision(4));
        assert!(replay.run_over());
    }
}
