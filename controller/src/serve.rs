//! Wires one controller process: the `Controller` service with gRPC health
//! and reflection on the listener, the metrics endpoint, the slot loop, and
//! a graceful shutdown: when the run ends or `shutdown` fires, the loop
//! finishes the agents, the server stops accepting and drains, and the
//! records are written.

use crate::config::ControllerConfig;
use crate::metrics::Metrics;
use crate::records::{ControllerRecords, SlotJournal};
use crate::sessions::{ReportLimit, Sessions};
use crate::core::{CoreSettings, LoopError};
use crate::slot_loop::{self, LoopSettings, Policies};
use qmec_model::{Policy, Scenario};
use qmec_proto::pb::controller_server::ControllerServer;
use qmec_security::Security;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("scenario: {0}")]
    Scenario(#[from] qmec_model::ScenarioError),
    /// Transparent: the catalog's message names the policy, and a prefix
    /// that repeated it made `{:#}` print the reason twice.
    #[error(transparent)]
    Policy(#[from] qmec_catalog::CatalogError),
    #[error(transparent)]
    External(#[from] crate::external::ExternalError),
    /// The reason is part of the message, not a `source`, so that it is
    /// printed once however the error is shown.
    #[error("--external-fallback `{name}`: {reason}")]
    Fallback { name: String, reason: Box<qmec_catalog::CatalogError> },
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Loop(#[from] LoopError),
    #[error(transparent)]
    Records(#[from] qmec_proto::agent_process::RecordsError),
    #[error("writing stdout: {0}")]
    Stdout(std::io::Error),
    #[error("security: {0}")]
    Security(#[from] qmec_security::SecurityError),
}

/// The scenario with the config's overrides applied and validated.
pub fn resolve_scenario(config: &ControllerConfig) -> Result<Scenario, ControllerError> {
    let mut scenario = Scenario::load(&config.scenario)?;
    if let Some(devices) = config.devices {
        scenario.devices = devices;
    }
    if let Some(servers) = config.servers {
        scenario.servers = servers;
    }
    scenario.validate()?;
    Ok(scenario)
}

/// HTTP/2 streams per connection: a device process multiplexes up to
/// thousands of agent sessions over one connection.
pub const MAX_STREAMS: u32 = 16_384;

/// Accepted connections of `listener` with `TCP_NODELAY` set. tonic's
/// `Server::tcp_nodelay` applies only when tonic binds the address itself and
/// is ignored by `serve_with_incoming`; without it, Nagle's algorithm holds a
/// small frame (a slot announcement, a decision) until the peer's delayed
/// ACK, tens of milliseconds later, and reports miss their deadline.
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Runs one controller on `listener` until the run is over or `shutdown`.
pub async fn run(
    config: ControllerConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<ControllerRecords, ControllerError> {
    let started = Instant::now();
    let security = Security::load(&config.security, &qmec_security::certs::controller_name())?;
    let scenario = resolve_scenario(&config)?;
    let policies = build_policies(&config, &scenario)?;
    let metrics = Arc::new(Metrics::default());
    let (devices, servers) = (scenario.devices, scenario.servers);
    let core = CoreSettings {
        scenario,
        seed: config.seed,
        slots: config.slots,
        slot_wall: config.slot_wall(),
        report_deadline: config.report_deadline,
        join_timeout: Duration::from_secs_f64(config.join_timeout_s),
    };
    let run_digest = qmec_proto::validate::run_digest(&core.setup());
    let settings = LoopSettings { core, journal: config.records.as_deref().map(SlotJournal::path) };
    // Room for every device's report of a slot at once, and then some.
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(4 * (devices + servers) + 64);
    let shape = (devices, servers, config.slots, run_digest);
    let report_limit = ReportLimit::default();
    let sessions = Sessions::new(shape, (events_tx, report_limit.clone()), metrics.clone(), security.clone());
    let server_stop = CancellationToken::new();
    let grpc = tokio::spawn(grpc_server(sessions, security.clone(), listener, server_stop.clone()).await?);
    if let Some(addr) = &config.metrics {
        qmec_proto::metrics::serve(addr, metrics.clone(), server_stop.clone())
            .await
            .map_err(|source| ControllerError::Bind { addr: addr.clone(), source })?;
    }

    let outcome = slot_loop::run(settings, policies, (events_rx, report_limit), metrics, shutdown).await;
    server_stop.cancel();
    match tokio::time::timeout(Duration::from_secs(5), grpc).await {
        Ok(Ok(Err(error))) => tracing::warn!(%error, "gRPC server ended with an error"),
        Ok(_) => {}
        Err(_) => tracing::warn!("gRPC server did not drain within 5 s"),
    }
    let mut records = outcome?;
    records.usage = qmec_proto::process::usage_since(started);
    if let Some(path) = &config.records {
        write_records(path, &mut records)?;
    }
    Ok(records)
}

/// The run's policy and, for an external one, its fallback (a built-in,
/// frozen: it decides only the slots the service misses).
fn build_policies(config: &ControllerConfig, scenario: &Scenario) -> Result<Policies, ControllerError> {
    let Some(address) = crate::external::address(&config.policy) else {
        return Ok(Policies { decides: build_policy(config, scenario)?, fallback: None });
    };
    let name = config.external_fallback.clone();
    let fallback = qmec_catalog::build(&qmec_catalog::PolicySpec::named(&name), scenario, config.seed)
        .map_err(|reason| ControllerError::Fallback { name, reason: Box::new(reason) })?;
    let external = crate::external::ExternalPolicy::connect(address, config.external_deadline(), scenario)?;
    Ok(Policies { decides: Box::new(external), fallback: Some(fallback) })
}

/// The run's policy; a learning one learns on a worker thread, since the
/// slot loop must never wait on learning.
fn build_policy(config: &ControllerConfig, scenario: &Scenario) -> Result<Box<dyn Policy>, ControllerError> {
    let spec = qmec_catalog::PolicySpec { name: config.policy.clone(), model: config.model.clone(), online: None };
    let spec = if config.online {
        let checkpoints = config.records.as_deref().and_then(std::path::Path::parent).map(std::path::Path::to_path_buf);
        spec.learning(qmec_catalog::OnlineSpec { execution: qmec_catalog::Execution::Thread, learn: true, checkpoints })
    } else {
        spec
    };
    Ok(qmec_catalog::build(&spec, scenario, config.seed)?)
}

/// The gRPC server on `listener` until `stop`: the sessions (which need the
/// token and decode at most `CONTROL_UP` bytes per message), and health and
/// reflection, which stay open for probes.
pub(crate) async fn grpc_server(
    sessions: Sessions,
    security: Security,
    listener: TcpListener,
    stop: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), tonic::transport::Error>>, ControllerError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ControllerServer<Sessions>>().await;
    let reflection = qmec_proto::reflection(&[<ControllerServer<Sessions> as tonic::server::NamedService>::NAME])?;
    let controller = InterceptedService::new(
        ControllerServer::new(sessions).max_decoding_message_size(qmec_security::limits::CONTROL_UP),
        security.check(),
    );
    Ok(security
        .server_builder()?
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(MAX_STREAMS))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(controller)
        .serve_with_incoming_shutdown(incoming(listener), stop.cancelled_owned()))
}

/// Writes the records file; a controller that picked the run up from a
/// killed one records every slot from the journal.
fn write_records(path: &std::path::Path, records: &mut ControllerRecords) -> Result<(), ControllerError> {
    if records.first_slot > 0 {
        match SlotJournal::read_beside(path) {
            Ok(slots) => records.slots = slots,
            Err(error) => tracing::warn!(%error, "the slot journal could not be read; recording this controller's slots only"),
        }
    }
    Ok(qmec_proto::agent_process::write_records(path, records)?)
}

/// Binds the configured address and prints the listening line on stdout.
pub async fn bind(config: &ControllerConfig) -> Result<TcpListener, ControllerError> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ControllerError::Bind { addr: config.listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| ControllerError::Bind { addr: config.listen.clone(), source })?;
    qmec_proto::agent_process::announce(format_args!("{}{addr}", qmec_proto::LISTENING_PREFIX)).map_err(ControllerError::Stdout)?;
    Ok(listener)
}

/// The whole process: bind, run, and stop on Ctrl-C or SIGTERM.
pub async fn main(config: ControllerConfig) -> Result<ControllerRecords, ControllerError> {
    let listener = bind(&config).await?;
    run(config, listener, qmec_proto::agent_process::shutdown_on_signal()).await
}
