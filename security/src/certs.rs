//! A run's certificates: one CA, and per agent a key and a certificate the
//! CA signed, valid for both TLS server and client use (every agent is
//! both). File layout in the output folder:
//!
//! | file | what |
//! | --- | --- |
//! | `ca.pem` | the CA certificate every agent trusts |
//! | `ca.key` | the CA key (only to sign more agents later; keep it away from agents) |
//! | `controller.pem`, `controller.key` | the controller |
//! | `server-S.pem`, `server-S.key` | server agent S |
//! | `device-M.pem`, `device-M.key` | device agent M |
//! | `devices-A-B.pem`, `devices-A-B.key` | a process running devices A…B (with `per_process` > 1): one certificate naming each of them, so the process can share its connections |
//! | `token` | a random bearer token (64 hex characters) |
//!
//! Every file is created anew (an existing one is removed first, so that no
//! mode or link of an earlier file survives), keys and the token readable
//! by the owner only; a folder that already holds one of them is refused
//! unless [`Existing::Replace`] is asked for.

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Names every agent certificate carries besides the agent's own name, so
/// tools such as grpcurl can reach an agent on this machine.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("`{name}` is not a usable certificate name")]
    Name { name: String },
    #[error("{path} already exists (replacing an earlier run's certificates takes --force)")]
    Exists { path: PathBuf },
}

/// What [`generate`] does with files of an earlier run in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Writes nothing and names the first one.
    Refuse,
    /// Removes each and writes it anew.
    Replace,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub dir: PathBuf,
    /// Agent names, in the order written.
    pub agents: Vec<String>,
    pub token: PathBuf,
}

pub fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// The certificate and key files of agent `name`.
pub fn agent_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")))
}

/// The certificate name of each kind of agent.
pub fn controller_name() -> String {
    "controller".into()
}

pub fn server_name(server: usize) -> String {
    format!("server-{server}")
}

pub fn device_name(device: usize) -> String {
    format!("device-{device}")
}

/// The name of a process running `devices`: `device-M` for one device,
/// `devices-A-B` for the devices A…B.
pub fn devices_name(devices: &Range<usize>) -> String {
    if devices.len() == 1 { device_name(devices.start) } else { format!("devices-{}-{}", devices.start, devices.end - 1) }
}

/// An IP address, or a DNS name of letters, digits, dots and hyphens.
fn usable_host(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
}

/// Writes `path` anew: an existing file is removed first, since opening it
/// would keep its mode (a world-writable key stays so) and follow a link.
fn write(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    let err = |source| CertError::Write { path: path.to_path_buf(), source };
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(err(error)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)
}

/// Each certificate of a run: its file name and the agent names it carries.
fn certificate_names(devices: usize, servers: usize, per_process: usize) -> Vec<(String, Vec<String>)> {
    let mut certificates: Vec<(String, Vec<String>)> = std::iter::once(controller_name())
        .chain((0..servers).map(server_name))
        .chain((0..devices).map(device_name))
        .map(|name| (name.clone(), vec![name]))
        .collect();
    if per_process > 1 {
        for first in (0..devices).step_by(per_process) {
            let range = first..(first + per_process).min(devices);
            if range.len() > 1 {
                certificates.push((devices_name(&range), range.map(device_name).collect()));
            }
        }
    }
    certificates
}

/// Refuses, before anything is written, a folder holding one of `files`.
fn refuse_existing(files: impl IntoIterator<Item = PathBuf>) -> Result<(), CertError> {
    match files.into_iter().find(|path| path.symlink_metadata().is_ok()) {
        Some(path) => Err(CertError::Exists { path }),
        None => Ok(()),
    }
}

/// Writes a CA, certificates for the controller, `servers` server agents
/// and `devices` device agents, and a token into `dir`; files already
/// there are refused or replaced as `existing` says. With `per_process`
/// above 1 it also writes one certificate per process of that many devices
/// (`devices-A-B`, naming each device), as `qmec testbed
/// --agents-per-process` groups them. `hosts` are extra DNS names or IP
/// addresses put on every agent certificate (for tools that dial an agent
/// by address on a multi-machine testbed).
pub fn generate(
    dir: &Path,
    devices: usize,
    servers: usize,
    per_process: usize,
    hosts: &[String],
    existing: Existing,
) -> Result<Generated, CertError> {
    if let Some(bad) = hosts.iter().find(|h| !usable_host(h)) {
        return Err(CertError::Name { name: bad.clone() });
    }
    let certificates = certificate_names(devices, servers, per_process);
    let token_path = dir.join("token");
    if existing == Existing::Refuse {
        let agent_files = certificates.iter().flat_map(|(name, _)| <[PathBuf; 2]>::from(agent_paths(dir, name)));
        refuse_existing([ca_cert_path(dir), dir.join("ca.key"), token_path.clone()].into_iter().chain(agent_files))?;
    }
    std::fs::create_dir_all(dir).map_err(|source| CertError::Write { path: dir.to_path_buf(), source })?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "qmec testbed CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write(&ca_cert_path(dir), &ca_cert.pem(), false)?;
    write(&dir.join("ca.key"), &ca_key.serialize_pem(), true)?;
    let issuer = Issuer::new(ca_params, ca_key);

    for (name, agents) in &certificates {
        let mut sans = agents.clone();
        sans.extend(LOOPBACK_NAMES.iter().map(|s| s.to_string()));
        sans.extend(hosts.iter().cloned());
        let mut params =
            CertificateParams::new(sans).map_err(|_| CertError::Name { name: name.clone() })?;
        params.distinguished_name.push(DnType::CommonName, name.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        let (cert_path, key_path) = agent_paths(dir, name);
        write(&cert_path, &cert.pem(), false)?;
        write(&key_path, &key.serialize_pem(), true)?;
    }

    let bytes: [u8; 32] = rand::rng().random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write(&token_path, &format!("{token}\n"), true)?;
    Ok(Generated { dir: dir.to_path_buf(), agents: certificates.into_iter().map(|(name, _)| name).collect(), token: token_path })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_ca_every_agent_and_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), 3, 1, 2, &["10.0.0.7".into(), "edge.example".into()], Existing::Refuse).unwrap();
        // Device 2 runs alone in the second process: its own certificate serves.
        assert_eq!(generated.agents, ["controller", "server-0", "device-0", "device-1", "device-2", "devices-0-1"]);
        for name in &generated.agents {
            let (cert, key) = agent_paths(dir.path(), name);
            assert!(std::fs::read_to_string(cert).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(std::fs::read_to_string(&key).unwrap().contains("PRIVATE KEY"));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
            }
        }
        let token = crate::Token::from_file(&generated.token).unwrap();
        assert!(format!("{token:?}").contains('…'));
        assert_eq!(std::fs::read_to_string(&generated.token).unwrap().trim().len(), 64);
    }

    #[test]
    fn a_bad_host_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(generate(dir.path(), 0, 0, 1, &["bad name\n".into()], Existing::Refuse), Err(CertError::Name { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn files_of_an_earlier_run_are_refused_or_written_anew_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = ["ca.key", "controller.key", "device-0.key", "token"].map(|name| dir.path().join(name));
        for path in &private {
            std::fs::write(path, "planted").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let refused = generate(dir.path(), 1, 0, 1, &[], Existing::Refuse).unwrap_err();
        assert!(matches!(&refused, CertError::Exists { path } if *path == private[0]), "{refused}");
        assert!(refused.to_string().contains("ca.key") && refused.to_string().contains("--force"), "{refused}");
        assert!(!dir.path().join("ca.pem").exists(), "nothing written before the refusal");

        generate(dir.path(), 1, 0, 1, &[], Existing::Replace).unwrap();
        for path in &private {
            assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
            assert_ne!(std::fs::read_to_string(path).unwrap(), "planted", "{}", path.display());
        }
    }
}
