//! `qmec certs`: a CA, one certificate per agent and a bearer token for a
//! testbed with mutual TLS (`--tls-dir DIR --token-file DIR/token` on
//! `qmec testbed` or on each `qmec agent`).

use crate::output::say;
use anyhow::{Context, Result};
use qmec_security::Existing;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write ca.pem, ca.key, controller.*, server-S.*, device-M.*, devices-A-B.* and token.
    #[arg(long)]
    out: PathBuf,
    /// Device certificates device-0 … device-(M-1).
    #[arg(long)]
    devices: usize,
    /// Server certificates server-0 … server-(S-1).
    #[arg(long)]
    servers: usize,
    /// Also one certificate per device process of this many devices
    /// (devices-A-B, naming each of them), as `qmec testbed
    /// --agents-per-process` groups them: such a process then shares its
    /// connections among its devices under TLS.
    #[arg(long, default_value_t = 1)]
    agents_per_process: usize,
    /// Extra DNS names or IP addresses on every agent certificate (comma-separated).
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
    /// Replace the files of earlier certificates in --out (each is written
    /// anew, keys owner-only); without it, a folder holding one is refused.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> Result<()> {
    let existing = if args.force { Existing::Replace } else { Existing::Refuse };
    let generated = qmec_security::generate(&args.out, args.devices, args.servers, args.agents_per_process, &args.hosts, existing)
        .with_context(|| format!("writing certificates to {}", args.out.display()))?;
    say!("CA and {} agent certificates in {}", generated.agents.len(), generated.dir.display())?;
    say!("bearer token in {} (owner-only)", generated.token.display())?;
    Ok(())
}
