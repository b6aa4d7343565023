//! The channels a device-agent process dials: one lazily connected channel
//! per endpoint, shared by every agent of the process (each agent opens its
//! own streams on it), or with TLS and a certificate per device one per
//! endpoint and device. Below the session and the uplink, which only take
//! an [`AgentChannel`].

use crate::config::DeviceAgentConfig;
use crate::error::DeviceAgentError;
use qmec_security::{Security, TokenAttach};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

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
    /// Every emulated link dialled, by name, for its fidelity figures.
    connectors: Mutex<Vec<NamedConnector>>,
}

#[derive(Debug)]
struct NamedConnector {
    name: &'static str,
    connector: qmec_linkem::Connector,
}

/// A channel's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChannelKey {
    endpoint: String,
    /// With a certificate per device, the device it speaks for.
    owner: Option<usize>,
}

/// Who a device speaks as, and the device its channels are kept for
/// (none: shared by the process).
#[derive(Debug)]
struct Identity {
    security: Security,
    owner: Option<usize>,
}

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

    /// Device `device`'s identity.
    fn of(&self, device: usize) -> Result<Identity, DeviceAgentError> {
        match self {
            Identities::Shared(security) => Ok(Identity { security: security.clone(), owner: None }),
            Identities::PerDevice(each) => each
                .get(&device)
                .map(|security| Identity { security: security.clone(), owner: Some(device) })
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
pub struct Channels {
    map: Arc<Mutex<HashMap<ChannelKey, Channel>>>,
    emulation: Option<Arc<Emulation>>,
    identities: Arc<Identities>,
}

impl Channels {
    pub fn new(config: &DeviceAgentConfig) -> Result<Channels, DeviceAgentError> {
        let emulation = match &config.link_profile {
            Some(path) => {
                let profile = qmec_linkem::LinkProfile::load(path)?;
                let first = config.devices.first().copied().unwrap_or(0) as u64;
                let seed = profile.seed ^ first.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                Some(Arc::new(Emulation { profile, controller: config.controller.clone(), seed, connectors: Mutex::default() }))
            }
            None => None,
        };
        Ok(Channels { map: Arc::default(), emulation, identities: Arc::new(Identities::load(config)?) })
    }

    /// Device `device`'s channel to agent `peer` (a certificate name) at `uri`.
    pub fn get(&self, uri: &str, peer: &str, device: usize) -> Result<AgentChannel, DeviceAgentError> {
        let Identity { security, owner } = self.identities.of(device)?;
        let mut map = self.map.lock().map_err(|_| DeviceAgentError::Endpoint(uri.to_string()))?;
        let key = ChannelKey { endpoint: uri.to_string(), owner };
        if let Some(channel) = map.get(&key) {
            return Ok(InterceptedService::new(channel.clone(), security.attach()));
        }
        let channel = match &self.emulation {
            None => endpoint(&security, uri, peer)?.connect_lazy(),
            Some(emulation) => {
                let profile = &emulation.profile;
                let (name, path): (_, fn(&qmec_linkem::LinkProfile) -> qmec_linkem::Link) = if uri == emulation.controller {
                    (qmec_linkem::fidelity::CONTROLLER_LINK, qmec_linkem::LinkProfile::device_to_controller)
                } else {
                    (qmec_linkem::fidelity::SERVER_LINK, qmec_linkem::LinkProfile::device_to_server)
                };
                let seed = emulation.seed.wrapping_add(map.len() as u64);
                // The schedule's times count from the agent's start: the
                // testbed starts every agent together with the run.
                let connector =
                    qmec_linkem::Connector::scheduled(path(profile), profile.timeline(path), profile.retransmit, seed);
                if let Ok(mut connectors) = emulation.connectors.lock() {
                    connectors.push(NamedConnector { name, connector: connector.clone() });
                }
                endpoint(&security, uri, peer)?.connect_with_connector_lazy(connector)
            }
        };
        map.insert(key, channel.clone());
        Ok(InterceptedService::new(channel, security.attach()))
    }

    /// What the emulated links achieved so far, one entry per link kind
    /// and direction (every connection of the kind summed); none without
    /// emulation.
    pub fn link_measurements(&self) -> Vec<qmec_linkem::fidelity::LinkMeasurement> {
        let Some(emulation) = &self.emulation else { return Vec::new() };
        let connectors = emulation.connectors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        qmec_linkem::fidelity::merge_by_link(connectors.iter().flat_map(|named| named.connector.measurements(named.name)))
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
        qmec_security::generate(dir.path(), 5, 1, 2, &[], qmec_security::Existing::Refuse).unwrap();
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
