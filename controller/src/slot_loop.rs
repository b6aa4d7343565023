//! The tokio side of the run: it feeds the [`ControllerCore`] the sessions'
//! events and its own wake-ups on tokio's clock, and carries the core's
//! commands out (messages down the agents' streams, the slot journal, the
//! metrics, the run-started line). Every rule of the run is the core's.
//!
//! The loop owns the per-agent senders: the sessions hand one over with
//! each join, and only the end of an agent's current stream reaches the
//! core (an older stream ending after a rejoin is not the agent leaving).

use crate::core::{ControllerCommand, ControllerCore, ControllerEvent, CoreSettings, LoopError};
use crate::metrics::Metrics;
use crate::records::{ControllerRecords, ControllerSlot, SlotJournal};
use crate::sessions::{DeviceTx, Event, ReportLimit, ServerTx};
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
            Some(event) = events.recv() => match carrier.admit(event) {
                Some(event) => event,
                None => continue,
            },
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
    devices: Vec<Option<DeviceTx>>,
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
            servers: vec![None; servers],
            journal_path,
            journal: None,
            metrics,
            metered: None,
        }
    }

    /// The core's event for a session's, keeping the senders; None for the
    /// end of a stream that is no longer the agent's current one.
    fn admit(&mut self, event: Event) -> Option<ControllerEvent> {
        let event = match event {
            Event::DeviceJoined { device, next_slot, tx } => {
                keep(&mut self.devices, device, tx);
                ControllerEvent::DeviceJoined { device, next_slot }
            }
            Event::DeviceLeft { device, tx } => {
                forget(&mut self.devices, device, &tx, DeviceTx::same_channel)?;
                ControllerEvent::DeviceLeft { device }
            }
            Event::ServerJoined { server, endpoint, next_slot, tx } => {
                keep(&mut self.servers, server, tx);
                ControllerEvent::ServerJoined { server, endpoint, next_slot }
            }
            Event::ServerLeft { server, tx } => {
                forget(&mut self.servers, server, &tx, ServerTx::same_channel)?;
                ControllerEvent::ServerLeft { server }
            }
            Event::DeviceReady { device } => return Some(ControllerEvent::DeviceReady { device }),
            Event::DeviceReport { device, report } => return Some(ControllerEvent::DeviceReport { device, report }),
            Event::ServerReport { server, report } => return Some(ControllerEvent::ServerReport { server, report }),
        };
        self.metrics.connected(open(&self.devices), open(&self.servers));
        Some(event)
    }

    fn carry_out(&mut self, commands: Vec<ControllerCommand>) {
        for command in commands {
            match command {
                ControllerCommand::ToDevice { device, message } => self.deliver(self.devices.get(device), message),
                ControllerCommand::ToServer { server, message } => self.deliver(self.servers.get(server), message),
                ControllerCommand::Journal(record) => self.journal(&record),
                ControllerCommand::Started { first_slot } => self.started(first_slot),
            }
        }
    }

    /// Never waits on an agent: a stream that is full is not read, and the
    /// message is dropped (counted); one that closed is leaving.
    fn deliver<T>(&self, tx: Option<&Option<mpsc::Sender<Result<T, tonic::Status>>>>, message: T) {
        if let Some(Some(tx)) = tx
            && let Err(TrySendError::Full(_)) = tx.try_send(Ok(message))
        {
            self.metrics.dropped();
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
    use qmec_proto::pb::{self, device_down};

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
    fn only_the_end_of_an_agents_current_stream_is_it_leaving() {
        let mut carrier = carrier();
        let (old, _old_rx) = mpsc::channel(1);
        let (new, _new_rx) = mpsc::channel(1);
        carrier.admit(Event::DeviceJoined { device: 1, next_slot: 0, tx: old.clone() });
        carrier.admit(Event::DeviceJoined { device: 1, next_slot: 0, tx: new.clone() });
        assert_eq!(carrier.admit(Event::DeviceLeft { device: 1, tx: old }), None, "an older stream ended");
        assert_eq!(figure(&carrier, "qmec_devices_connected"), "1");
        assert_eq!(carrier.admit(Event::DeviceLeft { device: 1, tx: new }), Some(ControllerEvent::DeviceLeft { device: 1 }));
        assert_eq!(figure(&carrier, "qmec_devices_connected"), "0");
    }

    #[test]
    fn a_full_stream_drops_the_message_and_counts_it() {
        let mut carrier = carrier();
        let (tx, mut rx) = mpsc::channel(1);
        carrier.admit(Event::DeviceJoined { device: 0, next_slot: 0, tx });
        let announce = |slot| ControllerCommand::ToDevice {
            device: 0,
            message: pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(pb::SlotStart { slot })) },
        };
        // Device 1 has no session: its message goes nowhere, uncounted here.
        let to_none = ControllerCommand::ToDevice { device: 1, message: pb::DeviceDown::default() };
        carrier.carry_out(vec![announce(0), announce(1), to_none]);
        assert_eq!(figure(&carrier, "qmec_dropped_messages_total"), "1");
        assert_eq!(rx.try_recv().unwrap().unwrap(), pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(pb::SlotStart { slot: 0 })) });
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
