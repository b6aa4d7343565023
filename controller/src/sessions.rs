//! The `Controller` gRPC service. Each session stream becomes a task that
//! validates what the agent sends and forwards it to the slot loop as an
//! [`Event`]; the slot loop answers through the bounded sender it receives
//! with the join event. A bad message ends that stream with
//! `InvalidArgument` naming the field; the controller carries on and the
//! agent may reconnect. A report may name no slot beyond the
//! [`ReportLimit`] the slot loop publishes.

use crate::metrics::Metrics;
use qmec_proto::pb::{self, controller_server::Controller, device_up, server_up};
use qmec_proto::validate;
use qmec_security::{PeerCert, Security};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

/// Messages queued towards one agent before it counts as not reading.
pub const OUTBOUND_CAPACITY: usize = 64;

pub type DeviceTx = mpsc::Sender<Result<pb::DeviceDown, Status>>;
pub type ServerTx = mpsc::Sender<Result<pb::ServerDown, Status>>;

/// What the sessions tell the slot loop.
#[derive(Debug)]
pub enum Event {
    /// `next_slot`: the first slot the agent has not been told of (0 when
    /// fresh; more after this controller restarted mid-run).
    DeviceJoined { device: usize, next_slot: u64, tx: DeviceTx },
    DeviceReady { device: usize },
    DeviceReport { device: usize, report: validate::Report },
    DeviceLeft { device: usize, tx: DeviceTx },
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
        checked.map_err(|invalid| {
            self.metrics.invalid();
            invalid.to_status()
        })
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

    /// Refuses the session unless the client certificate names `name`.
    fn verify_peer(&self, certs: &Option<Arc<Vec<PeerCert>>>, name: &str) -> Result<(), Status> {
        self.security.verify_peer(certs.as_deref().map(Vec::as_slice), name).inspect_err(|_| self.metrics.invalid())
    }
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
    type DeviceSessionStream = BoxStream<pb::DeviceDown>;
    type ServerSessionStream = BoxStream<pb::ServerDown>;

    async fn device_session(
        &self,
        request: Request<Streaming<pb::DeviceUp>>,
    ) -> Result<Response<Self::DeviceSessionStream>, Status> {
        let certs = request.peer_certs();
        let mut inbound = request.into_inner();
        let hello = match first(&mut inbound).await?.msg {
            Some(device_up::Msg::Hello(hello)) => hello,
            _ => {
                self.metrics.invalid();
                return Err(Status::invalid_argument("field `msg`: the first message must be a hello"));
            }
        };
        let device = validate::device_hello(&hello, self.devices).inspect_err(|_| self.metrics.invalid())?;
        let next_slot = self.hello_progress(hello.next_slot, hello.run_digest)?;
        self.verify_peer(&certs, &qmec_security::certs::device_name(device))?;
        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        self.events
            .send(Event::DeviceJoined { device, next_slot, tx: tx.clone() })
            .await
            .map_err(|_| Status::unavailable("the controller is shutting down"))?;
        let (servers, limit) = (self.servers, self.report_limit.clone());
        let to_event = move |message: pb::DeviceUp| match message.msg {
            Some(device_up::Msg::Report(report)) => validate::device_report(&report, servers)
                .and_then(|report| limit.check(report.slot, next_slot).map(|_| report))
                .map(|report| Event::DeviceReport { device, report })
                .map_err(|invalid| invalid.to_status()),
            Some(device_up::Msg::Ready(_)) => Ok(Event::DeviceReady { device }),
            Some(device_up::Msg::Hello(_)) | None => Err(Status::invalid_argument("field `msg`: expected a report")),
        };
        self.forward(inbound, tx, ("device", device), to_event, move |tx| Event::DeviceLeft { device, tx });
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
        let next_slot = self.hello_progress(hello.next_slot, hello.run_digest)?;
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
