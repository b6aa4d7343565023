//! The trained per-link QNN that ships inside the binary: the default
//! policy of `qmec testbed`, `simulate` and `compare`, and the QNN every
//! experiment compares. It is trained by the command in `models/README.md`
//! (seeded, reproducible; a test retrains it and compares), and `--model`
//! still overrides it.

use crate::arch::Network;
use crate::error::Result;
use crate::model_file::ModelFile;

/// Where the shipped model came from, for messages.
pub const ORIGIN: &str = "the shipped per-link model (qnn/models/per-link.json)";

/// The model file's text, embedded at build time.
pub const PER_LINK_JSON: &str = include_str!("../models/per-link.json");

/// The shipped model, parsed and validated.
pub fn per_link() -> Result<(ModelFile, Network)> {
    ModelFile::from_json(PER_LINK_JSON, ORIGIN)
}
