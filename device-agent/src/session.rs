//! A device's controller session: opens the `DeviceSession` stream with a
//! deadline, says hello, forwards what the controller says and sends the
//! agent's reports; when the stream breaks it reconnects with jittered
//! exponential backoff (tonic never resumes a broken stream). A new stream
//! (the controller may have restarted and know nothing) starts with what
//! a controller needs to pick the run up: the hello names the next slot
//! this device has not been told of and the run it belongs to, then its
//! ready and its latest report are sent again.

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
    let mut replay = Replay::default();
    loop {
        let (tx, rx) = mpsc::channel(64);
        let hello = pb::DeviceHello { device: device as u32, next_slot: replay.next_slot, run_digest: replay.run_digest };
        let _ = tx.send(pb::DeviceUp { msg: Some(device_up::Msg::Hello(hello)) }).await;
        for message in replay.messages() {
            let _ = tx.send(message.clone()).await;
        }
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
                        replay.heard(&message);
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
                        replay.sent(&report);
                        let _ = tx.send(report).await;
                    }
                    None => return,
                },
            }
        }
    }
}

/// What a new session stream repeats so that a restarted controller can
/// rebuild this device's state without asking.
#[derive(Debug, Default)]
struct Replay {
    next_slot: u64,
    /// The run's digest, once its setup came (0 before).
    run_digest: u64,
    ready: Option<pb::DeviceUp>,
    report: Option<pb::DeviceUp>,
}

impl Replay {
    fn heard(&mut self, message: &pb::DeviceDown) {
        let slot = match &message.msg {
            Some(device_down::Msg::SlotStart(start)) => start.slot,
            Some(device_down::Msg::Decision(decision)) => decision.slot,
            Some(device_down::Msg::Setup(setup)) if self.run_digest == 0 => {
                self.run_digest = qmec_proto::validate::run_digest(setup);
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

    fn messages(&self) -> impl Iterator<Item = &pb::DeviceUp> {
        self.ready.iter().chain(&self.report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_tracks_the_next_slot_and_the_latest_report() {
        let mut replay = Replay::default();
        assert_eq!(replay.messages().count(), 0);
        let start = |slot| pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(pb::SlotStart { slot })) };
        replay.heard(&start(4));
        replay.heard(&start(2));
        assert_eq!(replay.next_slot, 5);
        assert_eq!(replay.run_digest, 0);
        let setup = pb::RunSetup { seed: 7, ..Default::default() };
        replay.heard(&pb::DeviceDown { msg: Some(device_down::Msg::Setup(setup.clone())) });
        assert_eq!(replay.run_digest, qmec_proto::validate::run_digest(&setup));
        let report = |slot| pb::DeviceUp { msg: Some(device_up::Msg::Report(pb::DeviceReport { slot, ..Default::default() })) };
        replay.sent(&pb::DeviceUp { msg: Some(device_up::Msg::Ready(pb::Ready {})) });
        replay.sent(&report(3));
        replay.sent(&report(4));
        let kinds: Vec<_> = replay.messages().map(|m| m.msg.clone()).collect();
        assert!(matches!(kinds[0], Some(device_up::Msg::Ready(_))));
        assert!(matches!(&kinds[1], Some(device_up::Msg::Report(r)) if r.slot == 4));
        assert_eq!(kinds.len(), 2);
    }
}
