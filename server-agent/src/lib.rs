//! A qmec server agent: one `qmec_model::server::ServerModel` behind the
//! `Offload` gRPC service. Devices stream fragments up (real payload bytes,
//! tagged with their slot, and an end-of-slot marker); the controller sends
//! each slot's CPU allocation; the agent computes its backlog, returns the
//! results and reports Z_ms, in the simulator's order:
//!
//! - slot t is computed (with slot t's allocation) only once every device's
//!   fragments of slot t−1 are in (their markers), or a marker wait passes;
//! - fragments sent in slot t join the backlog after slot t is computed;
//! - the report for slot t+1 goes out once slot t is computed and its
//!   fragments are all in.
//!
//! # Layout
//! - `config`: flags or a TOML file.
//! - `offload`: the `Offload` service: validates streams into events.
//! - `engine`: the slot order above around the model, without I/O.
//! - `core`: when things happen (marker waits, forced reports, the finish,
//!   slow results) as a state machine without I/O, driven by the loop here
//!   and by deploy's virtual runtime.
//! - [`records`]: what the agent writes at shutdown.
//! - `metrics`: the agent's Prometheus figures (`--metrics`).
//! - [`agent`]: wiring: gRPC server, controller session with reconnect, run.

#![forbid(unsafe_code)]

pub mod agent;
mod config;
mod core;
mod engine;
mod metrics;
mod offload;
pub mod records;

pub use agent::{ServerAgentError, run};
/// What a server's session repeats to a restarted controller (also for the
/// virtual runtime, which keeps sessions the same way).
pub use agent::ServerMemory as ServerSessionMemory;
pub use config::{Args, ConfigError, ServerAgentConfig};
pub use crate::core::{ServerCommand, ServerCore, ServerEvent, ServerFaults};
pub use metrics::{ServerFigures, ServerMetrics};
