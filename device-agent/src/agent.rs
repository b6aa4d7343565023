//! A device-agent process: one lazily connected channel to the controller
//! and one per server, shared by every agent of the process (each agent has
//! its own streams on them), one task per agent, and one records file.

use crate::config::DeviceAgentConfig;
use crate::device::Device;
use crate::metrics::DeviceMetrics;
use crate::records::{DeviceRecords, ProcessRecords};
use crate::uplink::{self, Downlink};
use qmec_proto::pb::{self, device_down, device_up};
use qmec_proto::validate;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use qmec_security::{Security, TokenAttach};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum DeviceAgentError {
    #[error("endpoint `{0}` is not a valid URI")]
    Endpoint(String),
    #[error("device {device}: {reason}")]
    Device { device: usize, reason: String },
    #[error("writing records {path}: {message}")]
    Records { path: String, message: String },
    #[error(transparent)]
    LinkProfile(#[from] qmec_linkem::ProfileError),
    #[error("security: {0}")]
    Security(#[from] qmec_security::SecurityError),
    #[error("metrics address {addr}: {source}")]
    Metrics { addr: String, source: std::io::Error },
}

/// A channel to a peer that adds the bearer token to every call.
pub type AgentChannel = InterceptedService<Channel, TokenAttach>;

/// The endpoint of agent `peer` at `uri` (TLS pinned to `peer` when on).
fn endpoint(security: &Security, uri: &str, peer: &str) -> Result<Endpoint, DeviceAgentError> {
    Ok(security.endpoint(uri, peer)?.connect_timeout(Duration::from_secs(3)).tcp_nodelay(true))
}

/// Userspace link emulation: the profile, and which endpoint is the
/// controller's (every other one is a server's).
#[derive(Debug)]
struct Emulation {
    profile: qmec_linkem::LinkProfile,
    controller: String,
    /// Distinct per process, so device processes draw different jitter.
    seed: u64,
}

/// A channel's key: the endpoint, and with TLS on the device it speaks for.
type ChannelKey = (String, Option<usize>);

/// Who the devices of a process speak as: without TLS one security setup
/// (the token) serves them all; with TLS each device has its certificate.
#[derive(Debug)]
enum Identities {
    Shared(Security),
    PerDevice(HashMap<usize, Security>),
}

impl Identities {
    /// Without TLS, or with one certificate for the whole process (`qmec
    /// certs --agents-per-process`), the devices share one identity; else
    /// each device loads its own.
    fn load(config: &DeviceAgentConfig) -> Result<Identities, DeviceAgentError> {
        if let Some(name) = process_certificate(config) {
            tracing::info!(certificate = %name, "the devices share this process's certificate and connections");
            return Ok(Identities::Shared(Security::load(&config.security, &name)?));
        }
        let load = |device| Security::load(&config.security, &qmec_security::certs::device_name(device));
        let first = config.devices.first().copied().unwrap_or(0);
        let security = load(first)?;
        if !security.tls() {
            tracing::info!("sessions are plaintext: no TLS folder was given");
            return Ok(Identities::Shared(security));
        }
        let mut each = HashMap::from([(first, security)]);
        for &device in config.devices.iter().skip(1) {
            each.insert(device, load(device)?);
        }
        tracing::info!(devices = each.len(), "each device speaks mutual TLS with its own certificate");
        Ok(Identities::PerDevice(each))
    }

    /// Device `device`'s security, and the device its channels are kept
    /// for (none: shared by the process).
    fn of(&self, device: usize) -> Result<(Security, Option<usize>), DeviceAgentError> {
        match self {
            Identities::Shared(security) => Ok((security.clone(), None)),
            Identities::PerDevice(each) => each
                .get(&device)
                .map(|security| (security.clone(), Some(device)))
                .ok_or_else(|| DeviceAgentError::Device { device, reason: "no certificate was loaded for it".into() }),
        }
    }
}

/// The name of a certificate in the TLS folder that names every device of
/// this process (`devices-A-B`, for the ids A…B in order), if there is one.
fn process_certificate(config: &DeviceAgentConfig) -> Option<String> {
    let dir = config.security.tls_dir.as_ref()?;
    let (&first, &last) = (config.devices.first()?, config.devices.last()?);
    let in_order = config.devices.iter().zip(first..).all(|(&id, expected)| id == expected);
    let name = qmec_security::certs::devices_name(&(first..last.checked_add(1)?));
    (in_order && last > first && qmec_security::certs::agent_paths(dir, &name).0.exists()).then_some(name)
}

/// Lazily connected channels, shared by the agents of a process: one per
/// endpoint, or with TLS and a certificate per device one per endpoint and
/// device, since a TLS connection carries one identity and each device
/// speaks as itself.
#[derive(Debug, Clone)]
struct Channels {
    map: Arc<Mutex<HashMap<ChannelKey, Channel>>>,
    emulation: Option<Arc<Emulation>>,
    identities: Arc<Identities>,
}

impl Channels {
    fn new(config: &DeviceAgentConfig) -> Result<Channels, DeviceAgentError> {
        let emulation = match &config.link_profile {
            Some(path) => {
                let profile = qmec_linkem::LinkProfile::load(path)?;
                let first = config.devices.first().copied().unwrap_or(0) as u64;
                let seed = profile.seed ^ first.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                Some(Arc::new(Emulation { profile, controller: config.controller.clone(), seed }))
            }
            None => None,
        };
        Ok(Channels { map: Arc::default(), emulation, identities: Arc::new(Identities::load(config)?) })
    }

    /// Device `device`'s channel to agent `peer` (a certificate name) at `uri`.
    fn get(&self, uri: &str, peer: &str, device: usize) -> Result<AgentChannel, DeviceAgentError> {
        let (security, owner) = self.identities.of(device)?;
        let mut map = self.map.lock().map_err(|_| DeviceAgentError::Endpoint(uri.to_string()))?;
        let key = (uri.to_string(), owner);
        if let Some(channel) = map.get(&key) {
            return Ok(InterceptedService::new(channel.clone(), security.attach()));
        }
        let channel = match &self.emulation {
            None => endpoint(&security, uri, peer)?.connect_lazy(),
            Some(emulation) => {
                let profile = &emulation.profile;
                let link = if uri == emulation.controller {
                    profile.device_to_controller()
                } else {
                    profile.device_to_server()
                };
                let seed = emulation.seed.wrapping_add(map.len() as u64);
                let connector = qmec_linkem::Connector::new(link, profile.retransmit, seed);
                endpoint(&security, uri, peer)?.connect_with_connector_lazy(connector)
            }
        };
        map.insert(key, channel.clone());
        Ok(InterceptedService::new(channel, security.attach()))
    }
}

/// Runs every agent of `config` until the run is over or `shutdown`, and
/// writes the records file.
pub async fn run(config: DeviceAgentConfig, shutdown: CancellationToken) -> Result<ProcessRecords, DeviceAgentError> {
    let started = Instant::now();
    let channels = Channels::new(&config)?;
    let metrics_stop = shutdown.child_token();
    let _stop_metrics = metrics_stop.clone().drop_guard();
    // Each device copies its figures every slot only when they are served.
    let metrics = match &config.metrics {
        Some(addr) => {
            let metrics = Arc::new(DeviceMetrics::default());
            qmec_proto::metrics::serve(addr, metrics.clone(), metrics_stop)
                .await
                .map_err(|source| DeviceAgentError::Metrics { addr: addr.clone(), source })?;
            Some(metrics)
        }
        None => None,
    };
    let mut tasks = Vec::new();
    for &device in &config.devices {
        let controller = channels.get(&config.controller, &qmec_security::certs::controller_name(), device)?;
        let (channels, shutdown, config, metrics) = (channels.clone(), shutdown.clone(), config.clone(), metrics.clone());
        tasks.push(tokio::spawn(async move { run_device(device, controller, channels, &config, metrics.as_deref(), shutdown).await }));
    }
    let mut records = ProcessRecords::default();
    let mut first_error = None;
    for (task, &device) in tasks.into_iter().zip(&config.devices) {
        match task.await {
            Ok(Ok(device_records)) => records.devices.push(device_records),
            Ok(Err(error)) => first_error = first_error.or(Some(error)),
            Err(join) => {
                first_error = first_error.or(Some(DeviceAgentError::Device { device, reason: join.to_string() }))
            }
        }
    }
    records.usage = qmec_proto::process::usage_since(started);
    if let Some(path) = &config.records {
        let records_err = |message: String| DeviceAgentError::Records { path: path.display().to_string(), message };
        let json = serde_json::to_string(&records).map_err(|e| records_err(e.to_string()))?;
        std::fs::write(path, json).map_err(|e| records_err(e.to_string()))?;
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(records),
    }
}

/// The whole process: every agent of `config`, stopped on Ctrl-C or SIGTERM.
pub async fn main(config: DeviceAgentConfig) -> Result<ProcessRecords, DeviceAgentError> {
    run(config, qmec_proto::agent_process::shutdown_on_signal()).await
}

/// Half the smallest of a few health-check round trips to the controller,
/// over the same (possibly emulated) link the session uses: an estimate of
/// how late slot announcements reach this agent, NTP-style, with no clock
/// shared between machines. Zero if the controller does not answer.
async fn one_way_delay(controller: &AgentChannel) -> Duration {
    const PINGS: usize = 3;
    let mut client = tonic_health::pb::health_client::HealthClient::new(controller.clone());
    let mut best: Option<Duration> = None;
    for _ in 0..PINGS {
        let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest { service: String::new() });
        request.set_timeout(Duration::from_secs(2));
        let sent = Instant::now();
        if client.check(request).await.is_ok() {
            let rtt = sent.elapsed();
            best = Some(best.map_or(rtt, |b| b.min(rtt)));
        }
    }
    best.map_or(Duration::ZERO, |rtt| rtt / 2)
}

async fn run_device(
    id: usize,
    controller: AgentChannel,
    channels: Channels,
    config: &DeviceAgentConfig,
    metrics: Option<&DeviceMetrics>,
    shutdown: CancellationToken,
) -> Result<DeviceRecords, DeviceAgentError> {
    let fail = |reason: String| DeviceAgentError::Device { device: id, reason };
    let (down_tx, mut down) = mpsc::channel(64);
    let (up, up_rx) = mpsc::channel(64);
    let session_stop = shutdown.child_token();
    let probe = controller.clone();
    let session = tokio::spawn(crate::session::run(controller, id, down_tx, up_rx, session_stop.clone()));

    // Setup, then the offload streams, then ready.
    let setup = loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => None,
            message = down.recv() => message,
        };
        match message.and_then(|m| m.msg) {
            Some(device_down::Msg::Setup(setup)) => break validate::setup(&setup).map_err(|e| fail(e.to_string()))?,
            Some(_) => continue,
            None => return Err(fail("the controller session ended before the run started".into())),
        }
    };
    let (downlink_tx, mut downlink) = mpsc::channel::<Downlink>(4096);
    let mut streams = Vec::new();
    let lost = uplink::lost_flags(setup.server_endpoints.len());
    for (server, uri) in setup.server_endpoints.iter().enumerate() {
        let channel = channels.get(uri, &qmec_security::certs::server_name(server), id)?;
        let stream = uplink::open(channel, id, server, downlink_tx.clone(), lost.clone(), &shutdown).await;
        if stream.is_none() {
            return Err(fail(format!("could not open the offload stream to server {server} at {uri}")));
        }
        streams.push(stream);
    }
    drop(downlink_tx);
    let (batches, batches_rx) = mpsc::channel(8);
    let sender = tokio::spawn(uplink::sender(streams, batches_rx, config.payload_scale, lost.clone()));
    let mut device = Device::new(&setup, id, config.tx_fraction);
    // The controller is up once it has sent the setup.
    let announce_delay = one_way_delay(&probe).await;
    tracing::info!(device = id, ?announce_delay, "one-way delay from the controller");
    device.set_announce_delay(announce_delay);
    device.share_lost_flags(lost);
    let _ = up.send(pb::DeviceUp { msg: Some(device_up::Msg::Ready(pb::Ready {})) }).await;

    let slot_wall = Duration::from_secs_f64(setup.slot_wall_s);
    let mut finishing: Option<(u64, tokio::time::Instant)> = None;
    loop {
        if let Some((last, until)) = finishing
            && (device.drained(last) || tokio::time::Instant::now() >= until)
        {
            if !device.drained(last) {
                tracing::warn!(device = id, last, "finishing before every server's last results arrived");
            }
            break;
        }
        if finishing.is_none() {
            device.tick();
        }
        // Wake at least every slot, to notice a silent server.
        let wake = finishing.map_or_else(|| tokio::time::Instant::now() + slot_wall, |f| f.1);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(wake) => {}
            message = down.recv(), if finishing.is_none() => match message.and_then(|m| m.msg) {
                Some(device_down::Msg::SlotStart(start)) => {
                    // A slot still open without its decision ends locally
                    // (its batch carries the end-of-slot markers), unless it
                    // is the announced one, begun and reported early.
                    if !device.reported_early(start.slot)
                        && let Some(batch) = device.end_slot(None)
                    {
                        let _ = batches.send(batch).await;
                    }
                    if let Some(report) = device.start_slot(start.slot) {
                        send_report(&up, report, config).await;
                    }
                    if let Some(metrics) = metrics {
                        metrics.update(id, device.figures());
                    }
                }
                Some(device_down::Msg::Decision(decision)) => match validate::decision(&decision, setup.scenario.servers) {
                    Ok(decision) => {
                        device.decide(&decision, &batches).await;
                        if config.early_reports
                            && let Some(report) = device.report_early(setup.slots)
                        {
                            send_report(&up, report, config).await;
                        }
                    }
                    Err(invalid) => tracing::warn!(device = id, %invalid, "invalid decision; the slot is computed locally"),
                },
                Some(device_down::Msg::Finish(finish)) => {
                    if let Some(batch) = device.end_slot(None) {
                        let _ = batches.send(batch).await;
                    }
                    finishing = Some((finish.last_slot, tokio::time::Instant::now() + slot_wall * 10 + Duration::from_secs(3)));
                }
                Some(device_down::Msg::Setup(_)) => {}
                None => {
                    // The session ended without a finish: the controller is gone.
                    if let Some(batch) = device.end_slot(None) {
                        let _ = batches.send(batch).await;
                    }
                    finishing = Some((u64::MAX, tokio::time::Instant::now() + slot_wall * 2));
                }
            },
            item = downlink.recv() => match item {
                // Servers close their streams when the run ends.
                Some(Downlink::Lost { .. }) if finishing.is_some() => {}
                Some(item) => device.downlink(item),
                None => break,
            },
        }
    }
    drop(batches);
    let sent = sender.await.unwrap_or_default();
    // Results that raced the last marker.
    while let Ok(item) = downlink.try_recv() {
        if !matches!(item, Downlink::Lost { .. }) {
            device.downlink(item);
        }
    }
    drop(up);
    session_stop.cancel();
    let _ = session.await;
    if let Some(metrics) = metrics {
        metrics.update(id, device.figures());
    }
    let mut records = device.records(sent.payload_bytes);
    records.unsent_bits_by_server = sent.unsent_bits;
    Ok(records)
}

/// Sends a report to the controller, or, under the report-delay fault,
/// holds it for the configured time first (without holding up the agent).
async fn send_report(up: &mpsc::Sender<pb::DeviceUp>, report: pb::DeviceReport, config: &DeviceAgentConfig) {
    let message = pb::DeviceUp { msg: Some(device_up::Msg::Report(report.clone())) };
    if config.report_delay_ms > 0.0 && report.slot >= config.report_delay_from {
        let (up, delay) = (up.clone(), Duration::from_secs_f64(config.report_delay_ms / 1e3));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = up.send(message).await;
        });
    } else {
        let _ = up.send(message).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: crate::config::Args,
    }

    fn config(devices: &str, tls_dir: &std::path::Path) -> DeviceAgentConfig {
        let tls_dir = tls_dir.to_str().unwrap();
        Command::try_parse_from(["device", "--devices", devices, "--tls-dir", tls_dir]).unwrap().args.into_config().unwrap()
    }

    #[test]
    fn a_process_uses_its_own_certificate_only_when_one_names_all_its_devices() {
        let dir = tempfile::tempdir().unwrap();
        qmec_security::generate(dir.path(), 5, 1, 2, &[]).unwrap();
        assert_eq!(process_certificate(&config("0..2", dir.path())).as_deref(), Some("devices-0-1"));
        assert_eq!(process_certificate(&config("2..4", dir.path())).as_deref(), Some("devices-2-3"));
        // No such certificate, ids out of order, a single device.
        for devices in ["1..3", "3,2", "4"] {
            assert_eq!(process_certificate(&config(devices, dir.path())), None, "{devices}");
        }
        assert!(matches!(Identities::load(&config("0..2", dir.path())).unwrap(), Identities::Shared(_)));
        assert!(matches!(Identities::load(&config("1..3", dir.path())).unwrap(), Identities::PerDevice(_)));
    }
}
