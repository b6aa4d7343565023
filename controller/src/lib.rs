//! The qmec controller: it owns the slot clock, holds one session stream per
//! device and per server, runs the policy every slot and streams the
//! decisions out. Any policy from `qmec-catalog` runs here unchanged.
//!
//! # Layout
//! - [`config`]: the controller's settings, from flags or a TOML file.
//! - [`sessions`]: the gRPC `Controller` service; each session stream is
//!   validated and turned into [`sessions::Event`]s for the slot loop.
//! - [`slot_loop`]: joining, then per slot: announce, gather reports until
//!   the deadline, decide, send μ rows and CPU allocations; then finish.
//! - [`metrics`]: Prometheus text metrics on a small HTTP endpoint.
//! - [`records`]: what the controller writes at shutdown (per-slot timings).
//! - [`serve`]: wires the service, health, reflection, metrics and shutdown.
//!
//! The slot loop owns all run state in one task; sessions talk to it through
//! bounded channels only, so there are no locks on the hot path.

#![forbid(unsafe_code)]

pub mod config;
pub mod metrics;
pub mod records;
pub mod serve;
pub mod sessions;
pub mod slot_loop;

pub use config::{Args, ControllerConfig};
pub use records::ControllerRecords;
pub use serve::{ControllerError, run};
