//! Link emulation for qmec testbeds: what a network link does to the bytes
//! crossing it (one-way delay, jitter, loss, rate), written once as a
//! [`profile::LinkProfile`] and applied either by the kernel (`tc netem`,
//! where the kernel has it) or in userspace by the agents themselves (where
//! it does not: many container hosts ship kernels without `sch_netem`).
//!
//! # Layout
//! - [`profile`]: the link-profile file (TOML), validated; errors name the field.
//! - [`schedule`]: when each chunk of a byte stream leaves the emulated link
//!   (delay, jitter, serialisation rate, loss as a retransmission penalty).
//! - [`stream`]: an emulated TCP connection: bytes pumped through a
//!   `tokio::io::duplex` pair and released on the schedule.
//! - [`connector`]: a tonic/hyper connector that dials through [`stream`].
//! - [`follow`]: a rate set at run time, for links that follow the modelled
//!   channel slot by slot, and how a modelled rate becomes the link's.
//! - [`fidelity`]: what the emulator achieved against what it was asked
//!   for, measured from each chunk's real entry and exit, and a verdict.
//! - [`netem`]: the `tc netem` command lines for a profile, and a probe of
//!   whether this kernel has netem at all.
//! - [`htb`]: links that follow the channel shaped by the kernel's HTB (on
//!   kernels without netem too): the tc lines, which rates to write each
//!   slot, and fidelity from the classes' counters, with no I/O.
//! - [`kernel`]: those lines carried out through one `tc -batch` child.

#![forbid(unsafe_code)]

pub mod connector;
pub mod fidelity;
pub mod follow;
pub mod htb;
pub mod kernel;
pub mod netem;
pub mod profile;
pub mod schedule;
pub mod stream;

pub use connector::Connector;
pub use profile::{Direction, Link, LinkProfile, ProfileError};
