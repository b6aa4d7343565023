//! A connector for `tonic::transport::Endpoint::connect_with_connector`:
//! dials the URI's host and port over TCP (no delay on the socket itself)
//! and hands tonic the application end of an emulated link. Each
//! connection draws its jitter and loss from its own seed. Links the kernel
//! shapes dial plain TCP from a port of their own ([`SourcePortConnector`]).

use crate::profile::{Link, TimedLink};
use crate::fidelity::LinkMeasurement;
use crate::follow::LiveRate;
use crate::stream::{self, EmulatedLink, LinkMeters};
use http::Uri;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::DuplexStream;
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub struct Connector {
    link: Arc<EmulatedLink>,
    retransmit: Duration,
    seed: u64,
    connections: Arc<AtomicU64>,
}

impl Connector {
    pub fn new(link: Link, retransmit: Duration, seed: u64) -> Connector {
        Connector::scheduled(link, Vec::new(), retransmit, seed)
    }

    /// A link that changes as `timeline` says, its times counted from now
    /// (an agent builds its connectors as it starts: the run's start).
    pub fn scheduled(link: Link, timeline: Vec<TimedLink>, retransmit: Duration, seed: u64) -> Connector {
        Connector::stretched(link, timeline, retransmit, seed, 1.0)
    }

    /// The same, each chunk held `stretch` times as long as planned: only
    /// the fidelity tests make such a deliberately wrong emulator.
    pub fn stretched(link: Link, timeline: Vec<TimedLink>, retransmit: Duration, seed: u64, stretch: f64) -> Connector {
        let meters = Arc::new(LinkMeters::default());
        let origin = tokio::time::Instant::now();
        let link = Arc::new(EmulatedLink { link, timeline, origin, meters, live_up: None, stretch });
        Connector { link, retransmit, seed, connections: Arc::new(AtomicU64::new(0)) }
    }

    /// The same, its `up` rate set at run time on `live` (a device's link
    /// to a server that follows the modelled channel). Connections dialled
    /// from here on read it.
    pub fn with_live_up_rate(mut self, live: LiveRate) -> Connector {
        Arc::make_mut(&mut self.link).live_up = Some(live);
        self
    }

    pub fn link(&self) -> &Link {
        &self.link.link
    }

    /// What this link's connections achieved so far, named `{name} up` and
    /// `{name} down`.
    pub fn measurements(&self, name: &str) -> [LinkMeasurement; 2] {
        let (up, down) = self.link.meters.read();
        [LinkMeasurement { link: format!("{name} up"), meter: up }, LinkMeasurement { link: format!("{name} down"), meter: down }]
    }
}

/// Host and port of an `http://host:port` URI (brackets off IPv6 hosts).
pub fn host_port(uri: &Uri) -> std::io::Result<(String, u16)> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} in `{uri}`"));
    let host = uri.host().ok_or_else(|| invalid("no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, Some("http")) => 80,
        (None, _) => return Err(invalid("no port")),
    };
    Ok((host, port))
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<DuplexStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<DuplexStream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (link, retransmit) = (Arc::clone(&self.link), self.retransmit);
        let n = self.connections.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed.wrapping_mul(0x100_0000_01B3).wrapping_add(n);
        Box::pin(async move {
            let (host, port) = host_port(&uri)?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            tracing::debug!(%uri, link = ?link.link, changes = link.timeline.len(), "emulated link connected");
            Ok(TokioIo::new(stream::emulate(tcp, &link, retransmit, seed)))
        })
    }
}

/// A connector that dials from a fixed local port, with no userspace
/// emulation: a link the kernel shapes ([`crate::kernel`]) is told apart
/// from the process's other connections by that port. The address is
/// reusable so that a redial while the last connection lingers in
/// TIME_WAIT can still bind it.
#[derive(Debug, Clone, Copy)]
pub struct SourcePortConnector {
    pub port: u16,
}

impl tower_service::Service<Uri> for SourcePortConnector {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let port = self.port;
        Box::pin(async move {
            let (host, remote) = host_port(&uri)?;
            let address = tokio::net::lookup_host((host.as_str(), remote))
                .await?
                .find(std::net::SocketAddr::is_ipv4)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("no IPv4 address for `{uri}`")))?;
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind((std::net::Ipv4Addr::UNSPECIFIED, port).into())?;
            let tcp = socket.connect(address).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tcp))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn host_port_reads_names_addresses_and_defaults() {
        let hp = |s: &str| super::host_port(&s.parse().unwrap()).unwrap();
        assert_eq!(hp("http://server-1:50052"), ("server-1".to_string(), 50052));
        assert_eq!(hp("http://[::1]:7"), ("::1".to_string(), 7));
        assert_eq!(hp("http://10.0.0.2"), ("10.0.0.2".to_string(), 80));
    }
}
