//! The tokio side of the run: it feeds the [`ControllerCore`] the sessions'
//! events and its own wake-ups on tokio's clock, and carries the core's
//! commands out (messages down the agents' streams, the slot journal, the
//! metrics, the run-started line). Every rule of the run is the core's.
//!
//! The loop owns the per-session senders: the sessions hand one over with
//! each join, and only the end of an agent's current stream reaches the
//! core (an older stream ending after a rejoin is not the agent leaving).
//! A device-agent process's devices share one stream: the loop hands the
//! core a batch's messages one by one, and gathers what the core says to
//! the devices of one process into one message per process.

use crate::core::{ControllerCommand, ControllerCore, ControllerEvent, CoreSettings, LoopError};
use crate::metrics::Metrics;
use crate::records::{ControllerRecords, ControllerSlot, SlotJournal};
use crate::sessions::{DeviceSays, Event, ProcessTx, ReportLimit, ServerTx};
use prost::Message;
use qmec_proto::pb;
use qmec_model::Policy;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

/// What the loop needs to run.
#[derive(Debug)]
pub struct LoopSettings {
    pub core: CoreSettings,
    /// Where each decided slot's record is appended as it is decided.
    pub journal: Option<PathBuf>,
}

/// The run's policy, and the one that decides the slots it cannot.
pub(crate) struct Policies {
    pub decides: Box<dyn Policy>,
    pub fallback: Option<Box<dyn Policy>>,
}

/// Runs the whole run; returns the records, also when shut down mid-run.
/// After each event the core's report limit goes to the sessions.
pub async fn run(
    settings: LoopSettings,
    policies: Policies,
    (mut events, report_limit): (mpsc::Receiver<Event>, ReportLimit),
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<ControllerRecords, LoopError> {
    // tokio's clock for "now", so that tests may pause it; the meter times
    // the policy's real work.
    let started = tokio::time::Instant::now();
    let meter_origin = std::time::Instant::now();
    let (devices, servers) = (settings.core.scenario.devices, settings.core.scenario.servers);
    let mut core =
        ControllerCore::new(settings.core, policies.decides, Box::new(move || meter_origin.elapsed()))
            .with_fallback(policies.fallback);
    let mut carrier = Carrier::new(devices, servers, settings.journal, metrics.clone());
    let mut shutdown_passed = false;
    while let Some(wake) = core.next_wake() {
        // Shutdown, then the core's timer, then the events: under a flood of
        // events (a thousand reports) a biased select would otherwise never
        // see the deadline.
        let event = tokio::select! {
            biased;
            () = shutdown.cancelled(), if !shutdown_passed => {
                shutdown_passed = true;
                ControllerEvent::Shutdown
            }
            () = tokio::time::sleep_until(started + wake) => ControllerEvent::Tick,
            Some(event) = events.recv() => {
                let now = started.elapsed();
                let commands = carrier.admit(event).into_iter().flat_map(|event| core.handle(now, event)).collect();
                report_limit.publish(core.report_limit());
                carrier.carry_out(commands);
                continue;
            }
        };
        let commands = core.handle(started.elapsed(), event);
        report_limit.publish(core.report_limit());
        carrier.carry_out(commands);
    }
    let mut records = core.outcome()?;
    records.invalid_messages += metrics.invalid_messages();
    Ok(records)
}

/// Carries the core's commands out, and keeps what that needs.
#[derive(Debug)]
struct Carrier {
    /// Per device, the process session it is on (an index into `processes`).
    devices: Vec<Option<usize>>,
    /// The open process sessions; a closed one's place is reused.
    processes: Vec<Option<ProcessTx>>,
    servers: Vec<Option<ServerTx>>,
    journal_path: Option<PathBuf>,
    journal: Option<SlotJournal>,
    metrics: Arc<Metrics>,
    /// The last slot counted into the metrics: a slot journaled again
    /// (a late figure) is not counted twice.
    metered: Option<u64>,
}

impl Carrier {
    fn new(devices: usize, servers: usize, journal_path: Option<PathBuf>, metrics: Arc<Metrics>) -> Carrier {
        Carrier {
            devices: vec![None; devices],
            processes: Vec::new(),
            servers: vec![None; servers],
            journal_path,
            journal: None,
            metrics,
            metered: None,
        }
    }

    /// The core's events for a session's, keeping the senders; none for
    /// the end of a stream that is no longer any agent's current one.
    fn admit(&mut self, event: Event) -> Vec<ControllerEvent> {
        let events = match event {
            Event::ProcessJoined { devices, tx } => self.process_joined(devices, tx),
            Event::ProcessLeft { devices, tx } => self.process_left(&devices, &tx),
            Event::ServerJoined { server, endpoint, next_slot, tx } => {
                keep(&mut self.servers, server, tx);
                vec![ControllerEvent::ServerJoined { server, endpoint, next_slot }]
            }
            Event::ServerLeft { server, tx } => match forget(&mut self.servers, server, &tx, ServerTx::same_channel) {
                Some(()) => vec![ControllerEvent::ServerLeft { server }],
                None => return Vec::new(),
            },
            Event::Devices(batch) => return batch.into_iter().map(device_event).collect(),
            Event::ServerReport { server, report } => return vec![ControllerEvent::ServerReport { server, report }],
        };
        let devices = self.devices.iter().filter(|process| process.is_some()).count() as i64;
        self.metrics.connected(devices, open(&self.servers));
        events
    }

    /// Takes the process's sender; its devices are on it from now on.
    fn process_joined(&mut self, devices: Vec<(usize, u64)>, tx: ProcessTx) -> Vec<ControllerEvent> {
        let index = match self.processes.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.processes.push(None);
                self.processes.len() - 1
            }
        };
        self.processes[index] = Some(tx);
        let mut events = Vec::with_capacity(devices.len());
        for (device, next_slot) in devices {
            if let Some(process) = self.devices.get_mut(device) {
                *process = Some(index);
                events.push(ControllerEvent::DeviceJoined { device, next_slot });
            }
        }
        events
    }

    /// The devices still on the process session `tx` leave; those that
    /// joined again on another one stay.
    fn process_left(&mut self, devices: &[usize], tx: &ProcessTx) -> Vec<ControllerEvent> {
        let same = |process: &Option<ProcessTx>| process.as_ref().is_some_and(|open| open.same_channel(tx));
        let Some(index) = self.processes.iter().position(same) else { return Vec::new() };
        self.processes[index] = None;
        let mut events = Vec::new();
        for &device in devices {
            if let Some(process) = self.devices.get_mut(device)
                && process.take_if(|process| *process == index).is_some()
            {
                events.push(ControllerEvent::DeviceLeft { device });
            }
        }
        events
    }

    fn carry_out(&mut self, commands: Vec<ControllerCommand>) {
        let mut batches: Vec<Batch> = Vec::new();
        for command in commands {
            match command {
                ControllerCommand::ToDevice { device, message } => self.gather(&mut batches, device, message),
                ControllerCommand::ToServer { server, message } => self.deliver(self.servers.get(server), message, 1),
                ControllerCommand::Journal(record) => self.journal(&record),
                ControllerCommand::Started { first_slot } => self.started(first_slot),
            }
        }
        for batch in batches {
            self.send_batch(batch);
        }
    }

    /// Adds `message` to its device's process batch; a batch that would
    /// grow past [`BATCH_BYTES`] goes first.
    fn gather(&self, batches: &mut Vec<Batch>, device: usize, message: pb::DeviceDown) {
        let Some(&Some(process)) = self.devices.get(device) else { return };
        let down = pb::AddressedDown { device: device as u32, down: Some(message) };
        let bytes = down.encoded_len();
        let at = batches.iter().position(|batch| batch.process == process).unwrap_or_else(|| {
            batches.push(Batch { process, bytes: 0, message: pb::ProcessDown::default() });
            batches.len() - 1
        });
        let batch = &mut batches[at];
        if batch.bytes > 0 && batch.bytes + bytes > BATCH_BYTES {
            let full = Batch { process, bytes: 0, message: std::mem::take(&mut batch.message) };
            batch.bytes = 0;
            self.send_batch(full);
        }
        batch.bytes += bytes;
        batch.message.downs.push(down);
    }

    fn send_batch(&self, batch: Batch) {
        let count = batch.message.downs.len();
        self.deliver(self.processes.get(batch.process), batch.message, count);
    }

    /// Never waits on an agent: a stream that is full is not read, and the
    /// message (holding `count` agents' messages) is dropped (counted); one
    /// that closed is leaving.
    fn deliver<T>(&self, tx: Option<&Option<mpsc::Sender<Result<T, tonic::Status>>>>, message: T, count: usize) {
        if let Some(Some(tx)) = tx
            && let Err(TrySendError::Full(_)) = tx.try_send(Ok(message))
        {
            (0..count).for_each(|_| self.metrics.dropped());
        }
    }

    /// The run-started line on stdout, and the journal opened: emptied for
    /// a fresh run, appended to by a controller that picked a run up. A
    /// line that cannot be written is only a warning: the run itself needs
    /// no stdout, and a launcher that misses the line stops the run.
    fn started(&mut self, first_slot: u64) {
        if let Err(error) = qmec_proto::agent_process::announce(format_args!("{}{first_slot}", qmec_proto::RUN_STARTED_PREFIX)) {
            tracing::warn!(%error, "writing the run-started line to stdout");
        }
        self.journal = self.journal_path.as_deref().and_then(|path| {
            SlotJournal::open(path, first_slot == 0)
                .inspect_err(|error| tracing::warn!(path = %path.display(), %error, "no slot journal"))
                .ok()
        });
    }

    /// Appends `record` to the slot journal; a journal that cannot be
    /// written is dropped with a warning (the run goes on, only a restart
    /// loses it). A slot's first line also goes into the metrics.
    fn journal(&mut self, record: &ControllerSlot) {
        if self.metered.is_none_or(|slot| record.slot > slot) {
            self.metrics.slot(record);
            self.metered = Some(record.slot);
        }
        if let Some(writer) = &mut self.journal
            && let Err(error) = writer.append(record)
        {
            let path = self.journal_path.as_deref().unwrap_or(std::path::Path::new("")).display();
            tracing::warn!("slot journal stopped: writing {path}: {error}");
            self.journal = None;
        }
    }
}

/// A process's devices' messages of one [`Carrier::carry_out`].
#[derive(Debug)]
struct Batch {
    process: usize,
    /// The encoded size of `message` so far.
    bytes: usize,
    message: pb::ProcessDown,
}

/// The size a process batch grows to before it is sent and another begun:
/// well under what an agent decodes ([`qmec_security::limits::CONTROL_DOWN`])
/// even with a run setup (up to the scenario limit) added.
const BATCH_BYTES: usize = 256 << 10;

/// The core's event for what a device of a batch said.
fn device_event((device, says): (usize, DeviceSays)) -> ControllerEvent {
    match says {
        DeviceSays::Ready => ControllerEvent::DeviceReady { device },
        DeviceSays::Report(report) => ControllerEvent::DeviceReport { device, report },
    }
}

/// Sessions open.
fn open<T>(txs: &[Option<T>]) -> i64 {
    txs.iter().filter(|tx| tx.is_some()).count() as i64
}

fn keep<T>(txs: &mut [Option<T>], id: usize, tx: T) {
    if let Some(slot) = txs.get_mut(id) {
        *slot = Some(tx);
    }
}

/// Forgets agent `id`'s sender if `tx` is it; None when it is not.
fn forget<T>(txs: &mut [Option<T>], id: usize, tx: &T, same: impl Fn(&T, &T) -> bool) -> Option<()> {
    let current = txs.get_mut(id)?;
    current.take_if(|current| same(current, tx)).map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use qmec_proto::metrics::Page;
    use qmec_proto::pb::device_down;
    use qmec_proto::validate;

    fn carrier() -> Carrier {
        Carrier::new(2, 1, None, Arc::new(Metrics::default()))
    }

    /// The value of metric `name` on the carrier's metrics page.
    fn figure(carrier: &Carrier, name: &str) -> String {
        let page = carrier.metrics.render();
        let line = page.lines().find(|line| line.starts_with(&format!("{name} "))).unwrap();
        line[name.len() + 1..].to_string()
    }

    #[test]
    fn only_the_end_of_a_devices_current_process_stream_is_it_leaving() {
        let mut carrier = carrier();
        let (old, _old_rx) = mpsc::channel(1);
        let (new, _new_rx) = mpsc::channel(1);
        let joined = carrier.admit(Event::ProcessJoined { devices: vec![(0, 0), (1, 3)], tx: old.clone() });
        assert_eq!(joined, [ControllerEvent::DeviceJoined { device: 0, next_slot: 0 }, ControllerEvent::DeviceJoined { device: 1, next_slot: 3 }]);
        // Device 1 comes back on a stream of its own before the old one ends.
        carrier.admit(Event::ProcessJoined { devices: vec![(1, 4)], tx: new.clone() });
        assert_eq!(carrier.admit(Event::ProcessLeft { devices: vec![0, 1], tx: old.clone() }), [ControllerEvent::DeviceLeft { device: 0 }]);
        assert_eq!(figure(&carrier, "qmec_devices_connected"), "1");
        assert_eq!(carrier.admit(Event::ProcessLeft { devices: vec![0, 1], tx: old }), [], "that stream is gone already");
        assert_eq!(carrier.admit(Event::ProcessLeft { devices: vec![1], tx: new }), [ControllerEvent::DeviceLeft { device: 1 }]);
        assert_eq!(figure(&carrier, "qmec_devices_connected"), "0");
    }

    #[test]
    fn a_batch_is_handed_to_the_core_message_by_message() {
        let mut carrier = carrier();
        let report = validate::Report { slot: 2, queue_bits: 0.0, virtual_bits: 0.0, gains: Vec::new() };
        let batch = vec![(1, DeviceSays::Ready), (0, DeviceSays::Report(report.clone()))];
        assert_eq!(
            carrier.admit(Event::Devices(batch)),
            [ControllerEvent::DeviceReady { device: 1 }, ControllerEvent::DeviceReport { device: 0, report }]
        );
    }

    fn announce(device: usize, slot: u64) -> ControllerCommand {
        ControllerCommand::ToDevice {
            device,
            message: pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(pb::SlotStart { slot })) },
        }
    }

    fn addressed(device: u32, slot: u64) -> pb::AddressedDown {
        pb::AddressedDown { device, down: Some(pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(pb::SlotStart { slot })) }) }
    }

    #[test]
    fn what_the_core_says_to_a_processs_devices_goes_as_one_message() {
        let mut carrier = Carrier::new(3, 1, None, Arc::new(Metrics::default()));
        let (first, mut first_rx) = mpsc::channel(4);
        let (second, mut second_rx) = mpsc::channel(4);
        carrier.admit(Event::ProcessJoined { devices: vec![(0, 0), (2, 0)], tx: first });
        carrier.admit(Event::ProcessJoined { devices: vec![(1, 0)], tx: second });
        carrier.carry_out(vec![announce(2, 5), announce(1, 5), announce(0, 5)]);
        assert_eq!(first_rx.try_recv().unwrap().unwrap().downs, [addressed(2, 5), addressed(0, 5)]);
        assert!(first_rx.try_recv().is_err(), "one message for the process");
        assert_eq!(second_rx.try_recv().unwrap().unwrap().downs, [addressed(1, 5)]);
    }

    #[test]
    fn a_full_stream_drops_the_batch_and_counts_each_message() {
        let mut carrier = carrier();
        let (tx, mut rx) = mpsc::channel(1);
        carrier.admit(Event::ProcessJoined { devices: vec![(0, 0), (1, 0)], tx });
        carrier.carry_out(vec![announce(0, 0)]);
        carrier.carry_out(vec![announce(0, 1), announce(1, 1)]);
        assert_eq!(figure(&carrier, "qmec_dropped_messages_total"), "2");
        assert_eq!(rx.try_recv().unwrap().unwrap().downs, [addressed(0, 0)]);
        // A device with no session: its message goes nowhere, uncounted here.
        let mut alone = Carrier::new(1, 1, None, Arc::new(Metrics::default()));
        alone.carry_out(vec![announce(0, 0)]);
        assert_eq!(figure(&alone, "qmec_dropped_messages_total"), "0");
    }

    #[test]
    fn a_slot_journaled_again_counts_once_in_the_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.slots.jsonl");
        let mut carrier = Carrier::new(1, 1, Some(path.clone()), Arc::new(Metrics::default()));
        let slot = |slot, lp_share| ControllerSlot { slot, lp_share, ..Default::default() };
        carrier.carry_out(vec![
            ControllerCommand::Started { first_slot: 0 },
            ControllerCommand::Journal(slot(0, None)),
            ControllerCommand::Journal(slot(1, None)),
            ControllerCommand::Journal(slot(0, Some(0.5))),
        ]);
        assert_eq!(figure(&carrier, "qmec_slots_total"), "2");
        assert_eq!(SlotJournal::read(&path).unwrap(), [slot(0, Some(0.5)), slot(1, None)]);
    }
}
