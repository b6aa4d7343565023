//! qmec device agents. Each agent drives one `qmec_model::device::DeviceModel`
//! (same seed → the same arrivals and channel as the simulator) through the
//! controller's slots: it reports Q, H and its gains, applies its μ row with
//! `offload_plan` and `take_fragments`, sends the fragments with real payload
//! bytes to the server agents paced at the modelled rate, computes the rest
//! locally, and records every task's end-to-end latency on its own clock.
//! Many agents may share one process (each with its own gRPC streams).
//!
//! # Layout
//! - [`config`]: flags or a TOML file.
//! - [`session`]: the controller session, reconnecting with jittered backoff.
//! - [`uplink`]: offload streams to the servers and the paced sender.
//! - [`device`]: one agent's slot logic around its `DeviceModel`.
//! - [`records`]: what agents write at shutdown.
//! - [`metrics`]: the process's Prometheus figures (`--metrics`).
//! - [`agent`]: the process: shared channels, many agents, the records file.

#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
pub mod device;
pub mod metrics;
pub mod records;
pub mod session;
pub mod uplink;

pub use agent::{DeviceAgentError, main, run};
pub use config::{Args, DeviceAgentConfig};
