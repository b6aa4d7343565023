//! Wiring of one server agent: the `Offload` service (with health and
//! reflection) on its listener, the controller session with jittered
//! reconnects, and the engine loop that owns the model. It ends when the
//! controller says the run is over (after the last slot's fragments are
//! in) or on shutdown, and writes its records.

use crate::config::ServerAgentConfig;
use crate::engine::Engine;
use crate::metrics::ServerMetrics;
use crate::offload::{OffloadEvent, OffloadService, ResultsTx};
use crate::records::ServerRecords;
use qmec_proto::pb::{self, controller_client::ControllerClient, offload_down, offload_server::OffloadServer, server_down, server_up};
use qmec_proto::session::{self, SessionMemory};
use qmec_proto::validate;
use qmec_security::Security;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The deadline on connecting to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ServerAgentError {
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("controller endpoint `{0}` is not a valid URI")]
    Endpoint(String),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("invalid setup from the controller: {0}")]
    Setup(validate::Invalid),
    #[error("the controller session ended before the run started")]
    NoSetup,
    #[error("writing records {path}: {message}")]
    Records { path: String, message: String },
    #[error("security: {0}")]
    Security(#[from] qmec_security::SecurityError),
}

/// Binds the listen address and prints the listening line on stdout.
pub async fn bind(config: &ServerAgentConfig) -> Result<TcpListener, ServerAgentError> {
    let bind_err = |source| ServerAgentError::Bind { addr: config.listen.clone(), source };
    let listener = TcpListener::bind(&config.listen).await.map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    println!("{}{addr}", qmec_proto::LISTENING_PREFIX);
    Ok(listener)
}

/// What a server's session stream starts with and remembers: a new stream
/// (the controller may have restarted and know nothing) says in its hello
/// the run it belongs to and the first slot this server has no allocation
/// for, and repeats the latest report, from which the controller rebuilds Z.
#[derive(Debug)]
struct ServerMemory {
    hello: pb::ServerHello,
    last_report: Option<pb::ServerUp>,
}

impl SessionMemory for ServerMemory {
    type Up = pb::ServerUp;
    type Down = pb::ServerDown;

    fn opening(&self) -> Vec<pb::ServerUp> {
        let hello = pb::ServerUp { msg: Some(server_up::Msg::Hello(self.hello.clone())) };
        std::iter::once(hello).chain(self.last_report.clone()).collect()
    }

    fn heard(&mut self, message: &pb::ServerDown) {
        match &message.msg {
            Some(server_down::Msg::Allocation(allocation)) => {
                self.hello.next_slot = self.hello.next_slot.max(allocation.slot.saturating_add(1));
            }
            Some(server_down::Msg::Setup(setup)) if self.hello.run_digest == 0 => {
                self.hello.run_digest = validate::run_digest(setup);
            }
            _ => {}
        }
    }

    fn sent(&mut self, message: &pb::ServerUp) {
        self.last_report = Some(message.clone());
    }

    fn is_finish(message: &pb::ServerDown) -> bool {
        matches!(message.msg, Some(server_down::Msg::Finish(_)))
    }
}

/// Keeps a session with the controller open ([`session::keep_open`]),
/// connecting anew for each stream.
async fn controller_session(
    endpoint: tonic::transport::Endpoint,
    attach: qmec_security::TokenAttach,
    hello: pb::ServerHello,
    down: mpsc::Sender<pb::ServerDown>,
    up: mpsc::Receiver<pb::ServerUp>,
    shutdown: CancellationToken,
) {
    let who = format!("server-{}", hello.server);
    let open = move |request| {
        let (endpoint, attach) = (endpoint.clone(), attach.clone());
        async move {
            let channel = endpoint.connect().await.map_err(|error| Status::unavailable(error.to_string()))?;
            let mut client = ControllerClient::with_interceptor(channel, attach)
                .max_decoding_message_size(qmec_security::limits::CONTROL_DOWN);
            client.server_session(request).await.map(tonic::Response::into_inner)
        }
    };
    let memory = ServerMemory { hello, last_report: None };
    session::keep_open(&who, memory, open, down, up, shutdown).await;
}

/// Accepted connections of `listener` with `TCP_NODELAY` set. tonic's
/// `Server::tcp_nodelay` applies only when tonic binds the address itself and
/// is ignored by `serve_with_incoming`; without it, Nagle's algorithm holds a
/// small frame (a slot announcement, a decision) until the peer's delayed
/// ACK, tens of milliseconds later, and reports miss their deadline.
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Runs one server agent on `listener` until the run is over or `shutdown`.
pub async fn run(
    config: ServerAgentConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<ServerRecords, ServerAgentError> {
    let started = Instant::now();
    let security = Security::load(&config.security, &qmec_security::certs::server_name(config.id))?;
    let local = listener.local_addr().map_err(|source| ServerAgentError::Bind { addr: config.listen.clone(), source })?;
    let advertise = config.advertise.clone().unwrap_or_else(|| format!("{}://{local}", security.scheme()));
    let (devices_tx, devices_rx) = watch::channel(None);
    let (events_tx, mut events) = mpsc::channel::<OffloadEvent>(16_384);
    let service = OffloadService::new(devices_rx, events_tx, security.clone());
    let (invalid, payload_bytes) = (service.invalid.clone(), service.payload_bytes.clone());
    let metrics = Arc::new(ServerMetrics::new(invalid.clone(), payload_bytes.clone()));

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<OffloadServer<OffloadService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(qmec_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let server_stop = CancellationToken::new();
    if let Some(addr) = &config.metrics {
        qmec_proto::metrics::serve(addr, metrics.clone(), server_stop.clone())
            .await
            .map_err(|source| ServerAgentError::Bind { addr: addr.clone(), source })?;
    }

    // Offload streams need the token and decode at most one fragment's worth.
    let offload = InterceptedService::new(
        OffloadServer::new(service).max_decoding_message_size(qmec_security::limits::OFFLOAD_UP),
        security.check(),
    );
    let grpc = tokio::spawn(
        security
            .server_builder()?
            .max_concurrent_streams(Some(16_384))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(offload)
            .serve_with_incoming_shutdown(incoming(listener), server_stop.clone().cancelled_owned()),
    );

    let endpoint = security
        .endpoint(&config.controller, &qmec_security::certs::controller_name())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let (down_tx, mut down) = mpsc::channel(64);
    let (up, up_rx) = mpsc::channel(64);
    let session_stop = shutdown.child_token();
    let hello = pb::ServerHello { server: config.id as u32, endpoint: advertise, next_slot: 0, run_digest: 0 };
    let session = tokio::spawn(controller_session(endpoint, security.attach(), hello, down_tx, up_rx, session_stop.clone()));

    // The setup first.
    let setup = loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => None,
            message = down.recv() => message,
        };
        match message.and_then(|m| m.msg) {
            Some(server_down::Msg::Setup(setup)) => break validate::setup(&setup).map_err(ServerAgentError::Setup)?,
            Some(_) => continue,
            None => {
                server_stop.cancel();
                return Err(ServerAgentError::NoSetup);
            }
        }
    };
    let scenario = setup.scenario.clone();
    let mut engine = Engine::new(&scenario, config.id);
    let _ = devices_tx.send(Some(scenario.devices));
    let _ = up.send(pb::ServerUp { msg: Some(server_up::Msg::Report(engine.initial_report())) }).await;
    let marker_wait = Duration::from_secs_f64(setup.slot_wall_s);
    let mut results: Vec<Option<ResultsTx>> = vec![None; scenario.devices];
    let mut waiting: Option<(u64, Vec<f64>, tokio::time::Instant)> = None;
    let mut finishing: Option<(u64, tokio::time::Instant)> = None;

    loop {
        // A held allocation is computed once the slot before is reported.
        if let Some((slot, _, until)) = &waiting {
            let (slot, until) = (*slot, *until);
            if !engine.ready_for(slot) && tokio::time::Instant::now() >= until {
                send_report(&mut engine, &up, &metrics, true).await;
            }
            if engine.ready_for(slot)
                && let Some((slot, allocation, _)) = waiting.take()
            {
                compute(&mut engine, &scenario, slot, &allocation, &results, &config).await;
                send_report(&mut engine, &up, &metrics, false).await;
            }
        }
        if let Some((last, until)) = finishing {
            let drained = engine.ready_for(last + 1) && waiting.is_none();
            if drained || tokio::time::Instant::now() >= until {
                if !drained {
                    tracing::warn!(last, "finishing before every fragment of the last slot arrived");
                }
                break;
            }
        }
        let wake = waiting
            .as_ref()
            .map(|w| w.2)
            .into_iter()
            .chain(finishing.map(|f| f.1))
            .min()
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(wake) => {}
            message = down.recv() => match message.and_then(|m| m.msg) {
                Some(server_down::Msg::Allocation(allocation)) => {
                    match validate::allocation(&allocation, scenario.devices, scenario.server.cpu_hz) {
                        Ok(cpu_hz) => {
                            if let Some((slot, held, _)) = waiting.take() {
                                // A newer allocation supersedes: compute the older one now.
                                send_report(&mut engine, &up, &metrics, true).await;
                                compute(&mut engine, &scenario, slot, &held, &results, &config).await;
                                send_report(&mut engine, &up, &metrics, false).await;
                            }
                            waiting = Some((allocation.slot, cpu_hz, tokio::time::Instant::now() + marker_wait));
                        }
                        Err(invalid) => {
                            tracing::warn!(%invalid, "invalid allocation from the controller; slot skipped");
                        }
                    }
                }
                Some(server_down::Msg::Finish(finish)) => {
                    finishing = Some((finish.last_slot, tokio::time::Instant::now() + marker_wait * 4 + Duration::from_secs(2)));
                }
                Some(server_down::Msg::Setup(_)) => {}
                None => {
                    tracing::warn!("controller session gone");
                    break;
                }
            },
            event = events.recv() => match event {
                Some(OffloadEvent::Joined { device, tx }) => results[device] = Some(tx),
                Some(OffloadEvent::Fragment { device, fragment }) => {
                    engine.fragment(fragment.slot, qmec_model::task::Fragment { device, task: fragment.task, bits: fragment.bits });
                }
                Some(OffloadEvent::EndOfSlot { device, slot }) => {
                    engine.end_of_slot(device, slot);
                    send_report(&mut engine, &up, &metrics, false).await;
                }
                None => break,
            },
        }
    }

    let mut records = engine.records();
    records.invalid_messages = invalid.load(Ordering::Relaxed);
    records.payload_bytes = payload_bytes.load(Ordering::Relaxed);
    records.usage = qmec_proto::process::usage_since(started);
    drop(results);
    drop(up);
    session_stop.cancel();
    let _ = session.await;
    server_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), grpc).await;
    if let Some(path) = &config.records {
        let records_err = |message: String| ServerAgentError::Records { path: path.display().to_string(), message };
        let json = serde_json::to_string(&records).map_err(|e| records_err(e.to_string()))?;
        std::fs::write(path, json).map_err(|e| records_err(e.to_string()))?;
    }
    Ok(records)
}

/// Reports the last computed slot once it is complete (or `force`), and
/// shows it in the metrics.
async fn send_report(engine: &mut Engine, up: &mpsc::Sender<pb::ServerUp>, metrics: &ServerMetrics, force: bool) {
    if let Some(report) = engine.next_report(force) {
        metrics.update(engine.figures());
        let _ = up.send(pb::ServerUp { msg: Some(server_up::Msg::Report(report)) }).await;
    }
}

/// Computes one slot, burns real CPU if asked, and returns the results.
async fn compute(
    engine: &mut Engine,
    scenario: &qmec_model::Scenario,
    slot: u64,
    allocation: &[f64],
    results: &[Option<ResultsTx>],
    config: &ServerAgentConfig,
) {
    let burn_per_bit = config.burn_per_bit;
    let computed = engine.compute(slot, slot as f64 * scenario.slot_seconds, allocation);
    if config.result_delay_ms > 0.0 && slot >= config.result_delay_from {
        // Fault injection: a server that answers slowly.
        tokio::time::sleep(Duration::from_secs_f64(config.result_delay_ms / 1e3)).await;
    }
    if burn_per_bit > 0.0 && computed.bits > 0 {
        let iterations = (computed.bits as f64 * burn_per_bit) as u64;
        let _ = tokio::task::spawn_blocking(move || {
            let mut x = 0u64;
            for i in 0..iterations {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
            }
            x
        })
        .await;
    }
    for (device, result) in computed.results {
        if let Some(Some(tx)) = results.get(device) {
            let _ = tx.send(Ok(pb::OffloadDown { msg: Some(offload_down::Msg::Result(result)) })).await;
        }
    }
    let done = pb::OffloadDown { msg: Some(offload_down::Msg::ResultsDone(pb::ResultsDone { slot })) };
    for tx in results.iter().flatten() {
        let _ = tx.send(Ok(done)).await;
    }
}

/// The whole process: bind, run, and stop on Ctrl-C or SIGTERM.
pub async fn main(config: ServerAgentConfig) -> Result<ServerRecords, ServerAgentError> {
    let listener = bind(&config).await?;
    run(config, listener, qmec_proto::agent_process::shutdown_on_signal()).await
}
