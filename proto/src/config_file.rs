//! Reading an agent's TOML config file (`--config`), the same way for the
//! controller and both agents, so every one names the file and the reason.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A config file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Reads and parses `path` as `T`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Io { path: path.to_path_buf(), source })?;
    toml::from_str(&text).map_err(|e| ConfigFileError::Parse { path: path.to_path_buf(), message: qmec_model::excerpt::excerpt_lines(&e.to_string()) })
}
