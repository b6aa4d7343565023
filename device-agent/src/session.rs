//! A device's controller session ([`qmec_proto::session::keep_open`]):
//! the `DeviceSession` stream, reopened with backoff when it breaks. A new
//! stream (the controller may have restarted and know nothing) starts with
//! what a controller needs to pick the run up: the hello names the next
//! slot this device has not been told of and the run it belongs to, then
//! its ready and its latest report are sent again.

use qmec_proto::pb::{self, controller_client::ControllerClient, device_down, device_up};
use qmec_proto::session::{self, SessionMemory};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Runs until the controller says finish (and `up` closes), or `shutdown`.
pub async fn run(
    channel: crate::channels::AgentChannel,
    device: usize,
    down: mpsc::Sender<pb::DeviceDown>,
    up: mpsc::Receiver<pb::DeviceUp>,
    shutdown: CancellationToken,
) {
    let open = move |request| {
        let mut client = ControllerClient::new(channel.clone()).max_decoding_message_size(qmec_security::limits::CONTROL_DOWN);
        async move { client.device_session(request).await.map(tonic::Response::into_inner) }
    };
    let memory = Replay::new(device);
    session::keep_open(&format!("device-{device}"), memory, open, down, up, shutdown).await;
}

/// What a new session stream repeats so that a restarted controller can
/// rebuild this device's state without asking.
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
}

impl Replay {
    /// The memory of device `device`, before it heard of any run.
    pub fn new(device: usize) -> Replay {
        Replay { device: device as u32, ..Replay::default() }
    }
}

impl SessionMemory for Replay {
    type Up = pb::DeviceUp;
    type Down = pb::DeviceDown;

    fn opening(&self) -> Vec<pb::DeviceUp> {
        let hello = pb::DeviceHello { device: self.device, next_slot: self.next_slot, run_digest: self.run_digest };
        let hello = pb::DeviceUp { msg: Some(device_up::Msg::Hello(hello)) };
        std::iter::once(hello).chain(self.ready.clone()).chain(self.report.clone()).collect()
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

    fn is_finish(message: &pb::DeviceDown) -> bool {
        matches!(message.msg, Some(device_down::Msg::Finish(_)))
    }

    fn run_over(&self) -> bool {
        self.slots > 0 && self.next_slot >= self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_stream_says_where_the_device_is_then_repeats_its_ready_and_latest_report() {
        let mut replay = Replay { device: 3, ..Replay::default() };
        let hello = |opening: Vec<pb::DeviceUp>| match &opening[0].msg {
            Some(device_up::Msg::Hello(hello)) => *hello,
            other => panic!("the opening starts with {other:?}"),
        };
        assert_eq!(hello(replay.opening()), pb::DeviceHello { device: 3, next_slot: 0, run_digest: 0 });
        assert_eq!(replay.opening().len(), 1);
        let start = |slot| pb::DeviceDown { msg: Some(device_down::Msg::SlotStart(pb::SlotStart { slot })) };
        replay.heard(&start(4));
        replay.heard(&start(2));
        let setup = pb::RunSetup { seed: 7, ..Default::default() };
        replay.heard(&pb::DeviceDown { msg: Some(device_down::Msg::Setup(setup.clone())) });
        let report = |slot| pb::DeviceUp { msg: Some(device_up::Msg::Report(pb::DeviceReport { slot, ..Default::default() })) };
        replay.sent(&pb::DeviceUp { msg: Some(device_up::Msg::Ready(pb::Ready {})) });
        replay.sent(&report(3));
        replay.sent(&report(4));
        let opening = replay.opening();
        let digest = qmec_proto::validate::run_digest(&setup);
        assert_eq!(hello(opening.clone()), pb::DeviceHello { device: 3, next_slot: 5, run_digest: digest });
        assert!(matches!(opening[1].msg, Some(device_up::Msg::Ready(_))));
        assert!(matches!(&opening[2].msg, Some(device_up::Msg::Report(r)) if r.slot == 4));
        assert_eq!(opening.len(), 3);
        assert!(Replay::is_finish(&pb::DeviceDown { msg: Some(device_down::Msg::Finish(pb::Finish { last_slot: 9 })) }));
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
