//! Security of qmec's agents, all optional and off by default:
//!
//! - **Certificates** ([`certs`]): `qmec certs --out DIR --devices M
//!   --servers S` writes a CA and one certificate per agent (rcgen, pure
//!   Rust). Each agent certificate names its agent (`controller`,
//!   `server-S`, `device-M`) plus `localhost` and the loopback addresses.
//! - **Mutual TLS** ([`Security::server_builder`], [`Security::endpoint`]):
//!   every server requires a client certificate from the run's CA; every
//!   client checks the peer's certificate against the name of the agent it
//!   means to reach (not the address it dials), so a device certificate
//!   cannot stand in for the controller or a server.
//! - **Bearer token** ([`TokenCheck`], [`TokenAttach`]): a shared secret in
//!   the `authorization` header, checked in constant time by an interceptor
//!   on the `Controller` and `Offload` services; health and reflection stay
//!   open so probes need no secret.
//! - **Who is speaking** ([`Security::verify_peer`]): with TLS on, a
//!   session's hello must name the agent its client certificate names, so
//!   one device's certificate cannot speak for another device.
//! - **Message size limits** ([`limits`]): what each side decodes at most.
//!
//! # Layout
//! - [`certs`]: CA and agent certificate generation, file names.
//! - [`token`]: the token, its interceptors, reading it from a file.
//! - [`limits`]: decoding limits per stream kind.
//! - this file: [`SecurityConfig`] / [`SecurityArgs`] (flags) and
//!   [`Security`], the loaded material every agent builds its servers and
//!   channels from.

#![forbid(unsafe_code)]

pub mod certs;
pub mod limits;
pub mod token;

pub use certs::{CertError, Existing, Generated, generate};
pub use token::{Token, TokenAttach, TokenCheck};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

/// How long a TLS handshake may take before the connection is dropped, so a
/// client that connects and stays silent holds nothing for long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client certificate as tonic hands it over.
pub type PeerCert = rustls_pki_types::CertificateDer<'static>;

/// What went wrong loading or applying the security settings.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("token: {0}")]
    Token(String),
    #[error("TLS: {0}")]
    Tls(#[from] tonic::transport::Error),
    #[error("endpoint `{0}` is not a valid URI")]
    Endpoint(String),
    #[error(transparent)]
    Cert(#[from] CertError),
}

/// The security settings of one agent, as they appear in its TOML config
/// (a `[security]` table); every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Folder written by `qmec certs`: enables mutual TLS.
    #[serde(default)]
    pub tls_dir: Option<PathBuf>,
    /// The bearer token itself (prefer `token_file`: flags show in `ps`).
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Security flags shared by every agent (`#[command(flatten)]`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SecurityArgs {
    /// Mutual TLS with the certificates `qmec certs` wrote to this folder.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// Shared bearer token every gRPC call must carry (visible in `ps`;
    /// prefer --token-file).
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// File holding the shared bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl From<SecurityArgs> for SecurityConfig {
    fn from(args: SecurityArgs) -> SecurityConfig {
        SecurityConfig { tls_dir: args.tls_dir, token: args.token, token_file: args.token_file }
    }
}

impl SecurityConfig {
    /// Whether anything is switched on.
    pub fn is_empty(&self) -> bool {
        self.tls_dir.is_none() && self.token.is_none() && self.token_file.is_none()
    }
}

/// One agent's TLS material: the CA and its own identity.
#[derive(Debug)]
struct Tls {
    ca: Certificate,
    identity: Identity,
}

/// The loaded security material of one agent; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Security {
    tls: Option<Arc<Tls>>,
    token: Option<Token>,
}

fn read(path: &Path) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|source| SecurityError::Read { path: path.to_path_buf(), source })
}

impl Security {
    /// No TLS, no token: plain HTTP/2 as before.
    pub fn none() -> Security {
        Security::default()
    }

    /// Loads the settings for the agent named `name` (`controller`,
    /// `server-3`, `device-7`: the certificate file names in the TLS folder).
    pub fn load(config: &SecurityConfig, name: &str) -> Result<Security, SecurityError> {
        let tls = match &config.tls_dir {
            Some(dir) => {
                let ca = Certificate::from_pem(read(&certs::ca_cert_path(dir))?);
                let (cert, key) = certs::agent_paths(dir, name);
                let identity = Identity::from_pem(read(&cert)?, read(&key)?);
                Some(Arc::new(Tls { ca, identity }))
            }
            None => None,
        };
        let token = match (&config.token, &config.token_file) {
            (Some(text), _) => Some(Token::new(text)?),
            (None, Some(path)) => Some(Token::from_file(path)?),
            (None, None) => None,
        };
        Ok(Security { tls, token })
    }

    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `https` with TLS, else `http`: the scheme this agent advertises.
    pub fn scheme(&self) -> &'static str {
        if self.tls() { "https" } else { "http" }
    }

    /// A gRPC server builder: with TLS on it requires a client certificate
    /// signed by the run's CA.
    pub fn server_builder(&self) -> Result<Server, SecurityError> {
        let builder = Server::builder();
        Ok(match &self.tls {
            Some(tls) => builder.tls_config(
                ServerTlsConfig::new()
                    .identity(tls.identity.clone())
                    .client_ca_root(tls.ca.clone())
                    .timeout(HANDSHAKE_TIMEOUT),
            )?,
            None => builder,
        })
    }

    /// An endpoint for the agent named `peer` at `uri`. With TLS on, an
    /// `http://` URI is dialled as `https://` (never in the clear), this
    /// agent's certificate is presented and the peer's must name `peer`.
    pub fn endpoint(&self, uri: &str, peer: &str) -> Result<Endpoint, SecurityError> {
        let uri = match (&self.tls, uri.strip_prefix("http://")) {
            (Some(_), Some(rest)) => format!("https://{rest}"),
            _ => uri.to_string(),
        };
        let endpoint = Endpoint::from_shared(uri.clone()).map_err(|_| SecurityError::Endpoint(uri))?;
        Ok(match &self.tls {
            Some(tls) => endpoint.tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(tls.ca.clone())
                    .identity(tls.identity.clone())
                    .domain_name(peer)
                    .timeout(HANDSHAKE_TIMEOUT),
            )?,
            None => endpoint,
        })
    }

    /// With TLS on, refuses a request unless its verified client
    /// certificate (`certs`: `Request::peer_certs`, taken before the stream
    /// is read for its hello) names `name` (`device-3`, `server-1`);
    /// without TLS there is no certificate to check and everything passes.
    pub fn verify_peer(&self, certs: Option<&[PeerCert]>, name: &str) -> Result<(), tonic::Status> {
        if self.tls.is_none() {
            return Ok(());
        }
        match certs.and_then(<[PeerCert]>::first) {
            Some(leaf) if certificate_names(leaf, name) => Ok(()),
            Some(_) => Err(tonic::Status::permission_denied(format!("the client certificate does not name `{name}`"))),
            None => Err(tonic::Status::unauthenticated("no client certificate")),
        }
    }

    /// The server-side interceptor (lets everything through without a token).
    pub fn check(&self) -> TokenCheck {
        TokenCheck::new(self.token.clone())
    }

    /// The client-side interceptor (adds nothing without a token).
    pub fn attach(&self) -> TokenAttach {
        TokenAttach::new(self.token.as_ref())
    }
}

/// Whether the certificate `der` is valid for the DNS name `name` (its
/// subject alternative names; the chain was verified in the handshake).
fn certificate_names(der: &rustls_pki_types::CertificateDer<'_>, name: &str) -> bool {
    let Ok(cert) = webpki::EndEntityCert::try_from(der) else { return false };
    let Ok(name) = rustls_pki_types::ServerName::try_from(name) else { return false };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn a_certificate_names_its_own_agent_only() {
        let dir = tempfile::tempdir().unwrap();
        crate::certs::generate(dir.path(), 2, 1, 1, &[], crate::Existing::Refuse).unwrap();
        let (pem, _) = crate::certs::agent_paths(dir.path(), "device-1");
        let der = CertificateDer::from_pem_file(pem).unwrap();
        assert!(super::certificate_names(&der, "device-1"));
        for other in ["device-0", "device-10", "server-0", "controller", "not a name"] {
            assert!(!super::certificate_names(&der, other), "{other}");
        }
    }

    #[test]
    fn a_process_certificate_names_each_of_its_devices_only() {
        let dir = tempfile::tempdir().unwrap();
        crate::certs::generate(dir.path(), 5, 1, 3, &[], crate::Existing::Refuse).unwrap();
        let (pem, _) = crate::certs::agent_paths(dir.path(), "devices-0-2");
        let der = CertificateDer::from_pem_file(pem).unwrap();
        for device in ["device-0", "device-1", "device-2"] {
            assert!(super::certificate_names(&der, device), "{device}");
        }
        for other in ["device-3", "devices-0-2", "server-0"] {
            assert!(!super::certificate_names(&der, other), "{other}");
        }
        assert!(crate::certs::agent_paths(dir.path(), "devices-3-4").0.exists());
    }
}
