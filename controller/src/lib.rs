//! The qmec controller: it owns the slot clock, holds one session stream per
//! device and per server, runs the policy every slot and streams the
//! decisions out. Any policy from `qmec-catalog` runs here unchanged.
//!
//! # Layout
//! - [`config`]: the controller's settings, from flags or a TOML file.
//! - `sessions`: the gRPC `Controller` service; each session stream is
//!   validated and turned into events for the slot loop.
//! - [`core`](ControllerCore): the run's rules with no I/O: joining, then
//!   per slot: announce, gather reports until the deadline, decide, send μ
//!   rows and CPU allocations; then finish. The virtual runtime drives it too.
//! - `slot_loop`: the tokio loop that feeds the core events and its
//!   wake-ups and carries its commands out.
//! - [`fallback`]: what decides a slot the policy could not, and the
//!   cause counted in the records.
//! - [`external`]: `--policy external=ADDR`, a policy service asked over
//!   gRPC each slot within a deadline.
//! - `metrics`: Prometheus text metrics on a small HTTP endpoint.
//! - [`records`]: what the controller writes at shutdown (per-slot timings).
//! - [`serve`]: wires the service, health, reflection, metrics and shutdown.
//!
//! The slot loop owns all run state in one task; sessions talk to it through
//! bounded channels only, so there are no locks on the hot path.

#![forbid(unsafe_code)]

mod config;
mod core;
pub mod external;
pub mod fallback;
mod metrics;
pub mod records;
pub mod serve;
mod sessions;
mod slot_loop;

pub use self::core::{ControllerCommand, ControllerCore, ControllerEvent, CoreSettings, LoopError};
pub use config::{Args, ConfigError, ControllerConfig};
/// Public so that the metric names can be linted outside the crate.
pub use metrics::Metrics as ControllerMetrics;
pub use records::{ControllerRecords, ControllerSlot};
pub use serve::{ControllerError, run};
