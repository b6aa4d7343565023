//! The command's lines on stdout. `println!` panics when stdout is closed
//! or full (`qmec … >/dev/full`, a redirect onto a full disk); [`say!`]
//! and [`print`] return the error instead, so that the command ends with
//! exit 1 and a message naming stdout and the cause.

use anyhow::{Context, Result};
use std::io::Write;

/// Writes `text` to stdout as it is, flushed.
pub fn print(text: impl std::fmt::Display) -> Result<()> {
    let mut out = std::io::stdout().lock();
    write!(out, "{text}").and_then(|()| out.flush()).context("writing stdout")
}

/// `println!` that returns the write's error instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use say;
