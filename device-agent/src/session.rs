//! A device's controller session: opens the `DeviceSession` stream with a
//! deadline, says hello, forwards what the controller says and sends the
//! agent's reports; when the stream breaks it reconnects with jittered
//! exponential backoff (tonic never resumes a broken stream).

use qmec_proto::backoff::Backoff;
use qmec_proto::pb::{self, controller_client::ControllerClient, device_down, device_up};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// The grpc-timeout on a session stream: longer than any run we launch, so
/// a peer that vanished without closing is still dropped eventually.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(6 * 3600);

/// Runs until the controller says finish (and `up` closes), or `shutdown`.
pub async fn run(
    channel: crate::agent::AgentChannel,
    device: usize,
    down: mpsc::Sender<pb::DeviceDown>,
    mut up: mpsc::Receiver<pb::DeviceUp>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        let (tx, rx) = mpsc::channel(64);
        let hello = pb::DeviceUp { msg: Some(device_up::Msg::Hello(pb::DeviceHello { device: device as u32 })) };
        let _ = tx.send(hello).await;
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        request.set_timeout(SESSION_DEADLINE);
        let mut client = ControllerClient::new(channel.clone()).max_decoding_message_size(qmec_security::limits::CONTROL_DOWN);
        let opened = tokio::select! {
            () = shutdown.cancelled() => return,
            opened = client.device_session(request) => opened,
        };
        let mut inbound = match opened {
            Ok(response) => response.into_inner(),
            Err(status) => {
                tracing::debug!(device, %status, "controller session not open");
                let delay = backoff.next_delay();
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        backoff.reset();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        let finish = matches!(message.msg, Some(device_down::Msg::Finish(_)));
                        if down.send(message).await.is_err() {
                            return;
                        }
                        if finish {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::warn!(device, %status, "controller session broke; reconnecting");
                        break;
                    }
                },
                report = up.recv() => match report {
                    Some(report) => {
                        let _ = tx.send(report).await;
                    }
                    None => return,
                },
            }
        }
    }
}
