//! The `Controller` gRPC service. Each session stream becomes a task that
//! validates what the agent sends and forwards it to the slot loop as an
//! [`Event`]; the slot loop answers through the bounded sender it receives
//! with the join event. A device-agent process holds one session for all
//! its devices: its hello names each device (each checked against the
//! process's certificate under TLS), its batches become one event each.
//! A bad message ends that stream with `InvalidArgument` naming the field;
//! the controller carries on and the agent may reconnect. A report may
//! name no slot beyond the [`ReportLimit`] the slot loop publishes.

use crate::metrics::Metrics;
use qmec_proto::pb::{self, controller_server::Controller, device_up, process_up, server_up};
use qmec_proto::validate;
use qmec_security::{PeerCert, Security};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

/// Messages queued towards one agent before it counts as not reading.
pub const OUTBOUND_CAPACITY: usize = 64;

pub type ProcessTx = mpsc::Sender<Result<pb::ProcessDown, Status>>;
pub type ServerTx = mpsc::Sender<Result<pb::ServerDown, Status>>;

/// What one device of a process session said.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceSays {
    Ready,
    Report(validate::Report),
}

/// What the sessions tell the slot loop.
#[derive(Debug)]
pub enum Event {
    /// A process's session opened for `devices`: each with its
    /// `next_slot`, the first slot it has not been told of (0 when fresh;
    /// more after this controller restarted mid-run).
    ProcessJoined { devices: Vec<(usize, u64)>, tx: ProcessTx },
    /// One batch of a process session, in the order sent.
    Devices(Vec<(usize, DeviceSays)>),
    ProcessLeft { devices: Vec<usize>, tx: ProcessTx },
    ServerJoined { server: usize, endpoint: String, next_slot: u64, tx: ServerTx },
    ServerReport { server: usize, report: validate::ServerReport },
    ServerLeft { server: usize, tx: ServerTx },
}

/// The latest slot a report may name (the core's
/// [`report_limit`](crate::ControllerCore::report_limit)) as the slot loop
/// last published it. Every report reads it, so it is an atomic, not a
/// question to the loop.
#[derive(Debug, Clone, Default)]
pub struct ReportLimit(Arc<AtomicU64>);

impl ReportLimit {
    /// Called before the messages that announce a slot go out, so that no
    /// agent hears of a slot its session does not yet take reports for.
    pub fn publish(&self, limit: u64) {
        self.0.store(limit, Ordering::Release);
    }

    /// `slot` if a report over a session that joined with `next_slot` may
    /// name it. The hello's slot counts too: a restarted controller's loop
    /// may not have taken the join yet when the agent sends its latest
    /// report again.
    fn check(&self, slot: u64, next_slot: u64) -> Result<u64, validate::Invalid> {
        validate::report_slot(slot, self.0.load(Ordering::Acquire).max(next_slot))
    }
}

/// The service; cheap to clone into every handler.
#[derive(Debug, Clone)]
pub struct Sessions {
    devices: usize,
    servers: usize,
    slots: u64,
    /// The run's digest: a hello from another run is refused.
    run_digest: u64,
    events: mpsc::Sender<Event>,
    report_limit: ReportLimit,
    metrics: Arc<Metrics>,
    /// With TLS on, a hello must name the agent its certificate names.
    security: Security,
}

impl Sessions {
    pub fn new(
        (devices, servers, slots, run_digest): (usize, usize, u64, u64),
        (events, report_limit): (mpsc::Sender<Event>, ReportLimit),
        metrics: Arc<Metrics>,
        security: Security,
    ) -> Sessions {
        Sessions { devices, servers, slots, run_digest, events, report_limit, metrics, security }
    }

    /// Where a hello says the agent is in the run: its next slot, checked
    /// against this run's length and digest.
    fn hello_progress(&self, next_slot: u64, run_digest: u64) -> Result<u64, Status> {
        let checked = validate::hello_run("hello.run_digest", run_digest, self.run_digest)
            .and_then(|()| validate::next_slot("hello.next_slot", next_slot, self.slots));
        checked.map_err(|invalid| invalid.to_status())
    }

    /// Reads an agent's stream after its hello until it ends, turning each
    /// message into an event for the slot loop. A message `to_event`
    /// refuses, or one over the size limit, ends the stream with that
    /// status and counts as invalid; the agent (`kind`, id) may reconnect.
    /// Then `left` tells the loop.
    fn forward<Up, Down>(
        &self,
        mut inbound: Streaming<Up>,
        tx: mpsc::Sender<Result<Down, Status>>,
        (kind, id): (&'static str, usize),
        to_event: impl Fn(Up) -> Result<Event, Status> + Send + 'static,
        left: impl FnOnce(mpsc::Sender<Result<Down, Status>>) -> Event + Send + 'static,
    ) where
        Up: Send + 'static,
        Down: Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let event = match inbound.next().await {
                    Some(Ok(message)) => to_event(message),
                    Some(Err(status)) if validate::over_limit(&status) => Err(status),
                    Some(Err(status)) => {
                        tracing::debug!(kind, id, %status, "session stream broke");
                        break;
                    }
                    None => break,
                };
                let event = match event {
                    Ok(event) => event,
                    Err(status) => {
                        this.metrics.invalid();
                        tracing::warn!(kind, id, %status, "invalid message");
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                };
                if this.events.send(event).await.is_err() {
                    break;
                }
            }
            let _ = this.events.send(left(tx)).await;
        });
    }

    /// The devices a process hello names, each with its next slot: every
    /// one known to the run, named once, of this run, and (under TLS) named
    /// by the process's certificate.
    fn process_hello(
        &self,
        hello: &pb::ProcessHello,
        certs: &Option<Arc<Vec<PeerCert>>>,
    ) -> Result<HashMap<usize, u64>, Status> {
        if hello.devices.is_empty() {
            return Err(Status::invalid_argument("field `hello.devices`: names no device"));
        }
        let mut devices = HashMap::with_capacity(hello.devices.len());
        for device_hello in &hello.devices {
            let device = validate::device_hello(device_hello, self.devices).map_err(|invalid| invalid.to_status())?;
            let next_slot = self.hello_progress(device_hello.next_slot, device_hello.run_digest)?;
            self.security.verify_peer(certs.as_deref().map(Vec::as_slice), &qmec_security::certs::device_name(device))?;
            if devices.insert(device, next_slot).is_some() {
                return Err(Status::invalid_argument(format!("field `hello.devices`: device {device} is named twice")));
            }
        }
        Ok(devices)
    }

    /// Refuses the session unless the client certificate names `name`.
    fn verify_peer(&self, certs: &Option<Arc<Vec<PeerCert>>>, name: &str) -> Result<(), Status> {
        self.security.verify_peer(certs.as_deref().map(Vec::as_slice), name).inspect_err(|_| self.metrics.invalid())
    }
}

/// A process's batch as the loop takes it: each message from one of the
/// session's `devices` (with its next slot, for the report limit), a ready
/// or a report of the run's shape.
fn device_batch(
    batch: pb::DeviceUps,
    devices: &HashMap<usize, u64>,
    servers: usize,
    limit: &ReportLimit,
) -> Result<Vec<(usize, DeviceSays)>, Status> {
    let says = |up: pb::AddressedUp| {
        let device = up.device as usize;
        let Some(&next_slot) = devices.get(&device) else {
            return Err(validate::Invalid::new("batch.ups.device", format!("device {device} is not of this session")));
        };
        let says = match up.up.and_then(|up| up.msg) {
            Some(device_up::Msg::Report(report)) => {
                let report = validate::device_report(&report, servers)?;
                limit.check(report.slot, next_slot)?;
                DeviceSays::Report(report)
            }
            Some(device_up::Msg::Ready(_)) => DeviceSays::Ready,
            Some(device_up::Msg::Hello(_)) | None => {
                return Err(validate::Invalid::new("batch.ups.up.msg", "expected a ready or a report".to_string()));
            }
        };
        Ok((device, says))
    };
    batch.ups.into_iter().map(says).collect::<Result<_, _>>().map_err(|invalid| invalid.to_status())
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Reads the first message of a stream, which must be present.
async fn first<T>(inbound: &mut Streaming<T>) -> Result<T, Status> {
    match inbound.next().await {
        Some(Ok(message)) => Ok(message),
        Some(Err(status)) => Err(status),
        None => Err(Status::invalid_argument("field `msg`: the stream ended before its hello")),
    }
}

#[tonic::async_trait]
impl Controller for Sessions {
    type ProcessSessionStream = BoxStream<pb::ProcessDown>;
    type ServerSessionStream = BoxStream<pb::ServerDown>;

    async fn process_session(
        &self,
        request: Request<Streaming<pb::ProcessUp>>,
    ) -> Result<Response<Self::ProcessSessionStream>, Status> {
        let certs = request.peer_certs();
        let mut inbound = request.into_inner();
        let hello = match first(&mut inbound).await?.msg {
            Some(process_up::Msg::Hello(hello)) => hello,
            _ => {
                self.metrics.invalid();
                return Err(Status::invalid_argument("field `msg`: the first message must be a hello"));
            }
        };
        let devices = self.process_hello(&hello, &certs).inspect_err(|_| self.metrics.invalid())?;
        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let mut joined: Vec<(usize, u64)> = devices.iter().map(|(&device, &next_slot)| (device, next_slot)).collect();
        joined.sort_unstable();
        let ids: Vec<usize> = joined.iter().map(|&(device, _)| device).collect();
        let who = ids.first().copied().unwrap_or(0);
        self.events
            .send(Event::ProcessJoined { devices: joined, tx: tx.clone() })
            .await
            .map_err(|_| Status::unavailable("the controller is shutting down"))?;
        let (servers, limit) = (self.servers, self.report_limit.clone());
        let to_event = move |message: pb::ProcessUp| match message.msg {
            Some(process_up::Msg::Batch(batch)) => device_batch(batch, &devices, servers, &limit).map(Event::Devices),
            Some(process_up::Msg::Hello(_)) | None => Err(Status::invalid_argument("field `msg`: expected a batch")),
        };
        self.forward(inbound, tx, ("process of device", who), to_event, move |tx| Event::ProcessLeft { devices: ids, tx });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn server_session(
        &self,
        request: Request<Streaming<pb::ServerUp>>,
    ) -> Result<Response<Self::ServerSessionStream>, Status> {
        let certs = request.peer_certs();
        let mut inbound = request.into_inner();
        let hello = match first(&mut inbound).await?.msg {
            Some(server_up::Msg::Hello(hello)) => hello,
            _ => {
                self.metrics.invalid();
                return Err(Status::invalid_argument("field `msg`: the first message must be a hello"));
            }
        };
        let (server, endpoint) =
            validate::server_hello(&hello, self.servers).inspect_err(|_| self.metrics.invalid())?;
        let next_slot = self.hello_progress(hello.next_slot, hello.run_digest).inspect_err(|_| self.metrics.invalid())?;
        self.verify_peer(&certs, &qmec_security::certs::server_name(server))?;
        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        self.events
            .send(Event::ServerJoined { server, endpoint, next_slot, tx: tx.clone() })
            .await
            .map_err(|_| Status::unavailable("the controller is shutting down"))?;
        let (devices, limit) = (self.devices, self.report_limit.clone());
        let to_event = move |message: pb::ServerUp| match message.msg {
            Some(server_up::Msg::Report(report)) => validate::server_report(&report, devices)
                .and_then(|report| limit.check(report.slot, next_slot).map(|_| report))
                .map(|report| Event::ServerReport { server, report })
                .map_err(|invalid| invalid.to_status()),
            Some(server_up::Msg::Hello(_)) | None => Err(Status::invalid_argument("field `msg`: expected a report")),
        };
        self.forward(inbound, tx, ("server", server), to_event, move |tx| Event::ServerLeft { server, tx });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests;
