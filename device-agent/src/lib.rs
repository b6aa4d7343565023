//! qmec device agents. Each agent drives one `qmec_model::device::DeviceModel`
//! (same seed → the same arrivals and channel as the simulator) through the
//! controller's slots: it reports Q, H and its gains, applies its μ row with
//! `offload_plan` and `take_fragments`, sends the fragments with real payload
//! bytes to the server agents paced at the modelled rate, computes the rest
//! locally, and records every task's end-to-end latency on its own clock.
//! Many agents may share one process: they share one controller session
//! (batched), and each has its own offload streams.
//!
//! # Layout
//! From the bottom up; each module uses only those above it in this list.
//! - [`records`]: what agents write at shutdown. `metrics`: the process's
//!   Prometheus figures (`--metrics`). `config`: flags or a TOML file.
//!   `error`: the crate's error.
//! - `core`: one agent's slot logic around its `DeviceModel`, with no I/O:
//!   events and the time in, commands out ([`DeviceCore`]). The tokio loop and the testbed's
//!   virtual runtime both drive it.
//! - `channels`: the gRPC channels a process dials, shared by its agents
//!   (a device's own to each server when its links follow the channel:
//!   [`FollowedLinks`]).
//! - `session`: the process's controller session for its devices (batched
//!   both ways), reconnecting with jittered backoff.
//! - `uplink`: offload streams to the servers and the paced sender.
//! - `device_loop`: one agent's task, carrying out its core's commands.
//! - `agent`: the process: many agents, the metrics page, the records file.

#![forbid(unsafe_code)]

mod agent;
mod channels;
mod config;
pub mod core;
mod device_loop;
mod error;
mod metrics;
pub mod records;
mod session;
mod uplink;

pub use agent::{main, run};
pub use channels::{FollowedLinks, LinkRate};
pub use config::{Args, DeviceAgentConfig};
pub use core::{Batch, DeviceCommand, DeviceCore, DeviceEvent, DeviceSettings, ServerSend};
pub use error::DeviceAgentError;
/// What a device's session repeats to a restarted controller (also for the
/// virtual runtime, which keeps sessions the same way).
pub use session::Replay as DeviceSessionMemory;
pub use uplink::{fragment_message, payload_len};
pub use config::{DEFAULT_TX_FRACTION, DEVICES_PLACEHOLDER, SLOT_ENV};
pub use metrics::{DeviceFigures, DeviceMetrics};
