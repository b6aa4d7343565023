//! The channels a device-agent process dials: one lazily connected channel
//! per endpoint, shared by every agent of the process (each agent opens its
//! own streams on it), or with TLS and a certificate per device one per
//! endpoint and device. Below the session and the uplink, which only take
//! an [`AgentChannel`].
//!
//! A link profile that follows the modelled channel shapes each device's
//! link to each server on its own, so then every device dials every server
//! on a connection of its own, whose up rate it sets each slot
//! ([`FollowedLinks`]); one shared HTTP/2 connection could not carry each
//! device's streams at that device's rate. With `--kernel-links` the
//! kernel shapes those connections instead (an HTB class each, picked by
//! the connection's own source port) and the userspace emulator is off.

use crate::config::DeviceAgentConfig;
use crate::core::Batch;
use crate::error::DeviceAgentError;
use qmec_linkem::follow::{FollowChannel, LiveRate};
use qmec_linkem::htb::KernelLink;
use qmec_linkem::kernel::KernelShaper;
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
    /// Following the channel: each device's up rate to each server, by
    /// its channel's key, and the payload scale that relates modelled bits
    /// to the bytes sent.
    followed: Mutex<HashMap<ChannelKey, LiveRate>>,
    payload_scale: f64,
}

impl Emulation {
    /// Whether the channel to `uri` follows the modelled channel (a
    /// server's, when the profile says so).
    fn follows(&self, uri: &str) -> bool {
        self.profile.follow_channel.is_some() && uri != self.controller
    }
}

/// Links up to the servers that the kernel shapes: the shaper, and each
/// device's link to each server by its channel's key.
#[derive(Debug)]
struct KernelLinks {
    profile: qmec_linkem::LinkProfile,
    controller: String,
    shaper: KernelShaper,
    /// Each link and the server it goes to (its certificate name).
    links: Mutex<HashMap<ChannelKey, (KernelLink, String)>>,
    payload_scale: f64,
}

/// Where a followed link's rate goes.
#[derive(Debug, Clone)]
pub enum LinkRate {
    /// The userspace emulator's direction.
    Live(LiveRate),
    /// An HTB class, through the process's tc child.
    Kernel(KernelShaper, KernelLink),
}

impl LinkRate {
    fn set(&self, bps: f64) {
        match self {
            LinkRate::Live(live) => live.set(bps),
            LinkRate::Kernel(shaper, link) => shaper.set_rate(*link, bps),
        }
    }
}

/// One device's links up to the servers (by server index) that follow its
/// modelled channel, and how a modelled rate becomes a link's.
#[derive(Debug)]
pub struct FollowedLinks {
    follow: FollowChannel,
    payload_scale: f64,
    rates: Vec<Option<LinkRate>>,
}

impl FollowedLinks {
    /// `rates[s]`: the up rate of the link to server s (none: not followed).
    pub fn new(follow: FollowChannel, payload_scale: f64, rates: Vec<Option<LinkRate>>) -> FollowedLinks {
        FollowedLinks { follow, payload_scale, rates }
    }

    /// From now on each server's link runs at the batch's modelled rate to
    /// it, scaled as the profile says: called as the batch goes to the
    /// uplink, so its fragments enter the links at their slot's rates.
    pub fn set(&self, batch: &Batch) {
        for (live, &modelled) in self.rates.iter().zip(&batch.rates_bps) {
            let rate = self.follow.link_rate_bps(modelled, batch.wall_per_modelled, self.payload_scale);
            if let (Some(live), Some(rate)) = (live, rate) {
                live.set(rate);
            }
        }
    }
}

impl KernelLinks {
    /// The HTB root on `iface` and the tc child that changes it.
    fn start(config: &DeviceAgentConfig, path: &std::path::Path, iface: &str) -> Result<KernelLinks, DeviceAgentError> {
        let profile = qmec_linkem::LinkProfile::load(path)?;
        let leaf = config.kernel_netem.then_some(profile.device.up);
        let shaper = KernelShaper::start(iface, leaf)?;
        let (controller, payload_scale) = (config.controller.clone(), config.payload_scale);
        Ok(KernelLinks { profile, controller, shaper, links: Mutex::default(), payload_scale })
    }

    fn follows(&self, uri: &str) -> bool {
        uri != self.controller
    }

    /// A class for the channel `key`, and the connector bound to its port.
    fn dial(&self, key: &ChannelKey, peer: &str) -> Result<qmec_linkem::connector::SourcePortConnector, DeviceAgentError> {
        let unusable = || DeviceAgentError::KernelServer(key.endpoint.clone());
        let uri: tonic::codegen::http::Uri = key.endpoint.parse().map_err(|_| DeviceAgentError::Endpoint(key.endpoint.clone()))?;
        let (host, _) = qmec_linkem::connector::host_port(&uri).map_err(|_| unusable())?;
        let server: std::net::Ipv4Addr = host.parse().map_err(|_| unusable())?;
        let link = self.shaper.add_link(server)?;
        self.links.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key.clone(), (link, peer.to_string()));
        Ok(qmec_linkem::connector::SourcePortConnector { port: link.source_port })
    }
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
    kernel: Option<Arc<KernelLinks>>,
    identities: Arc<Identities>,
}

impl Channels {
    pub fn new(config: &DeviceAgentConfig) -> Result<Channels, DeviceAgentError> {
        let kernel = match (&config.link_profile, &config.kernel_links) {
            (Some(path), Some(iface)) => Some(Arc::new(KernelLinks::start(config, path, iface)?)),
            _ => None,
        };
        let emulation = match &config.link_profile {
            Some(_) if kernel.is_some() => None,
            Some(path) => {
                let profile = qmec_linkem::LinkProfile::load(path)?;
                let first = config.devices.first().copied().unwrap_or(0) as u64;
                let seed = profile.seed ^ first.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let controller = config.controller.clone();
                let (connectors, followed, payload_scale) = (Mutex::default(), Mutex::default(), config.payload_scale);
                Some(Arc::new(Emulation { profile, controller, seed, connectors, followed, payload_scale }))
            }
            None => None,
        };
        Ok(Channels { map: Arc::default(), emulation, kernel, identities: Arc::new(Identities::load(config)?) })
    }

    /// Device `device`'s channel to agent `peer` (a certificate name) at `uri`.
    pub fn get(&self, uri: &str, peer: &str, device: usize) -> Result<AgentChannel, DeviceAgentError> {
        let Identity { security, owner } = self.identities.of(device)?;
        let mut map = self.map.lock().map_err(|_| DeviceAgentError::Endpoint(uri.to_string()))?;
        let follows = self.emulation.as_ref().is_some_and(|emulation| emulation.follows(uri))
            || self.kernel.as_ref().is_some_and(|kernel| kernel.follows(uri));
        let key = ChannelKey { endpoint: uri.to_string(), owner: if follows { Some(device) } else { owner } };
        if let Some(channel) = map.get(&key) {
            return Ok(InterceptedService::new(channel.clone(), security.attach()));
        }
        let channel = match (&self.emulation, &self.kernel) {
            (_, Some(kernel)) if follows => {
                let connector = kernel.dial(&key, peer)?;
                endpoint(&security, uri, peer)?.connect_with_connector_lazy(connector)
            }
            (None, _) => endpoint(&security, uri, peer)?.connect_lazy(),
            (Some(emulation), _) => {
                let profile = &emulation.profile;
                let (name, path): (_, fn(&qmec_linkem::LinkProfile) -> qmec_linkem::Link) = if uri == emulation.controller {
                    (qmec_linkem::fidelity::CONTROLLER_LINK, qmec_linkem::LinkProfile::device_to_controller)
                } else {
                    (qmec_linkem::fidelity::SERVER_LINK, qmec_linkem::LinkProfile::device_to_server)
                };
                let seed = emulation.seed.wrapping_add(map.len() as u64);
                // The schedule's times count from the agent's start: the
                // testbed starts every agent together with the run.
                let mut connector =
                    qmec_linkem::Connector::scheduled(path(profile), profile.timeline(path), profile.retransmit, seed);
                if follows {
                    let live = LiveRate::new();
                    connector = connector.with_live_up_rate(live.clone());
                    if let Ok(mut followed) = emulation.followed.lock() {
                        followed.insert(key.clone(), live);
                    }
                }
                if let Ok(mut connectors) = emulation.connectors.lock() {
                    connectors.push(NamedConnector { name, connector: connector.clone() });
                }
                endpoint(&security, uri, peer)?.connect_with_connector_lazy(connector)
            }
        };
        map.insert(key, channel.clone());
        Ok(InterceptedService::new(channel, security.attach()))
    }

    /// The devices that share one controller session, each group with its
    /// channel: all of them when they share an identity (no TLS, or a
    /// process certificate naming them all), else each device alone (a TLS
    /// connection carries one identity, and each device speaks as itself).
    pub fn controller_sessions(&self, uri: &str, devices: &[usize]) -> Result<Vec<(AgentChannel, Vec<usize>)>, DeviceAgentError> {
        let mut groups: Vec<(Option<usize>, AgentChannel, Vec<usize>)> = Vec::new();
        for &device in devices {
            let owner = self.identities.of(device)?.owner;
            match groups.iter_mut().find(|(group, ..)| owner.is_none() && group.is_none()) {
                Some((.., members)) => members.push(device),
                None => {
                    let channel = self.get(uri, &qmec_security::certs::controller_name(), device)?;
                    groups.push((owner, channel, vec![device]));
                }
            }
        }
        Ok(groups.into_iter().map(|(_, channel, members)| (channel, members)).collect())
    }

    /// Device `device`'s links up to the servers at `uris` (in server
    /// order, dialled already with [`Channels::get`]) when they follow the
    /// modelled channel; none when they do not.
    pub fn followed_links(&self, device: usize, uris: &[String]) -> Option<FollowedLinks> {
        let key = |uri: &String| ChannelKey { endpoint: uri.clone(), owner: Some(device) };
        if let Some(kernel) = &self.kernel {
            let follow = kernel.profile.follow_channel?;
            let links = kernel.links.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let rate = |uri: &String| links.get(&key(uri)).map(|(link, _)| LinkRate::Kernel(kernel.shaper.clone(), *link));
            return Some(FollowedLinks::new(follow, kernel.payload_scale, uris.iter().map(rate).collect()));
        }
        let emulation = self.emulation.as_ref()?;
        let follow = emulation.profile.follow_channel?;
        let followed = emulation.followed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let rate = |uri: &String| followed.get(&key(uri)).cloned().map(LinkRate::Live);
        Some(FollowedLinks::new(follow, emulation.payload_scale, uris.iter().map(rate).collect()))
    }

    /// Once the kernel's tc child failed, why (a process whose links the
    /// kernel shapes cannot go on without it); none without kernel links.
    pub fn kernel_failure(&self) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        self.kernel.as_ref().map(|kernel| kernel.shaper.failed())
    }

    /// What each link the kernel shapes achieved so far, one entry per
    /// device and server, in device then server order; none without
    /// kernel links.
    pub fn per_link_measurements(&self) -> Vec<qmec_linkem::fidelity::LinkMeasurement> {
        let Some(kernel) = &self.kernel else { return Vec::new() };
        let links = kernel.links.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut each: Vec<(usize, &String, KernelLink)> =
            links.iter().map(|(key, (link, peer))| (key.owner.unwrap_or(0), peer, *link)).collect();
        each.sort();
        each.into_iter()
            .filter_map(|(device, peer, link)| {
                let meter = kernel.shaper.link_meter(link)?;
                let link = format!("{} up, device {device} to {peer}", qmec_linkem::fidelity::SERVER_LINK);
                Some(qmec_linkem::fidelity::LinkMeasurement { link, meter })
            })
            .collect()
    }

    /// What the emulated links achieved so far, one entry per link kind
    /// and direction (every connection of the kind summed); none without
    /// emulation.
    pub fn link_measurements(&self) -> Vec<qmec_linkem::fidelity::LinkMeasurement> {
        if let Some(kernel) = &self.kernel {
            return vec![kernel.shaper.measurement(qmec_linkem::fidelity::SERVER_LINK)];
        }
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

    /// Two devices' channels to the controller and to one server, under
    /// the link profile `profile`; returns how many channels were made.
    fn dial_both(profile: &str) -> (Channels, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("links.toml");
        std::fs::write(&path, profile).unwrap();
        let args = ["device", "--devices", "0..2", "--link-profile", path.to_str().unwrap(), "--payload-scale", "100"];
        let config = Command::try_parse_from(args).unwrap().args.into_config().unwrap();
        let channels = Channels::new(&config).unwrap();
        for device in [0, 1] {
            channels.get(&config.controller, "controller", device).unwrap();
            channels.get(SERVER, "server-0", device).unwrap();
        }
        let made = channels.map.lock().unwrap().len();
        (channels, made)
    }

    const SERVER: &str = "http://127.0.0.1:50052";

    #[tokio::test]
    async fn following_the_channel_gives_each_device_its_own_server_connection_and_rate() {
        let (shared, made) = dial_both("[device]\ndelay_ms = 5\n");
        assert_eq!(made, 2, "one controller and one server channel for the process");
        assert!(shared.followed_links(0, &[SERVER.to_string()]).is_none());
        let (following, made) = dial_both("[device]\ndelay_ms = 5\n[device.follow_channel]\n");
        assert_eq!(made, 3, "the controller's shared, a server channel per device");
        let links = following.followed_links(1, &[SERVER.to_string()]).unwrap();
        let other = following.followed_links(0, &[SERVER.to_string()]).unwrap();
        let Some(LinkRate::Live(live)) = links.rates[0].clone() else { panic!("{links:?}") };
        assert_eq!(live.get(), None, "no rate before the first batch");
        let batch = Batch { slot: 0, sends: Vec::new(), rates_bps: vec![5e6], wall_per_modelled: 0.5 };
        links.set(&batch);
        // 5 Mbit/s modelled, paced at 0.5 wall s per modelled s with a
        // payload scale of 100: 100 kbit/s of payload.
        assert_eq!(live.get(), Some(100_000.0));
        assert!(matches!(&other.rates[0], Some(LinkRate::Live(live)) if live.get().is_none()), "device 0's link is its own");
    }
}
