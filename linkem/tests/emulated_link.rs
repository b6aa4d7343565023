//! The emulated link end to end on loopback: raw bytes through the
//! connector (delay, rate, loss as a retransmission penalty, half-close),
//! and a real tonic call whose round trip carries both directions' delay.

#![allow(clippy::unwrap_used)]

use qmec_linkem::{Connector, Direction, Link};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower_service::Service;

const RETRANSMIT: Duration = Duration::from_millis(200);

fn link(up: Direction, down: Direction) -> Link {
    Link { up, down }
}

fn delay(ms: u64) -> Direction {
    Direction { delay: Duration::from_millis(ms), ..Direction::default() }
}

/// An echo server on loopback; returns its URI.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Writes `len` bytes, half-closes, reads the echo to its end; returns the
/// time from the first byte written to the last byte read.
async fn echo_round_trip(connector: &mut Connector, uri: &str, len: usize) -> Duration {
    let io = connector.call(uri.parse().unwrap()).await.unwrap();
    let mut io = io.into_inner();
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let start = Instant::now();
    let (mut r, mut w) = tokio::io::split(&mut io);
    let writer = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let reader = r.read_to_end(&mut back);
    let ((), read) = tokio::join!(writer, reader);
    read.unwrap();
    assert_eq!(back, payload, "the link must deliver every byte in order");
    start.elapsed()
}

#[tokio::test]
async fn delay_adds_up_in_a_round_trip() {
    let uri = echo_server().await;
    let mut plain = Connector::new(Link::default(), RETRANSMIT, 1);
    let base = echo_round_trip(&mut plain, &uri, 1000).await;
    let mut delayed = Connector::new(link(delay(30), delay(20)), RETRANSMIT, 1);
    let rtt = echo_round_trip(&mut delayed, &uri, 1000).await;
    assert!(rtt >= Duration::from_millis(50), "round trip {rtt:?} under 30 + 20 ms");
    assert!(rtt < Duration::from_millis(50) + base + Duration::from_millis(60), "round trip {rtt:?} (plain {base:?})");
}

#[tokio::test]
async fn rate_paces_a_bulk_transfer() {
    let uri = echo_server().await;
    // 200 kB up at 8 Mbit/s: 0.2 s; down unlimited.
    let up = Direction { rate_bps: Some(8e6), ..Direction::default() };
    let mut c = Connector::new(link(up, Direction::default()), RETRANSMIT, 2);
    let took = echo_round_trip(&mut c, &uri, 200_000).await;
    assert!(took >= Duration::from_millis(190), "200 kB at 8 Mbit/s took {took:?}");
    assert!(took < Duration::from_millis(600), "200 kB at 8 Mbit/s took {took:?}");
}

#[tokio::test]
async fn certain_loss_costs_one_retransmission_per_direction_chunk() {
    let uri = echo_server().await;
    let lossy = Direction { loss: 0.999_999, ..Direction::default() };
    let mut c = Connector::new(link(lossy, Direction::default()), RETRANSMIT, 3);
    let took = echo_round_trip(&mut c, &uri, 100).await;
    assert!(took >= RETRANSMIT, "a lost chunk came through in {took:?}");
    assert!(took < RETRANSMIT * 3, "{took:?}");
}

#[tokio::test]
async fn a_grpc_call_pays_both_directions() {
    let (reporter, service) = tonic_health::server::health_reporter();
    drop(reporter);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let connector = Connector::new(link(delay(15), delay(15)), RETRANSMIT, 4);
    let channel = endpoint.connect_with_connector(connector).await.unwrap();
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = || tonic_health::pb::HealthCheckRequest { service: String::new() };
    client.check(check()).await.unwrap();
    for _ in 0..3 {
        let start = Instant::now();
        let reply = client.check(check()).await.unwrap().into_inner();
        let rtt = start.elapsed();
        assert_eq!(reply.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        assert!(rtt >= Duration::from_millis(30), "a call over 15 + 15 ms took {rtt:?}");
        assert!(rtt < Duration::from_millis(150), "a call over 15 + 15 ms took {rtt:?}");
    }
}

#[test]
fn the_netem_probe_leaves_no_namespace_behind() {
    let support = qmec_linkem::netem::probe();
    println!("netem on this kernel: {support:?}");
    let listed = std::process::Command::new("ip").args(["netns", "list"]).output();
    if let Ok(listed) = listed {
        let names = String::from_utf8_lossy(&listed.stdout);
        assert!(!names.contains(&format!("qmec-netem-probe-{}", std::process::id())), "{names}");
    }
    if let qmec_linkem::netem::Support::Missing(reason) = support {
        assert!(!reason.is_empty());
    }
}

/// Sends `messages` small messages far apart (each finds the link empty),
/// then `bulk` bytes at once (a backlog), through `connector`; returns the
/// verdict on its up direction.
async fn up_fidelity(mut connector: Connector, messages: usize, bulk: usize) -> qmec_linkem::fidelity::FidelityVerdict {
    let uri = echo_server().await;
    let io = connector.call(uri.parse().unwrap()).await.unwrap();
    let (mut r, mut w) = tokio::io::split(io.into_inner());
    let total = messages * 100 + bulk;
    let reader = tokio::spawn(async move {
        let mut back = vec![0u8; total];
        r.read_exact(&mut back).await.unwrap();
    });
    for _ in 0..messages {
        w.write_all(&[7u8; 100]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    w.write_all(&vec![9u8; bulk]).await.unwrap();
    reader.await.unwrap();
    // The writer meters a chunk just after writing it: let it finish.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let [up, _down] = connector.measurements("device→server");
    qmec_linkem::fidelity::verdict(&up, &qmec_linkem::fidelity::Tolerance::STATED)
}

fn fidelity_link() -> Link {
    let up = Direction { delay: Duration::from_millis(20), jitter: Duration::from_millis(5), rate_bps: Some(20e6), loss: 0.0 };
    link(up, Direction::default())
}

/// 2 MiB: a backlog of 0.84 s at 20 Mbit/s.
const BULK: usize = 2 * 1024 * 1024;

/// The verdicts on delay (60 messages) and on rate (a 2 MiB burst, on a
/// connection of its own), with each chunk held `stretch` times as long
/// as planned.
async fn fidelity_with_stretch(stretch: f64) -> [qmec_linkem::fidelity::FidelityVerdict; 2] {
    let connector = || Connector::stretched(fidelity_link(), Vec::new(), RETRANSMIT, 3, stretch);
    [up_fidelity(connector(), 60, 0).await, up_fidelity(connector(), 0, BULK).await]
}

// The agents' runtime: the bulk copy does not hold up the timers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_true_emulator_passes_its_fidelity_verdict() {
    let [delay, rate] = fidelity_with_stretch(1.0).await;
    assert!(delay.ok && delay.achieved.delay_ms.is_some() && delay.achieved.jitter_ms.is_some(), "{delay:?}");
    assert!(rate.ok && rate.achieved.rate_mbit.is_some(), "{rate:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliberately_wrong_emulator_fails_its_fidelity_verdict() {
    // Every chunk held 1.5 times as long as planned: 30 ms of delay for
    // 20, and the rate a third lower.
    let [delay, rate] = fidelity_with_stretch(1.5).await;
    assert!(!delay.ok && delay.reason.contains("delay"), "{delay:?}");
    assert!(!rate.ok && rate.reason.contains("rate"), "{rate:?}");
}

/// Half of `bulk` bytes at 20 Mbit/s, then the rate set to 10 Mbit/s and
/// the other half, on a connection whose up rate is live (as a device's
/// link to a server that follows the channel); returns the time the
/// transfer took and the verdict on the up direction.
async fn followed_transfer(stretch: f64) -> (Duration, qmec_linkem::fidelity::FidelityVerdict) {
    let uri = echo_server().await;
    let live = qmec_linkem::follow::LiveRate::new();
    let up = Direction { delay: Duration::from_millis(5), ..Direction::default() };
    let mut connector =
        Connector::stretched(link(up, Direction::default()), Vec::new(), RETRANSMIT, 5, stretch).with_live_up_rate(live.clone());
    let io = connector.call(uri.parse().unwrap()).await.unwrap();
    let (mut r, mut w) = tokio::io::split(io.into_inner());
    const HALF: usize = 512 * 1024;
    let reader = tokio::spawn(async move {
        let mut back = vec![0u8; 2 * HALF];
        r.read_exact(&mut back).await.unwrap();
    });
    let start = Instant::now();
    live.set(20e6);
    w.write_all(&vec![1u8; HALF]).await.unwrap();
    // The emulator takes chunks as they come (its queue holds them all):
    // wait until the first half entered before the rate changes.
    tokio::time::sleep(Duration::from_millis(30)).await;
    live.set(10e6);
    w.write_all(&vec![2u8; HALF]).await.unwrap();
    reader.await.unwrap();
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let [up, _down] = connector.measurements("device→server");
    (took, qmec_linkem::fidelity::verdict(&up, &qmec_linkem::fidelity::Tolerance::STATED))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_rate_paces_what_enters_after_it_is_set_and_fidelity_follows_it() {
    // 4 Mbit at 20 Mbit/s (0.21 s), then 4 Mbit at 10 Mbit/s (0.42 s).
    let (took, verdict) = followed_transfer(1.0).await;
    assert!(took >= Duration::from_millis(600), "1 MiB at 20 then 10 Mbit/s took {took:?}");
    assert!(took < Duration::from_millis(1200), "1 MiB at 20 then 10 Mbit/s took {took:?}");
    let configured = verdict.configured.rate_mbit.unwrap();
    assert!(configured > 11.0 && configured < 19.0, "both rates were in force: {verdict:?}");
    assert!(verdict.ok, "{verdict:?}");
    let (_, stretched) = followed_transfer(1.5).await;
    assert!(!stretched.ok && stretched.reason.contains("rate"), "{stretched:?}");
}
