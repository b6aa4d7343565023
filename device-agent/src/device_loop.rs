//! One device agent's task: it joins the run (the setup, the offload streams,
//! ready), then feeds its [`DeviceCore`] the controller's messages, the
//! servers' results and the ticks the core asks for, and carries out what
//! the core answers. Every decision is the core's; this loop only moves
//! messages and keeps time (`now` is the time since the agent started, on
//! tokio's clock). The core is shared with the process's session, which
//! handles the controller's messages on it and sends the reports
//! ([`crate::session`]); this loop then carries out the rest.

use crate::channels::{AgentChannel, Channels, FollowedLinks};
use crate::config::DeviceAgentConfig;
use crate::core::{Batch, DeviceCommand, DeviceCore, DeviceEvent, DeviceSettings};
use crate::error::DeviceAgentError;
use crate::metrics::DeviceMetrics;
use crate::records::DeviceRecords;
use crate::session::{CoreCell, DeviceUp, SharedCore, ToDevice, from_controller};
use crate::uplink;
use qmec_proto::pb::{self, device_down, device_up};
use qmec_proto::validate;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Results and markers queued from the servers before the loop takes them.
const SERVER_EVENTS: usize = 4096;
/// Batches queued for the uplink sender.
const BATCHES: usize = 8;

/// Device `id`'s ends of its process's controller session: what the
/// session hands it, where its messages go up, and where its core goes
/// once it joined the run.
#[derive(Debug)]
pub struct SessionEnds {
    pub down: mpsc::UnboundedReceiver<ToDevice>,
    pub up: mpsc::UnboundedSender<DeviceUp>,
    pub core: CoreCell,
}

/// Runs device `id` until its core is finished or `shutdown`; returns its
/// records. `controller` is its channel to the controller, for timing it.
pub async fn run(
    id: usize,
    (controller, session): (AgentChannel, SessionEnds),
    channels: Channels,
    config: &DeviceAgentConfig,
    metrics: Option<&DeviceMetrics>,
    shutdown: CancellationToken,
) -> Result<DeviceRecords, DeviceAgentError> {
    let started = Instant::now();
    let fail = |reason: String| DeviceAgentError::Device { device: id, reason };
    let SessionEnds { mut down, up, core } = session;
    let setup = await_setup(&mut down, &shutdown).await.map_err(fail)?;
    let (events_tx, events) = mpsc::channel(SERVER_EVENTS);
    let streams = open_streams(&setup, &channels, id, &events_tx, &shutdown).await?;
    drop(events_tx);
    let followed = channels.followed_links(id, &setup.server_endpoints);
    let (batches, batches_rx) = mpsc::channel(BATCHES);
    let (stopped, stopped_rx) = watch::channel(vec![false; streams.len()]);
    let sender = tokio::spawn(uplink::sender(streams, batches_rx, config.payload_scale, stopped_rx));
    // The controller is up once it has sent the setup.
    let announce_delay = one_way_delay(&controller).await;
    tracing::info!(device = id, ?announce_delay, "one-way delay from the controller");
    let joined = DeviceCore::new(&setup, id, settings(config, announce_delay), started.elapsed());
    core.lock().replace(SharedCore { core: joined, started });
    let _ = up.send((id, pb::DeviceUp { msg: Some(device_up::Msg::Ready(pb::Ready {})) }));

    let mut driver = Driver { id, core, up, batches, stopped, followed, metrics };
    let mut inbox = Inbox { down, events, session_open: true, servers_open: true };
    driver.drive(&mut inbox, &shutdown).await;
    let Driver { core, up, batches, .. } = driver;
    let SharedCore { mut core, .. } = core.lock().take().ok_or_else(|| fail("its core was gone at the end".into()))?;
    drop(batches);
    let sent = sender.await.unwrap_or_default();
    // Results that raced the last marker; the run is over, so they only
    // complete tasks (a finished core sends nothing more).
    while let Ok(event) = inbox.events.try_recv() {
        core.handle(started.elapsed(), event);
    }
    drop(up);
    if let Some(metrics) = metrics {
        metrics.update(id, core.figures());
    }
    let mut records = core.records(sent.payload_bytes);
    records.unsent_bits_by_server = sent.unsent_bits;
    Ok(records)
}

fn settings(config: &DeviceAgentConfig, announce_delay: Duration) -> DeviceSettings {
    DeviceSettings {
        tx_fraction: config.tx_fraction,
        early_reports: config.early_reports,
        // Validated finite and ≥ 0; an absurd delay holds reports forever.
        report_delay: Duration::try_from_secs_f64(config.report_delay_ms / 1e3).unwrap_or(Duration::MAX),
        report_delay_from: config.report_delay_from,
        announce_delay,
    }
}

/// Waits for the run's setup (other messages before it mean nothing yet).
async fn await_setup(
    down: &mut mpsc::UnboundedReceiver<ToDevice>,
    shutdown: &CancellationToken,
) -> Result<validate::Setup, String> {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => None,
            message = down.recv() => message,
        };
        match message {
            Some(ToDevice::Message(pb::DeviceDown { msg: Some(device_down::Msg::Setup(setup)) })) => {
                return validate::setup(&setup).map_err(|e| e.to_string());
            }
            Some(_) => {}
            None => return Err("the controller session ended before the run started".into()),
        }
    }
}

/// Opens the offload stream to every server of the setup; their readers
/// send to `events`.
async fn open_streams(
    setup: &validate::Setup,
    channels: &Channels,
    id: usize,
    events: &mpsc::Sender<DeviceEvent>,
    shutdown: &CancellationToken,
) -> Result<Vec<mpsc::Sender<pb::OffloadUp>>, DeviceAgentError> {
    let mut streams = Vec::new();
    for (server, uri) in setup.server_endpoints.iter().enumerate() {
        let channel = channels.get(uri, &qmec_security::certs::server_name(server), id)?;
        let Some(stream) = uplink::open(channel, id, server, events.clone(), shutdown).await else {
            let reason = format!("could not open the offload stream to server {server} at {uri}");
            return Err(DeviceAgentError::Device { device: id, reason });
        };
        streams.push(stream);
    }
    Ok(streams)
}

/// Half the smallest of a few health-check round trips to the controller,
/// over the same (possibly emulated) link the session uses: an estimate of
/// how late slot announcements reach this agent, NTP-style, with no clock
/// shared between machines. Zero if the controller does not answer.
async fn one_way_delay(controller: &AgentChannel) -> Duration {
    const PINGS: usize = 3;
    let mut client = tonic_health::pb::health_client::HealthClient::new(controller.clone());
    let mut best: Option<Duration> = None;
    for _ in 0..PINGS {
        let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest { service: String::new() });
        request.set_timeout(Duration::from_secs(2));
        let sent = Instant::now();
        if client.check(request).await.is_ok() {
            let rtt = sent.elapsed();
            best = Some(best.map_or(rtt, |b| b.min(rtt)));
        }
    }
    best.map_or(Duration::ZERO, |rtt| rtt / 2)
}

/// Where the core's events come from.
#[derive(Debug)]
struct Inbox {
    /// What the controller session hands over; closed when it ended.
    down: mpsc::UnboundedReceiver<ToDevice>,
    /// The servers' results, markers and lost streams.
    events: mpsc::Receiver<DeviceEvent>,
    session_open: bool,
    servers_open: bool,
}

/// What comes next for a running device.
#[derive(Debug)]
enum Next {
    /// For its core to handle.
    Event(DeviceEvent),
    /// The session handled a controller message on the core: what is
    /// left to carry out.
    Handled { commands: Vec<DeviceCommand>, slot_started: bool },
}

/// A running device: its core and where its commands go.
#[derive(Debug)]
struct Driver<'a> {
    id: usize,
    /// Set while the run goes on: the loop ends before taking it back.
    core: CoreCell,
    up: mpsc::UnboundedSender<DeviceUp>,
    batches: mpsc::Sender<Batch>,
    /// Per server, whether the uplink skips it: set here only, when the
    /// core says [`DeviceCommand::StopSending`].
    stopped: watch::Sender<Vec<bool>>,
    /// The links up to the servers, when they follow the modelled channel.
    followed: Option<FollowedLinks>,
    metrics: Option<&'a DeviceMetrics>,
}

impl Driver<'_> {
    /// Hands the core every event until it is finished.
    async fn drive(&mut self, inbox: &mut Inbox, shutdown: &CancellationToken) {
        while !self.core.lock().as_ref().is_none_or(|shared| shared.core.finished()) {
            let (commands, slot_started) = match self.next_event(inbox, shutdown).await {
                Next::Handled { commands, slot_started } => (commands, slot_started),
                Next::Event(event) => {
                    let slot_started = matches!(event, DeviceEvent::SlotStart(_));
                    (self.handle(event), slot_started)
                }
            };
            for command in commands {
                self.carry_out(command).await;
            }
            if slot_started
                && let Some(metrics) = self.metrics
                && let Some(shared) = self.core.lock().as_ref()
            {
                metrics.update(self.id, shared.core.figures());
            }
        }
    }

    fn handle(&self, event: DeviceEvent) -> Vec<DeviceCommand> {
        let mut cell = self.core.lock();
        cell.as_mut().map(|shared| shared.core.handle(shared.started.elapsed(), event)).unwrap_or_default()
    }

    /// The next event: a message, a server's result, or the core's wake
    /// time; or what is left of a message the session handled.
    async fn next_event(&self, inbox: &mut Inbox, shutdown: &CancellationToken) -> Next {
        let wake = self.core.lock().as_ref().and_then(|shared| shared.core.next_wake().map(|at| shared.started + at));
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Next::Event(DeviceEvent::Shutdown),
                () = &mut sleep => return Next::Event(DeviceEvent::Tick),
                message = inbox.down.recv(), if inbox.session_open => match message {
                    Some(ToDevice::Handled { commands, slot_started }) => return Next::Handled { commands, slot_started },
                    Some(ToDevice::Message(message)) => if let Some(event) = from_controller(message) {
                        return Next::Event(event);
                    },
                    None => {
                        inbox.session_open = false;
                        return Next::Event(DeviceEvent::ControllerGone);
                    }
                },
                event = inbox.events.recv(), if inbox.servers_open => match event {
                    Some(event) => return Next::Event(event),
                    // Every stream's reader ended (and said so).
                    None => inbox.servers_open = false,
                },
            }
        }
    }

    async fn carry_out(&mut self, command: DeviceCommand) {
        match command {
            DeviceCommand::Report(report) => {
                let _ = self.up.send((self.id, pb::DeviceUp { msg: Some(device_up::Msg::Report(report)) }));
            }
            DeviceCommand::Send(batch) => {
                if let Some(followed) = &self.followed {
                    followed.set(&batch);
                }
                let _ = self.batches.send(batch).await;
            }
            DeviceCommand::StopSending { server } => self.stopped.send_modify(|stopped| {
                if let Some(stop) = stopped.get_mut(server) {
                    *stop = true;
                }
            }),
        }
    }
}
