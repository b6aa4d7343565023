//! Wiring of one server agent: the `Offload` service (with health and
//! reflection) on its listener, the controller session with jittered
//! reconnects, and the loop that carries out what the [`ServerCore`]
//! decides. All decisions live in the core so that the virtual runtime
//! shares them; this is only the I/O. It ends when the core is finished
//! (the run is over, the controller is gone, or shutdown), and writes its
//! records.

use crate::config::ServerAgentConfig;
use crate::core::{ServerCommand, ServerCore, ServerEvent, ServerFaults};
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The deadline on connecting to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

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
    #[error(transparent)]
    Records(#[from] qmec_proto::agent_process::RecordsError),
    #[error("writing stdout: {0}")]
    Stdout(std::io::Error),
    #[error("security: {0}")]
    Security(#[from] qmec_security::SecurityError),
}

/// Binds the listen address and prints the listening line on stdout.
pub async fn bind(config: &ServerAgentConfig) -> Result<TcpListener, ServerAgentError> {
    let bind_err = |source| ServerAgentError::Bind { addr: config.listen.clone(), source };
    let listener = TcpListener::bind(&config.listen).await.map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    qmec_proto::agent_process::announce(format_args!("{}{addr}", qmec_proto::LISTENING_PREFIX)).map_err(ServerAgentError::Stdout)?;
    Ok(listener)
}

/// What a server's session stream starts with and remembers: a new stream
/// (the controller may have restarted and know nothing) says in its hello
/// the run it belongs to and the first slot this server has no allocation
/// for, and repeats the latest report, from which the controller rebuilds Z.
#[derive(Debug)]
pub struct ServerMemory {
    hello: pb::ServerHello,
    last_report: Option<pb::ServerUp>,
    /// The run's length in slots, once its setup came (0 before).
    slots: u64,
}

impl ServerMemory {
    /// The memory of a server that says `hello` first.
    pub fn new(hello: pb::ServerHello) -> ServerMemory {
        ServerMemory { hello, last_report: None, slots: 0 }
    }
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
                self.slots = setup.slots;
            }
            _ => {}
        }
    }

    fn sent(&mut self, message: &pb::ServerUp) {
        self.last_report = Some(message.clone());
    }

    fn is_finish(&self, message: &pb::ServerDown) -> bool {
        matches!(message.msg, Some(server_down::Msg::Finish(_)))
    }

    fn run_over(&self) -> bool {
        self.slots > 0 && self.hello.next_slot >= self.slots
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
    let memory = ServerMemory::new(hello);
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
    // tokio's clock, so that tests with a paused clock drive the core's time.
    let started = tokio::time::Instant::now();
    let security = Security::load(&config.security, &qmec_security::certs::server_name(config.id))?;
    let local = listener.local_addr().map_err(|source| ServerAgentError::Bind { addr: config.listen.clone(), source })?;
    let advertise = config.advertise.clone().unwrap_or_else(|| format!("{}://{local}", security.scheme()));
    let mut grpc = Grpc::serve(&config, listener, &security).await?;
    let mut controller = Controller::connect(&config, &security, advertise, &shutdown)?;

    let setup = match await_setup(&mut controller.down, &shutdown).await {
        Ok(setup) => setup,
        Err(error) => {
            grpc.stop.cancel();
            return Err(error);
        }
    };
    let _ = grpc.devices.send(Some(setup.scenario.devices));
    let core = ServerCore::new(&setup, config.id, faults(&config));
    let mut outputs = Outputs {
        up: controller.up,
        results: vec![None; setup.scenario.devices],
        metrics: grpc.metrics.clone(),
        burn_per_bit: config.burn_per_bit,
    };
    let core = drive(core, started, &mut controller.down, &mut grpc.events, &mut outputs, &shutdown).await;

    let mut records = core.records();
    records.invalid_messages = grpc.invalid.load(Ordering::Relaxed);
    records.payload_bytes = grpc.payload_bytes.load(Ordering::Relaxed);
    records.usage = qmec_proto::process::usage_since(started.into_std());
    // Closing the result streams and the reports lets the devices and the
    // session see the end before the servers go.
    drop(outputs);
    controller.stop.cancel();
    let _ = controller.session.await;
    grpc.stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), grpc.task).await;
    if let Some(path) = &config.records {
        qmec_proto::agent_process::write_records(path, &records)?;
    }
    Ok(records)
}

/// The `slow:` fault as the core takes it.
fn faults(config: &ServerAgentConfig) -> ServerFaults {
    // The config refuses negative or non-finite delays; a huge one saturates.
    let result_delay = Duration::try_from_secs_f64(config.result_delay_ms / 1e3).unwrap_or(Duration::MAX);
    ServerFaults { result_delay, result_delay_from: config.result_delay_from }
}

/// The agent's gRPC side: the `Offload` service (with health, reflection
/// and metrics) and what it hands the loop.
struct Grpc {
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    stop: CancellationToken,
    /// Tells the service how many devices to admit, once the setup is in.
    devices: watch::Sender<Option<usize>>,
    events: mpsc::Receiver<OffloadEvent>,
    invalid: Arc<AtomicU64>,
    payload_bytes: Arc<AtomicU64>,
    metrics: Arc<ServerMetrics>,
}

impl Grpc {
    async fn serve(config: &ServerAgentConfig, listener: TcpListener, security: &Security) -> Result<Grpc, ServerAgentError> {
        let (devices, devices_rx) = watch::channel(None);
        let (events_tx, events) = mpsc::channel::<OffloadEvent>(16_384);
        let service = OffloadService::new(devices_rx, events_tx, security.clone());
        let (invalid, payload_bytes) = (service.invalid.clone(), service.payload_bytes.clone());
        let metrics = Arc::new(ServerMetrics::new(invalid.clone(), payload_bytes.clone()));

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter.set_serving::<OffloadServer<OffloadService>>().await;
        let reflection = qmec_proto::reflection(&[<OffloadServer<OffloadService> as tonic::server::NamedService>::NAME])?;
        let stop = CancellationToken::new();
        if let Some(addr) = &config.metrics {
            qmec_proto::metrics::serve(addr, metrics.clone(), stop.clone())
                .await
                .map_err(|source| ServerAgentError::Bind { addr: addr.clone(), source })?;
        }
        // Offload streams need the token and decode at most one fragment's worth.
        let offload = InterceptedService::new(
            OffloadServer::new(service).max_decoding_message_size(qmec_security::limits::OFFLOAD_UP),
            security.check(),
        );
        let task = tokio::spawn(
            security
                .server_builder()?
                .max_concurrent_streams(Some(16_384))
                .add_service(health_service)
                .add_service(reflection)
                .add_service(offload)
                .serve_with_incoming_shutdown(incoming(listener), stop.clone().cancelled_owned()),
        );
        Ok(Grpc { task, stop, devices, events, invalid, payload_bytes, metrics })
    }
}

/// The controller session task and the loop's ends of it.
struct Controller {
    session: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
    down: mpsc::Receiver<pb::ServerDown>,
    up: mpsc::Sender<pb::ServerUp>,
}

impl Controller {
    fn connect(
        config: &ServerAgentConfig,
        security: &Security,
        advertise: String,
        shutdown: &CancellationToken,
    ) -> Result<Controller, ServerAgentError> {
        let endpoint = security
            .endpoint(&config.controller, &qmec_security::certs::controller_name())?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        let (down_tx, down) = mpsc::channel(64);
        let (up, up_rx) = mpsc::channel(64);
        let stop = shutdown.child_token();
        let hello = pb::ServerHello { server: config.id as u32, endpoint: advertise, next_slot: 0, run_digest: 0 };
        let session = tokio::spawn(controller_session(endpoint, security.attach(), hello, down_tx, up_rx, stop.clone()));
        Ok(Controller { session, stop, down, up })
    }
}

/// Waits for the controller's setup; anything before it is ignored.
async fn await_setup(
    down: &mut mpsc::Receiver<pb::ServerDown>,
    shutdown: &CancellationToken,
) -> Result<validate::Setup, ServerAgentError> {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => None,
            message = down.recv() => message,
        };
        match message.map(|m| m.msg) {
            Some(Some(server_down::Msg::Setup(setup))) => return validate::setup(&setup).map_err(ServerAgentError::Setup),
            Some(_) => continue,
            None => return Err(ServerAgentError::NoSetup),
        }
    }
}

/// The event loop: turns what arrives into events for the core, carries
/// out its commands, and ticks it when it asks; returns it once finished.
async fn drive(
    mut core: ServerCore,
    started: tokio::time::Instant,
    down: &mut mpsc::Receiver<pb::ServerDown>,
    events: &mut mpsc::Receiver<OffloadEvent>,
    outputs: &mut Outputs,
    shutdown: &CancellationToken,
) -> ServerCore {
    let first = core.start(started.elapsed());
    outputs.carry_out(&core, first).await;
    while !core.finished() {
        let wake = core.next_wake().and_then(|at| started.checked_add(at));
        let event = tokio::select! {
            () = shutdown.cancelled() => ServerEvent::Shutdown,
            () = sleep_until(wake) => ServerEvent::Tick,
            message = down.recv() => match message {
                None => ServerEvent::ControllerGone,
                Some(message) => match from_controller(message) {
                    Some(event) => event,
                    None => continue,
                },
            },
            event = events.recv() => match event {
                Some(OffloadEvent::Joined { device, tx }) => {
                    outputs.join(device, tx);
                    continue;
                }
                Some(OffloadEvent::Fragment { device, fragment }) => ServerEvent::Fragment { device, fragment },
                Some(OffloadEvent::EndOfSlot { device, slot }) => ServerEvent::EndOfSlot { device, slot },
                // The service is gone with the gRPC server: nothing more can arrive.
                None => ServerEvent::Shutdown,
            },
        };
        let commands = core.handle(started.elapsed(), event);
        outputs.carry_out(&core, commands).await;
    }
    core
}

/// The core's event for a message from the controller; a repeated setup
/// (a new session stream) changes nothing.
fn from_controller(message: pb::ServerDown) -> Option<ServerEvent> {
    match message.msg? {
        server_down::Msg::Allocation(allocation) => Some(ServerEvent::Allocation(allocation)),
        server_down::Msg::Finish(finish) => Some(ServerEvent::Finish(finish)),
        server_down::Msg::Setup(_) => None,
    }
}

/// Sleeps until `wake`, or for ever when there is nothing to wake for.
async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(wake) => tokio::time::sleep_until(wake).await,
        None => std::future::pending().await,
    }
}

/// Where the core's commands go.
struct Outputs {
    up: mpsc::Sender<pb::ServerUp>,
    /// Each device's offload stream, once it has joined.
    results: Vec<Option<ResultsTx>>,
    metrics: Arc<ServerMetrics>,
    burn_per_bit: f64,
}

impl Outputs {
    /// A device's offload stream opened (again): its results go there now.
    fn join(&mut self, device: usize, tx: ResultsTx) {
        if let Some(slot) = self.results.get_mut(device) {
            *slot = Some(tx);
        }
    }

    async fn carry_out(&mut self, core: &ServerCore, commands: Vec<ServerCommand>) {
        for command in commands {
            match command {
                ServerCommand::Report(report) => {
                    self.metrics.update(core.figures());
                    let _ = self.up.send(pb::ServerUp { msg: Some(server_up::Msg::Report(report)) }).await;
                }
                ServerCommand::Result { device, result } => {
                    if let Some(Some(tx)) = self.results.get(device) {
                        let _ = tx.send(Ok(pb::OffloadDown { msg: Some(offload_down::Msg::Result(result)) })).await;
                    }
                }
                ServerCommand::ResultsDone { slot } => {
                    let done = pb::OffloadDown { msg: Some(offload_down::Msg::ResultsDone(pb::ResultsDone { slot })) };
                    for tx in self.results.iter().flatten() {
                        let _ = tx.send(Ok(done)).await;
                    }
                }
                ServerCommand::Burn { bits } => self.burn(bits).await,
            }
        }
    }

    /// Burns real CPU for `bits` computed, if asked to; awaited, so that
    /// the results the core sends next do not overtake the work they stand for.
    async fn burn(&self, bits: u64) {
        if self.burn_per_bit <= 0.0 {
            return;
        }
        let iterations = (bits as f64 * self.burn_per_bit) as u64;
        let _ = tokio::task::spawn_blocking(move || {
            let mut x = 0u64;
            for i in 0..iterations {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
            }
            x
        })
        .await;
    }
}

/// The whole process: bind, run, and stop on Ctrl-C or SIGTERM.
pub async fn main(config: ServerAgentConfig) -> Result<ServerRecords, ServerAgentError> {
    let listener = bind(&config).await?;
    run(config, listener, qmec_proto::agent_process::shutdown_on_signal()).await
}
