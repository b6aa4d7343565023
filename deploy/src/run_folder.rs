//! The run folder, before the agents start: created with `records/`
//! (where every agent writes its records for [`crate::outcome::finish`]),
//! the resolved link profile and the emulation choice written into it, and
//! the security files the agents need (an inline token written owner-only,
//! copied in where containers see only the run folder). Every backend
//! starts here.

use crate::config::{LaunchOptions, TestbedConfig};
use crate::emulation::{self, Emulation};
use crate::error::{DeployError, LaunchError};
use qmec_linkem::LinkProfile;
use std::path::{Path, PathBuf};

/// What a run with link emulation starts from.
#[derive(Debug)]
pub struct Prepared {
    pub scenario: qmec_model::Scenario,
    pub emulation: Emulation,
    /// The run folder, absolute.
    pub out: PathBuf,
}

/// The first steps of every container or namespace run: the scenario, the
/// link emulation for `profile`, and the run folder.
pub fn prepare(config: &TestbedConfig, options: &LaunchOptions, profile: Option<&LinkProfile>) -> Result<Prepared, LaunchError> {
    let scenario = config.scenario()?;
    let emulation = emulation::choose(profile, options.emulation)?;
    let out = prepare_out(&config.out, profile, &emulation)?;
    Ok(Prepared { scenario, emulation, out })
}

/// Creates the run folder (absolute) with `records/` and writes the
/// resolved link profile and the emulation choice into it.
pub fn prepare_out(out: &Path, profile: Option<&LinkProfile>, emulation: &Emulation) -> Result<PathBuf, DeployError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Io { path, source }
    };
    let records = out.join("records");
    std::fs::create_dir_all(&records).map_err(io(&records))?;
    let out = std::fs::canonicalize(out).map_err(io(out))?;
    if let Some(profile) = profile {
        let path = out.join("link-profile.toml");
        std::fs::write(&path, profile.to_toml()).map_err(io(&path))?;
    }
    let path = out.join("emulation.json");
    std::fs::write(&path, serde_json::to_string_pretty(emulation).unwrap_or_default()).map_err(io(&path))?;
    Ok(out)
}

/// The security flags every agent gets. An inline token is written to
/// `out/token` (owner-only) and passed by file, so it never shows in `ps`.
/// With `inside` (where a container sees the run folder) every file the
/// agents need is copied into the run folder first and named from there.
pub fn security_args(config: &TestbedConfig, out: &Path, inside: Option<&str>) -> Result<Vec<String>, DeployError> {
    let security = &config.security;
    let mut files = Vec::new();
    if let Some(dir) = &security.tls_dir {
        let dir = match inside {
            Some(_) => copy_into(dir, &out.join("tls"))?,
            None => dir.clone(),
        };
        files.push(("--tls-dir", dir));
    }
    let token_file = match (&security.token, &security.token_file) {
        (Some(token), _) => Some(write_private(&out.join("token"), token.as_bytes())?),
        (None, Some(file)) if inside.is_some() => {
            let text = std::fs::read(file).map_err(|source| DeployError::Io { path: file.clone(), source })?;
            Some(write_private(&out.join("token"), &text)?)
        }
        (None, file) => file.clone(),
    };
    if let Some(file) = token_file {
        files.push(("--token-file", file));
    }
    let seen = |path: &Path| match inside {
        Some(root) => format!("{root}/{}", path.strip_prefix(out).unwrap_or(path).display()),
        None => path.display().to_string(),
    };
    Ok(files.into_iter().flat_map(|(flag, path)| [flag.to_string(), seen(&path)]).collect())
}

/// Writes an owner-only file.
fn write_private(path: &Path, contents: &[u8]) -> Result<PathBuf, DeployError> {
    let io = |source| DeployError::Io { path: path.to_path_buf(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, contents).map_err(io)?;
    Ok(path.to_path_buf())
}

/// Copies the files of `from` (certificates and keys, kept owner-only)
/// into `to`, except the CA's signing key, which no agent needs.
fn copy_into(from: &Path, to: &Path) -> Result<PathBuf, DeployError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let path = entry.map_err(io(from))?.path();
        if path.is_file() && path.file_name().is_some_and(|name| name != "ca.key") {
            let contents = std::fs::read(&path).map_err(io(&path))?;
            write_private(&to.join(path.file_name().unwrap_or_default()), &contents)?;
        }
    }
    Ok(to.to_path_buf())
}
