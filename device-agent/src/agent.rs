//! A device-agent process: the channels shared by its agents, one
//! controller session for the devices that share a connection
//! ([`crate::session`]), one task per agent ([`crate::device_loop`]), the
//! metrics page, and one records file.
//!
//! The sessions, with their connections to the controller, run on a
//! thread of their own ([`SessionThread`]): the agents' uploads and
//! results keep the process's runtime busy, and a slot's announcement
//! answered there waits behind them; a thread that mostly sleeps is run
//! as soon as it wakes.

use crate::channels::Channels;
use crate::config::DeviceAgentConfig;
use crate::error::DeviceAgentError;
use crate::metrics::DeviceMetrics;
use crate::records::{DeviceRecords, ProcessRecords};
use crate::device_loop::SessionEnds;
use crate::session::{CoreCell, DeviceEnds};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Runs every agent of `config` until the run is over or `shutdown`, and
/// writes the records file.
pub async fn run(config: DeviceAgentConfig, shutdown: CancellationToken) -> Result<ProcessRecords, DeviceAgentError> {
    let started = Instant::now();
    let channels = Channels::new(&config)?;
    let metrics_stop = shutdown.child_token();
    let _stop_metrics = metrics_stop.clone().drop_guard();
    let metrics = match &config.metrics {
        Some(addr) => Some(serve_metrics(addr, metrics_stop).await?),
        None => None,
    };
    // A failing tc child stops every device: links the kernel was to shape
    // no longer follow the channel.
    let devices_stop = shutdown.child_token();
    let kernel_failure = channels.kernel_failure();
    if let Some(failed) = kernel_failure.clone() {
        tokio::spawn(stop_when_tc_fails(failed, devices_stop.clone()));
    }
    let shutdown = devices_stop;
    let session_stop = shutdown.child_token();
    let session_thread = SessionThread::start()?;
    let ProcessSessions { tasks: sessions, mut ends } = open_sessions(&channels, &config, &session_stop, &session_thread)?;
    let mut tasks = Vec::new();
    for &device in &config.devices {
        let controller = channels.get(&config.controller, &qmec_security::certs::controller_name(), device)?;
        let session = ends.remove(&device).ok_or_else(|| DeviceAgentError::Device { device, reason: "no controller session".into() })?;
        let (channels, shutdown, config, metrics) = (channels.clone(), shutdown.clone(), config.clone(), metrics.clone());
        tasks.push(tokio::spawn(async move {
            crate::device_loop::run(device, (controller, session), channels, &config, metrics.as_deref(), shutdown).await
        }));
    }
    let (mut records, mut first_error) = gather_records(tasks, &config.devices).await;
    session_stop.cancel();
    for session in sessions {
        let _ = session.await;
    }
    drop(session_thread);
    records.usage = qmec_proto::process::usage_since(started);
    records.link_measurements = channels.link_measurements();
    records.per_link_measurements = channels.per_link_measurements();
    if let Some(reason) = kernel_failure.and_then(|failed| failed.borrow().clone()) {
        first_error = Some(qmec_linkem::kernel::KernelError::Tc(reason).into());
    }
    if let Some(path) = &config.records {
        qmec_proto::agent_process::write_records(path, &records)?;
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(records),
    }
}

/// Cancels `stop` once the tc child reports a failure.
async fn stop_when_tc_fails(mut failed: tokio::sync::watch::Receiver<Option<String>>, stop: CancellationToken) {
    while failed.borrow_and_update().is_none() {
        if failed.changed().await.is_err() {
            return;
        }
    }
    stop.cancel();
}

/// Every device task's records, in `devices` order, and the first error
/// one of them ended with.
async fn gather_records(
    tasks: Vec<JoinHandle<Result<DeviceRecords, DeviceAgentError>>>,
    devices: &[usize],
) -> (ProcessRecords, Option<DeviceAgentError>) {
    let mut records = ProcessRecords::default();
    let mut first_error = None;
    for (task, &device) in tasks.into_iter().zip(devices) {
        match task.await {
            Ok(Ok(device_records)) => records.devices.push(device_records),
            Ok(Err(error)) => first_error = first_error.or(Some(error)),
            Err(join) => {
                first_error = first_error.or(Some(DeviceAgentError::Device { device, reason: join.to_string() }))
            }
        }
    }
    (records, first_error)
}

/// The controller sessions of a process: their tasks, and each device's
/// ends of its session.
struct ProcessSessions {
    tasks: Vec<JoinHandle<()>>,
    ends: HashMap<usize, SessionEnds>,
}

/// Spawns the controller sessions of the process's devices (one per group
/// that shares a connection: [`Channels::controller_sessions`]) on
/// `thread`, where their channels are made, so that their connections run
/// there too.
fn open_sessions(
    channels: &Channels,
    config: &DeviceAgentConfig,
    stop: &CancellationToken,
    thread: &SessionThread,
) -> Result<ProcessSessions, DeviceAgentError> {
    let _on_thread = thread.runtime.enter();
    let mut tasks = Vec::new();
    let mut ends = HashMap::new();
    for (channel, devices) in channels.controller_sessions(&config.controller, &config.devices)? {
        let (up, up_rx) = mpsc::unbounded_channel();
        let mut session_ends = BTreeMap::new();
        for device in devices {
            let (down_tx, down) = mpsc::unbounded_channel();
            let core = CoreCell::default();
            session_ends.insert(device, DeviceEnds { down: down_tx, core: core.clone() });
            ends.insert(device, SessionEnds { down, up: up.clone(), core });
        }
        let session = crate::session::run(channel, session_ends, (up.downgrade(), up_rx), stop.clone());
        tasks.push(thread.runtime.spawn(session));
    }
    Ok(ProcessSessions { tasks, ends })
}

/// A single-threaded runtime on a thread of its own, for the controller
/// sessions; it stops when this is dropped.
struct SessionThread {
    runtime: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl SessionThread {
    fn start() -> Result<SessionThread, DeviceAgentError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DeviceAgentError::SessionThread)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("controller-sessions".into())
            .spawn(move || runtime.block_on(async move { drop(stopped.await) }))
            .map_err(DeviceAgentError::SessionThread)?;
        Ok(SessionThread { runtime: handle, _stop: stop })
    }
}

/// Serves the process's metrics page until `stop`. Each device copies its
/// figures every slot only when they are served.
async fn serve_metrics(addr: &str, stop: CancellationToken) -> Result<Arc<DeviceMetrics>, DeviceAgentError> {
    let metrics = Arc::new(DeviceMetrics::default());
    qmec_proto::metrics::serve(addr, metrics.clone(), stop)
        .await
        .map_err(|source| DeviceAgentError::Metrics { addr: addr.to_string(), source })?;
    Ok(metrics)
}

/// The whole process: every agent of `config`, stopped on Ctrl-C or SIGTERM.
pub async fn main(config: DeviceAgentConfig) -> Result<ProcessRecords, DeviceAgentError> {
    run(config, qmec_proto::agent_process::shutdown_on_signal()).await
}
