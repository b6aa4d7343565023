//! The `Offload` service. Each device stream becomes a task that validates
//! fragments and markers into [`OffloadEvent`]s for the agent's loop; results go
//! back through a bounded sender. A bad message ends that stream with
//! `InvalidArgument` (one over the size limit with `OutOfRange`), counted;
//! the server carries on.

use qmec_proto::pb::{self, offload_server::Offload, offload_up};
use qmec_proto::validate;
use qmec_security::Security;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

/// Results queued towards one device.
pub const RESULTS_CAPACITY: usize = 4096;

pub type ResultsTx = mpsc::Sender<Result<pb::OffloadDown, Status>>;

#[derive(Debug)]
pub enum OffloadEvent {
    Joined { device: usize, tx: ResultsTx },
    Fragment { device: usize, fragment: validate::Fragment },
    EndOfSlot { device: usize, slot: u64 },
}

#[derive(Debug, Clone)]
pub struct OffloadService {
    /// The number of devices, once the controller's setup is known.
    devices: watch::Receiver<Option<usize>>,
    events: mpsc::Sender<OffloadEvent>,
    pub invalid: Arc<AtomicU64>,
    pub payload_bytes: Arc<AtomicU64>,
    /// With TLS on, a device's hello must name the device its certificate names.
    security: Security,
}

impl OffloadService {
    pub fn new(devices: watch::Receiver<Option<usize>>, events: mpsc::Sender<OffloadEvent>, security: Security) -> OffloadService {
        OffloadService { devices, events, invalid: Arc::default(), payload_bytes: Arc::default(), security }
    }

    fn refuse(&self, status: Status) -> Status {
        self.invalid.fetch_add(1, Ordering::Relaxed);
        status
    }

    /// A device's message after its hello as an event, or the status
    /// that refuses it.
    fn to_event(&self, device: usize, message: pb::OffloadUp) -> Result<OffloadEvent, Status> {
        match message.msg {
            Some(offload_up::Msg::Fragment(fragment)) => {
                let fragment = validate::fragment(&fragment)?;
                self.payload_bytes.fetch_add(fragment.payload_len as u64, Ordering::Relaxed);
                Ok(OffloadEvent::Fragment { device, fragment })
            }
            Some(offload_up::Msg::EndOfSlot(end)) => Ok(OffloadEvent::EndOfSlot { device, slot: end.slot }),
            _ => Err(Status::invalid_argument("field `msg`: expected a fragment or an end of slot")),
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Offload for OffloadService {
    type OffloadStream = BoxStream<pb::OffloadDown>;

    async fn offload(&self, request: Request<Streaming<pb::OffloadUp>>) -> Result<Response<Self::OffloadStream>, Status> {
        let certs = request.peer_certs();
        let mut inbound = request.into_inner();
        let hello = match inbound.next().await {
            Some(Ok(pb::OffloadUp { msg: Some(offload_up::Msg::Hello(hello)) })) => hello,
            Some(Err(status)) => return Err(status),
            _ => return Err(self.refuse(Status::invalid_argument("field `msg`: the first message must be a hello"))),
        };
        let mut devices = self.devices.clone();
        let count = tokio::time::timeout(std::time::Duration::from_secs(30), devices.wait_for(Option::is_some))
            .await
            .map_err(|_| Status::unavailable("this server has no run setup yet"))?
            .map_err(|_| Status::unavailable("this server is shutting down"))?
            .unwrap_or(0);
        let device = validate::device_id("hello.device", hello.device, count)
            .map_err(|invalid| self.refuse(invalid.to_status()))?;
        let name = qmec_security::certs::device_name(device);
        self.security.verify_peer(certs.as_deref().map(Vec::as_slice), &name).map_err(|status| self.refuse(status))?;
        let (tx, rx) = mpsc::channel(RESULTS_CAPACITY);
        self.events
            .send(OffloadEvent::Joined { device, tx: tx.clone() })
            .await
            .map_err(|_| Status::unavailable("this server is shutting down"))?;
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(message) = inbound.next().await {
                let event = match message {
                    Ok(message) => this.to_event(device, message),
                    Err(status) if validate::over_limit(&status) => Err(status),
                    Err(status) => {
                        tracing::debug!(device, %status, "offload stream broke");
                        break;
                    }
                };
                let event = match event {
                    Ok(event) => event,
                    Err(status) => {
                        tracing::warn!(device, %status, "invalid message");
                        let _ = tx.send(Err(this.refuse(status))).await;
                        break;
                    }
                };
                if this.events.send(event).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use qmec_proto::pb::{offload_client::OffloadClient, offload_server::OffloadServer};

    #[tokio::test]
    async fn a_message_over_the_size_limit_ends_the_stream_out_of_range_and_counts() {
        let (_devices, devices_rx) = watch::channel(Some(1));
        let (events_tx, mut events) = mpsc::channel(4);
        let service = OffloadService::new(devices_rx, events_tx, Security::none());
        let invalid = service.invalid.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = OffloadServer::new(service).max_decoding_message_size(qmec_security::limits::OFFLOAD_UP);
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(tonic::transport::Server::builder().add_service(server).serve_with_incoming(incoming));

        let mut client = OffloadClient::connect(format!("http://{addr}")).await.unwrap();
        let hello = pb::OffloadUp { msg: Some(offload_up::Msg::Hello(pb::OffloadHello { device: 0 })) };
        let fragment = pb::FragmentData { payload: vec![0; 8 << 20], ..Default::default() };
        let fragment = pb::OffloadUp { msg: Some(offload_up::Msg::Fragment(fragment)) };
        let up = tokio_stream::iter([hello, fragment]);
        let mut down = client.offload(up).await.unwrap().into_inner();
        // The loop's part: the stream's last sender goes once it is refused.
        drop(events.recv().await);
        let status = down.message().await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::OutOfRange, "{status}");
        assert_eq!(invalid.load(Ordering::Relaxed), 1);
    }
}
