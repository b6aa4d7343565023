//! `qmec image build`: the container image of this very binary, with no
//! registry pull (its root file system is the binary and its libraries).

use crate::output::say;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build (or reuse) the image and print its tag.
    Build {
        /// The binary to package; default: this one.
        #[arg(long)]
        exe: Option<PathBuf>,
        /// Tag to give it; default: derived from the binary (qmec:SIZE-MTIME).
        #[arg(long)]
        tag: Option<String>,
    },
}

pub fn run(command: Command) -> Result<()> {
    let Command::Build { exe, tag } = command;
    let exe = match exe {
        Some(exe) => exe,
        None => std::env::current_exe().context("locating the qmec binary")?,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let tag = runtime.block_on(async {
        match tag {
            Some(tag) => qmec_deploy::image::build(&exe, &tag).await.map(|()| tag),
            None => qmec_deploy::image::ensure(&exe).await,
        }
    })?;
    say!("{tag}")?;
    Ok(())
}
