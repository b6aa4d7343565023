//! The sessions behind the controller's real gRPC server, with a tonic
//! client on a local port; the test plays the slot loop's part.

#![allow(clippy::unwrap_used)]

use super::*;
use qmec_proto::pb::controller_client::ControllerClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const SERVERS: usize = 1;

/// The sessions of a two-device, one-server run of 10 slots, served as the
/// controller serves them; the loop's ends of their channels.
struct Served {
    client: ControllerClient<tonic::transport::Channel>,
    events: mpsc::Receiver<Event>,
    limit: ReportLimit,
    metrics: Arc<Metrics>,
    _stop: tokio_util::sync::DropGuard,
}

async fn serve() -> Served {
    let (events_tx, events) = mpsc::channel(16);
    let (limit, metrics) = (ReportLimit::default(), Arc::new(Metrics::default()));
    let sessions = Sessions::new((2, SERVERS, 10, 7), (events_tx, limit.clone()), metrics.clone(), Security::none());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(crate::serve::grpc_server(sessions, Security::none(), listener, stop.clone()).await.unwrap());
    let client = ControllerClient::connect(format!("http://{addr}")).await.unwrap();
    Served { client, events, limit, metrics, _stop: stop.drop_guard() }
}

fn report(slot: u64, gains: usize) -> pb::ProcessUp {
    let report = pb::DeviceReport { slot, gains: vec![1e-6; gains], ..Default::default() };
    let up = pb::DeviceUp { msg: Some(device_up::Msg::Report(report)) };
    batch(vec![pb::AddressedUp { device: 0, up: Some(up) }])
}

fn batch(ups: Vec<pb::AddressedUp>) -> pb::ProcessUp {
    pb::ProcessUp { msg: Some(process_up::Msg::Batch(pb::DeviceUps { ups })) }
}

fn hello(devices: &[u32]) -> pb::ProcessUp {
    let devices = devices.iter().map(|&device| pb::DeviceHello { device, ..Default::default() }).collect();
    pb::ProcessUp { msg: Some(process_up::Msg::Hello(pb::ProcessHello { devices })) }
}

/// A process session of device 0: its hello, then `messages`, until the
/// stream ends. Returns the slots of the reports the loop got, and the
/// status the stream ended with (OK when it just ended).
async fn session(served: &mut Served, messages: Vec<pb::ProcessUp>) -> (Vec<u64>, Status) {
    opened(served, hello(&[0]), messages).await
}

/// A process session opening with `hello`; see [`session`].
async fn opened(served: &mut Served, hello: pb::ProcessUp, messages: Vec<pb::ProcessUp>) -> (Vec<u64>, Status) {
    let (up, up_rx) = mpsc::channel(4);
    up.send(hello).await.unwrap();
    let mut down = match served.client.process_session(ReceiverStream::new(up_rx)).await {
        Ok(down) => down.into_inner(),
        Err(status) => return (Vec::new(), status),
    };
    for message in messages {
        up.send(message).await.unwrap();
    }
    // Nothing more to say: a session the controller lets through ends OK.
    drop(up);
    // The loop's part: the stream's last sender goes with its leaving.
    let mut reported = Vec::new();
    loop {
        match served.events.recv().await.unwrap() {
            Event::Devices(batch) => reported.extend(batch.into_iter().filter_map(|(_, says)| match says {
                DeviceSays::Report(report) => Some(report.slot),
                DeviceSays::Ready => None,
            })),
            Event::ProcessLeft { .. } => break,
            _ => {}
        }
    }
    let status = loop {
        match down.message().await {
            Ok(Some(_)) => {}
            Ok(None) => break Status::ok(""),
            Err(status) => break status,
        }
    };
    (reported, status)
}

#[tokio::test]
async fn a_process_hello_must_name_known_devices_once() {
    let mut served = serve().await;
    for (devices, field) in [(&[][..], "hello.devices"), (&[0, 0], "hello.devices"), (&[0, 2], "hello.device")] {
        let (_, status) = opened(&mut served, hello(devices), Vec::new()).await;
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{devices:?}: {status}");
        assert!(status.message().contains(&format!("`{field}`")), "{devices:?}: {status}");
    }
    assert_eq!(served.metrics.invalid_messages(), 3);
}

#[tokio::test]
async fn a_batch_may_speak_only_for_the_sessions_devices() {
    let mut served = serve().await;
    let ready = pb::DeviceUp { msg: Some(device_up::Msg::Ready(pb::Ready {})) };
    let other = batch(vec![pb::AddressedUp { device: 0, up: Some(ready.clone()) }, pb::AddressedUp { device: 1, up: Some(ready) }]);
    let (reported, status) = session(&mut served, vec![report(0, SERVERS), other]).await;
    assert_eq!(reported, [0]);
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(status.message().contains("`batch.ups.device`"), "{status}");
    assert_eq!(served.metrics.invalid_messages(), 1);
}

#[tokio::test]
async fn a_report_for_a_slot_not_yet_announced_is_refused_with_its_field() {
    let mut served = serve().await;
    served.limit.publish(1);
    let (reported, status) = session(&mut served, vec![report(1, SERVERS), report(1_000_000_000_000, SERVERS)]).await;
    assert_eq!(reported, [1], "the report of the slot after the announced one is taken");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(status.message().contains("`report.slot`"), "{status}");
    assert_eq!(served.metrics.invalid_messages(), 1);
}

#[tokio::test]
async fn a_message_over_the_size_limit_ends_the_session_out_of_range_and_counts() {
    let mut served = serve().await;
    for (bytes, invalid) in [(2 << 20, 1), (100 << 20, 2)] {
        let (_, status) = session(&mut served, vec![report(0, bytes / 8)]).await;
        assert_eq!(status.code(), tonic::Code::OutOfRange, "{bytes} bytes: {status}");
        assert_eq!(served.metrics.invalid_messages(), invalid);
    }
}
